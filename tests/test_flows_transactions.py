"""Transactions end to end (E01-E13; 1.6 §3.7, §4.8, §4.10): 1.6 Start/Stop/MeterValues
with the CSMS's transactionId, 2.0.1/2.1 TransactionEvent with the station's, across
disconnects, retries and discards; and random operation orders that must never produce an
illegal sequence."""

from __future__ import annotations

import json
import random
import weakref
from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ocpp_sansio.csms import REMEMBERED_ANSWERS
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import RequestReceived, RetryAnswered
from ocpp_sansio.flows._base import Activity
from ocpp_sansio.flows.transactions import (
    CsmsTransactionEvents,
    CsmsTransactions16,
    StartTransactionDiscarded,
    TransactionAnomaly,
    TransactionCompleted,
    TransactionDeauthorized,
    TransactionEventDiscarded,
    TransactionEvents,
    TransactionFinished16,
    TransactionReport,
    Transactions16,
    TransactionStarted16,
    TransactionState,
    uuid_transaction_ids,
)

V2 = ("2.0.1", "2.1")


_SEEN: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def of_type(flow: Any, cls: type) -> list[Any]:
    """Every event of ``cls`` the flow emitted so far (reading does not lose the others)."""
    seen = _SEEN.setdefault(flow, [])
    seen.extend(flow.events())
    return [e for e in seen if isinstance(e, cls)]


class Refuse:
    """A CSMS flow answering ``action`` with a CALLERROR (a failure to process it, E13)."""

    def __init__(self, rig: Rig, action: str) -> None:
        self.rig = rig
        self.action = action

    def handle_event(self, event: Any, now: float) -> bool:
        if isinstance(event, RequestReceived) and event.action == self.action:
            self.rig.csms.send_error(event.message_id, "InternalError", "cannot process")
            return True
        return False


class Hold:
    """A CSMS flow that keeps ``action`` requests unanswered until ``release``."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.held: list[RequestReceived] = []

    def handle_event(self, event: Any, now: float) -> bool:
        if isinstance(event, RequestReceived) and event.action == self.action:
            self.held.append(event)
            return True
        return False


# --- 1.6 ------------------------------------------------------------------------------------


def rig16(**flow_options: Any) -> tuple[Rig, Transactions16, CsmsTransactions16]:
    rig = Rig("1.6", connectors=2)
    flow = Transactions16(rig.station, **flow_options)
    csms = CsmsTransactions16(rig.csms)
    rig.station_flows.append(flow)
    rig.csms_flows.append(csms)
    return rig, flow, csms


def meter(rig: Rig, wh: int) -> list[Any]:
    m = rig.m
    return [m.MeterValue(timestamp=wall(rig.now), sampled_value=[m.SampledValue(value=str(wh))])]


def test_16_start_meter_stop_carry_the_csms_transaction_id() -> None:
    rig, flow, csms = rig16()
    tx = flow.start(1, "TAG1", 100, rig.now)
    rig.flush()
    assert tx.transaction_id == 1 and tx.state is TransactionState.RUNNING
    flow.meter_values(tx, meter(rig, 150), rig.now)
    flow.stop(tx, 200, rig.now, reason="Local")
    rig.flush()
    assert rig.call_actions() == [
        "BootNotification",
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ]
    assert rig.calls("MeterValues")[0]["transactionId"] == 1
    assert rig.calls("StopTransaction")[0]["transactionId"] == 1
    assert len(of_type(flow, TransactionStarted16)) == 1
    (finished,) = of_type(flow, TransactionFinished16)
    assert finished.delivered
    assert not of_type(csms, TransactionAnomaly)


def test_16_stop_waits_for_the_start_answer_and_its_transaction_id() -> None:
    rig, flow, _ = rig16()
    hold = Hold("StartTransaction")
    rig.csms_flows.insert(0, hold)
    tx = flow.start(1, "TAG1", 100, rig.now)
    flow.meter_values(tx, meter(rig, 120), rig.now)
    flow.stop(tx, 130, rig.now)
    rig.flush()
    # Nothing but the Start is with the core: the others need its transactionId.
    assert [type(p).__name__ for p in rig.station.held_requests] == ["StartTransactionRequest"]
    assert [action for action, _ in tx.waiting] == ["MeterValues", "StopTransaction"]
    (start,) = hold.held
    answer = rig.m.StartTransactionResponse(
        id_tag_info=rig.m.IdTagInfo(status=rig.m.AuthorizationStatus.ACCEPTED), transaction_id=77
    )
    rig.csms.send_response(start.message_id, answer, rig.now)
    rig.flush()
    assert rig.call_actions()[-3:] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert rig.calls("StopTransaction")[0]["transactionId"] == 77
    assert rig.calls("MeterValues")[0]["transactionId"] == 77


def test_16_transaction_messages_across_a_disconnect_exactly_once_in_order_e04() -> None:
    rig, flow, csms = rig16()
    tx = flow.start(1, "TAG1", 0, rig.now)
    rig.flush()
    rig.disconnect()
    rig.advance(30)
    for wh in (10, 20, 30):
        flow.meter_values(tx, meter(rig, wh), rig.now)
    flow.stop(tx, 40, rig.now)
    tx2 = flow.start(2, "TAG2", 5, rig.now)  # offline: its Start is held too
    flow.stop(tx2, 9, rig.now)
    assert rig.call_actions().count("MeterValues") == 0
    rig.advance(30)
    rig.connect()
    rig.advance(10)
    sent = [(c.get("transactionId"), c.get("meterStop"), c.get("meterStart")) for c in rig.calls()]
    actions = rig.call_actions()
    assert actions == [
        "BootNotification",
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
        "StartTransaction",
        "StopTransaction",
    ]
    values = [c["meterValue"][0]["sampledValue"][0]["value"] for c in rig.calls("MeterValues")]
    assert values == ["10", "20", "30"]
    assert sent[-1] == (2, 9, None) and tx2.transaction_id == 2
    reports = of_type(csms, TransactionReport)
    assert not any(r.duplicate for r in reports)


def test_16_start_discarded_after_its_last_attempt_is_reported_e13_fr_04() -> None:
    rig, flow, _ = rig16()
    refuse = Refuse(rig, "StartTransaction")
    rig.csms_flows.insert(0, refuse)
    tx = flow.start(1, "TAG1", 0, rig.now)
    flow.meter_values(tx, meter(rig, 5), rig.now)
    flow.stop(tx, 9, rig.now)
    rig.advance(60 + 120 + 10)  # attempts at 0, +60, +120 (E13.FR.03)
    assert rig.call_actions().count("StartTransaction") == 3
    (lost,) = of_type(flow, StartTransactionDiscarded)
    assert lost.transaction is tx and lost.dropped == ("MeterValues", "StopTransaction")
    assert "StopTransaction" not in rig.call_actions()
    assert tx.state is TransactionState.STOPPED
    # The connector is free again.
    flow.start(1, "TAG2", 9, rig.now)


def test_16_stop_on_invalid_id_is_asked_for_when_start_is_not_accepted_e05() -> None:
    for setting, expected in (("true", True), ("false", False)):
        rig, flow, csms = rig16(settings=_Settings({"StopTransactionOnInvalidId": setting}))
        csms.authorize = lambda tag: "Blocked"
        tx = flow.start(1, "BAD", 0, rig.now)
        rig.flush()
        (deauthorized,) = of_type(flow, TransactionDeauthorized)
        assert deauthorized.transaction is tx
        assert deauthorized.status == "Blocked"
        assert deauthorized.stop_transaction is expected


def test_16_one_transaction_per_connector() -> None:
    rig, flow, _ = rig16()
    flow.start(1, "TAG1", 0, rig.now)
    with pytest.raises(LocalProtocolError):
        flow.start(1, "TAG2", 0, rig.now)
    with pytest.raises(LocalProtocolError):
        flow.start(0, "TAG2", 0, rig.now)


def test_16_no_meter_values_or_second_stop_after_stop() -> None:
    rig, flow, _ = rig16()
    tx = flow.start(1, "TAG1", 0, rig.now)
    flow.stop(tx, 1, rig.now)
    with pytest.raises(LocalProtocolError):
        flow.meter_values(tx, meter(rig, 2), rig.now)
    with pytest.raises(LocalProtocolError):
        flow.stop(tx, 2, rig.now)


def test_16_csms_gives_a_retried_start_the_same_transaction_id() -> None:
    rig, flow, csms = rig16()
    dropped: list[str] = []

    def drop_first_start_answer(direction: str, text: str) -> bool:
        if direction == "csms->station" and '"transactionId"' in text and not dropped:
            dropped.append(text)
            return True
        return False

    rig.pair.drop = drop_first_start_answer
    tx = flow.start(1, "TAG1", 0, rig.now)
    rig.advance(200)  # the station times out and tries again (E13.FR.02)
    assert rig.call_actions().count("StartTransaction") == 2
    # The core answers the retry (same message id) with the first answer; the flow and
    # the application see the Start once.
    starts = [r for r in of_type(csms, TransactionReport) if r.action == "StartTransaction"]
    assert [r.duplicate for r in starts] == [False]
    (retry,) = [e for e in rig.csms_seen if isinstance(e, RetryAnswered)]
    assert retry.action == "StartTransaction" and retry.response.transaction_id == 1
    assert rig.answers("csms->station")[-1] == json.loads(dropped[0])[2]
    assert tx.transaction_id == 1


def test_16_csms_flow_recognises_a_start_repeated_under_a_new_message_id() -> None:
    """A station that retries with a new message id (allowed: a retry MAY reuse its id)
    is caught by the flow, by the Start's content."""
    rig, _, csms = rig16()
    start = rig.m.StartTransactionRequest(
        connector_id=1, id_tag="TAG1", meter_start=0, timestamp=wall(rig.now)
    )
    rig.station.send_request(start, rig.now)
    rig.flush()
    rig.station.send_request(start, rig.now)
    rig.flush()
    starts = [r for r in of_type(csms, TransactionReport) if r.action == "StartTransaction"]
    assert [(r.duplicate, r.transaction_id) for r in starts] == [(False, 1), (True, 1)]


def test_16_csms_flags_messages_for_unknown_or_finished_transactions() -> None:
    rig, _, csms = rig16()
    m = rig.m
    rig.station.send_request(
        m.StopTransactionRequest(meter_stop=1, timestamp=wall(rig.now), transaction_id=99),
        rig.now,
    )
    rig.flush()
    (anomaly,) = of_type(csms, TransactionAnomaly)
    assert anomaly.transaction_id == 99 and anomaly.problem == "unknown transactionId"


def test_16_activity_follows_the_transaction_under_its_final_id() -> None:
    activity = Activity()
    rig, flow, _ = rig16(activity=activity)
    hold = Hold("StartTransaction")
    rig.csms_flows.insert(0, hold)
    tx = flow.start(1, "TAG1", 0, rig.now)
    rig.flush()
    assert [t.transaction_id for t in activity.transactions()] == ["local-1"]
    answer = rig.m.StartTransactionResponse(
        id_tag_info=rig.m.IdTagInfo(status=rig.m.AuthorizationStatus.ACCEPTED), transaction_id=5
    )
    rig.csms.send_response(hold.held[0].message_id, answer, rig.now)
    rig.flush()
    assert [t.transaction_id for t in activity.transactions()] == [5]
    flow.stop(tx, 1, rig.now)
    assert activity.is_idle()


# --- 2.0.1 / 2.1 --------------------------------------------------------------------------


def rig2(version: str, **flow_options: Any) -> tuple[Rig, TransactionEvents, CsmsTransactionEvents]:
    rig = Rig(version, connectors=2)
    flow = TransactionEvents(
        rig.station, transaction_ids=uuid_transaction_ids(random.Random(7)), **flow_options
    )
    csms = CsmsTransactionEvents(rig.csms)
    rig.station_flows.append(flow)
    rig.csms_flows.append(csms)
    return rig, flow, csms


def token(rig: Rig, value: str = "TAG1") -> Any:
    return rig.m.IdToken(
        id_token=value, type=rig.m.IdTokenEnum.ISO14443 if rig.version == "2.0.1" else "ISO14443"
    )


@pytest.mark.parametrize("version", V2)
def test_e01_fr_07_started_updated_ended_with_seq_no_from_0(version: str) -> None:
    rig, flow, csms = rig2(version)
    tx = flow.start(
        trigger_reason="Authorized", now=rig.now, evse_id=1, connector_id=1, id_token=token(rig)
    )
    rig.advance(10)
    flow.update(tx, trigger_reason="ChargingStateChanged", now=rig.now, charging_state="Charging")
    flow.end(tx, trigger_reason="StopAuthorized", now=rig.now, stopped_reason="Local")
    rig.flush()
    events = rig.calls("TransactionEvent")
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert [e["seqNo"] for e in events] == [0, 1, 2]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx.transaction_id}
    assert events[0]["evse"] == {"id": 1, "connectorId": 1}
    assert events[1]["transactionInfo"]["chargingState"] == "Charging"
    assert events[2]["transactionInfo"]["stoppedReason"] == "Local"
    assert not any("offline" in e for e in events)
    (done,) = of_type(csms, TransactionCompleted)
    assert done.transaction_id == tx.transaction_id and done.missing == ()


@pytest.mark.parametrize("version", V2)
def test_e01_fr_08_transaction_ids_are_unique_uuids(version: str) -> None:
    rig, flow, _ = rig2(version)
    first = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    second = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=2)
    assert first.transaction_id != second.transaction_id
    assert len(first.transaction_id) == 36
    # A second transaction starts again at seqNo 0 (per transaction, per EVSE).
    rig.flush()
    assert [e["seqNo"] for e in rig.calls("TransactionEvent")] == [0, 0]


@pytest.mark.parametrize("version", V2)
def test_e01_fr_14_one_transaction_per_evse(version: str) -> None:
    rig, flow, _ = rig2(version)
    flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    with pytest.raises(LocalProtocolError):
        flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    pending = flow.start(trigger_reason="Authorized", now=rig.now)
    with pytest.raises(LocalProtocolError):
        flow.update(pending, trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)


@pytest.mark.parametrize("version", V2)
def test_e01_fr_16_evse_given_once_known(version: str) -> None:
    rig, flow, _ = rig2(version)
    tx = flow.start(trigger_reason="Authorized", now=rig.now, id_token=token(rig))
    flow.update(tx, trigger_reason="CablePluggedIn", now=rig.now, evse_id=2, connector_id=1)
    rig.flush()
    started, updated = rig.calls("TransactionEvent")
    assert "evse" not in started
    assert updated["evse"] == {"id": 2, "connectorId": 1}
    assert flow.transaction_on(2) is tx


@pytest.mark.parametrize("version", V2)
def test_nothing_follows_ended(version: str) -> None:
    rig, flow, _ = rig2(version)
    tx = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    flow.end(tx, trigger_reason="EVDeparted", now=rig.now, stopped_reason="EVDisconnected")
    for call in (
        lambda: flow.update(tx, trigger_reason="Trigger", now=rig.now),
        lambda: flow.end(tx, trigger_reason="Trigger", now=rig.now),
    ):
        with pytest.raises(LocalProtocolError):
            call()
    with pytest.raises(LocalProtocolError):
        flow.start(trigger_reason="NotAReason", now=rig.now, evse_id=1)


@pytest.mark.parametrize("version", V2)
def test_e04_fr_01_to_03_offline_events_queued_and_marked_offline(version: str) -> None:
    rig, flow, csms = rig2(version)
    rig.disconnect()
    tx = flow.start(trigger_reason="Authorized", now=rig.now, evse_id=1, id_token=token(rig))
    rig.advance(60)
    flow.update(tx, trigger_reason="MeterValuePeriodic", now=rig.now)
    assert "TransactionEvent" not in rig.call_actions()
    rig.connect()
    rig.flush()
    flow.end(tx, trigger_reason="StopAuthorized", now=rig.now)
    rig.flush()
    events = rig.calls("TransactionEvent")
    assert [(e["seqNo"], e.get("offline", False)) for e in events] == [
        (0, True),
        (1, True),
        (2, False),
    ]
    assert of_type(csms, TransactionCompleted)[0].missing == ()


@pytest.mark.parametrize("version", V2)
def test_e11_fr_07_queued_events_are_set_offline_when_the_connection_drops(version: str) -> None:
    rig, flow, _ = rig2(version)
    hold = Hold("TransactionEvent")
    rig.csms_flows.insert(0, hold)
    tx = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    flow.update(tx, trigger_reason="ChargingStateChanged", now=rig.now, charging_state="Charging")
    rig.flush()
    assert len(hold.held) == 1  # the Updated waits behind the unanswered Started
    rig.disconnect()
    rig.csms_flows.remove(hold)
    rig.connect()
    rig.flush()
    events = rig.calls("TransactionEvent")
    assert [(e["seqNo"], e.get("offline", False)) for e in events] == [
        (0, False),  # the first attempt, while online
        (0, True),
        (1, True),
    ]


@pytest.mark.parametrize("version", V2)
def test_e13_fr_04_discarded_event_is_reported_and_the_csms_sees_the_gap(version: str) -> None:
    rig, flow, csms = rig2(version)
    tx = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    rig.flush()
    refuse = Refuse(rig, "TransactionEvent")
    rig.csms_flows.insert(0, refuse)
    flow.update(tx, trigger_reason="ChargingStateChanged", now=rig.now, charging_state="Charging")
    rig.advance(200)
    rig.csms_flows.remove(refuse)
    flow.end(tx, trigger_reason="EVDeparted", now=rig.now, stopped_reason="EVDisconnected")
    rig.flush()
    (discarded,) = of_type(flow, TransactionEventDiscarded)
    assert (discarded.seq_no, discarded.event_type) == (1, "Updated")
    (done,) = of_type(csms, TransactionCompleted)
    assert done.missing == (1,)


@pytest.mark.parametrize("version", V2)
def test_e05_deauthorized_follows_stop_tx_on_invalid_id(version: str) -> None:
    for setting, expected in (("true", True), ("false", False)):
        rig, flow, csms = rig2(version, settings=_Settings({"TxCtrlr.StopTxOnInvalidId": setting}))
        csms.authorize = lambda _token: "Invalid"
        tx = flow.start(trigger_reason="Authorized", now=rig.now, evse_id=1, id_token=token(rig))
        rig.flush()
        (deauthorized,) = of_type(flow, TransactionDeauthorized)
        assert (deauthorized.transaction, deauthorized.status) == (tx, "Invalid")
        assert deauthorized.stop_transaction is expected


@pytest.mark.parametrize("version", V2)
def test_csms_recognises_a_retried_event_and_flags_out_of_place_ones(version: str) -> None:
    rig, _, csms = rig2(version)
    m = rig.m

    def event(kind: str, seq_no: int) -> Any:
        return m.TransactionEventRequest(
            event_type=m.TransactionEventEnum(kind),
            timestamp=wall(rig.now),
            trigger_reason=m.TriggerReasonEnum("Trigger"),
            seq_no=seq_no,
            transaction_info=m.Transaction(transaction_id="T-1"),
        )

    for kind, seq_no in (("Updated", 3), ("Updated", 3), ("Ended", 5), ("Updated", 6)):
        rig.station.send_request(event(kind, seq_no), rig.now)
    rig.flush()
    # The second (Updated, 3) came under a new message id: the core knows the seqNo and
    # answers it as before; the flow reports each event once.
    reports = of_type(csms, TransactionReport)
    assert [r.request.seq_no for r in reports] == [3, 5, 6]
    assert not any(r.duplicate for r in reports)
    assert [e.request.seq_no for e in rig.csms_seen if isinstance(e, RetryAnswered)] == [3]
    problems = [a.problem for a in of_type(csms, TransactionAnomaly)]
    assert problems == ["Updated before Started", "Updated after Ended"]


@pytest.mark.parametrize("version", V2)
def test_csms_flow_flags_a_seq_no_the_core_no_longer_remembers(version: str) -> None:
    rig, _, csms = rig2(version)
    m = rig.m

    def event(seq_no: int) -> Any:
        return m.TransactionEventRequest(
            event_type=m.TransactionEventEnum("Updated"),
            timestamp=wall(rig.now),
            trigger_reason=m.TriggerReasonEnum("Trigger"),
            seq_no=seq_no,
            transaction_info=m.Transaction(transaction_id="T-1"),
        )

    for seq_no in (0, *range(1, REMEMBERED_ANSWERS + 1), 0):
        rig.station.send_request(event(seq_no), rig.now)
    rig.flush()
    reports = of_type(csms, TransactionReport)
    assert [r.duplicate for r in reports].count(True) == 1
    assert reports[-1].duplicate and reports[-1].request.seq_no == 0


@pytest.mark.parametrize("version", V2)
def test_f06_fr_07_triggered_transaction_event_goes_out_while_pending(version: str) -> None:
    rig, flow, _ = rig2(version)
    tx = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    rig.trigger("TransactionEvent")
    flow.update(tx, trigger_reason="Trigger", now=rig.now, charging_state="EVConnected")
    rig.flush()
    assert [e["triggerReason"] for e in rig.calls("TransactionEvent")] == [
        "CablePluggedIn",
        "Trigger",
    ]


# --- random orders --------------------------------------------------------------------------


class _Settings:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def setting(self, name: str) -> str | None:
        return self.values.get(name)


operations = st.lists(
    st.tuples(
        st.sampled_from(["start", "update", "end", "drop", "back", "wait", "refuse", "accept"]),
        st.integers(1, 2),
    ),
    max_size=25,
)


def _csms_refusing(rig: Rig, refuse: Refuse, on: bool) -> None:
    if on and refuse not in rig.csms_flows:
        rig.csms_flows.insert(0, refuse)
    if not on and refuse in rig.csms_flows:
        rig.csms_flows.remove(refuse)


def _network(rig: Rig, op: str, refuse: Refuse) -> None:
    if op == "drop" and rig.pair.connected:
        rig.disconnect()
    elif op == "back" and not rig.pair.connected:
        rig.connect()
    elif op == "wait":
        rig.advance(70)
    elif op in ("refuse", "accept"):
        _csms_refusing(rig, refuse, op == "refuse")


@settings(max_examples=60, deadline=None)
@given(ops=operations, version=st.sampled_from(V2))
def test_random_orders_never_break_started_updated_ended(ops: list[Any], version: str) -> None:
    rig, flow, csms = rig2(version)
    refuse = Refuse(rig, "TransactionEvent")
    for op, evse in ops:
        tx = flow.transaction_on(evse)
        try:
            if op == "start":
                flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=evse)
            elif op == "update" and tx is not None:
                flow.update(tx, trigger_reason="MeterValuePeriodic", now=rig.now)
            elif op == "end" and tx is not None:
                flow.end(tx, trigger_reason="EVDeparted", now=rig.now)
            else:
                _network(rig, op, refuse)
        except LocalProtocolError:
            assert op == "start" and tx is not None  # only a second start on a busy EVSE
        rig.flush()
    _csms_refusing(rig, refuse, False)
    if not rig.pair.connected:
        rig.connect()
    rig.advance(1000)
    discarded = {
        (e.transaction.transaction_id, e.seq_no) for e in of_type(flow, TransactionEventDiscarded)
    }
    delivered: dict[str, list[dict[str, Any]]] = {}
    for report in of_type(csms, TransactionReport):
        if not report.duplicate:
            request = report.request
            delivered.setdefault(request.transaction_info.transaction_id, []).append(request)
    for tx_id, requests in delivered.items():
        seq_nos = [r.seq_no for r in requests]
        assert seq_nos == sorted(seq_nos), "delivered out of order"
        kinds = [str(r.event_type) for r in requests]
        assert kinds.count("Ended") <= 1 and "Ended" not in kinds[:-1]
        if requests[0].seq_no == 0:
            assert kinds[0] == "Started"
        expected = [n for n in range(seq_nos[-1] + 1) if (tx_id, n) not in discarded]
        assert seq_nos == expected, "a seqNo is missing that was not discarded"
    assert rig.station.held_requests == []


ops16 = st.lists(
    st.tuples(
        st.sampled_from(["start", "meter", "stop", "drop", "back", "wait", "refuse", "accept"]),
        st.integers(1, 2),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops16)
@example(ops=[("drop", 1), ("start", 1), ("stop", 1), ("start", 1), ("meter", 1)])
def test_16_random_orders_keep_every_message_behind_its_start(ops: list[Any]) -> None:
    rig, flow, csms = rig16()
    refuse = Refuse(rig, "StartTransaction")
    # A connector's meter only grows, so no two real Starts are identical (the CSMS takes
    # an identical Start for a retry: docs/flows.md).
    readings = dict.fromkeys((1, 2), 0)
    for op, connector in ops:
        tx = flow.transaction_on(connector)
        try:
            if op == "start":
                readings[connector] += 1
                flow.start(connector, f"TAG{connector}", readings[connector], rig.now)
            elif op == "meter" and tx is not None:
                flow.meter_values(tx, meter(rig, 1), rig.now)
            elif op == "stop" and tx is not None:
                readings[connector] += 1
                flow.stop(tx, readings[connector], rig.now)
            else:
                _network(rig, op, refuse)
        except LocalProtocolError:
            assert (op == "start" and tx is not None) or (
                op == "meter" and tx is not None and tx.state is TransactionState.LOST
            )
        rig.flush()
    _csms_refusing(rig, refuse, False)
    if not rig.pair.connected:
        rig.connect()
    rig.advance(1000)
    started: set[int] = set()
    stopped: set[int] = set()
    for report in of_type(csms, TransactionReport):
        if report.duplicate:
            continue
        if report.action == "StartTransaction":
            started.add(report.transaction_id)
        else:
            assert report.transaction_id in started, "a message went before its Start's answer"
            assert report.transaction_id not in stopped, "a message after StopTransaction"
            if report.action == "StopTransaction":
                stopped.add(report.transaction_id)
    assert not of_type(csms, TransactionAnomaly)
    assert rig.station.held_requests == []
