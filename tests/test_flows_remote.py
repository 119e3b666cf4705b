"""Remote control end to end: remote start and stop (1.6 §5.11/§5.12; 2.x F01-F03, with the
remoteStartId tied to the TransactionEvent that follows) and UnlockConnector (1.6 §5.18,
2.x F05), with the transaction flows on both sides."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.flows._base import Activity, FlowAnomaly, build
from ocpp_sansio.flows.availability import Availability
from ocpp_sansio.flows.remote import (
    RemoteControl,
    RemoteMonitor,
    RemoteRequestRefused,
    RemoteStartAccepted,
    RemoteStartLinked,
    RemoteStopAccepted,
    RemoteStopConfirmed,
    UnlockRequested,
)
from ocpp_sansio.flows.transactions import (
    CsmsTransactions16,
    TransactionEvents,
    Transactions16,
)

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")


class Station:
    """The station application: transactions through the transaction flow, remote
    control answered by RemoteControl, its events acted upon."""

    def __init__(self, rig: Rig, *, unlock_works: bool = True, **options: Any) -> None:
        self.rig = rig
        self.activity = Activity()
        self.availability = Availability(rig.station, self.activity)
        if rig.version == "1.6":
            self.transactions: Any = Transactions16(rig.station, activity=self.activity)
        else:
            ids = (f"tx-{n}" for n in itertools.count(1))
            self.transactions = TransactionEvents(
                rig.station, transaction_ids=ids.__next__, activity=self.activity
            )
        self.remote = RemoteControl(
            rig.station, self.activity, availability=self.availability, **options
        )
        rig.station_flows[:] = [self.transactions, self.remote, self.availability]
        self.unlock_works = unlock_works
        self.events: list[Any] = []

    def start(self, evse: int, token: Any = None, **fields: Any) -> Any:
        """A transaction begins on ``evse`` (remote or local)."""
        rig = self.rig
        if rig.version == "1.6":
            self.remote.claim_start(evse, rig.now)
            return self.transactions.start(evse, token or "LOCAL", 0, rig.now)
        remote = self.remote.transaction_fields(evse, rig.now)
        trigger = {"trigger_reason": "Authorized", **remote, **fields}
        if token is None:
            token = build(rig.m.IdToken, id_token="LOCAL", type="Central")
        return self.transactions.start(now=rig.now, evse_id=evse, id_token=token, **trigger)

    def stop(self, tx: Any, *, trigger: str = "StopAuthorized", reason: str = "Local") -> None:
        rig = self.rig
        if rig.version == "1.6":
            self.transactions.stop(tx, 10, rig.now, reason=reason)
        else:
            self.transactions.end(tx, trigger_reason=trigger, now=rig.now, stopped_reason=reason)

    def running(self, evse: int) -> Any:
        return self.transactions.transaction_on(evse)

    def pump(self) -> None:
        """React to RemoteControl's events the way a station should."""
        while True:
            self.rig.flush()
            new = self.remote.events()
            if not new:
                return
            self.events.extend(new)
            for event in new:
                self._react(event)

    def _react(self, event: Any) -> None:
        rig = self.rig
        if isinstance(event, RemoteStartAccepted):
            if event.transaction_id is not None:
                return  # F01.FR.13: the running transaction carries on
            evse = event.evse_id
            if evse is None:  # F01.FR.20: the station picks
                evse = next(e for e in (1, 2) if self.running(e) is None)
            self.start(evse, event.id_token)
        elif isinstance(event, RemoteStopAccepted):
            tx = self.running(event.evse_id)
            if rig.version == "1.6":
                self.stop(tx, reason=event.stopped_reason)
            else:
                assert event.trigger_reason is not None
                self.stop(tx, trigger=event.trigger_reason, reason=event.stopped_reason)
        elif isinstance(event, UnlockRequested):
            if event.stop_first is not None:
                self.stop(self.running(event.evse_id), reason="UnlockCommand")
            self.remote.unlock_result(event.message_id, self.unlock_works, rig.now)

    def of_type(self, cls: type) -> list[Any]:
        self.pump()
        return [e for e in self.events if isinstance(e, cls)]


def setup(version: str, **options: Any) -> tuple[Rig, Station, RemoteMonitor]:
    rig = Rig(version, connectors=2)
    station = Station(rig, **options)
    monitor = RemoteMonitor(rig.csms)
    rig.csms_flows.append(monitor)
    if version == "1.6":
        rig.csms_flows.append(CsmsTransactions16(rig.csms))
    return rig, station, monitor


def token(rig: Rig, value: str = "REMOTE-1") -> Any:
    if rig.version == "1.6":
        return value
    return build(rig.m.IdToken, id_token=value, type="Central")


def remote_start(
    rig: Rig, evse: int | None = 1, remote_id: int = 77, profile: Any = None, who: str = "REMOTE-1"
) -> Any:
    m = rig.m
    if rig.version == "1.6":
        return m.RemoteStartTransactionRequest(
            id_tag=who, connector_id=evse, charging_profile=profile
        )
    return m.RequestStartTransactionRequest(
        id_token=token(rig, who), remote_start_id=remote_id, evse_id=evse, charging_profile=profile
    )


def remote_stop(rig: Rig, transaction_id: Any) -> Any:
    if rig.version == "1.6":
        return rig.m.RemoteStopTransactionRequest(transaction_id=transaction_id)
    return rig.m.RequestStopTransactionRequest(transaction_id=transaction_id)


def profile(rig: Rig, purpose: str = "TxProfile", transaction_id: Any = None) -> Any:
    m = rig.m
    period = build(m.ChargingSchedulePeriod, start_period=0, limit=16.0)
    if rig.version == "1.6":
        schedule = build(
            m.ChargingSchedule, charging_rate_unit="A", charging_schedule_period=[period]
        )
        return build(
            m.ChargingProfile,
            charging_profile_id=1,
            stack_level=0,
            charging_profile_purpose=purpose,
            charging_profile_kind="Relative",
            charging_schedule=schedule,
            transaction_id=transaction_id,
        )
    schedule = build(
        m.ChargingSchedule, id=1, charging_rate_unit="A", charging_schedule_period=[period]
    )
    return build(
        m.ChargingProfile,
        id=1,
        stack_level=0,
        charging_profile_purpose=purpose,
        charging_profile_kind="Relative",
        charging_schedule=[schedule],
        transaction_id=transaction_id,
    )


def anomalies(monitor: RemoteMonitor) -> list[FlowAnomaly]:
    return [e for e in monitor.events() if isinstance(e, FlowAnomaly)]


def started_events(rig: Rig) -> list[dict[str, Any]]:
    return [e for e in rig.calls("TransactionEvent") if e["eventType"] == "Started"]


# --- remote start ---


@pytest.mark.parametrize("version", V2)
def test_f02_fr_01_the_remote_start_id_goes_in_the_first_transaction_event(version: str) -> None:
    rig, station, monitor = setup(version)
    rig.csms_sends(remote_start(rig, evse=1, remote_id=77))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (accepted,) = station.of_type(RemoteStartAccepted)
    assert accepted.remote_start_id == 77 and accepted.evse_id == 1
    (started,) = started_events(rig)
    # F01.FR.19 / F02.FR.21: triggerReason RemoteStart; F02.FR.01: the remoteStartId.
    assert started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 77
    assert started["idToken"]["idToken"] == "REMOTE-1"  # F01.FR.04
    events = monitor.events()
    (linked,) = [e for e in events if isinstance(e, RemoteStartLinked)]
    assert (linked.remote_start_id, linked.transaction_id, linked.evse_id) == (77, "tx-1", 1)
    assert [e for e in events if isinstance(e, FlowAnomaly)] == []


@pytest.mark.parametrize("version", V2)
def test_f01_fr_20_without_evse_the_station_picks_one(version: str) -> None:
    rig, station, monitor = setup(version)
    first = station.start(1)
    rig.csms_sends(remote_start(rig, evse=None, remote_id=5))
    assert rig.answers()[-1] == {"status": "Accepted"}
    station.pump()
    started = started_events(rig)[-1]
    assert started["evse"]["id"] == 2 and started["transactionInfo"]["remoteStartId"] == 5
    assert anomalies(monitor) == []
    assert first.evse_id == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_f01_fr_07_a_start_without_evse_may_be_refused(version: str) -> None:
    rig, station, _ = setup(version, require_evse=True)
    rig.csms_sends(remote_start(rig, evse=None))
    assert rig.answers()[-1] == {"status": "Rejected"}
    (refused,) = station.of_type(RemoteRequestRefused)
    assert "F01.FR.07" in refused.rule or "1.6" in refused.rule


@pytest.mark.parametrize("version", VERSIONS)
def test_f01_fr_23_an_unavailable_evse_is_refused(version: str) -> None:
    rig, _, _ = setup(version)
    kind = "Inoperative"
    if version == "1.6":
        rig.csms_sends(build(rig.m.ChangeAvailabilityRequest, connector_id=1, type=kind))
    else:
        rig.csms_sends(
            build(rig.m.ChangeAvailabilityRequest, operational_status=kind, evse=rig.m.EVSE(id=1))
        )
    rig.csms_sends(remote_start(rig, evse=1))
    assert rig.answers()[-1] == {"status": "Rejected"}
    rig.csms_sends(remote_start(rig, evse=2))
    assert rig.answers()[-1] == {"status": "Accepted"}


@pytest.mark.parametrize("version", VERSIONS)
def test_f01_fr_24_an_evse_with_an_authorized_transaction_is_refused(version: str) -> None:
    rig, station, _ = setup(version)
    station.start(1)
    rig.flush()
    rig.csms_sends(remote_start(rig, evse=1))
    assert rig.answers()[-1] == {"status": "Rejected"}


@pytest.mark.parametrize("version", V2)
def test_f01_fr_13_fr_25_an_unauthorized_transaction_takes_the_remote_start(
    version: str,
) -> None:
    rig = Rig(version, connectors=2)
    activity = Activity()
    remote = RemoteControl(rig.station, activity)
    monitor = RemoteMonitor(rig.csms)
    rig.station_flows.append(remote)
    rig.csms_flows.append(monitor)
    activity.transaction_started("tx-9", 1, rig.now, authorized=False)  # cable first, no token
    rig.csms_sends(remote_start(rig, evse=1, remote_id=31))
    assert rig.answers()[-1] == {"status": "Accepted", "transactionId": "tx-9"}  # F01.FR.13
    fields = remote.transaction_fields(1, rig.now)
    assert fields == {"trigger_reason": "RemoteStart", "remote_start_id": 31}
    updated = build(
        rig.m.TransactionEventRequest,
        event_type="Updated",
        timestamp=wall(rig.now),
        trigger_reason=fields["trigger_reason"],
        seq_no=1,
        transaction_info=rig.m.Transaction(transaction_id="tx-9", remote_start_id=31),
        evse=rig.m.EVSE(id=1),
    )
    rig.station.send_request(updated, rig.now)
    rig.flush()
    events = monitor.events()
    assert [e.transaction_id for e in events if isinstance(e, RemoteStartLinked)] == ["tx-9"]
    assert [e for e in events if isinstance(e, FlowAnomaly)] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_f01_fr_09_fr_26_a_profile_that_is_not_tx_profile_is_refused(version: str) -> None:
    rig, _, _ = setup(version)
    rig.csms_sends(remote_start(rig, profile=profile(rig, "TxDefaultProfile")))
    assert rig.answers()[-1] == {"status": "Rejected"}
    transaction_id = 3 if version == "1.6" else "tx-3"
    rig.csms_sends(remote_start(rig, profile=profile(rig, transaction_id=transaction_id)))
    assert rig.answers()[-1] == {"status": "Rejected"}  # F01.FR.11
    rig.csms_sends(remote_start(rig, profile=profile(rig)))
    assert rig.answers()[-1] == {"status": "Accepted"}


@pytest.mark.parametrize("version", VERSIONS)
def test_f01_fr_12_without_smart_charging_the_profile_is_ignored(version: str) -> None:
    rig, station, _ = setup(version, smart_charging=False)
    rig.csms_sends(remote_start(rig, profile=profile(rig, "TxDefaultProfile")))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (accepted,) = station.of_type(RemoteStartAccepted)
    assert accepted.charging_profile is None


@pytest.mark.parametrize("version", V2)
def test_an_unclaimed_remote_start_is_forgotten_after_its_timeout(version: str) -> None:
    rig = Rig(version, connectors=2)
    remote = RemoteControl(rig.station, Activity(), start_timeout=60)
    rig.station_flows.append(remote)  # no application: no transaction ever starts
    rig.csms_sends(remote_start(rig, evse=1, remote_id=1))
    rig.csms_sends(remote_start(rig, evse=1, remote_id=2))
    assert rig.answers()[-1] == {"status": "Rejected"}  # one is waiting already
    rig.advance(60)
    assert remote.transaction_fields(1, rig.now) == {}
    rig.csms_sends(remote_start(rig, evse=1, remote_id=3))
    assert rig.answers()[-1] == {"status": "Accepted"}


def test_1_6_remote_start_is_followed_by_its_start_transaction() -> None:
    rig, station, monitor = setup("1.6")
    rig.csms_sends(remote_start(rig, evse=2, who="TAG-7"))
    assert rig.answers()[-1] == {"status": "Accepted"}
    station.pump()
    (start,) = rig.calls("StartTransaction")
    assert (start["connectorId"], start["idTag"]) == (2, "TAG-7")
    events = monitor.events()
    (linked,) = [e for e in events if isinstance(e, RemoteStartLinked)]
    assert linked.evse_id == 2 and linked.remote_start_id is None


@pytest.mark.parametrize("connector", [0, 3])
def test_1_6_remote_start_on_an_unknown_connector_is_refused(connector: int) -> None:
    rig, _, _ = setup("1.6")
    rig.csms_sends(remote_start(rig, evse=connector))
    assert rig.answers()[-1] == {"status": "Rejected"}


# --- remote stop ---


@pytest.mark.parametrize("version", VERSIONS)
def test_f03_fr_07_remote_stop_of_a_running_transaction(version: str) -> None:
    rig, station, monitor = setup(version)
    tx = station.start(1)
    rig.flush()
    rig.csms_sends(remote_stop(rig, tx.transaction_id))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (stop,) = station.of_type(RemoteStopAccepted)
    assert stop.stopped_reason == "Remote"
    if version == "1.6":
        assert rig.calls("StopTransaction")[-1]["reason"] == "Remote"
    else:
        ended = rig.calls("TransactionEvent")[-1]
        # F03.FR.03: Ended with triggerReason RemoteStop and stoppedReason Remote.
        assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "RemoteStop")
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    events = monitor.events()
    assert [e.transaction_id for e in events if isinstance(e, RemoteStopConfirmed)] == [
        tx.transaction_id
    ]
    assert [e for e in events if isinstance(e, FlowAnomaly)] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_f03_fr_08_remote_stop_of_an_unknown_transaction_is_rejected(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(remote_stop(rig, 999 if version == "1.6" else "nope"))
    assert rig.answers()[-1] == {"status": "Rejected"}
    assert station.of_type(RemoteStopAccepted) == []


# --- unlock ---


def unlock(rig: Rig, evse: int, connector: int = 1) -> Any:
    if rig.version == "1.6":
        return rig.m.UnlockConnectorRequest(connector_id=evse)
    return rig.m.UnlockConnectorRequest(evse_id=evse, connector_id=connector)


@pytest.mark.parametrize("version", V2)
def test_f05_fr_04_fr_05_the_answer_is_the_unlock_attempt(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(unlock(rig, 1))
    station.pump()
    assert rig.answers()[-1] == {"status": "Unlocked"}
    station.unlock_works = False
    rig.csms_sends(unlock(rig, 2))
    station.pump()
    assert rig.answers()[-1] == {"status": "UnlockFailed"}


@pytest.mark.parametrize("version", V2)
def test_f05_fr_03_unknown_connector(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(unlock(rig, 1, connector=2))
    assert rig.answers()[-1] == {"status": "UnknownConnector"}
    rig.csms_sends(unlock(rig, 5))
    assert rig.answers()[-1] == {"status": "UnknownConnector"}
    assert station.of_type(UnlockRequested) == []


@pytest.mark.parametrize("version", V2)
def test_f05_fr_02_no_unlock_during_an_authorized_transaction(version: str) -> None:
    rig, station, _ = setup(version)
    station.start(1)
    rig.flush()
    rig.csms_sends(unlock(rig, 1))
    assert rig.answers()[-1] == {"status": "OngoingAuthorizedTransaction"}
    assert station.running(1) is not None


def test_1_6_unlock_finishes_the_transaction_first() -> None:
    rig, station, _ = setup("1.6")
    station.start(1)
    rig.flush()
    rig.csms_sends(unlock(rig, 1))
    station.pump()
    (request,) = station.of_type(UnlockRequested)
    assert request.stop_first is not None
    assert rig.calls("StopTransaction")[-1]["reason"] == "UnlockCommand"
    assert rig.answers()[-1] == {"status": "Unlocked"}


@pytest.mark.parametrize("connector", [0, 7])
def test_1_6_unlock_of_an_unknown_connector_is_not_supported(connector: int) -> None:
    rig, _, _ = setup("1.6")
    rig.csms_sends(unlock(rig, connector))
    assert rig.answers()[-1] == {"status": "NotSupported"}


# --- the CSMS view ---


def send_event(rig: Rig, trigger: str, remote_id: int | None, transaction_id: str = "tx-1") -> None:
    m = rig.m
    payload = build(
        m.TransactionEventRequest,
        event_type="Started",
        timestamp=wall(rig.now),
        trigger_reason=trigger,
        seq_no=0,
        transaction_info=m.Transaction(transaction_id=transaction_id, remote_start_id=remote_id),
        evse=m.EVSE(id=1),
    )
    rig.station.send_request(payload, rig.now)
    rig.flush()


def monitor_only(version: str) -> tuple[Rig, RemoteMonitor]:
    rig = Rig(version, connectors=2)
    monitor = RemoteMonitor(rig.csms)
    rig.csms_flows.append(monitor)
    return rig, monitor


@pytest.mark.parametrize("version", V2)
def test_f02_fr_01_csms_flags_remote_start_without_its_id(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(remote_start(rig, remote_id=4))
    send_event(rig, "RemoteStart", None)
    (anomaly,) = anomalies(monitor)
    assert "without remoteStartId" in anomaly.reason


@pytest.mark.parametrize("version", V2)
def test_f01_fr_25_csms_flags_an_unknown_remote_start_id(version: str) -> None:
    rig, monitor = monitor_only(version)
    send_event(rig, "RemoteStart", 12)
    (anomaly,) = anomalies(monitor)
    assert "matches no accepted" in anomaly.reason


@pytest.mark.parametrize("version", V2)
def test_f02_fr_21_csms_flags_a_remote_start_with_another_trigger_reason(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(remote_start(rig, remote_id=4))
    send_event(rig, "CablePluggedIn", 4)
    (anomaly,) = anomalies(monitor)
    assert anomaly.rule == "F01.FR.19/F02.FR.21"


@pytest.mark.parametrize("version", V2)
def test_csms_flags_a_remote_start_id_reused_for_another_transaction(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(remote_start(rig, remote_id=4))
    send_event(rig, "RemoteStart", 4, "tx-1")
    send_event(rig, "RemoteStart", 4, "tx-2")
    (anomaly,) = anomalies(monitor)
    assert "belongs to transaction tx-1" in anomaly.reason


# --- random orders (hypothesis) ---

OPERATIONS = st.one_of(
    st.tuples(st.just("remote_start"), st.sampled_from([None, 1, 2, 3])),
    st.tuples(st.just("remote_stop"), st.integers(0, 3)),
    st.tuples(st.just("local_start"), st.sampled_from([1, 2])),
    st.tuples(st.just("local_stop"), st.sampled_from([1, 2])),
    st.tuples(st.just("unlock"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("wait"), st.sampled_from([10, 200])),
)


@settings(max_examples=80, deadline=None)
@given(version=st.sampled_from(VERSIONS), operations=st.lists(OPERATIONS, max_size=20))
def test_random_remote_control_orders(version: str, operations: list[tuple[Any, ...]]) -> None:
    """Remote starts, stops and unlocks mixed with local transactions: the answers follow
    a model written here, every remote start id names at most one transaction and only
    after its start was accepted, and the CSMS sees no broken rule."""
    rig, station, monitor = setup(version)
    accepted_ids: set[int] = set()
    next_id = itertools.count(1)
    for op in operations:
        busy = {e for e in (1, 2) if station.running(e) is not None}
        if op[0] == "remote_start":
            evse = op[1]
            remote_id = next(next_id)
            rig.csms_sends(remote_start(rig, evse=evse, remote_id=remote_id))
            answer = rig.answers()[-1]["status"]
            if evse == 3 or evse in busy or (evse is None and busy == {1, 2}):
                assert answer == "Rejected"
            else:
                assert answer == "Accepted"
                accepted_ids.add(remote_id)
        elif op[0] == "remote_stop":
            running = [station.running(e) for e in sorted(busy)]
            known = op[1] < len(running)
            transaction_id = running[op[1]].transaction_id if known else 999
            if version != "1.6":
                transaction_id = str(transaction_id)
            if version == "1.6" and known and transaction_id is None:
                continue  # its StartTransaction is not answered yet
            rig.csms_sends(remote_stop(rig, transaction_id))
            assert rig.answers()[-1]["status"] == ("Accepted" if known else "Rejected")
        elif op[0] == "local_start" and op[1] not in busy:
            station.start(op[1])
        elif op[0] == "local_stop" and op[1] in busy:
            station.stop(station.running(op[1]))
        elif op[0] == "unlock":
            rig.csms_sends(unlock(rig, op[1]))
            station.pump()
            answer = rig.answers()[-1]["status"]
            if op[1] == 3:
                assert answer == ("NotSupported" if version == "1.6" else "UnknownConnector")
            elif op[1] in busy and version != "1.6":
                assert answer == "OngoingAuthorizedTransaction"  # F05.FR.02
            else:
                assert answer == "Unlocked"
        elif op[0] == "wait":
            rig.advance(op[1])
        station.pump()
        assert anomalies(monitor) == []
    if version != "1.6":
        carried = [
            e["transactionInfo"]["remoteStartId"]
            for e in rig.calls("TransactionEvent")
            if "remoteStartId" in e["transactionInfo"]
        ]
        assert set(carried) <= accepted_ids
        assert len(carried) == len(set(carried))  # one transaction per remote start
