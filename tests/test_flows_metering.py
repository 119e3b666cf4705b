"""Meter sampling schedules (1.6 §3.16, 2.x J01/J02): periodic deadlines from a
transaction's start, clock-aligned ones from midnight, all read from the configuration and
driven by a virtual clock; and samples reported through the transaction flows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows.configuration import Configuration16, InMemoryConfiguration
from ocpp_sansio.flows.device_model import DeviceModel, InMemoryDeviceModel, standard_variables
from ocpp_sansio.flows.metering import MeterSampleDue, MeterSchedule, SampleKind
from ocpp_sansio.flows.transactions import (
    CsmsTransactions16,
    TransactionEvents,
    Transactions16,
    uuid_transaction_ids,
)

#: 2025-06-01T12:00:00Z as POSIX seconds: noon, so clock alignment is easy to read.
NOON = datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()


class Settings:
    def __init__(self, **values: str) -> None:
        self.values = values

    def setting(self, name: str) -> str | None:
        return self.values.get(name)


def run(schedule: MeterSchedule, until: float, now: float) -> list[MeterSampleDue]:
    """Fire the schedule's deadlines up to ``until`` as a virtual clock would."""
    out: list[MeterSampleDue] = []
    for _ in range(10_000):
        deadline = schedule.next_deadline()
        if deadline is None or deadline > until:
            break
        now = max(now, deadline)
        schedule.handle_timer(now)
        out += [e for e in schedule.events() if isinstance(e, MeterSampleDue)]
    else:
        raise AssertionError("the schedule keeps firing at the same time")
    return out


def test_16_periodic_samples_every_meter_value_sample_interval_from_the_start() -> None:
    schedule = MeterSchedule(
        "1.6",
        settings=Settings(
            MeterValueSampleInterval="60",
            MeterValuesSampledData="Energy.Active.Import.Register,Voltage",
        ),
    )
    tx = object()
    schedule.transaction_started(tx, 1, NOON + 7)
    due = run(schedule, NOON + 7 + 200, NOON + 7)
    assert [d.due_at - NOON for d in due] == [67, 127, 187]
    assert {(d.kind, d.transaction, d.connector_id, d.context) for d in due} == {
        (SampleKind.PERIODIC, tx, 1, "Sample.Periodic")
    }
    assert due[0].measurands == ("Energy.Active.Import.Register", "Voltage")
    assert due[0].trigger_reason is None
    schedule.transaction_ended(tx)
    assert schedule.next_deadline() is None


def test_16_interval_0_means_no_sampled_data() -> None:
    schedule = MeterSchedule("1.6", settings=Settings(MeterValueSampleInterval="0"))
    schedule.transaction_started(object(), 1, NOON)
    schedule.start(NOON)
    assert schedule.next_deadline() is None


def test_16_clock_aligned_boundaries_count_from_midnight() -> None:
    schedule = MeterSchedule("1.6", settings=Settings(ClockAlignedDataInterval="900"))
    schedule.start(NOON + 100)
    due = run(schedule, NOON + 3600, NOON + 100)
    assert [d.due_at - NOON for d in due] == [900, 1800, 2700, 3600]
    assert due[0].kind is SampleKind.CLOCK and due[0].context == "Sample.Clock"


def test_16_clock_intervals_restart_at_midnight() -> None:
    """7 hours does not divide a day: 21:00's interval is cut short at midnight."""
    schedule = MeterSchedule("1.6", settings=Settings(ClockAlignedDataInterval=str(7 * 3600)))
    start = datetime(2025, 6, 1, 20, tzinfo=UTC).timestamp()
    schedule.start(start)
    due = run(schedule, start + 12 * 3600, start)
    moments = [datetime.fromtimestamp(d.due_at, UTC).strftime("%d %H:%M") for d in due]
    assert moments == ["01 21:00", "02 00:00", "02 07:00"]


def test_clock_alignment_uses_the_utc_offset() -> None:
    schedule = MeterSchedule(
        "1.6",
        settings=Settings(ClockAlignedDataInterval=str(6 * 3600)),
        utc_offset=timedelta(hours=2),
    )
    schedule.start(NOON)
    (first,) = run(schedule, NOON + 6 * 3600, NOON)
    # 12:00Z is 14:00 local; the next local 6-hour boundary is 18:00 local = 16:00Z.
    assert first.due_at - NOON == 4 * 3600


def test_a_late_timer_gives_one_event_and_moves_on() -> None:
    schedule = MeterSchedule("1.6", settings=Settings(MeterValueSampleInterval="10"))
    schedule.transaction_started("tx", 1, NOON)
    schedule.handle_timer(NOON + 35)  # three intervals late
    assert len(schedule.events()) == 1
    assert schedule.next_deadline() == NOON + 40


def test_reconfigure_follows_a_changed_interval() -> None:
    values = Settings(MeterValueSampleInterval="60")
    schedule = MeterSchedule("1.6", settings=values)
    schedule.transaction_started("tx", 1, NOON)
    values.values["MeterValueSampleInterval"] = "15"
    schedule.reconfigure(NOON + 20)
    assert schedule.next_deadline() == NOON + 30


def test_a_transaction_is_sampled_once() -> None:
    schedule = MeterSchedule("1.6", settings=Settings(MeterValueSampleInterval="10"))
    schedule.transaction_started("tx", 1, NOON)
    with pytest.raises(LocalProtocolError):
        schedule.transaction_started("tx", 1, NOON)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_j02_fr_11_tx_updated_interval_and_measurands(version: str) -> None:
    schedule = MeterSchedule(
        version,
        settings=Settings(
            **{
                "SampledDataCtrlr.TxUpdatedInterval": "30",
                "SampledDataCtrlr.TxUpdatedMeasurands": "Power.Active.Import",
            }
        ),
    )
    schedule.transaction_started("tx", 2, NOON)
    (first, second) = run(schedule, NOON + 60, NOON)
    assert (first.trigger_reason, first.connector_id, first.measurands) == (
        "MeterValuePeriodic",
        2,
        ("Power.Active.Import",),
    )
    assert second.due_at == NOON + 60


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_j01_fr_20_send_during_idle_skips_clock_samples_while_a_transaction_runs(
    version: str,
) -> None:
    values = Settings(
        **{"AlignedDataCtrlr.Interval": "900", "AlignedDataCtrlr.SendDuringIdle": "true"}
    )
    schedule = MeterSchedule(version, settings=values)
    schedule.start(NOON)
    schedule.transaction_started("tx", 1, NOON)
    assert run(schedule, NOON + 1800, NOON) == []
    schedule.transaction_ended("tx")
    (due,) = run(schedule, NOON + 2700, NOON + 1800)
    assert due.trigger_reason == "MeterValueClock" and due.transactions == ()
    values.values["AlignedDataCtrlr.SendDuringIdle"] = "false"
    schedule.transaction_started("tx2", 1, NOON + 2700)
    (due,) = run(schedule, NOON + 3600, NOON + 2700)
    assert due.transactions == ("tx2",)


# --- with the transaction flows, on the virtual clock ----------------------------------------


def test_16_periodic_meter_values_follow_configuration_end_to_end() -> None:
    rig = Rig("1.6")
    rig.pair.clock.now = NOON
    store = InMemoryConfiguration(
        {
            "MeterValueSampleInterval": "60",
            "MeterValuesSampledData": "Energy.Active.Import.Register",
        }
    )
    config = Configuration16(rig.station, store)
    schedule = MeterSchedule("1.6", settings=config)
    flow = Transactions16(rig.station, settings=config, meter_schedule=schedule)
    rig.station_flows += [config, flow, schedule]
    rig.csms_flows.append(CsmsTransactions16(rig.csms))
    tx = flow.start(1, "TAG1", 0, rig.now)

    def sample(due: MeterSampleDue) -> None:
        m = rig.m
        value = m.SampledValue(
            value="1",
            context=m.ReadingContext(due.context),
            measurand=m.Measurand(due.measurands[0]),
        )
        flow.meter_values(
            due.transaction,
            [m.MeterValue(timestamp=wall(due.due_at), sampled_value=[value])],
            rig.now,
        )

    for _ in range(3):
        rig.advance(60)
        for event in schedule.events():
            assert isinstance(event, MeterSampleDue)
            sample(event)
        rig.flush()
    flow.stop(tx, 10, rig.now)
    rig.advance(300)
    meter_values = rig.calls("MeterValues")
    assert len(meter_values) == 3
    assert all(mv["transactionId"] == 1 for mv in meter_values)
    assert meter_values[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"
    assert schedule.next_deadline() is None  # stopping ended the sampling


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_j02_fr_11_periodic_updates_end_to_end(version: str) -> None:
    rig = Rig(version)
    rig.pair.clock.now = NOON
    model = DeviceModel(rig.station, InMemoryDeviceModel(standard_variables()))
    schedule = MeterSchedule(version, settings=model)
    flow = TransactionEvents(
        rig.station,
        transaction_ids=uuid_transaction_ids(random.Random(3)),
        settings=model,
        meter_schedule=schedule,
    )
    rig.station_flows += [model, flow, schedule]
    tx = flow.start(trigger_reason="CablePluggedIn", now=rig.now, evse_id=1)
    rig.advance(130)  # TxUpdatedInterval defaults to 60 in standard_variables()
    for event in schedule.events():
        flow.update(tx, trigger_reason=event.trigger_reason, now=rig.now)
    rig.flush()
    reasons = [e["triggerReason"] for e in rig.calls("TransactionEvent")]
    assert reasons == ["CablePluggedIn", "MeterValuePeriodic", "MeterValuePeriodic"]


# --- random orders ------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    interval=st.integers(0, 4000),
    clock_interval=st.integers(0, 90_000),
    steps=st.lists(
        st.tuples(st.sampled_from(["start", "end", "wait", "set"]), st.integers(1, 5000)),
        max_size=20,
    ),
)
def test_random_schedules_fire_in_time_order_and_never_twice_at_once(
    interval: int, clock_interval: int, steps: list[Any]
) -> None:
    values = Settings(
        MeterValueSampleInterval=str(interval), ClockAlignedDataInterval=str(clock_interval)
    )
    schedule = MeterSchedule("1.6", settings=values)
    now = NOON
    schedule.start(now)
    running: list[str] = []
    fired: list[tuple[float, str, Any]] = []
    for n, (op, amount) in enumerate(steps):
        if op == "start":
            name = f"tx{n}"
            running.append(name)
            schedule.transaction_started(name, 1, now)
        elif op == "end" and running:
            schedule.transaction_ended(running.pop(0))
        elif op == "set":
            values.values["MeterValueSampleInterval"] = str(amount % 300)
            schedule.reconfigure(now)
        else:
            fired += [
                (d.due_at, d.kind.value, d.transaction) for d in run(schedule, now + amount, now)
            ]
            now += amount
        deadline = schedule.next_deadline()
        assert deadline is None or deadline > now - 1e-6 or op != "wait"
    assert len(fired) == len(set(fired)), "a sample fired twice"
    for when, kind, _ in fired:
        if kind == "Clock":
            seconds = round(datetime.fromtimestamp(when, UTC).timestamp() - NOON) % 86_400
            into_day = (seconds + 12 * 3600) % 86_400
            assert into_day % clock_interval == 0 or into_day == 0
