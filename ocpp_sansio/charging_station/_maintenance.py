"""Firmware updates (L01, L02; 1.6 §5.19) and log or diagnostics uploads (N01; 1.6
§5.9): the jobs the application does, the progress it reports, and what a reboot must
not lose."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows.firmware import FirmwareDownloadDue, FirmwarePhase
from ocpp_sansio.flows.logs import DiagnosticsUploader, UploadDue

from ._application import FirmwareJob, UploadJob
from ._reboot import FIRMWARE_UPDATE

if TYPE_CHECKING:
    from ._facade import ChargingStation


#: An update in these phases is about to take the station down (L01.FR.07: "until the
#: firmware is installed").
_INSTALLING = frozenset(
    {FirmwarePhase.INSTALL_DUE, FirmwarePhase.INSTALLING, FirmwarePhase.INSTALL_REBOOTING}
)


class Maintenance:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        #: The update's reboot waits for the running transactions to end (L01.FR.33).
        self._reboot_waiting = False
        #: The update waited for transactions and is not installed yet (L01.FR.07).
        self._waited = False
        station.activity.subscribe(self._activity_changed)

    # --- firmware

    def check_certificate(self, request: Any) -> str | None:
        """L01.FR.21/22: the application judges a signed update's signing certificate."""
        station = self.station
        firmware = getattr(request, "firmware", None)
        certificate = getattr(firmware, "signing_certificate", None)
        if certificate is None:
            certificate = getattr(request, "signing_certificate", None)
        if certificate is None:
            return None
        now = station.now
        verdict = station.application.check_firmware_certificate(certificate, now)
        if verdict in ("InvalidCertificate", "RevokedCertificate"):
            station.security.send("InvalidFirmwareSigningCertificate", now)  # L01.FR.02
        return verdict

    def holds_new_sessions(self) -> bool:
        """L01.FR.07 / L02.FR.04: once an update waits for the transactions to end, free
        EVSEs are Unavailable until it is installed, unless
        AllowNewSessionsPendingFirmwareUpdate is true. Asked after every event."""
        station = self.station
        updater = station.firmware
        waiting = self._reboot_waiting or updater.waiting_for_transactions
        if waiting:
            self._waited = True
        elif updater.phase not in _INSTALLING:
            self._waited = False
        if station.version == "1.6" or station.setting.flag(
            "ChargingStation.AllowNewSessionsPendingFirmwareUpdate", False
        ):
            return False
        return self._waited

    def _reboot_when_idle(self, now: float) -> None:
        """The update's reboot, once no transaction runs (L01.FR.33)."""
        if self.station.activity.transactions():
            self._reboot_waiting = True
            return
        self._reboot_waiting = False
        self.station.reboots.reboot(FIRMWARE_UPDATE, now)

    def _activity_changed(self, now: float) -> None:
        if self._reboot_waiting and not self.station.activity.transactions():
            self._reboot_when_idle(now)

    def download(self, event: FirmwareDownloadDue, now: float) -> None:
        updater = self.station.firmware
        snapshot = updater.snapshot()
        request = snapshot.request if snapshot is not None else None
        firmware = getattr(request, "firmware", None)
        self.station.application.download_firmware(
            FirmwareJob(
                request_id=updater.request_id,
                location=event.location,
                attempt=event.attempt,
                attempts=event.attempts,
                signing_certificate=getattr(firmware, "signing_certificate", None),
                signature=getattr(firmware, "signature", None),
            ),
            now,
        )

    def firmware_status(
        self, request_id: int | None, status: str, now: float, *, reboot: bool
    ) -> None:
        station = self.station
        updater = station.firmware
        if updater.request_id != request_id and request_id is not None:
            raise LocalProtocolError(f"no firmware update {request_id} is running")
        action: dict[str, Callable[[float], None]] = {
            "Downloading": updater.download_started,
            "DownloadScheduled": updater.download_deferred,
            "DownloadPaused": updater.download_paused,
            "Downloaded": updater.downloaded,
            "DownloadFailed": updater.download_failed,
            "SignatureVerified": updater.signature_verified,
            "InvalidSignature": updater.signature_invalid,
            "InstallScheduled": updater.install_deferred,
            "Installing": updater.install_started,
            "InstallRebooting": updater.install_rebooting,
            "InstallationFailed": updater.install_failed,
            "InstallVerificationFailed": updater.install_verification_failed,
        }
        security = station.security
        if status == "Installed":
            # ``reboot``: activating the new firmware takes a reboot (L01.FR.32 b).
            updater.installed(now, reboot=reboot)
            security.send("FirmwareUpdated", now)  # L01.FR.31
            if updater.reboot_pending:
                self._reboot_when_idle(now)
        elif status in action:
            action[status](now)
            if status == "InvalidSignature":
                security.send("InvalidFirmwareSignature", now)  # L01.FR.03
            elif status == "InstallRebooting":
                self._reboot_when_idle(now)
        else:
            raise LocalProtocolError(f"unknown firmware status {status!r}")

    # --- uploads

    def upload(self, event: UploadDue, now: float) -> None:
        station = self.station
        uploader = station.logs if event.kind.value == "log" else station.diagnostics
        assert uploader is not None
        station.application.upload_log(
            UploadJob(
                kind=event.kind.value,
                request_id=uploader.request_id,
                location=event.location,
                filename=event.filename,
                attempt=event.attempt,
                attempts=event.attempts,
            ),
            now,
        )

    def upload_status(self, status: str, now: float) -> None:
        station = self.station
        uploader: Any = station.logs
        diagnostics = station.diagnostics
        if diagnostics is not None and diagnostics.running and not station.logs.running:
            uploader = diagnostics
        if status == "Uploading":
            uploader.upload_started(now)
        elif status == "Uploaded":
            uploader.uploaded(now)
        elif isinstance(uploader, DiagnosticsUploader):
            uploader.upload_failed(now)
        else:
            uploader.upload_failed(now, status)

    def resume_uploads(self, now: float) -> None:
        """N01: an upload a reboot cut short goes on, its attempts counted (the keeper
        gives it back and keeps the uploads from now on)."""
        station = self.station
        station.keeper.keep_uploads(station.logs, now)
        if station.diagnostics is not None:
            station.keeper.keep_uploads(station.diagnostics, now)
