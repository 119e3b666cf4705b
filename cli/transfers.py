"""Real transfers for the simulated station: firmware downloads over HTTP(S)/FTP(S) with
``ocpp_sansio.adapters.transfer``, signing-certificate and signature checks with
``ocpp_sansio.firmware_signature``, log and diagnostics uploads. Each runs in a worker
thread and hands its outcome to the simulator's inbox, so every adapter can use it.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from ocpp_sansio.adapters.transfer import TransferError, download, file_chunks, upload, upload_url
from ocpp_sansio.apps.simulator import Inbox
from ocpp_sansio.charging_station import FirmwareJob, UploadJob
from ocpp_sansio.errors import MissingExtraError
from ocpp_sansio.firmware_signature import check_signing_certificate, verify_firmware_signature

log = logging.getLogger("ocpp_sansio.cli.transfers")

Report = Callable[[str, float], None]


class RealTransfers:
    """The simulator's ``Transfers``: files live in ``workdir`` (a fresh temporary
    directory by default).

    ``trusted_roots`` are the ManufacturerRootCertificates (PEM) a signing certificate must
    chain to. The simulator has no certificate store to install them in (M05 is not
    implemented), so without any it trusts a self-signed signing certificate as its own
    root: its validity period, its key and the signature are still checked for real."""

    def __init__(
        self,
        identity: str,
        *,
        workdir: str | Path | None = None,
        trusted_roots: Iterable[str] = (),
        timeout: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.identity = identity
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ocpp-sansio-sim-"))
        self.trusted_roots = list(trusted_roots)
        self.timeout = timeout
        self.clock = clock

    def check_certificate(self, signing_certificate: str) -> str | None:
        roots = self.trusted_roots or [signing_certificate]
        try:
            check = check_signing_certificate(signing_certificate, roots, self.clock())
        except MissingExtraError as error:
            log.warning("cannot check a signing certificate: %s", error)
            return "InvalidCertificate"  # what cannot be checked is not accepted
        if not check.valid:
            log.warning("signing certificate refused: %s", check.reason)
        return check.update_firmware_status

    def start_download(self, job: FirmwareJob, inbox: Inbox, report: Report) -> None:
        path = self.workdir / f"firmware-{job.request_id or 0}-{job.attempt}.bin"

        def work() -> list[str]:
            try:
                download(job.location, path, timeout=self.timeout)
            except TransferError as error:
                log.warning("firmware download failed: %s", error)
                return ["DownloadFailed"]
            if job.signing_certificate is None or job.signature is None:
                return ["Downloaded"]
            try:
                check = verify_firmware_signature(
                    job.signing_certificate, job.signature, file_chunks(path)
                )
            except MissingExtraError as error:
                log.warning("cannot verify the firmware signature: %s", error)
                return ["Downloaded", "InvalidSignature"]
            return ["Downloaded", check.firmware_status]

        self._run(work, inbox, report)

    def start_upload(self, job: UploadJob, inbox: Inbox, report: Report) -> None:
        path = self.workdir / job.filename
        if not path.exists():
            path.write_text(f"{self.identity}: {job.kind} log of the simulated station\n")
        failure = "UploadFailed" if job.kind == "diagnostics" else "UploadFailure"

        def work() -> list[str]:
            try:
                upload(path, upload_url(job.location, job.filename), timeout=self.timeout)
            except TransferError as error:
                log.warning("upload failed: %s", error)
                return [failure]
            return ["Uploaded"]

        self._run(work, inbox, report)

    def _run(self, work: Callable[[], list[str]], inbox: Inbox, report: Report) -> None:
        def run() -> None:
            statuses = work()

            def deliver(now: float) -> None:
                for status in statuses:
                    report(status, now)

            inbox.append(deliver)  # deque.append is atomic: the station's loop collects it

        threading.Thread(target=run, name="ocpp-sansio-transfer", daemon=True).start()
