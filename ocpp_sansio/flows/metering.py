"""When to take meter samples: periodic ones during a transaction and clock-aligned ones,
as deadlines computed from the configuration (1.6 §3.16, §9.1.5, §9.1.20; 2.x J01, J02).

Nothing here sleeps or reads a clock: the schedule says when (``next_deadline``), the
application calls ``handle_timer`` then, and a ``MeterSampleDue`` event says what to
sample. Sending the values is the transaction flow's job (``Transactions16.meter_values``,
``TransactionEvents.update`` with triggerReason MeterValuePeriodic) or a plain MeterValues
request for clock-aligned values outside transactions.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta
from typing import Any

import attrs

from ..errors import LocalProtocolError
from ..events import Event
from ._base import Emitter, FlowEvent, WallClock, WallClocked
from ._store import NoSettings, Settings, read_bool, read_int, read_list

_DAY = 86_400.0
#: Rounding allowances: a timer that fires exactly on a deadline plans the next one.
_SLACK = 1e-9
_WALL_SLACK = 1e-3

#: Setting names per version: (1.6 key, 2.x Component.Variable).
_SETTINGS = {
    "periodic_interval": ("MeterValueSampleInterval", "SampledDataCtrlr.TxUpdatedInterval"),
    "periodic_measurands": ("MeterValuesSampledData", "SampledDataCtrlr.TxUpdatedMeasurands"),
    "clock_interval": ("ClockAlignedDataInterval", "AlignedDataCtrlr.Interval"),
    "clock_measurands": ("MeterValuesAlignedData", "AlignedDataCtrlr.Measurands"),
}


class SampleKind(enum.Enum):
    #: During a transaction, every interval from its start.
    PERIODIC = "Periodic"
    #: Every interval of the day, counted from midnight.
    CLOCK = "Clock"


@attrs.frozen(kw_only=True)
class MeterSampleDue(FlowEvent):
    """Take a sample now. PERIODIC: for ``transaction`` on ``connector_id`` (1.6 connector,
    2.x EVSE); CLOCK: for the station, ``transactions`` being those running. ``context``,
    ``trigger_reason`` (2.x) and ``measurands`` (from the configuration) say how to report
    it; ``due_at`` is the core time the sample belongs to (for clock-aligned values, the
    interval boundary)."""

    kind: SampleKind
    due_at: float
    measurands: tuple[str, ...]
    context: str
    trigger_reason: str | None
    transaction: Any = None
    connector_id: int | None = None
    transactions: tuple[Any, ...] = ()


@attrs.define(eq=False)
class _Periodic:
    transaction: Any
    connector_id: int
    anchor: float
    due: float | None


class MeterSchedule(Emitter, WallClocked):
    """Deadlines for meter sampling of one station.

    Intervals are read from ``settings`` whenever a deadline is planned, so call
    ``reconfigure(now)`` after the configuration changed. An interval of 0 switches that
    kind of sampling off (1.6 §9.1.5, §9.1.20). Clock-aligned intervals start at midnight
    of ``clock`` shifted by ``utc_offset`` (1.6 §3.16.2); a late timer gives one event and
    moves on to the next boundary, it does not replay the ones missed. Without ``clock``,
    the wall clock of ``core`` (when given) counts.
    """

    def __init__(
        self,
        version: str,
        *,
        settings: Settings | None = None,
        clock: WallClock | None = None,
        utc_offset: timedelta = timedelta(0),
        core: Any = None,
    ) -> None:
        super().__init__()
        self.version = version
        #: Only to read its ``wall_clock`` when ``clock`` is not given.
        self.core = core
        self.settings: Settings = settings or NoSettings()
        self._own_clock = clock
        self.utc_offset = utc_offset
        self._periodic: dict[int, _Periodic] = {}
        self._clock_due: float | None = None
        self._clock_on = False

    def _name(self, setting: str) -> str:
        v16_name, v2_name = _SETTINGS[setting]
        return v16_name if self.version == "1.6" else v2_name

    def _interval(self, setting: str) -> int:
        return max(0, read_int(self.settings, self._name(setting), 0))

    # --- the application's calls ---------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin clock-aligned sampling (when its interval is not 0)."""
        self._clock_on = True
        self._clock_due = self._next_boundary(now)

    def transaction_started(self, transaction: Any, connector_id: int, now: float) -> None:
        """Begin periodic sampling for ``transaction``, counted from ``now``."""
        if id(transaction) in self._periodic:
            raise LocalProtocolError("the transaction is already sampled")
        entry = _Periodic(transaction, connector_id, now, None)
        entry.due = self._next_periodic(entry, now)
        self._periodic[id(transaction)] = entry

    def transaction_ended(self, transaction: Any) -> None:
        self._periodic.pop(id(transaction), None)

    def reconfigure(self, now: float) -> None:
        """Plan every deadline again from the current settings."""
        for entry in self._periodic.values():
            entry.due = self._next_periodic(entry, now)
        if self._clock_on:
            self._clock_due = self._next_boundary(now)

    def handle_event(self, event: Event, now: float) -> bool:
        """No core event concerns the schedule; it takes this call like every flow so one
        loop can feed them all."""
        return False

    # --- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        dues = [e.due for e in self._periodic.values() if e.due is not None]
        if self._clock_due is not None:
            dues.append(self._clock_due)
        return min(dues) if dues else None

    def handle_timer(self, now: float) -> None:
        for entry in list(self._periodic.values()):
            if entry.due is not None and entry.due <= now:
                self._emit(
                    MeterSampleDue(
                        kind=SampleKind.PERIODIC,
                        due_at=entry.due,
                        measurands=read_list(self.settings, self._name("periodic_measurands")),
                        context="Sample.Periodic",
                        trigger_reason=None if self.version == "1.6" else "MeterValuePeriodic",
                        transaction=entry.transaction,
                        connector_id=entry.connector_id,
                    )
                )
                entry.due = self._next_periodic(entry, now)
        if self._clock_due is not None and self._clock_due <= now:
            due = self._clock_due
            self._clock_due = self._next_boundary(now)
            running = tuple(e.transaction for e in self._periodic.values())
            if not (
                running
                and self.version != "1.6"
                and read_bool(self.settings, "AlignedDataCtrlr.SendDuringIdle", False)
            ):  # J01.FR.20: only while idle, when so configured
                self._emit(
                    MeterSampleDue(
                        kind=SampleKind.CLOCK,
                        due_at=due,
                        measurands=read_list(self.settings, self._name("clock_measurands")),
                        context="Sample.Clock",
                        trigger_reason=None if self.version == "1.6" else "MeterValueClock",
                        transactions=running,
                    )
                )

    def _next_periodic(self, entry: _Periodic, now: float) -> float | None:
        """The first of anchor + k x interval after ``now`` (1.6 §3.16.1, J02.FR.11)."""
        interval = self._interval("periodic_interval")
        if interval == 0:
            return None
        steps = math.floor((now - entry.anchor) / interval + _SLACK) + 1
        return entry.anchor + steps * interval

    def _next_boundary(self, now: float) -> float | None:
        interval = self._interval("clock_interval")
        if interval == 0 or not self._clock_on:
            return None
        return next_clock_boundary(now, interval, self.clock, self.utc_offset)


def next_clock_boundary(
    now: float, interval: float, clock: WallClock, utc_offset: timedelta = timedelta(0)
) -> float:
    """The core time of the first clock-aligned boundary after ``now``: midnight +
    k x ``interval`` of ``clock`` shifted by ``utc_offset``, the intervals starting afresh
    every day (1.6 §9.1.5; 2.x AlignedDataCtrlr.Interval, TxEndedInterval)."""
    wall: datetime = clock(now) + utc_offset
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    into_day = (wall - midnight).total_seconds()
    # The wall clock is read to the microsecond: a timer firing on the boundary must not
    # see the same boundary again.
    boundary = (math.floor((into_day + _WALL_SLACK) / interval) + 1) * interval
    return now + (min(boundary, _DAY) - into_day)
