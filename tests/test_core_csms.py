"""CSMS-side registration status, request gating and heartbeat health (B02, B03, FR.04, G02)."""

from __future__ import annotations

import pytest
from _corekit import V2, VERSIONS, CsmsApp, decoded, make_pair, request, status_notification

from ocpp_sansio import LocalProtocolError
from ocpp_sansio.config import CsmsConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import (
    CallLost,
    HeartbeatOverdue,
    RegistrationChanged,
    RegistrationStatus,
    RequestRefused,
)
from ocpp_sansio.testing.pair import TO_STATION

REMOTE_START = {
    "1.6": "RemoteStartTransaction",
    "2.0.1": "RequestStartTransaction",
    "2.1": "RequestStartTransaction",
}
REMOTE_STOP = {
    "1.6": "RemoteStopTransaction",
    "2.0.1": "RequestStopTransaction",
    "2.1": "RequestStopTransaction",
}


@pytest.mark.parametrize("status", ["Accepted", "Pending", "Rejected"])
@pytest.mark.parametrize("version", VERSIONS)
def test_csms_records_the_status_it_answered(version: str, status: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status=status, interval=100))
    assert pair.csms.registration is RegistrationStatus(status)


def registrations(events: list[object]) -> list[RegistrationChanged]:
    return [e for e in events if isinstance(e, RegistrationChanged)]


@pytest.mark.parametrize("status", ["Accepted", "Pending", "Rejected"])
@pytest.mark.parametrize("version", VERSIONS)
def test_csms_reports_the_registration_it_answered_as_the_station_does(
    version: str, status: str
) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status=status, interval=100))
    [csms_side] = registrations(pair.csms_events)
    [station_side] = registrations(pair.station_events)
    assert csms_side == RegistrationChanged(
        status=RegistrationStatus(status), previous=RegistrationStatus.BOOTING, interval=100.0
    )
    assert csms_side == station_side


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_reports_every_boot_it_answers(version: str) -> None:
    """B02.FR.08: a Pending station boots again after the interval; each answer is
    reported, and a boot answered Accepted once more (a reboot) too."""
    app = CsmsApp(version, boot_status="Pending", interval=100)
    pair = make_pair(version, csms_app=app)
    app.boot_status = "Accepted"
    pair.advance(100)
    assert pair.csms.registration is RegistrationStatus.ACCEPTED
    seen = [(e.previous, e.status) for e in registrations(pair.csms_events)]
    assert seen == [
        (RegistrationStatus.BOOTING, RegistrationStatus.PENDING),
        (RegistrationStatus.PENDING, RegistrationStatus.ACCEPTED),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_reports_the_heartbeat_interval_in_force(version: str) -> None:
    """B01.FR.04 (Accepted with interval 0: the station keeps its own interval): the
    CSMS reports the interval it last gave."""
    csms = CsmsCore(version, "CS1", heartbeat_interval=300.0)
    pair = make_pair(version, csms_app=CsmsApp(version, interval=0), connect=False)
    pair.csms = csms
    pair.connect()
    [event] = registrations(pair.csms_events)
    assert event.interval == 300.0


@pytest.mark.parametrize("version", VERSIONS)
def test_b03_fr_03_csms_sends_nothing_to_a_rejected_station(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Rejected", interval=100))
    with pytest.raises(LocalProtocolError, match=r"B03\.FR\.03"):
        pair.csms.send_request(request(version, "ClearCache"), pair.now)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("which", [REMOTE_START, REMOTE_STOP])
def test_b02_csms_does_not_start_or_stop_transactions_on_a_pending_station(
    version: str, which: dict[str, str]
) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=100))
    with pytest.raises(LocalProtocolError, match="Pending"):
        pair.csms.send_request(request(version, which[version]), pair.now)
    pair.csms.send_request(request(version, "ClearCache"), pair.now)  # anything else may go


@pytest.mark.parametrize("version", V2)
@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_fr_04_csms_answers_security_error_to_an_unaccepted_station(
    version: str, status: str
) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status=status, interval=100))
    pair.csms.receive_text('[2,"m9","Heartbeat",{}]', pair.now)
    (frame,) = decoded(pair.csms.data_to_send())
    assert frame[:3] == [4, "m9", "SecurityError"]
    rule = "B03.FR.07" if status == "Rejected" else "B02.FR.09"
    assert any(isinstance(e, RequestRefused) and rule in e.rule for e in pair.csms.events())


@pytest.mark.parametrize("version", V2)
def test_b01_fr_10_unknown_station_gets_security_error_before_its_boot(version: str) -> None:
    csms = CsmsCore(version, "CS9")
    csms.connection_made(0)
    csms.receive_text('[2,"m1","Heartbeat",{}]', 0)
    assert decoded(csms.data_to_send())[0][2] == "SecurityError"


def test_1_6_refusal_of_unaccepted_stations_is_configurable() -> None:
    strict = CsmsCore("1.6", "CS9")
    lenient = CsmsCore("1.6", "CS9", config=CsmsConfig(refuse_unaccepted_1_6=False))
    for csms in (strict, lenient):
        csms.connection_made(0)
        csms.receive_text('[2,"m1","Heartbeat",{}]', 0)
    assert decoded(strict.data_to_send())[0][2] == "SecurityError"
    assert lenient.data_to_send() == []


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_restored_as_accepted_takes_traffic_without_a_boot(version: str) -> None:
    csms = CsmsCore(version, "CS9", registration=RegistrationStatus.ACCEPTED)
    csms.connection_made(0)
    csms.receive_text('[2,"m1","Heartbeat",{}]', 0)
    assert csms.data_to_send() == []
    assert csms.next_event() is not None


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_reports_an_overdue_heartbeat(version: str) -> None:
    app = CsmsApp(version, interval=60, silent_for={"Heartbeat"})
    pair = make_pair(version, csms_app=app, csms_config=CsmsConfig(heartbeat_tolerance=1.5))
    pair.disconnect()  # the station goes quiet, but the CSMS still has its socket
    pair.csms.connection_made(pair.now)
    pair.advance(89)
    assert not any(isinstance(e, HeartbeatOverdue) for e in pair.csms_events)
    pair.advance(2)
    assert len([e for e in pair.csms_events if isinstance(e, HeartbeatOverdue)]) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_requests_wait_for_one_another(version: str) -> None:
    pair = make_pair(version, station_app=lambda core, event, now: None)
    pair.csms.send_request(request(version, "ClearCache"), pair.now)
    pair.csms.send_request(request(version, "ClearCache"), pair.now)
    pair.flush()
    calls = [m for m in decoded(pair.frames(TO_STATION)) if m[0] == 2]
    assert len(calls) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_reports_calls_lost_with_the_connection(version: str) -> None:
    pair = make_pair(version, station_app=lambda core, event, now: None)
    pair.csms.send_request(request(version, "ClearCache"), pair.now)
    pair.csms.send_request(request(version, "ClearCache"), pair.now)
    pair.disconnect()
    assert len([e for e in pair.csms_events if isinstance(e, CallLost)]) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_cannot_send_a_station_message(version: str) -> None:
    pair = make_pair(version)
    with pytest.raises(LocalProtocolError, match="never sends"):
        pair.csms.send_request(status_notification(version, 1), pair.now)
