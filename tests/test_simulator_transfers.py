"""The simulated station's firmware and log paths succeed and fail for real: downloads
from a loopback HTTP server, signing certificates and signatures checked with
cryptography, uploads that the server stores or refuses (cli/transfers.py)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _transferkit import HttpFiles, http_server, refusing_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpp_sansio._core import counter_ids
from ocpp_sansio.apps.demo_csms import DemoCsms
from ocpp_sansio.apps.simulator import RebootRequested, SimulatedStation
from ocpp_sansio.cli.transfers import RealTransfers
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RequestReceived, ResponseReceived
from ocpp_sansio.flows import FlowHost
from ocpp_sansio.flows._base import build
from ocpp_sansio.testing.pair import TO_CSMS, InMemoryPair

FIRMWARE = b"\x7fELF simulated firmware " * 2048
NOW = datetime.now(UTC)


def certificate(*, expired: bool = False) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Firmware Signing")])
    start = NOW - timedelta(days=400 if expired else 1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 if expired else 30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


class Rig:
    def __init__(self, version: str, tmp_path: Path) -> None:
        self.version = version
        self.sim = SimulatedStation(
            "CS1",
            version,
            id_generator=counter_ids("s"),
            transfers=RealTransfers("CS1", workdir=tmp_path, timeout=5),
        )
        self.m = self.sim.station.m
        self.demo = DemoCsms(boot_status="Accepted", heartbeat_interval=300)
        csms = CsmsCore(version, "CS1", id_generator=counter_ids("c"))
        self.flows = FlowHost(csms, self.demo.flows(csms))
        self.pair = InMemoryPair(self.sim.core, csms, on_csms_event=self._on_csms)
        self.pair.connect()
        self.pair.advance(0.1)

    def _on_csms(self, core: CsmsCore, event: Any, now: float) -> None:
        if isinstance(event, RequestReceived):
            self.flows.route(event, now)

    def call(self, request: Any) -> Any:
        message_id = self.pair.csms.send_request(request, self.pair.now)
        self.pair.advance(0.1)
        for event in self.pair.csms_events:
            if isinstance(event, ResponseReceived) and event.message_id == message_id:
                return event.response
        raise AssertionError("no answer")

    def statuses(self, action: str) -> list[str]:
        out = []
        for text in self.pair.frames(TO_CSMS):
            frame = json.loads(text)
            if frame[0] == 2 and frame[2] == action:
                out.append(frame[3]["status"])
        return out

    def run_until(self, done: Any, limit: float = 10.0) -> None:
        """Advance the virtual clock while the real transfers run in their threads."""
        deadline = time.monotonic() + limit
        while not done():
            assert time.monotonic() < deadline, "the transfer did not finish in time"
            time.sleep(0.01)
            self.pair.advance(0.25)

    def reboots(self) -> list[str]:
        return [e.reason for e in self.pair.station_events if isinstance(e, RebootRequested)]

    def update(self, location: str, *, cert: str | None = None, sig: str | None = None) -> Any:
        m = self.m
        firmware = build(
            m.Firmware,
            location=location,
            retrieve_date_time=self.sim.station.clock(self.pair.now),
            signing_certificate=cert,
            signature=sig,
        )
        return self.call(
            build(
                m.UpdateFirmwareRequest,
                request_id=3,
                firmware=firmware,
                retries=1,
                retry_interval=1,
            )
        )


@pytest.fixture
def files() -> HttpFiles:
    served = HttpFiles()
    served.files["fw.bin"] = FIRMWARE
    return served


def test_L01_a_signed_update_downloads_verifies_installs_and_reboots(
    tmp_path: Path, files: HttpFiles
) -> None:
    rig = Rig("2.0.1", tmp_path)
    key, cert = certificate()
    with http_server(files) as base:
        answer = rig.update(f"{base}/files/fw.bin", cert=cert, sig=signature(key, FIRMWARE))
        assert str(answer.status) == "Accepted"
        rig.run_until(lambda: "Installed" in rig.statuses("FirmwareStatusNotification"))
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ]
    rig.pair.advance(1)
    assert rig.reboots() == ["FirmwareUpdate"]


def test_L01_FR_22_an_expired_signing_certificate_is_refused(
    tmp_path: Path, files: HttpFiles
) -> None:
    rig = Rig("2.0.1", tmp_path)
    key, cert = certificate(expired=True)
    answer = rig.update("http://127.0.0.1:1/fw.bin", cert=cert, sig=signature(key, FIRMWARE))
    assert str(answer.status) == "InvalidCertificate"
    assert rig.statuses("FirmwareStatusNotification") == []


def test_L01_FR_03_a_wrong_signature_is_InvalidSignature(tmp_path: Path, files: HttpFiles) -> None:
    rig = Rig("2.0.1", tmp_path)
    key, cert = certificate()
    with http_server(files) as base:
        rig.update(f"{base}/files/fw.bin", cert=cert, sig=signature(key, b"other firmware"))
        rig.run_until(lambda: "InvalidSignature" in rig.statuses("FirmwareStatusNotification"))
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "InvalidSignature",
    ]


@pytest.mark.parametrize("version", ("1.6", "2.0.1"))
def test_L01_FR_30_an_unreachable_location_is_DownloadFailed_after_retries(
    tmp_path: Path, version: str
) -> None:
    rig = Rig(version, tmp_path)
    with refusing_port() as port:
        location = f"http://127.0.0.1:{port}/fw.bin"
        if version == "1.6":
            rig.call(
                build(
                    rig.m.UpdateFirmwareRequest,
                    location=location,
                    retrieve_date=rig.sim.station.clock(rig.pair.now),
                    retries=1,
                    retry_interval=1,
                )
            )
        else:
            rig.update(location)
        rig.run_until(lambda: "DownloadFailed" in rig.statuses("FirmwareStatusNotification"))
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloading",
        "DownloadFailed",
    ]


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_N01_a_log_upload_reaches_the_server(
    tmp_path: Path, files: HttpFiles, version: str
) -> None:
    rig = Rig(version, tmp_path)
    m = rig.m
    with http_server(files) as base:
        answer = rig.call(
            build(
                m.GetLogRequest,
                log=m.LogParameters(remote_location=f"{base}/upload/"),
                log_type="DiagnosticsLog",
                request_id=8,
            )
        )
        rig.run_until(lambda: "Uploaded" in rig.statuses("LogStatusNotification"))
    assert rig.statuses("LogStatusNotification") == ["Uploading", "Uploaded"]
    method, _, body = files.received[answer.filename]
    assert method == "PUT" and b"CS1" in body


@pytest.mark.parametrize("version", ("2.0.1", "1.6"))
def test_N01_FR_10_a_refused_upload_fails_after_retries(
    tmp_path: Path, files: HttpFiles, version: str
) -> None:
    rig = Rig(version, tmp_path)
    m = rig.m
    with http_server(files) as base:
        if version == "1.6":
            rig.call(
                build(
                    m.GetDiagnosticsRequest,
                    location=f"{base}/readonly/",
                    retries=1,
                    retry_interval=1,
                )
            )
            action, failure = "DiagnosticsStatusNotification", "UploadFailed"
        else:
            rig.call(
                build(
                    m.GetLogRequest,
                    log=m.LogParameters(remote_location=f"{base}/readonly/"),
                    log_type="DiagnosticsLog",
                    request_id=8,
                    retries=1,
                    retry_interval=1,
                )
            )
            action, failure = "LogStatusNotification", "UploadFailure"
        rig.run_until(lambda: failure in rig.statuses(action))
    assert rig.statuses(action) == ["Uploading", "Uploading", failure]
