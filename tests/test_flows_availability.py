"""Availability and reset end to end (1.6 §5.2, §5.14; G03, G04, B11,
B12, 2.1 B13)."""

from __future__ import annotations

from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows._base import Activity, FlowAnomaly, build
from ocpp_sansio.flows.availability import (
    STATION,
    Availability,
    AvailabilityApplied,
    AvailabilityChanged,
    AvailabilityMonitor,
    AvailabilitySnapshot,
    Reset,
    ResetAccepted,
    ResetCompleted,
    ResetDue,
)
from ocpp_sansio.flows.firmware import FirmwareUpdater

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")


class Station:
    """The station application of these tests: an Activity, Availability and Reset, and
    a reaction to ResetAccepted that stops the named transactions the version's way."""

    def __init__(
        self, rig: Rig, *, restore: AvailabilitySnapshot | None = None, **reset_options: Any
    ) -> None:
        self.rig = rig
        self.activity = Activity()
        self.availability = Availability(
            rig.station, self.activity, connectors_per_evse=2, restore=restore
        )
        self.reset = Reset(
            rig.station, self.activity, availability=self.availability, **reset_options
        )
        rig.station_flows[:] = [self.availability, self.reset]
        self.events: list[Any] = []
        self.stop_on_accept = True

    def start(self, transaction_id: str | int, evse: int = 1) -> None:
        rig, m = self.rig, self.rig.m
        self.activity.transaction_started(transaction_id, evse, rig.now)
        if rig.version != "1.6":
            started = build(
                m.TransactionEventRequest,
                event_type="Started",
                timestamp=wall(rig.now),
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info=m.Transaction(transaction_id=str(transaction_id)),
                evse=m.EVSE(id=evse),
            )
            rig.station.send_request(started, rig.now)

    def stop(
        self, transaction_id: str | int, reason: str | None, trigger: str = "StopAuthorized"
    ) -> None:
        rig, m = self.rig, self.rig.m
        transaction = self.activity.transaction(transaction_id)
        assert transaction is not None
        if rig.version == "1.6":
            payload = build(
                m.StopTransactionRequest,
                meter_stop=100,
                timestamp=wall(rig.now),
                transaction_id=transaction_id,
                reason=reason,
            )
        else:
            payload = build(
                m.TransactionEventRequest,
                event_type="Ended",
                timestamp=wall(rig.now),
                trigger_reason=trigger,
                seq_no=1,
                transaction_info=build(
                    m.Transaction, transaction_id=str(transaction_id), stopped_reason=reason
                ),
                evse=m.EVSE(id=transaction.evse_id),
            )
        rig.station.send_request(payload, rig.now)
        self.activity.transaction_ended(transaction_id, rig.now)

    def pump(self) -> None:
        """Collect the flows' events until there are no more; stop what a ResetAccepted
        names."""
        while True:
            self.rig.flush()
            new = [*self.availability.events(), *self.reset.events()]
            if not new:
                return
            self.events.extend(new)
            for event in new:
                if isinstance(event, ResetAccepted) and self.stop_on_accept:
                    for transaction_id in event.stop:
                        self.stop(transaction_id, event.stop_reason, event.trigger_reason or "")

    def of_type(self, cls: type) -> list[Any]:
        self.pump()
        return [e for e in self.events if isinstance(e, cls)]


def setup(
    version: str, *, connectors: int = 2, **options: Any
) -> tuple[Rig, Station, AvailabilityMonitor]:
    rig = Rig(version, connectors=connectors)
    station = Station(rig, **options)
    monitor = AvailabilityMonitor(rig.csms)
    rig.csms_flows.append(monitor)
    return rig, station, monitor


def change(rig: Rig, kind: str, evse: int | None = None, connector: int | None = None) -> Any:
    m = rig.m
    if rig.version == "1.6":
        return build(m.ChangeAvailabilityRequest, connector_id=evse or 0, type=kind)
    target = None if evse is None else m.EVSE(id=evse, connector_id=connector)
    return build(m.ChangeAvailabilityRequest, operational_status=kind, evse=target)


def reset(rig: Rig, kind: str, evse: int | None = None) -> Any:
    if rig.version == "1.6":
        return build(rig.m.ResetRequest, type=kind)
    return build(rig.m.ResetRequest, type=kind, evse_id=evse)


def anomalies(monitor: AvailabilityMonitor) -> list[FlowAnomaly]:
    return [e for e in monitor.events() if isinstance(e, FlowAnomaly)]


def report_status(rig: Rig, evse: int, connector: int | None, status: str) -> None:
    m = rig.m
    if rig.version == "1.6":
        payload = build(
            m.StatusNotificationRequest, connector_id=evse, error_code="NoError", status=status
        )
    else:
        payload = build(
            m.StatusNotificationRequest,
            timestamp=wall(rig.now),
            connector_status=status,
            evse_id=evse,
            connector_id=connector or 1,
        )
    rig.station.send_request(payload, rig.now)
    rig.flush()


# --- ChangeAvailability ------------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_g04_fr_01_without_evse_the_whole_station_changes(version: str) -> None:
    rig, station, monitor = setup(version)
    rig.csms_sends(change(rig, "Inoperative"))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (changed,) = station.of_type(AvailabilityChanged)
    assert changed.target == STATION and not changed.operative
    assert changed.changed == ((1, 1), (1, 2), (2, 1), (2, 2))  # G04.FR.05, G04.FR.07
    assert not station.availability.is_operative(2, 2)
    assert monitor.inoperative == {STATION}


@pytest.mark.parametrize("version", V2)
def test_g03_fr_06_an_inoperative_evse_takes_all_its_connectors(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(change(rig, "Inoperative", 2))
    (changed,) = station.of_type(AvailabilityChanged)
    assert changed.changed == ((2, 1), (2, 2))
    rig.csms_sends(change(rig, "Operative", 2))  # G03.FR.07: back as they were
    assert station.of_type(AvailabilityChanged)[-1].changed == ((2, 1), (2, 2))
    assert station.availability.is_operative(2, 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_g03_fr_03_the_state_already_in_force_is_accepted_without_change(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(change(rig, "Operative", 1))
    assert rig.answers()[-1] == {"status": "Accepted"}
    assert station.of_type(AvailabilityChanged) == []


@pytest.mark.parametrize("version", V2)
def test_g03_fr_05_scheduled_while_a_transaction_runs_applied_when_it_ends(version: str) -> None:
    rig, station, monitor = setup(version)
    station.start("tx-1", evse=1)
    rig.csms_sends(change(rig, "Inoperative", 1))
    assert rig.answers()[-1] == {"status": "Scheduled"}
    assert station.of_type(AvailabilityChanged) == []
    assert station.availability.is_operative(1, 1)
    rig.csms_sends(change(rig, "Inoperative", 2))  # no transaction there: at once
    assert rig.answers()[-1] == {"status": "Accepted"}
    station.stop("tx-1", None)
    changed = station.of_type(AvailabilityChanged)[-1]
    assert changed.scheduled and changed.changed == ((1, 1), (1, 2))
    # The station reports it; the CSMS sees the scheduled change land.
    report_status(rig, 1, 1, "Unavailable")
    assert [e for e in monitor.events() if isinstance(e, AvailabilityApplied)] == [
        AvailabilityApplied(target=(1, None), operative=False)
    ]


def test_1_6_connector_0_change_is_scheduled_while_any_transaction_runs() -> None:
    rig, station, _ = setup("1.6")
    station.start(17, evse=2)
    rig.csms_sends(change(rig, "Inoperative", 0))
    assert rig.answers()[-1] == {"status": "Scheduled"}
    station.stop(17, "Local")
    (changed,) = station.of_type(AvailabilityChanged)
    # 1.6 §5.2: connector 0 changes the charge point and every connector.
    assert changed.changed == ((0, None), (1, None), (2, None))


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_connector_is_rejected(version: str) -> None:
    rig, _, _ = setup(version)
    rig.csms_sends(change(rig, "Inoperative", 9))
    assert rig.answers()[-1] == {"status": "Rejected"}


@pytest.mark.parametrize("version", VERSIONS)
def test_g03_fr_08_inoperative_survives_a_reboot(version: str) -> None:
    rig, station, monitor = setup(version)
    rig.csms_sends(change(rig, "Inoperative", 1))
    saved = station.availability.snapshot()
    core = rig.reboot()
    restored = Availability(core, Activity(), connectors_per_evse=2, restore=saved)
    assert not restored.is_operative(1, 1) and restored.is_operative(2, 1)
    report_status(rig, 1, 1, "Unavailable")
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_b11_fr_02_csms_flags_an_inoperative_connector_reported_available(version: str) -> None:
    rig, _, monitor = setup(version)
    rig.csms_sends(change(rig, "Inoperative", 1))
    rig.reboot()  # a station that forgets its availability
    report_status(rig, 1, 1, "Available")
    (anomaly,) = anomalies(monitor)
    assert "Inoperative" in anomaly.reason


# --- Reset: 1.6 ----------------------------------------------------------------------------------


def test_1_6_soft_reset_stops_transactions_gracefully_before_the_reboot() -> None:
    rig, station, monitor = setup("1.6")
    station.start(42, evse=1)
    rig.csms_sends(reset(rig, "Soft"))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (accepted,) = station.of_type(ResetAccepted)
    assert accepted.stop == (42,) and accepted.stop_reason == "SoftReset"
    (due,) = station.of_type(ResetDue)
    assert due.evse_id is None and due.held == ()  # the StopTransaction was answered
    assert rig.calls("StopTransaction")[-1]["reason"] == "SoftReset"
    assert rig.call_actions()[-1] == "StopTransaction"
    rig.reboot()
    assert next(e for e in monitor.events() if isinstance(e, ResetCompleted)).kind == "Soft"


def test_1_6_hard_reset_reboots_at_once_and_stops_afterwards() -> None:
    rig, station, _ = setup("1.6")
    station.start(42, evse=1)
    rig.csms_sends(reset(rig, "Hard"))
    (accepted,) = station.of_type(ResetAccepted)
    assert accepted.after_reboot == (42,) and accepted.stop == ()
    assert accepted.stop_reason == "HardReset"
    assert station.of_type(ResetDue)
    assert rig.calls("StopTransaction") == []
    core = rig.reboot()
    stop = build(
        rig.m.StopTransactionRequest,
        meter_stop=1,
        timestamp=wall(rig.now),
        transaction_id=42,
        reason="HardReset",
    )
    core.send_request(stop, rig.now)  # held until the new boot is accepted
    rig.flush()
    assert rig.call_actions()[-2:] == ["BootNotification", "StopTransaction"]


# --- Reset: 2.x ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_b12_fr_01_on_idle_with_a_transaction_is_scheduled_until_it_ends(version: str) -> None:
    rig, station, monitor = setup(version)
    station.start("tx-1", evse=2)
    rig.csms_sends(reset(rig, "OnIdle"))
    assert rig.answers()[-1] == {"status": "Scheduled"}
    (accepted,) = station.of_type(ResetAccepted)
    assert accepted.stop == ()  # B12.FR.03: it ends normally
    # B12 scenario 3a: the station turns unavailable while it waits.
    held = [e for e in station.of_type(AvailabilityChanged) if e.cause == "reset"]
    assert held and not held[0].operative
    assert station.of_type(ResetDue) == []
    station.stop("tx-1", "Local")
    (due,) = station.of_type(ResetDue)
    assert due.kind == "OnIdle" and due.evse_id is None
    assert station.reset.reboot_pending
    rig.reboot(station.reset.boot_request(rig.station.boot_request))
    assert rig.calls("BootNotification")[-1]["reason"] == "RemoteReset"
    events = monitor.events()
    assert [e.kind for e in events if isinstance(e, ResetCompleted)] == ["OnIdle"]
    assert [e for e in events if isinstance(e, FlowAnomaly)] == []


@pytest.mark.parametrize("version", V2)
def test_b11_on_idle_without_activity_is_accepted_and_due_at_once(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(reset(rig, "OnIdle"))
    assert rig.answers()[-1] == {"status": "Accepted"}
    assert station.of_type(ResetDue)


@pytest.mark.parametrize("version", V2)
def test_b12_fr_02_fr_04_immediate_ends_transactions_with_reset_command(version: str) -> None:
    rig, station, monitor = setup(version)
    station.start("tx-1", evse=1)
    station.start("tx-2", evse=2)
    rig.csms_sends(reset(rig, "Immediate"))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (accepted,) = station.of_type(ResetAccepted)
    assert accepted.stop == ("tx-1", "tx-2")
    assert (accepted.trigger_reason, accepted.stop_reason) == ("ResetCommand", "ImmediateReset")
    ended = [e for e in rig.calls("TransactionEvent") if e["eventType"] == "Ended"]
    assert [(e["triggerReason"], e["transactionInfo"]["stoppedReason"]) for e in ended] == [
        ("ResetCommand", "ImmediateReset")
    ] * 2
    (due,) = station.of_type(ResetDue)
    assert due.held == ()
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", V2)
def test_b12_fr_05_unanswered_ended_event_is_held_across_the_reboot(version: str) -> None:
    rig, station, _ = setup(version)
    station.start("tx-1", evse=1)
    rig.pair.drop = lambda direction, text: '"Ended"' in text
    rig.csms_sends(reset(rig, "Immediate"))
    station.pump()
    assert station.of_type(ResetDue) == []
    rig.advance(rig.station.config.call_timeout)  # the grace: one call timeout
    (due,) = station.of_type(ResetDue)
    assert len(due.held) == 1 and due.held[0].transaction_info.transaction_id == "tx-1"
    rig.pair.drop = lambda direction, text: False
    rig.reboot(station.reset.boot_request(rig.station.boot_request), held=list(due.held))
    assert rig.call_actions()[-2:] == ["BootNotification", "TransactionEvent"]


@pytest.mark.parametrize("version", V2)
def test_b11_fr_09_evse_reset_unsupported_is_rejected(version: str) -> None:
    rig, station, _ = setup(version)
    rig.csms_sends(reset(rig, "Immediate", evse=1))
    assert rig.answers()[-1] == {"status": "Rejected"}
    assert station.of_type(ResetAccepted) == []


@pytest.mark.parametrize("version", V2)
def test_b11_fr_08_evse_reset_resets_only_that_evse(version: str) -> None:
    rig, station, _ = setup(version, evse_reset=True)
    station.start("tx-1", evse=1)
    station.start("tx-2", evse=2)
    rig.csms_sends(reset(rig, "Immediate", evse=2))
    (accepted,) = station.of_type(ResetAccepted)
    assert accepted.stop == ("tx-2",)
    (due,) = station.of_type(ResetDue)
    assert due.evse_id == 2 and not station.reset.reboot_pending
    assert station.activity.transactions(1)


@pytest.mark.parametrize("version", V2)
def test_b11_fr_06_uninterruptible_firmware_install_rejects_immediate_reset(version: str) -> None:
    rig, station, _ = setup(version)
    updater = FirmwareUpdater(rig.station, activity=station.activity)
    rig.station_flows.append(updater)
    firmware = rig.m.Firmware(location="https://fw.example/x", retrieve_date_time=wall(rig.now))
    rig.csms_sends(rig.m.UpdateFirmwareRequest(request_id=1, firmware=firmware))
    updater.download_started(rig.now)
    updater.downloaded(rig.now)
    rig.csms_sends(reset(rig, "Immediate"))
    assert rig.answers()[-1] == {"status": "Accepted"}  # downloading may be interrupted
    station.pump()
    rig.csms_sends(reset(rig, "OnIdle"))  # the firmware task keeps the station busy
    assert rig.answers()[-1] == {"status": "Scheduled"}
    updater.install_started(rig.now)
    rig.csms_sends(reset(rig, "Immediate"))
    assert rig.answers()[-1] == {"status": "Rejected"}
    rig.csms_sends(reset(rig, "OnIdle"))
    assert rig.answers()[-1] == {"status": "Scheduled"}
    assert not [e for e in station.of_type(ResetDue) if e.kind == "OnIdle"]
    updater.installed(rig.now)
    assert [e.kind for e in station.of_type(ResetDue)][-1] == "OnIdle"


def test_2_1_b13_fr_01_immediate_and_resume_unsupported_is_rejected() -> None:
    rig, _, _ = setup("2.1")
    rig.csms_sends(reset(rig, "ImmediateAndResume"))
    assert rig.answers()[-1] == {"status": "Rejected"}


def test_2_1_b13_fr_03_immediate_and_resume_keeps_the_transactions() -> None:
    rig, station, _ = setup("2.1", resume_transactions=True)
    station.start("tx-1", evse=1)
    rig.csms_sends(reset(rig, "ImmediateAndResume"))
    assert rig.answers()[-1] == {"status": "Accepted"}
    (accepted,) = station.of_type(ResetAccepted)
    assert accepted.resume == ("tx-1",) and accepted.stop == ()
    assert accepted.trigger_reason == "ResetCommand"  # B13.FR.04
    assert station.of_type(ResetDue)
    assert station.activity.transactions()


@pytest.mark.parametrize("version", V2)
def test_b11_fr_02_inoperative_persists_through_a_reset(version: str) -> None:
    rig, station, monitor = setup(version)
    rig.csms_sends(change(rig, "Inoperative", 2))
    rig.csms_sends(reset(rig, "Immediate"))
    assert station.of_type(ResetDue)
    saved = station.availability.snapshot()
    core = rig.reboot(station.reset.boot_request(rig.station.boot_request))
    after = Availability(core, Activity(), connectors_per_evse=2, restore=saved)
    assert not after.is_operative(2, 1)
    report_status(rig, 2, 1, "Unavailable")
    assert anomalies(monitor) == []


# --- the CSMS view ---


@pytest.mark.parametrize("version", V2)
def test_b11_fr_04_csms_flags_a_boot_after_reset_with_another_reason(version: str) -> None:
    rig, _, monitor = setup(version)
    rig.csms_sends(reset(rig, "Immediate"))
    rig.reboot()  # boots with reason PowerUp
    (anomaly,) = anomalies(monitor)
    assert anomaly.rule == "B11.FR.04"


@pytest.mark.parametrize("version", V2)
def test_b12_fr_04_csms_flags_an_ended_event_without_reset_command(version: str) -> None:
    rig, station, monitor = setup(version)
    station.stop_on_accept = False
    station.start("tx-1", evse=1)
    rig.csms_sends(reset(rig, "Immediate"))
    station.pump()
    station.stop("tx-1", "Local", trigger="StopAuthorized")
    rig.flush()
    (anomaly,) = anomalies(monitor)
    assert anomaly.rule == "B12.FR.04"


def test_activity_refuses_unknown_transactions() -> None:
    activity = Activity()
    with pytest.raises(LocalProtocolError):
        activity.transaction_ended("nope", 0.0)
    activity.transaction_started("a", 1, 0.0)
    with pytest.raises(LocalProtocolError):
        activity.transaction_started("a", 1, 0.0)


# --- random orders (hypothesis) ---

OPERATIONS = st.one_of(
    st.tuples(st.just("start"), st.integers(1, 2)),
    st.tuples(st.just("end"), st.integers(0, 5)),
    st.tuples(st.just("change"), st.sampled_from([None, 1, 2, 3]), st.booleans()),
    st.tuples(
        st.just("reset"), st.sampled_from(["OnIdle", "Immediate"]), st.sampled_from([None, 1])
    ),
    st.tuples(st.just("wait"), st.sampled_from([1, 30, 60])),
)


def _busy(target: Any, running: dict[Any, int]) -> bool:
    return bool(running) if target == STATION else target[0] in running.values()


@settings(max_examples=150, deadline=None)
@given(version=st.sampled_from(VERSIONS), operations=st.lists(OPERATIONS, max_size=25))
def test_random_availability_and_reset_orders(
    version: str, operations: list[tuple[Any, ...]]
) -> None:
    """Transactions, ChangeAvailability and Reset in any order: the answers follow the
    rules as a model written here computes them, a scheduled change lands when its
    transactions end, a reset is due only once its scope is idle, and nothing raises."""
    rig, station, monitor = setup(version, evse_reset=True)
    inoperative: set[Any] = set()  # the model: targets the CSMS made Inoperative
    scheduled: dict[Any, bool] = {}
    counter = 0

    def running() -> dict[Any, int]:
        return {t.transaction_id: t.evse_id for t in station.activity.transactions()}

    for op in operations:
        if op[0] == "start":
            if op[1] in running().values() or not station.availability.is_operative(op[1], 1):
                continue
            counter += 1
            station.start(counter if version == "1.6" else f"tx-{counter}", evse=op[1])
        elif op[0] == "end" and running():
            transaction_id = sorted(running(), key=str)[op[1] % len(running())]
            station.stop(transaction_id, "Local")
        elif op[0] == "change":
            _, evse, operative = op
            rig.csms_sends(change(rig, "Operative" if operative else "Inoperative", evse))
            answer = rig.answers()[-1]["status"]
            if evse == 3:
                assert answer == "Rejected"
                continue
            target = STATION if evse is None else (evse, None)
            scheduled.pop(target, None)
            if (target not in inoperative) == operative:
                assert answer == "Accepted"  # G03.FR.03, G04.FR.04
            elif _busy(target, running()):
                assert answer == "Scheduled"  # G03.FR.05, G04.FR.06
                scheduled[target] = operative
            else:
                assert answer == "Accepted"
                (inoperative.discard if operative else inoperative.add)(target)
        elif op[0] == "reset" and version != "1.6":
            _, kind, evse = op
            rig.csms_sends(reset(rig, kind, evse))
            answer = rig.answers()[-1]["status"]
            idle = not _busy(STATION if evse is None else (evse, None), running())
            if kind == "OnIdle":
                assert answer == ("Accepted" if idle else "Scheduled")  # B12.FR.01
            else:
                assert answer == "Accepted"  # B12.FR.02
        elif op[0] == "wait":
            rig.advance(op[1])
        station.pump()  # an Immediate reset's transactions end here
        for target in [t for t in scheduled if not _busy(t, running())]:
            operative = scheduled.pop(target)
            (inoperative.discard if operative else inoperative.add)(target)
        dues = [e for e in station.events if isinstance(e, ResetDue)]
        for due in dues:
            assert not station.activity.transactions(due.evse_id)
        station.events.clear()
        if any(due.evse_id is None for due in dues):
            # The station reboots: a new core, its availability restored (B11.FR.02).
            saved = station.availability.snapshot()
            rig.reboot(station.reset.boot_request(rig.station.boot_request))
            station = Station(rig, evse_reset=True, restore=saved)
        applied = set(inoperative)
        for target, operative in scheduled.items():
            (applied.discard if operative else applied.add)(target)
        assert station.availability.snapshot().inoperative == applied
        assert {t: o for t, o in station.availability.scheduled.items()} == scheduled
    assert anomalies(monitor) == []
