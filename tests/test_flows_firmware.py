"""Firmware updates end to end (L01, L02; 1.6 §5.19; F06.FR.14-16): 1.6 UpdateFirmware, the 1.6
security extension's SignedUpdateFirmware, 2.0.1/2.1 L01 (secure) and L02 (plain)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _flowkit import Rig, later
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows._base import Activity, FlowAnomaly, build
from ocpp_sansio.flows.firmware import (
    LEGAL_INPUTS,
    FirmwareDownloadDue,
    FirmwareInstallDue,
    FirmwareMonitor,
    FirmwarePhase,
    FirmwareStatusReported,
    FirmwareUpdateCanceled,
    FirmwareUpdater,
    FirmwareUpdateRefused,
)

V2 = ("2.0.1", "2.1")
LOCATION = "https://firmware.example/image.bin"


def update_request(
    rig: Rig,
    request_id: int = 1,
    *,
    signed: bool = True,
    retrieve_in: float = 0,
    install_in: float | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
) -> Any:
    m, now = rig.m, rig.now
    retrieve = later(now, retrieve_in)
    install = later(now, install_in) if install_in is not None else None
    if rig.version == "1.6" and not signed:
        return m.UpdateFirmwareRequest(
            location=LOCATION,
            retrieve_date=retrieve,
            retries=retries,
            retry_interval=retry_interval,
        )
    firmware = m.Firmware(
        location=LOCATION,
        retrieve_date_time=retrieve,
        install_date_time=install,
        signing_certificate="-----BEGIN CERTIFICATE-----" if signed else None,
        signature="c2lnbmF0dXJl" if signed else None,
    )
    cls = m.SignedUpdateFirmwareRequest if rig.version == "1.6" else m.UpdateFirmwareRequest
    return cls(
        request_id=request_id, firmware=firmware, retries=retries, retry_interval=retry_interval
    )


def status_action(rig: Rig, signed: bool) -> str:
    if rig.version == "1.6" and signed:
        return "SignedFirmwareStatusNotification"
    return "FirmwareStatusNotification"


def setup(version: str, **options: Any) -> tuple[Rig, FirmwareUpdater, FirmwareMonitor]:
    rig = Rig(version)
    updater = FirmwareUpdater(rig.station, **options)
    monitor = FirmwareMonitor(rig.csms)
    rig.station_flows.append(updater)
    rig.csms_flows.append(monitor)
    return rig, updater, monitor


def anomalies(monitor: FirmwareMonitor) -> list[FlowAnomaly]:
    return [e for e in monitor.events() if isinstance(e, FlowAnomaly)]


def of_type(updater: FirmwareUpdater, cls: type) -> list[Any]:
    return [e for e in updater.events() if isinstance(e, cls)]


# --- happy paths ---


@pytest.mark.parametrize("version", V2)
def test_l01_secure_update_reports_every_state_with_its_request_id(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 7, retrieve_in=100))
    assert rig.answers()[-1] == {"status": "Accepted"}
    rig.advance(100)
    (due,) = of_type(updater, FirmwareDownloadDue)
    assert due.request_id == 7 and due.attempt == 1 and due.location == LOCATION
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_verified(rig.now)
    assert of_type(updater, FirmwareInstallDue)
    updater.install_started(rig.now)
    updater.installed(rig.now)
    rig.flush()
    notifications = rig.calls("FirmwareStatusNotification")
    assert [n["status"] for n in notifications] == [
        "DownloadScheduled",  # L01.FR.13: retrieveDateTime in the future
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ]
    assert {n["requestId"] for n in notifications} == {7}  # L01.FR.10
    # L01.FR.31: FirmwareUpdated security event after Installed.
    assert [e["type"] for e in rig.calls("SecurityEventNotification")] == ["FirmwareUpdated"]
    assert anomalies(monitor) == []
    assert monitor.updates[7].statuses[-1] == "Installed" and monitor.updates[7].finished
    assert updater.phase is FirmwarePhase.INSTALLED and not updater.running


@pytest.mark.parametrize("version", V2)
def test_l02_plain_update_skips_the_signature_step(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 3, signed=False))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    with pytest.raises(LocalProtocolError):
        updater.signature_verified(rig.now)  # no signature to verify
    updater.install_started(rig.now)
    updater.installed(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert rig.calls("SecurityEventNotification") == []
    assert anomalies(monitor) == []


def test_1_6_update_firmware_reports_the_1_6_statuses_without_request_id() -> None:
    rig, updater, monitor = setup("1.6")
    rig.csms_sends(update_request(rig, signed=False, retrieve_in=60))
    assert rig.answers()[-1] == {}  # 1.6 UpdateFirmware.conf is empty
    rig.advance(30)
    with pytest.raises(LocalProtocolError, match="retrieveDateTime"):
        updater.download_started(rig.now)  # 1.6 §5.19: not before retrieveDate
    rig.advance(30)
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.install_started(rig.now)
    updater.installed(rig.now)
    rig.flush()
    notifications = rig.calls("FirmwareStatusNotification")
    assert [n["status"] for n in notifications] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert all("requestId" not in n for n in notifications)
    assert anomalies(monitor) == []


def test_1_6_security_signed_update_uses_the_signed_messages() -> None:
    rig, updater, monitor = setup("1.6")
    rig.csms_sends(update_request(rig, 11))
    assert rig.answers()[-1] == {"status": "Accepted"}
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_verified(rig.now)
    updater.install_started(rig.now)
    updater.installed(rig.now)
    rig.flush()
    notifications = rig.calls("SignedFirmwareStatusNotification")
    assert [n["status"] for n in notifications] == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ]
    assert {n["requestId"] for n in notifications} == {11}  # 1.6 security L01.FR.10
    assert rig.calls("FirmwareStatusNotification") == []
    assert anomalies(monitor) == []


def test_1_6_security_l01_fr_20_plain_update_firmware_answers_not_supported() -> None:
    rig, updater, _ = setup("1.6", accept_unsigned_1_6=False)
    rig.csms_sends(update_request(rig, signed=False))
    assert rig.errors()[-1][2] == "NotSupported"
    assert of_type(updater, FirmwareUpdateRefused)
    assert updater.phase is FirmwarePhase.IDLE


# --- waiting for times ---


@pytest.mark.parametrize("version", V2)
def test_l01_fr_16_install_scheduled_waits_for_install_date_time(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 2, install_in=600))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_verified(rig.now)
    assert updater.phase is FirmwarePhase.AWAITING_INSTALL
    assert updater.next_deadline() == pytest.approx(600)
    with pytest.raises(LocalProtocolError, match="installDateTime"):
        updater.install_started(rig.now)
    rig.advance(599)
    assert not of_type(updater, FirmwareInstallDue)
    rig.advance(1)
    assert of_type(updater, FirmwareInstallDue)
    updater.install_started(rig.now)
    updater.installed(rig.now)
    rig.flush()
    statuses = rig.statuses("FirmwareStatusNotification")
    assert statuses[3:] == ["InstallScheduled", "Installing", "Installed"]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l02_fr_10_plain_install_scheduled(version: str) -> None:
    rig, updater, _ = setup(version)
    rig.csms_sends(update_request(rig, 2, signed=False, install_in=60))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification")[-1] == "InstallScheduled"
    rig.advance(60)
    assert of_type(updater, FirmwareInstallDue)


@pytest.mark.parametrize("version", V2)
def test_l01_fr_34_deferring_a_scheduled_install_reports_install_scheduled_once(
    version: str,
) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 2, signed=False, install_in=60))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    rig.advance(60)
    updater.install_deferred(rig.now)  # a transaction still runs
    updater.install_started(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification")[2:] == ["InstallScheduled", "Installing"]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_13_download_scheduled_when_the_station_is_busy(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 4))
    updater.download_deferred(rig.now)
    updater.download_started(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == ["DownloadScheduled", "Downloading"]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_14_download_paused_and_resumed(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 4))
    updater.download_started(rig.now)
    updater.download_paused(rig.now)
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "DownloadPaused",
        "Downloading",
        "Downloaded",
    ]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_06_fr_34_transactions_hold_the_install(version: str) -> None:
    rig = Rig(version)
    activity = Activity()
    updater = FirmwareUpdater(rig.station, activity=activity)
    rig.station_flows.append(updater)
    activity.transaction_started("tx-1", 1, rig.now)
    rig.csms_sends(update_request(rig, 5, signed=False))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    assert updater.phase is FirmwarePhase.AWAITING_INSTALL
    assert not of_type(updater, FirmwareInstallDue)
    activity.transaction_ended("tx-1", rig.now)
    assert of_type(updater, FirmwareInstallDue)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification")[-1] == "InstallScheduled"


# --- failure paths ---


@pytest.mark.parametrize("version", V2)
def test_l01_fr_30_download_fails_after_all_retries(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 9, retries=2, retry_interval=30))
    attempts = []
    for _ in range(3):
        (due,) = of_type(updater, FirmwareDownloadDue)
        attempts.append((due.attempt, rig.now))
        updater.download_started(rig.now)
        updater.download_failed(rig.now)
        if updater.phase is FirmwarePhase.RETRY_WAIT:
            with pytest.raises(LocalProtocolError, match="retry interval"):
                updater.download_started(rig.now)
            rig.advance(30)
    assert attempts == [(1, 0), (2, 30), (3, 60)]
    rig.flush()
    # A new Downloading per attempt (allowed), one DownloadFailed at the end.
    assert rig.statuses("FirmwareStatusNotification") == ["Downloading"] * 3 + ["DownloadFailed"]
    assert updater.phase is FirmwarePhase.DOWNLOAD_FAILED
    assert anomalies(monitor) == []


def test_1_6_download_fails_after_retries() -> None:
    rig, updater, monitor = setup("1.6")
    rig.csms_sends(update_request(rig, signed=False, retries=1, retry_interval=10))
    updater.download_started(rig.now)
    updater.download_failed(rig.now)
    rig.advance(10)
    updater.download_started(rig.now)
    updater.download_failed(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloading",
        "DownloadFailed",
    ]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", ["1.6", *V2])
def test_l01_fr_22_invalid_certificate_is_refused_with_a_security_event(version: str) -> None:
    rig, updater, _ = setup(version, check=lambda request: "InvalidCertificate")
    rig.csms_sends(update_request(rig, 1))
    assert rig.answers()[-1] == {"status": "InvalidCertificate"}
    # L01.FR.02: InvalidFirmwareSigningCertificate security event.
    assert [e["type"] for e in rig.calls("SecurityEventNotification")] == [
        "InvalidFirmwareSigningCertificate"
    ]
    assert updater.phase is FirmwarePhase.IDLE


@pytest.mark.parametrize("version", ["1.6", *V2])
def test_l01_fr_03_invalid_signature_ends_the_update(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 1))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_invalid(rig.now)
    rig.flush()
    assert rig.statuses(status_action(rig, True))[-1] == "InvalidSignature"
    assert [e["type"] for e in rig.calls("SecurityEventNotification")] == [
        "InvalidFirmwareSignature"
    ]
    with pytest.raises(LocalProtocolError, match="no firmware update"):
        updater.install_started(rig.now)
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_29_install_verification_failed(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 1))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_verified(rig.now)
    updater.install_started(rig.now)
    updater.install_verification_failed(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification")[-1] == "InstallVerificationFailed"
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", ["1.6", *V2])
def test_illegal_moves_raise_local_protocol_error(version: str) -> None:
    rig, updater, _ = setup(version)
    with pytest.raises(LocalProtocolError, match="no firmware update"):
        updater.download_started(rig.now)
    rig.csms_sends(update_request(rig, 1))
    for illegal in (
        updater.downloaded,
        updater.installed,
        updater.install_started,
        updater.signature_verified,
        updater.download_failed,
    ):
        with pytest.raises(LocalProtocolError):
            illegal(rig.now)
    updater.download_started(rig.now)
    with pytest.raises(LocalProtocolError):
        updater.installed(rig.now)
    rig.flush()
    assert rig.statuses(status_action(rig, True)) == ["Downloading"]


# --- a new request while one runs ---


@pytest.mark.parametrize("version", ["1.6", *V2])
def test_l01_fr_24_new_request_cancels_the_running_update_accepted_canceled(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 1))
    updater.download_started(rig.now)
    rig.csms_sends(update_request(rig, 2))
    assert rig.answers()[-1] == {"status": "AcceptedCanceled"}
    (canceled,) = of_type(updater, FirmwareUpdateCanceled)
    assert canceled.request_id == 1
    assert updater.request_id == 2
    updater.download_started(rig.now)
    rig.flush()
    action = status_action(rig, True)
    assert [(n["status"], n["requestId"]) for n in rig.calls(action)] == [
        ("Downloading", 1),
        ("Downloading", 2),
    ]
    assert monitor.updates[1].canceled and not monitor.updates[2].finished
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_27_installation_that_cannot_be_cancelled_is_kept_rejected(version: str) -> None:
    rig, updater, _ = setup(version)
    rig.csms_sends(update_request(rig, 1))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_verified(rig.now)
    updater.install_started(rig.now)
    rig.csms_sends(update_request(rig, 2))
    assert rig.answers()[-1] == {"status": "Rejected"}
    assert of_type(updater, FirmwareUpdateRefused)
    assert updater.request_id == 1 and updater.phase is FirmwarePhase.INSTALLING


# --- triggers (F06.FR.14-16) ---


@pytest.mark.parametrize("version", V2)
def test_f06_fr_16_trigger_without_any_update_sends_idle_without_request_id(version: str) -> None:
    rig, _, monitor = setup(version)
    rig.trigger("FirmwareStatusNotification")
    assert rig.calls("FirmwareStatusNotification") == [{"status": "Idle"}]  # L01.FR.20
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_25_trigger_after_installed_sends_idle(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 1, signed=False))
    for step in (updater.download_started, updater.downloaded, updater.install_started):
        step(rig.now)
    updater.installed(rig.now)
    rig.flush()
    rig.trigger("FirmwareStatusNotification")
    assert rig.calls("FirmwareStatusNotification")[-1] == {"status": "Idle"}
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_26_trigger_repeats_the_last_status_sent(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 6, retries=0))
    updater.download_started(rig.now)
    rig.trigger("FirmwareStatusNotification")
    updater.download_failed(rig.now)
    rig.trigger("FirmwareStatusNotification")  # after a failure: still the last status
    rig.flush()
    assert [(n["status"], n.get("requestId")) for n in rig.calls("FirmwareStatusNotification")] == [
        ("Downloading", 6),
        ("Downloading", 6),
        ("DownloadFailed", 6),
        ("DownloadFailed", 6),
    ]
    assert anomalies(monitor) == []


def test_1_6_idle_only_when_triggered_and_not_busy() -> None:
    rig, updater, monitor = setup("1.6")
    rig.trigger("FirmwareStatusNotification")
    rig.csms_sends(update_request(rig, signed=False))
    updater.download_started(rig.now)
    rig.trigger("FirmwareStatusNotification")
    updater.downloaded(rig.now)
    updater.install_started(rig.now)
    updater.installed(rig.now)
    rig.flush()
    rig.trigger("FirmwareStatusNotification")
    assert rig.statuses("FirmwareStatusNotification") == [
        "Idle",
        "Downloading",
        "Downloading",  # busy: the current status, not Idle
        "Downloaded",
        "Installing",
        "Installed",
        "Idle",
    ]
    assert anomalies(monitor) == []


def test_1_6_security_extended_trigger_answers_with_signed_status() -> None:
    rig, updater, monitor = setup("1.6")
    rig.csms_sends(update_request(rig, 8))
    updater.download_started(rig.now)
    rig.trigger("FirmwareStatusNotification", extended=True)
    assert rig.calls("SignedFirmwareStatusNotification")[-1] == {
        "status": "Downloading",
        "requestId": 8,
    }
    rig.trigger("FirmwareStatusNotification")  # plain trigger: no plain update is running
    assert rig.calls("FirmwareStatusNotification") == [{"status": "Idle"}]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_b02_triggered_status_goes_out_while_pending(version: str) -> None:
    rig = Rig(version, boot_status="Pending")
    updater = FirmwareUpdater(rig.station)
    rig.station_flows.append(updater)
    rig.trigger("FirmwareStatusNotification")
    assert rig.calls("FirmwareStatusNotification") == [{"status": "Idle"}]


# --- across connections and reboots ---


@pytest.mark.parametrize("version", V2)
def test_notifications_made_offline_go_out_in_order_after_reconnect(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 1, signed=False))
    rig.disconnect()
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    assert rig.statuses("FirmwareStatusNotification") == []
    assert len(updater.outbox.waiting) == 2
    rig.advance(5)
    rig.connect()
    assert rig.statuses("FirmwareStatusNotification") == ["Downloading", "Downloaded"]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_l01_fr_15_reboot_to_install_boots_with_reason_firmware_update(version: str) -> None:
    rig, updater, monitor = setup(version)
    rig.csms_sends(update_request(rig, 12))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.signature_verified(rig.now)
    updater.install_rebooting(rig.now)
    rig.flush()
    assert updater.reboot_pending
    snapshot = updater.snapshot()
    assert snapshot is not None
    core = rig.reboot(updater.boot_request(rig.station.boot_request))
    assert rig.calls("BootNotification")[-1]["reason"] == "FirmwareUpdate"
    resumed = FirmwareUpdater(core, resume=snapshot)
    rig.station_flows[:] = [resumed]
    resumed.install_started(rig.now)
    resumed.installed(rig.now)
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification")[-3:] == [
        "InstallRebooting",
        "Installing",
        "Installed",
    ]
    assert {n["requestId"] for n in rig.calls("FirmwareStatusNotification")} == {12}
    assert anomalies(monitor) == []
    assert not resumed.reboot_pending


@pytest.mark.parametrize("version", V2)
def test_l01_fr_32_installed_then_reboot_to_activate(version: str) -> None:
    rig, updater, _ = setup(version)
    rig.csms_sends(update_request(rig, 1, signed=False))
    for step in (updater.download_started, updater.downloaded, updater.install_started):
        step(rig.now)
    updater.installed(rig.now, reboot=True)
    boot = updater.boot_request(rig.station.boot_request)
    assert str(boot.reason) == "FirmwareUpdate"


def test_1_6_boot_request_is_unchanged() -> None:
    rig, updater, _ = setup("1.6")
    rig.csms_sends(update_request(rig, signed=False))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    updater.install_rebooting(rig.now)
    assert updater.boot_request(rig.station.boot_request) is rig.station.boot_request


# --- the CSMS view ---


def station_says(rig: Rig, status: str, request_id: int | None) -> None:
    """A station without our updater: its application sends what it likes."""
    cls = rig.m.FirmwareStatusNotificationRequest
    if rig.version == "1.6":
        payload = build(cls, status=status)
    else:
        payload = build(cls, status=status, request_id=request_id)
    rig.station.send_request(payload, rig.now)
    rig.flush()


def monitor_only(version: str) -> tuple[Rig, FirmwareMonitor]:
    rig = Rig(version)
    monitor = FirmwareMonitor(rig.csms)
    rig.csms_flows.append(monitor)
    return rig, monitor


@pytest.mark.parametrize("version", V2)
def test_l01_fr_01_csms_flags_a_status_out_of_order(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(update_request(rig, 1, signed=False))
    station_says(rig, "Downloading", 1)
    station_says(rig, "Installed", 1)
    (anomaly,) = anomalies(monitor)
    assert "out of order" in anomaly.reason and anomaly.status == "Installed"
    assert "L02.FR.01" in anomaly.rule


@pytest.mark.parametrize("version", V2)
def test_l01_fr_10_csms_flags_an_unknown_request_id(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(update_request(rig, 1))
    station_says(rig, "Downloading", 99)
    (anomaly,) = anomalies(monitor)
    assert anomaly.request_id == 99 and "unknown requestId" in anomaly.reason


@pytest.mark.parametrize("version", V2)
def test_l01_fr_20_csms_flags_a_missing_request_id(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(update_request(rig, 1))
    station_says(rig, "Downloading", None)
    (anomaly,) = anomalies(monitor)
    assert "L01.FR.20" in anomaly.rule


@pytest.mark.parametrize("version", ["1.6", *V2])
def test_csms_flags_idle_that_no_trigger_asked_for(version: str) -> None:
    rig, monitor = monitor_only(version)
    station_says(rig, "Idle", None)
    (anomaly,) = anomalies(monitor)
    assert "Trigger" in anomaly.reason


@pytest.mark.parametrize("version", V2)
def test_csms_flags_progress_on_a_cancelled_update(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(update_request(rig, 1))
    station_says(rig, "Downloading", 1)
    rig.csms_sends(update_request(rig, 2))  # the default app answers Accepted
    station_says(rig, "Downloaded", 1)  # sent before the station saw the new request
    station_says(rig, "InstallationFailed", 1)  # a cancelled one may end failed (L01.FR.24)
    station_says(rig, "Installed", 1)
    (anomaly,) = anomalies(monitor)
    assert "cancelled" in anomaly.reason and anomaly.status == "Installed"


def test_1_6_csms_flags_installed_before_downloading() -> None:
    rig, monitor = monitor_only("1.6")
    rig.csms_sends(update_request(rig, signed=False))
    station_says(rig, "Installed", None)
    (anomaly,) = anomalies(monitor)
    assert anomaly.rule == "1.6 §4.5"


# --- random orders (hypothesis) ---

INPUTS = sorted(LEGAL_INPUTS)
REQUEST_PARAMETERS = st.fixed_dictionaries(
    {
        "signed": st.booleans(),
        "retrieve_in": st.sampled_from([0, 0, 30, 120]),
        "install_in": st.sampled_from([None, None, 0, 60]),
        "retries": st.sampled_from([None, 0, 1, 2]),
        "interval": st.sampled_from([None, 0, 20]),
    }
)
_DOWNLOAD = r"(?:(?:DownloadScheduled|Downloading|DownloadPaused) )*"
_INSTALL = r"(?:(?:InstallScheduled|Installing|InstallRebooting) )*"
#: The order of an update, written independently of the flow's tables: download steps,
#: then either DownloadFailed, or Downloaded, the signature verdict (signed only), install
#: steps and an end. Every part may be missing at the end (the update is still running).
ORDER = {
    True: re.compile(
        rf"{_DOWNLOAD}(?:DownloadFailed |Downloaded (?:InvalidSignature |SignatureVerified "
        rf"{_INSTALL}(?:Installed |InstallationFailed |InstallVerificationFailed )?)?)?"
    ),
    False: re.compile(
        rf"{_DOWNLOAD}(?:DownloadFailed |Downloaded "
        rf"{_INSTALL}(?:Installed |InstallationFailed |InstallVerificationFailed )?)?"
    ),
}


class FirmwareOrders(RuleBasedStateMachine):
    """Random requests, firmware-code inputs, waits, triggers and outages: the updater
    raises nothing but LocalProtocolError, and the CSMS sees every update in order."""

    @initialize(version=st.sampled_from(["1.6", *V2]), data=st.data())
    def start(self, version: str, data: st.DataObject) -> None:
        self.rig, self.updater, self.monitor = setup(version)
        self.next_id = 1
        self.signed: dict[int | None, bool] = {}
        self.seen: dict[int | None, list[str]] = {}
        self.anomalies: list[FlowAnomaly] = []
        self.new_request(**data.draw(REQUEST_PARAMETERS))

    @rule(parameters=REQUEST_PARAMETERS)
    def another_request(self, parameters: dict[str, Any]) -> None:
        self.new_request(**parameters)

    def new_request(
        self,
        signed: bool,
        retrieve_in: float,
        install_in: float | None,
        retries: int | None,
        interval: int | None,
    ) -> None:
        rig = self.rig
        request = update_request(
            rig,
            self.next_id,
            signed=signed,
            retrieve_in=retrieve_in,
            install_in=install_in,
            retries=retries,
            retry_interval=interval,
        )
        self.signed[self.next_id] = signed
        self.next_id += 1
        rig.csms_sends(request)

    def _step(self, data: st.DataObject, steer: int) -> None:
        phase = self.updater.phase
        # Mostly a move the phase allows (so long walks happen), sometimes any move.
        legal = [name for name in INPUTS if phase in LEGAL_INPUTS[name]]
        step = data.draw(st.sampled_from(legal if legal and steer else INPUTS))
        try:
            getattr(self.updater, step)(self.rig.now)
        except LocalProtocolError:
            return
        assert phase in LEGAL_INPUTS[step], f"{step} accepted in {phase}"

    @rule(data=st.data(), steer=st.integers(0, 4))
    def firmware_code(self, data: st.DataObject, steer: int) -> None:
        self._step(data, steer)

    @rule(seconds=st.sampled_from([1, 10, 20, 30, 60, 200]))
    def wait(self, seconds: float) -> None:
        self.rig.advance(seconds)

    @rule()
    def until_due(self) -> None:
        """Time runs to the updater's next deadline (retrieve, retry or install time)."""
        deadline = self.updater.next_deadline()
        if deadline is not None:
            self.rig.run_until(deadline)

    @rule(extended=st.booleans())
    def trigger(self, extended: bool) -> None:
        self.rig.trigger("FirmwareStatusNotification", extended=extended)

    @rule(data=st.data(), steps=st.integers(0, 3))
    def outage(self, data: st.DataObject, steps: int) -> None:
        """The connection drops; the firmware code goes on; the connection comes back."""
        self.rig.disconnect()
        for _ in range(steps):
            self._step(data, 1)
        self.rig.advance(5)
        self.rig.connect()

    @invariant()
    def csms_sees_legal_orders(self) -> None:
        if not hasattr(self, "rig"):
            return
        self.rig.flush()
        for event in self.monitor.events():
            if isinstance(event, FlowAnomaly):
                self.anomalies.append(event)
            elif isinstance(event, FirmwareStatusReported) and event.status != "Idle":
                if event.request_id is None:
                    continue  # 1.6 plain: no id to group by; the monitor judged it
                statuses = self.seen.setdefault(event.request_id, [])
                if not (event.triggered and statuses and statuses[-1] == event.status):
                    statuses.append(event.status)
        assert self.anomalies == [], self.anomalies
        for request_id, statuses in self.seen.items():
            signed = self.signed.get(request_id, True)
            text = "".join(f"{s} " for s in statuses)
            assert ORDER[signed].fullmatch(text), (request_id, statuses)
            if "DownloadPaused" in statuses:
                assert statuses.index("Downloading") < statuses.index("DownloadPaused")


FirmwareOrders.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_firmware_random_orders = FirmwareOrders.TestCase
