"""The composite schedule: a pure function of the installed profiles, a time window and the
transactions running (K08; 1.6 §3.13.3, §5.7).

How it is computed, per instant of the window:

- A profile's schedule is laid on the time line: Absolute from ``startSchedule``
  (K01.FR.30/40); Relative from the transaction's start, or from when the EVSE became ready
  to deliver energy when the application says so (K01.FR.42); Recurring from
  ``startSchedule`` again every day or week, never before it. A period lasts until the next
  one starts, the schedule's ``duration`` ends (K01.FR.11/12) or the next recurrence begins
  (1.6 errata 3.43/3.44: the remainder is not executed). The profile counts only while
  valid: ``validFrom`` <= t < ``validTo`` (K01.FR.36/37), for a TxProfile only during its
  transaction, and (2.1) not while offline longer than ``maxOfflineDuration`` (K01.FR.101).
- Within a purpose, the valid profile with the highest stackLevel that has a period at t
  leads (K01.FR.17); when it has none there (its duration ended), the next lower one leads
  (1.6 errata 3.43). A TxDefaultProfile installed on the EVSE itself takes precedence over
  one on EVSE 0 with the same stackLevel (1.6 §3.13.1: replaced for that connector only; 2.x
  refuses the pair, K01.FR.52/53).
- A TxProfile overrides the TxDefaultProfile; when it has no period (expired), the
  TxDefaultProfile applies again (K02.FR.04/08).
- The limit is the lowest of the leading ones of each purpose (TxProfile or
  TxDefaultProfile, ChargingStationMaxProfile, ChargingStationExternalConstraints) and of the
  hardware's own limits (SC.01, K08.FR.04); with no profile at all, the hardware's limits
  apply (K06.FR.02). External constraints on EVSE 0 cap the whole station (K12.FR.01) and
  those on the EVSE cap the EVSE: both count, each with its own stack levels.
  numberPhases is the lowest of the periods in force (2.x errata 2.36), absent ones
  counting as ``default_phases`` (K01.FR.49), and never above the EVSE's.
- Units: W = A x nominal voltage x phases in use (K01.FR.50/51; 1.6 §7.12; DC: x voltage).
  A converted value is rounded down to 0.1, so conversion never raises a limit.
- EVSE 0 is the grid connection: the sum of every EVSE's own limit (its transaction-level
  profile, its external constraints, its hardware), capped by the station-wide profiles and
  the station's hardware (K08.FR.03; OCTT TC_K_22_CS multiplies an EVSE-0 TxDefaultProfile by
  the number of EVSEs).
- An EVSE without a transaction: with ``assume_transaction`` (what GetCompositeSchedule
  asks, K08.FR.06) the schedule is computed as if a transaction started at the window's
  start; without it (the limit in force on an idle EVSE), relative schedules stay at their
  first period, which is what a transaction starting at that instant would get.

Times are whole seconds (fractions are dropped) and the window is [start, start+duration).

Recurrence and time zones. OCPP times are absolute (UTC) instants. A Daily or Weekly
schedule recurs every 86,400 or 604,800 seconds after its ``startSchedule``, as libocpp
does: across a daylight-saving change it stays on UTC, so its local wall-clock time moves by
the shift (the specification's own tip: a special profile may be needed on such days). Only
a 2.1 schedule with ``useLocalTime`` (K01.FR.90) is read in the configured local zone: its
``startSchedule``'s wall-clock fields are taken as local time, recurrences start at the same
local wall-clock time each day or week, and periods follow the wall clock, so a spring
shift skips part of the periods in force and an autumn shift repeats it (K01.FR.91).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo

import attrs

from ..errors import LocalProtocolError
from .config import SmartChargingConfig
from .model import (
    ChargingSchedule,
    CompositePeriod,
    CompositeSchedule,
    Kind,
    Purpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
    floor_tenth,
)
from .store import InstalledProfile

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_FOREVER = 1 << 50
_RECURRENCE = {Recurrency.DAILY: 86_400, Recurrency.WEEKLY: 7 * 86_400}
#: How far ahead ``limit_in_force`` looks for the next change (past any weekly recurrence).
HORIZON = 8 * 86_400


def seconds(when: datetime) -> int:
    """Whole UTC seconds since the epoch of an aware datetime."""
    if when.tzinfo is None:
        raise LocalProtocolError(f"naive datetime {when!r}: OCPP times carry a zone")
    return int((when - _EPOCH).total_seconds() // 1)


def instant(value: int) -> datetime:
    return _EPOCH + timedelta(seconds=value)


def _ids(items: Iterable[str | int]) -> frozenset[str | int]:
    return frozenset(items)


@attrs.frozen(kw_only=True)
class Session:
    """A transaction on an EVSE as smart charging sees it. ``transaction_ids`` are the ids
    its TxProfiles name (1.6 changes from a local id to the CSMS's). ``ready`` is when the
    EVSE became ready to deliver energy, the start of relative schedules (K01.FR.42);
    None means the transaction's start."""

    transaction_ids: frozenset[str | int] = attrs.field(converter=_ids)
    started: datetime
    ready: datetime | None = None

    @property
    def anchor(self) -> datetime:
        return self.ready if self.ready is not None else self.started


def convert(value: float, source: RateUnit, target: RateUnit, phases: int, volts: float) -> float:
    """``value`` in ``source`` as ``target`` (K01.FR.50: W = A x V x phases; DC: phases
    0 counts as 1). A converted value is rounded down to 0.1."""
    if source is target:
        return float(value)
    factor = volts * max(phases, 1)
    return floor_tenth(value * factor if source is RateUnit.A else value / factor)


# --- laying a schedule on the time line ---------------------------------------------------


@attrs.frozen
class _Segment:
    start: int
    end: int
    period: SchedulePeriod
    schedule: ChargingSchedule


class _Clock:
    """Maps wall-clock seconds of a schedule to UTC seconds: UTC itself, or a local zone
    cut into pieces of constant offset over the window."""

    def __init__(self, zone: tzinfo | None, first: int, last: int) -> None:
        self.zone = zone
        self.pieces: list[tuple[int, int, int]] = [(first, last, 0)]
        if zone is not None:
            self.pieces = _offset_pieces(zone, first, last)

    def wall_span(self) -> tuple[int, int]:
        return (
            min(a + off for a, _b, off in self.pieces),
            max(b + off for _a, b, off in self.pieces),
        )

    def utc(self, wall_start: int, wall_end: int) -> list[tuple[int, int]]:
        """The UTC intervals whose wall-clock time lies in [wall_start, wall_end)."""
        out = []
        for a, b, off in self.pieces:
            lo, hi = max(a, wall_start - off), min(b, wall_end - off)
            if lo < hi:
                out.append((lo, hi))
        return out

    def wall(self, moment: datetime) -> int:
        """Wall-clock seconds of ``startSchedule``: with a zone, its own fields read as
        local time (K01.FR.90); without, the instant."""
        if self.zone is None:
            return seconds(moment)
        naive = moment.replace(tzinfo=None, microsecond=0)
        return int((naive - _NAIVE_EPOCH).total_seconds())


def _offset_at(zone: tzinfo, moment: int) -> int:
    offset = instant(moment).astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _offset_pieces(zone: tzinfo, first: int, last: int) -> list[tuple[int, int, int]]:
    """[first, last) cut where the zone's UTC offset changes (probed hourly, each change
    found to the second)."""
    pieces = []
    start, offset = first, _offset_at(zone, first)
    probe = first
    while probe < last:
        step = min(probe + 3600, last)
        if step < last and _offset_at(zone, step) == offset:
            probe = step
            continue
        if step == last and _offset_at(zone, last - 1) == offset:
            break
        lo, hi = probe, step if step < last else last - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset_at(zone, mid) == offset:
                lo = mid
            else:
                hi = mid
        pieces.append((start, hi, offset))
        start, offset, probe = hi, _offset_at(zone, hi), hi
    pieces.append((start, last, offset))
    return pieces


def _validity(
    entry: InstalledProfile, first: int, last: int, offline_since: int | None
) -> tuple[int, int]:
    profile = entry.profile
    lo = first if profile.valid_from is None else max(first, seconds(profile.valid_from))
    hi = last if profile.valid_to is None else min(last, seconds(profile.valid_to))
    if offline_since is not None and profile.max_offline_duration is not None:
        hi = min(hi, offline_since + profile.max_offline_duration)  # K01.FR.101
    return lo, hi


def _segments(
    entry: InstalledProfile,
    first: int,
    last: int,
    anchor: int | None,
    zone: tzinfo | None,
    offline_since: int | None,
) -> list[_Segment]:
    """Where each period of ``entry``'s first schedule is in force within [first, last).
    ``anchor`` starts relative schedules; None keeps them at their first period."""
    lo, hi = _validity(entry, first, last, offline_since)
    if lo >= hi:
        return []
    profile = entry.profile
    schedule = profile.schedule
    periods = schedule.periods
    if profile.kind is Kind.DYNAMIC or (profile.kind is Kind.RELATIVE and anchor is None):
        if schedule.duration is not None and schedule.duration <= 0:
            return []
        return [_Segment(lo, hi, periods[0], schedule)]
    local = zone if schedule.use_local_time and profile.kind is not Kind.RELATIVE else None
    clock = _Clock(local, lo, hi)
    length = _FOREVER if schedule.duration is None else schedule.duration
    if profile.kind is Kind.RELATIVE:
        assert anchor is not None
        starts, cycle = [anchor], _FOREVER
    else:
        if schedule.start_schedule is None:
            return []  # refused by the validator (K01.FR.40); nothing to lay out
        origin = clock.wall(schedule.start_schedule)
        if profile.kind is Kind.ABSOLUTE or profile.recurrency is None:
            starts, cycle = [origin], _FOREVER
        else:
            cycle = _RECURRENCE[profile.recurrency]
            wall_lo, wall_hi = clock.wall_span()
            k_first = max(0, (wall_lo - origin) // cycle)
            k_last = (wall_hi - origin) // cycle
            starts = [origin + k * cycle for k in range(k_first, k_last + 1)]
    out = []
    for begin in starts:
        stop = begin + min(length, cycle)
        for index, period in enumerate(periods):
            if period.start_period >= length:
                break  # K01.FR.11
            nxt = periods[index + 1].start_period if index + 1 < len(periods) else _FOREVER
            a, b = begin + period.start_period, min(begin + nxt, stop)
            for x, y in clock.utc(a, b):
                x, y = max(x, lo), min(y, hi)
                if x < y:
                    out.append(_Segment(x, y, period, schedule))
    out.sort(key=lambda s: s.start)
    return out


class _Layer:
    """One profile's segments, searchable by instant."""

    def __init__(self, entry: InstalledProfile, segments: list[_Segment]) -> None:
        self.stack = entry.profile.stack_level
        self.specific = entry.evse_id != 0
        self.segments = segments
        self.starts = [s.start for s in segments]

    def at(self, moment: int) -> _Segment | None:
        index = bisect.bisect_right(self.starts, moment) - 1
        if index >= 0 and self.segments[index].end > moment:
            return self.segments[index]
        return None


def _leading(layers: list[_Layer], moment: int, prefer_specific: bool) -> list[_Segment]:
    """The periods of the purpose's leading profile(s) at ``moment``: the highest stack
    level with a period there; at equal level an EVSE's own profile before EVSE 0's when
    ``prefer_specific``, otherwise all of them (the lowest limit will count)."""
    found: list[_Segment] = []
    level: int | None = None
    specific = False
    for layer in layers:
        if level is not None and layer.stack < level:
            break
        segment = layer.at(moment)
        if segment is None:
            continue
        if level is None:
            level, specific = layer.stack, layer.specific
        elif prefer_specific and specific and not layer.specific:
            continue
        found.append(segment)
    return found


def _sorted(layers: Iterable[_Layer]) -> list[_Layer]:
    return sorted(layers, key=lambda layer: (-layer.stack, not layer.specific))


# --- composing ----------------------------------------------------------------------------


@attrs.define
class _Evse:
    """One EVSE's layers by role."""

    evse_id: int
    tx: list[_Layer]
    tx_default: list[_Layer]
    external: list[_Layer]


@attrs.frozen
class _Value:
    limit: float
    phases: int | None
    phase_to_use: int | None
    min_rate: float | None


class _Composer:
    def __init__(
        self,
        profiles: Iterable[InstalledProfile],
        config: SmartChargingConfig,
        first: int,
        last: int,
        unit: RateUnit,
        sessions: Mapping[int, Session],
        assume_transaction: bool,
        offline_since: int | None,
        hardware: bool,
    ) -> None:
        self.config = config
        self.unit = unit
        self.hardware = hardware
        self.first, self.last = first, last
        entries = list(profiles)
        self.breaks = {first, last}

        def layer(entry: InstalledProfile, anchor: int | None) -> _Layer:
            segments = _segments(entry, first, last, anchor, config.local_time, offline_since)
            for segment in segments:
                self.breaks.update((segment.start, segment.end))
            return _Layer(entry, segments)

        station = [e for e in entries if e.evse_id == 0]
        self.station_max = _sorted(
            layer(e, None) for e in station if e.purpose is Purpose.STATION_MAX
        )
        self.station_external = _sorted(
            layer(e, None) for e in station if e.purpose is Purpose.EXTERNAL
        )
        self.evses: dict[int, _Evse] = {}
        for evse_id in config.evses:
            session = sessions.get(evse_id)
            anchor: int | None = None
            if session is not None:
                anchor = seconds(session.anchor)
            elif assume_transaction:
                anchor = first  # K08.FR.06
            tx = []
            if session is not None:
                tx = [
                    layer(e, anchor)
                    for e in entries
                    if e.purpose is Purpose.TX
                    and e.evse_id == evse_id
                    and e.transaction_id in session.transaction_ids
                ]
            self.evses[evse_id] = _Evse(
                evse_id=evse_id,
                tx=_sorted(tx),
                tx_default=_sorted(
                    layer(e, anchor)
                    for e in entries
                    if e.purpose is Purpose.TX_DEFAULT and e.evse_id in (0, evse_id)
                ),
                external=_sorted(
                    layer(e, anchor)
                    for e in entries
                    if e.purpose is Purpose.EXTERNAL and e.evse_id == evse_id
                ),
            )

    # --- per instant

    def _limit(self, segments: list[_Segment], phases: int) -> float | None:
        volts = self.config.nominal_voltage
        values = [
            float(convert(s.period.limit, s.schedule.rate_unit, self.unit, phases, volts))
            for s in segments
            if s.period.limit is not None
        ]
        return min(values) if values else None

    def _phases(self, segments: list[_Segment], cap: int | None) -> tuple[int, bool]:
        """Phases in use (0 on a DC EVSE: conversions use the voltage alone) and whether
        any period named them."""
        if cap == 0:
            return 0, False
        default = self.config.default_phases
        phases = min((s.period.number_phases or default for s in segments), default=default)
        if cap is not None:
            phases = min(phases, cap)
        named = any(s.period.number_phases is not None for s in segments)
        return phases, named or phases != default

    def _hardware(self, current: float | None, power: float | None, phases: int) -> float | None:
        if not self.hardware:
            return None
        volts = self.config.nominal_voltage
        values = []
        if current is not None:
            values.append(convert(current, RateUnit.A, self.unit, phases, volts))
        if power is not None:
            values.append(convert(power, RateUnit.W, self.unit, phases, volts))
        return min(values) if values else None

    def _own(self, evse: _Evse, moment: int) -> tuple[list[_Segment], list[_Segment]]:
        """The EVSE's transaction-level periods (TxProfile over TxDefaultProfile,
        K02.FR.04/08) and its own external constraints."""
        tx_level = _leading(evse.tx, moment, False) or _leading(evse.tx_default, moment, True)
        return tx_level, _leading(evse.external, moment, False)

    def _station_caps(self, moment: int) -> list[_Segment]:
        return _leading(self.station_max, moment, False) + _leading(
            self.station_external, moment, False
        )

    def evse_value(self, evse_id: int, moment: int) -> _Value:
        evse = self.evses[evse_id]
        hardware = self.config.evse(evse_id)
        tx_level, external = self._own(evse, moment)
        segments = tx_level + external + self._station_caps(moment)
        phases, named = self._phases(segments, hardware.phases)
        limits = [
            self._limit(segments, phases),
            self._hardware(hardware.max_current, hardware.max_power, phases),
            self._hardware(self.config.station_max_current, self.config.station_max_power, phases),
        ]
        to_use = {s.period.phase_to_use for s in segments if s.period.phase_to_use is not None}
        rates = [
            convert(
                s.schedule.min_charging_rate,
                s.schedule.rate_unit,
                self.unit,
                phases,
                self.config.nominal_voltage,
            )
            for s in tx_level
            if s.schedule.min_charging_rate is not None
        ]
        return _Value(
            limit=min((v for v in limits if v is not None), default=math.inf),
            phases=None if hardware.is_dc or not named else phases,
            phase_to_use=to_use.pop() if len(to_use) == 1 and phases == 1 else None,
            min_rate=max(rates) if rates else None,
        )

    def moments(self) -> list[int]:
        """Every instant of the window where some limit may change, in order."""
        return sorted(b for b in self.breaks if self.first <= b < self.last)

    def value(self, evse_id: int, moment: int) -> _Value:
        return self.station_value(moment) if evse_id == 0 else self.evse_value(evse_id, moment)

    def station_value(self, moment: int) -> _Value:
        total = 0.0
        widest = 0
        for evse_id, evse in self.evses.items():
            hardware = self.config.evse(evse_id)
            tx_level, external = self._own(evse, moment)
            own = tx_level + external
            phases, _named = self._phases(own, hardware.phases)
            widest = max(widest, phases)
            limits = [
                self._limit(own, phases),
                self._hardware(hardware.max_current, hardware.max_power, phases),
            ]
            total += min((v for v in limits if v is not None), default=math.inf)
        caps = self._station_caps(moment)
        phases, named = self._phases(caps, widest or None)
        limits = [
            total,
            self._limit(caps, phases),
            self._hardware(self.config.station_max_current, self.config.station_max_power, phases),
        ]
        return _Value(
            limit=min((v for v in limits if v is not None), default=math.inf),
            phases=phases if named else None,
            phase_to_use=None,
            min_rate=None,
        )


def _composer(
    profiles: Iterable[InstalledProfile],
    evse_ids: Iterable[int],
    start: datetime,
    duration: int,
    config: SmartChargingConfig,
    unit: RateUnit | str | None,
    sessions: Mapping[int, Session] | None,
    assume_transaction: bool,
    offline_since: datetime | None,
    hardware: bool,
) -> _Composer:
    for evse_id in evse_ids:
        if evse_id != 0 and evse_id not in config.evses:
            raise LocalProtocolError(f"no EVSE {evse_id}")
    if duration < 1:
        raise LocalProtocolError(f"duration must be >= 1 s, got {duration}")
    first = seconds(start)
    return _Composer(
        profiles,
        config,
        first,
        first + duration,
        config.default_rate_unit if unit is None else RateUnit(unit),
        sessions or {},
        assume_transaction,
        None if offline_since is None else seconds(offline_since),
        hardware,
    )


def composite_schedule(
    profiles: Iterable[InstalledProfile],
    evse_id: int,
    start: datetime,
    duration: int,
    config: SmartChargingConfig,
    *,
    unit: RateUnit | str | None = None,
    sessions: Mapping[int, Session] | None = None,
    assume_transaction: bool = True,
    offline_since: datetime | None = None,
    hardware: bool = True,
) -> CompositeSchedule:
    """The composite schedule of ``evse_id`` (0: the grid connection) from ``start`` for
    ``duration`` seconds, in ``unit`` (default: the configured one). ``sessions``: the
    running transactions by EVSE. ``offline_since``: when the station lost its CSMS, if it
    has (2.1 maxOfflineDuration). ``hardware=False`` leaves the hardware's own limits out
    (the profiles alone; where none limits, the limit is infinite). Unknown EVSE or a
    duration below 1 s: LocalProtocolError. The work grows with the number of periods the
    window holds: bound ``duration`` for requests from outside.
    """
    composer = _composer(
        profiles,
        (evse_id,),
        start,
        duration,
        config,
        unit,
        sessions,
        assume_transaction,
        offline_since,
        hardware,
    )
    periods: list[CompositePeriod] = []
    previous: _Value | None = None
    for moment in composer.moments():
        value = composer.value(evse_id, moment)
        if value == previous:
            continue
        previous = value
        periods.append(
            CompositePeriod(
                start_period=moment - composer.first,
                limit=value.limit,
                number_phases=value.phases,
                phase_to_use=value.phase_to_use,
                min_charging_rate=value.min_rate,
            )
        )
    return CompositeSchedule(
        evse_id=evse_id,
        start=instant(composer.first),
        duration=duration,
        rate_unit=composer.unit,
        periods=tuple(periods),
    )


def limits_in_force(
    profiles: Iterable[InstalledProfile],
    now: datetime,
    config: SmartChargingConfig,
    *,
    evse_ids: Iterable[int] | None = None,
    unit: RateUnit | str | None = None,
    sessions: Mapping[int, Session] | None = None,
    offline_since: datetime | None = None,
    horizon: int = HORIZON,
) -> dict[int, tuple[CompositePeriod, datetime | None]]:
    """For each of ``evse_ids`` (default: 0 and every EVSE), the limit at ``now`` and when
    it next changes (None: not within ``horizon`` seconds). An idle EVSE gets what a
    transaction starting now would."""
    wanted = (0, *sorted(config.evses)) if evse_ids is None else tuple(evse_ids)
    composer = _composer(
        profiles, wanted, now, horizon, config, unit, sessions, False, offline_since, True
    )
    moments = composer.moments()
    out = {}
    for evse_id in wanted:
        current = composer.value(evse_id, moments[0])
        nxt = next((m for m in moments[1:] if composer.value(evse_id, m) != current), None)
        period = CompositePeriod(
            start_period=0,
            limit=current.limit,
            number_phases=current.phases,
            phase_to_use=current.phase_to_use,
            min_charging_rate=current.min_rate,
        )
        out[evse_id] = (period, None if nxt is None else instant(nxt))
    return out


def limit_in_force(
    profiles: Iterable[InstalledProfile],
    evse_id: int,
    now: datetime,
    config: SmartChargingConfig,
    *,
    unit: RateUnit | str | None = None,
    sessions: Mapping[int, Session] | None = None,
    offline_since: datetime | None = None,
    horizon: int = HORIZON,
) -> tuple[CompositePeriod, datetime | None]:
    """The limit on ``evse_id`` at ``now`` and when it next changes (None: not within
    ``horizon`` seconds). An idle EVSE gets what a transaction starting now would."""
    return limits_in_force(
        profiles,
        now,
        config,
        evse_ids=(evse_id,),
        unit=unit,
        sessions=sessions,
        offline_since=offline_since,
        horizon=horizon,
    )[evse_id]
