"""Station-side registration, heartbeat, held transaction messages and retries
(B01-B04, E04, E13)."""

from __future__ import annotations

import itertools

import pytest
from _corekit import (
    V2,
    VERSIONS,
    CsmsApp,
    actions,
    boot_request,
    decoded,
    make_pair,
    request,
    status_notification,
    transaction_message,
    transaction_number,
)

from ocpp_sansio import LocalProtocolError
from ocpp_sansio.config import StationConfig
from ocpp_sansio.events import (
    CallTimedOut,
    ClockReport,
    Reconnected,
    RegistrationChanged,
    RegistrationStatus,
    RequestRefused,
    TransactionMessageDiscarded,
)
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION


@pytest.mark.parametrize("version", VERSIONS)
def test_b01_fr_01_boot_notification_is_the_first_message(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, silent_for={"BootNotification"}))
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification"]


@pytest.mark.parametrize("version", VERSIONS)
def test_b01_fr_08_nothing_but_boot_before_the_answer(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, silent_for={"BootNotification"}))
    with pytest.raises(LocalProtocolError, match=r"B01\.FR\.08"):
        pair.station.send_request(status_notification(version, 1), pair.now)
    # A transaction message is held, not refused, and not sent.
    pair.station.send_request(transaction_message(version, 7), pair.now)
    pair.flush()
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification"]


@pytest.mark.parametrize("version", VERSIONS)
def test_b01_fr_04_accepted_interval_becomes_the_heartbeat_interval(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, interval=45))
    assert pair.station.registration is RegistrationStatus.ACCEPTED
    pair.advance(44.9)
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification"]
    pair.advance(0.2)
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification", "Heartbeat"]
    pair.advance(45)
    assert actions(pair.frames(TO_CSMS)).count("Heartbeat") == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_b01_fr_06_boot_answer_reports_the_csms_clock(version: str) -> None:
    pair = make_pair(version)
    reports = [e for e in pair.station_events if isinstance(e, ClockReport)]
    assert len(reports) == 1 and reports[0].csms_time.tzinfo is not None


@pytest.mark.parametrize("version", VERSIONS)
def test_g02_fr_05_heartbeat_timer_restarts_on_other_traffic(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, interval=100))
    pair.advance(90)
    pair.station.send_request(status_notification(version, 1), pair.now)
    pair.advance(99)  # t=189: 99 s after the StatusNotification
    assert "Heartbeat" not in actions(pair.frames(TO_CSMS))
    pair.advance(2)
    assert actions(pair.frames(TO_CSMS))[-1] == "Heartbeat"


@pytest.mark.parametrize("version", VERSIONS)
def test_b02_fr_08_pending_waits_the_interval_before_the_next_boot(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=30))
    assert pair.station.registration is RegistrationStatus.PENDING
    pair.advance(29.9)
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification"]
    pair.advance(0.2)
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification", "BootNotification"]


@pytest.mark.parametrize("version", VERSIONS)
def test_b02_fr_07_interval_zero_uses_a_bounded_growing_jittered_wait(version: str) -> None:
    config = StationConfig(boot_retry_initial=10, boot_retry_max=80, boot_retry_jitter=0.5)
    pair = make_pair(
        version,
        csms_app=CsmsApp(version, boot_status="Pending", interval=0),
        station_config=config,
    )
    pair.advance(2000)
    boots = [s.time for s in pair.transcript if s.direction == TO_CSMS]
    waits = [b - a for a, b in itertools.pairwise(boots)]
    assert len(waits) > 5
    for n, wait in enumerate(waits):
        base = min(80, 10 * 2**n)
        assert base <= wait <= base * 1.5
    assert len(set(waits[-3:])) == 3  # jittered: no two retries wait the same


@pytest.mark.parametrize("version", VERSIONS)
def test_b02_fr_02_pending_station_sends_no_ordinary_request(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=300))
    with pytest.raises(LocalProtocolError, match=r"B02\.FR\.02"):
        pair.station.send_request(status_notification(version, 1), pair.now)


@pytest.mark.parametrize("version", VERSIONS)
def test_b02_fr_01_pending_station_answers_the_csms(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=300))
    pair.csms.send_request(request(version, "ClearCache"), pair.now)
    pair.flush()
    assert decoded(pair.frames(TO_CSMS))[-1][0] == 3


@pytest.mark.parametrize("version", V2)
def test_b02_fr_05_pending_station_rejects_request_start_transaction(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=300))
    # The CSMS core would refuse to send it (B02); put it on the wire by hand.
    pair.station.receive_text(
        '[2,"x1","RequestStartTransaction",{"idToken":{"idToken":"a","type":"Central"},"remoteStartId":1}]',
        pair.now,
    )
    assert pair.station.data_to_send() == ['[3,"x1",{"status":"Rejected"}]']
    assert any(isinstance(e, RequestRefused) for e in pair.station.events())


@pytest.mark.parametrize("version", VERSIONS)
def test_b03_fr_02_rejected_station_sends_nothing_until_the_interval(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Rejected", interval=500))
    pair.station.send_request(transaction_message(version, 1), pair.now)  # held
    with pytest.raises(LocalProtocolError, match=r"B03\.FR\.02"):
        pair.station.send_request(status_notification(version, 1), pair.now)
    pair.advance(499)
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification"]
    pair.advance(2)
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification", "BootNotification"]


def test_b03_rejected_1_6_station_answers_nothing() -> None:
    pair = make_pair("1.6", csms_app=CsmsApp("1.6", boot_status="Rejected", interval=500))
    pair.station.receive_text('[2,"x1","ClearCache",{}]', pair.now)
    assert pair.station.data_to_send() == []
    refused = [e for e in pair.station.events() if isinstance(e, RequestRefused)]
    assert refused and refused[0].error_code is None


@pytest.mark.parametrize("version", V2)
def test_b03_fr_08_rejected_station_answers_security_error(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Rejected", interval=500))
    pair.station.receive_text('[2,"x1","ClearCache",{}]', pair.now)
    (frame,) = decoded(pair.station.data_to_send())
    assert frame[:3] == [4, "x1", "SecurityError"]


@pytest.mark.parametrize("version", VERSIONS)
def test_held_transaction_messages_go_out_in_order_once_accepted(version: str) -> None:
    app = CsmsApp(version, boot_status="Pending", interval=10)
    pair = make_pair(version, csms_app=app)
    for n in range(1, 4):
        pair.station.send_request(transaction_message(version, n), pair.now)
    pair.flush()
    assert "MeterValues" not in actions(pair.frames(TO_CSMS))
    app.boot_status = "Accepted"
    pair.advance(11)
    sent = [m for m in decoded(pair.frames(TO_CSMS)) if m[2] != "BootNotification"]
    numbers = [m[3].get("transactionId", m[3].get("seqNo")) for m in sent[:3]]
    assert numbers == [1, 2, 3]


@pytest.mark.parametrize("version", VERSIONS)
def test_b04_reconnect_resumes_without_a_boot_and_delivers_held_messages(version: str) -> None:
    pair = make_pair(version)
    pair.disconnect()
    pair.advance(100)
    pair.station.send_request(transaction_message(version, 5), pair.now)  # offline: held
    with pytest.raises(LocalProtocolError, match="offline"):
        pair.station.send_request(status_notification(version, 1), pair.now)
    pair.connect()
    assert actions(pair.frames(TO_CSMS)).count("BootNotification") == 1
    assert [e.offline_for for e in pair.station_events if isinstance(e, Reconnected)] == [100]
    tx = [m for m in decoded(pair.frames(TO_CSMS)) if m[2] in ("MeterValues", "TransactionEvent")]
    assert len(tx) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_transaction_message_in_flight_when_the_connection_drops_is_sent_again(
    version: str,
) -> None:
    pair = make_pair(version)
    dropped = {"count": 0}

    def drop_first_answer(direction: str, text: str) -> bool:
        if direction == TO_STATION and dropped["count"] == 0 and '"s2"' in text:
            dropped["count"] += 1
            return True
        return False

    pair.drop = drop_first_answer
    pair.station.send_request(transaction_message(version, 9), pair.now)
    pair.flush()
    pair.disconnect()
    pair.connect()
    tx = [m for m in decoded(pair.frames(TO_CSMS)) if m[2] in ("MeterValues", "TransactionEvent")]
    assert [m[1] for m in tx] == ["s2", "s2"]  # the retry keeps its message id
    assert pair.station.held_requests == []


@pytest.mark.parametrize("version", VERSIONS)
def test_e13_fr_02_03_04_transaction_message_retries_then_is_discarded(version: str) -> None:
    action = "MeterValues" if version == "1.6" else "TransactionEvent"
    config = StationConfig(transaction_message_attempts=3, transaction_message_retry_interval=60)
    pair = make_pair(version, csms_app=CsmsApp(version, error_for={action}), station_config=config)
    pair.station.send_request(transaction_message(version, 1), pair.now)
    pair.station.send_request(transaction_message(version, 2), pair.now)
    pair.advance(1000)
    times = [s.time for s in pair.transcript if s.direction == TO_CSMS and action in s.text]
    # first message: t=0, +60 (1 x interval), +120 (2 x interval); then the next message.
    assert times[:3] == [0, 60, 180]
    discarded = [e for e in pair.station_events if isinstance(e, TransactionMessageDiscarded)]
    assert [transaction_number(version, e.request) for e in discarded] == [1, 2]
    assert discarded[0].attempts == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_fr_01_one_outstanding_call_and_timeout_frees_the_channel(version: str) -> None:
    app = CsmsApp(version, silent_for={"StatusNotification"})
    pair = make_pair(version, csms_app=app, station_config=StationConfig(call_timeout=20))
    pair.station.send_request(status_notification(version, 1), pair.now)
    pair.station.send_request(status_notification(version, 2), pair.now)
    pair.flush()
    assert actions(pair.frames(TO_CSMS)).count("StatusNotification") == 1
    pair.advance(20)
    assert actions(pair.frames(TO_CSMS)).count("StatusNotification") == 2
    assert any(isinstance(e, CallTimedOut) for e in pair.station_events)


@pytest.mark.parametrize("version", VERSIONS)
def test_fr_02_answers_never_wait_behind_our_own_call(version: str) -> None:
    app = CsmsApp(version, silent_for={"StatusNotification"})
    pair = make_pair(version, csms_app=app)
    pair.station.send_request(status_notification(version, 1), pair.now)
    pair.flush()
    pair.csms.send_request(request(version, "ClearCache"), pair.now)
    pair.flush()
    answers = [m for m in decoded(pair.frames(TO_CSMS)) if m[0] == 3]
    assert len(answers) == 1  # answered while our StatusNotification is outstanding


@pytest.mark.parametrize("version", VERSIONS)
def test_registration_changes_are_reported(version: str) -> None:
    app = CsmsApp(version, boot_status="Pending", interval=10)
    pair = make_pair(version, csms_app=app)
    app.boot_status = "Accepted"
    pair.advance(10)
    changes = [
        (e.previous, e.status) for e in pair.station_events if isinstance(e, RegistrationChanged)
    ]
    assert changes == [
        (RegistrationStatus.BOOTING, RegistrationStatus.PENDING),
        (RegistrationStatus.PENDING, RegistrationStatus.ACCEPTED),
    ]


def test_the_boot_request_must_match_the_version() -> None:
    from ocpp_sansio.station import StationCore

    with pytest.raises((LocalProtocolError, KeyError)):
        StationCore("2.0.1", boot_request("1.6"))


@pytest.mark.parametrize("version", VERSIONS)
def test_application_may_not_send_boot_notification_itself(version: str) -> None:
    pair = make_pair(version)
    with pytest.raises(LocalProtocolError, match="BootNotification"):
        pair.station.send_request(boot_request(version), pair.now)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_boot_lost_with_the_connection_is_sent_again_on_reconnect(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, silent_for={"BootNotification"}))
    pair.disconnect()
    pair.csms_app = None
    pair.on_csms_event = CsmsApp(version)
    pair.connect()
    assert actions(pair.frames(TO_CSMS)) == ["BootNotification", "BootNotification"]
    assert pair.station.registration is RegistrationStatus.ACCEPTED
