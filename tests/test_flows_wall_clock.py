"""Where a flow's wall-clock time comes from: the clock the application gave it, else its
core's ``wall_clock`` (every adapter sets one), else ``posix_clock``, which reads ``now`` as
POSIX seconds. A flow hosted by an adapter never stamps 1970."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _corekit import CsmsApp, boot_request

from ocpp_sansio import CsmsCore, StationCore
from ocpp_sansio.flows import (
    Authorization,
    DeviceModel,
    FirmwareUpdater,
    InMemoryDeviceModel,
    MeterSchedule,
    Reservations,
    SmartCharging,
    TransactionEvents,
    Transactions16,
    posix_clock,
)
from ocpp_sansio.testing import TO_CSMS, InMemoryPair

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def ids() -> str:
    return "tx1"


def virtual_wall(now: float) -> datetime:
    return START + timedelta(seconds=now)


def station(version: str, wall_clock: Any = None) -> StationCore:
    core = StationCore(version, boot_request(version), wall_clock=wall_clock)
    core.connection_made(0.0)
    return core


def every_clocked_flow(core: StationCore, clock: Any = None) -> list[Any]:
    flows: list[Any] = [
        Authorization(core, clock=clock),
        FirmwareUpdater(core, wall_clock=clock),
        MeterSchedule(core.version, clock=clock, core=core),
        Reservations(core, clock=clock),
        SmartCharging(core, clock=clock),
    ]
    if core.version == "1.6":
        flows.append(Transactions16(core, clock=clock))
    else:
        flows += [
            TransactionEvents(core, clock=clock, transaction_ids=ids),
            DeviceModel(core, InMemoryDeviceModel(), clock=clock),
        ]
    return flows


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_flow_without_its_own_clock_reads_its_cores(version: str) -> None:
    core = station(version, wall_clock=virtual_wall)
    for flow in every_clocked_flow(core):
        assert flow.clock(30.0) == START + timedelta(seconds=30), type(flow).__name__


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_the_clock_a_flow_was_given_wins(version: str) -> None:
    def mine(now: float) -> datetime:
        return START + timedelta(days=1, seconds=now)

    core = station(version, wall_clock=virtual_wall)
    for flow in every_clocked_flow(core, clock=mine):
        assert flow.clock(0.0) == START + timedelta(days=1), type(flow).__name__


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_core_set_after_the_flows_were_built_still_counts(version: str) -> None:
    """The adapters set the wall clock of a core the application built, flows and all."""
    core = station(version)
    flows = every_clocked_flow(core)
    core.wall_clock = virtual_wall
    for flow in flows:
        assert flow.clock(0.0) == START, type(flow).__name__


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_without_any_clock_now_is_read_as_posix_seconds(version: str) -> None:
    core = station(version)
    assert core.wall_clock is None
    for flow in every_clocked_flow(core):
        assert flow.clock is posix_clock, type(flow).__name__
    assert core.wall_time(86400.0) == datetime(1970, 1, 2, tzinfo=UTC)


def test_a_transaction_event_is_stamped_with_the_cores_wall_clock() -> None:
    core = StationCore("2.0.1", boot_request("2.0.1"), wall_clock=virtual_wall)
    flow = TransactionEvents(core, transaction_ids=ids)
    pair = InMemoryPair(core, CsmsCore("2.0.1", "CS1"), on_csms_event=CsmsApp("2.0.1"))
    pair.connect()
    pair.advance(60)
    flow.start(evse_id=1, trigger_reason="CablePluggedIn", now=pair.now)
    pair.flush()
    [sent] = [f for f in pair.frames(TO_CSMS) if "TransactionEvent" in f]
    assert '"timestamp":"2025-06-01T12:01:00' in sent


def test_the_csms_core_carries_a_wall_clock_too() -> None:
    core = CsmsCore("2.0.1", "CS1", wall_clock=virtual_wall)
    assert core.wall_time(0.0) == START
