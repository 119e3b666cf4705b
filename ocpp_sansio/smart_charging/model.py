"""Charging profiles in one shape for OCPP 1.6, 2.0.1 and 2.1.

The message classes differ per version (1.6 ``chargingProfileId``, one schedule, integer
transaction ids and ``ChargePointMaxProfile``; 2.x ``id``, up to three schedules, string
transaction ids and ``ChargingStationMaxProfile``). The validator, the store and the
composite schedule work on the neutral classes here; ``profile_from_message`` and
``profile_to_message`` convert. Fields the neutral model does not interpret (``customData``,
sales tariffs, 2.1 price schedules, per-phase limits …) travel in ``extras`` with the
version they came from, so converting back to that version loses nothing; converting to
another version drops them.
"""

from __future__ import annotations

import enum
import functools
import types
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

import attrs

from ..errors import LocalProtocolError
from ..messages import v16, v21, v201

_MODULES: dict[str, types.ModuleType] = {"1.6": v16, "2.0.1": v201, "2.1": v21}
VERSIONS = tuple(_MODULES)


class Purpose(StrEnum):
    """chargingProfilePurpose; 1.6 ``ChargePointMaxProfile`` is ``STATION_MAX``."""

    STATION_MAX = "ChargingStationMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"
    PRIORITY = "PriorityCharging"
    LOCAL_GENERATION = "LocalGeneration"


#: Purposes only the station sets, so the CSMS can neither clear nor replace them
#: (K10.FR.04/08/09; 2.1 adds LocalGeneration).
STATION_OWNED_PURPOSES = frozenset({Purpose.EXTERNAL, Purpose.LOCAL_GENERATION})


class Kind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"
    DYNAMIC = "Dynamic"


class Recurrency(StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(StrEnum):
    A = "A"
    W = "W"


#: The ChargingLimitSource of profiles the CSMS set (K09, K11.FR.05).
CSO = "CSO"

_STATION_MAX_1_6 = "ChargePointMaxProfile"


def _aware(value: datetime | None) -> datetime | None:
    """OCPP times carry a zone; they are kept as given (2.1 useLocalTime reads the fields
    of startSchedule, K01.FR.90)."""
    if value is not None and value.tzinfo is None:
        raise LocalProtocolError(f"naive datetime {value!r}: OCPP times carry a zone")
    return value


def purpose_of(value: Purpose | str) -> Purpose:
    """A purpose from its text in any version (1.6 ChargePointMaxProfile included)."""
    text = str(getattr(value, "value", value))
    return Purpose.STATION_MAX if text == _STATION_MAX_1_6 else Purpose(text)


def _periods(items: Iterable[SchedulePeriod]) -> tuple[SchedulePeriod, ...]:
    return tuple(items)


def _schedules(items: Iterable[ChargingSchedule]) -> tuple[ChargingSchedule, ...]:
    return tuple(items)


def _recurrency(value: Recurrency | str | None) -> Recurrency | None:
    return None if value is None else Recurrency(value)


@attrs.frozen(kw_only=True)
class SchedulePeriod:
    """One chargingSchedulePeriod. ``limit`` is absent only in 2.1 (setpoint modes)."""

    start_period: int
    limit: float | None
    number_phases: int | None = None
    phase_to_use: int | None = None
    extras: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


@attrs.frozen(kw_only=True)
class ChargingSchedule:
    """One chargingSchedule. ``id`` is absent in 1.6."""

    rate_unit: RateUnit = attrs.field(converter=RateUnit)
    periods: tuple[SchedulePeriod, ...] = attrs.field(converter=_periods)
    id: int | None = None
    start_schedule: datetime | None = attrs.field(default=None, converter=_aware)
    duration: int | None = None
    min_charging_rate: float | None = None
    #: 2.1 useLocalTime (K01.FR.90): startSchedule is local wall-clock time.
    use_local_time: bool | None = None
    #: 2.1 randomizedDelay (K01.FR.92).
    randomized_delay: int | None = None
    extras: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


@attrs.frozen(kw_only=True)
class ChargingProfile:
    """A charging profile, whatever version it came in."""

    id: int
    stack_level: int
    purpose: Purpose = attrs.field(converter=purpose_of)
    kind: Kind = attrs.field(converter=Kind)
    schedules: tuple[ChargingSchedule, ...] = attrs.field(converter=_schedules)
    recurrency: Recurrency | None = attrs.field(default=None, converter=_recurrency)
    valid_from: datetime | None = attrs.field(default=None, converter=_aware)
    valid_to: datetime | None = attrs.field(default=None, converter=_aware)
    #: 1.6: the CSMS's integer id; 2.x: the station's string id.
    transaction_id: str | int | None = None
    #: 2.1 (K01.FR.101-103).
    max_offline_duration: int | None = None
    invalid_after_offline_duration: bool | None = None
    #: The version whose message class ``extras`` (of this object and its parts) belong to.
    origin: str | None = None
    extras: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)

    @property
    def schedule(self) -> ChargingSchedule:
        """The first schedule: the one the composite schedule follows (more than one
        exists only for ISO 15118 sessions, K01.FR.34)."""
        return self.schedules[0]


# --- from messages ------------------------------------------------------------------------

_PROFILE_FIELDS = {
    "id",
    "charging_profile_id",
    "stack_level",
    "charging_profile_purpose",
    "charging_profile_kind",
    "charging_schedule",
    "recurrency_kind",
    "valid_from",
    "valid_to",
    "transaction_id",
    "max_offline_duration",
    "invalid_after_offline_duration",
}
_SCHEDULE_FIELDS = {
    "id",
    "charging_rate_unit",
    "charging_schedule_period",
    "start_schedule",
    "duration",
    "min_charging_rate",
    "use_local_time",
    "randomized_delay",
}
_PERIOD_FIELDS = {"start_period", "limit", "number_phases", "phase_to_use"}


def _extras(message: Any, known: set[str]) -> dict[str, Any]:
    return {
        field.name: getattr(message, field.name)
        for field in attrs.fields(type(message))
        if field.name not in known and getattr(message, field.name) is not None
    }


def _text(value: Any) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)


def version_of(message: Any) -> str:
    """The OCPP version a message object belongs to."""
    for version, module in _MODULES.items():
        if type(message).__module__ == module.__name__:
            return version
    raise LocalProtocolError(f"{type(message).__name__} is not an OCPP message class")


def period_from_message(message: Any) -> SchedulePeriod:
    return SchedulePeriod(
        start_period=message.start_period,
        limit=message.limit,
        number_phases=message.number_phases,
        phase_to_use=getattr(message, "phase_to_use", None),
        extras=_extras(message, _PERIOD_FIELDS),
    )


def schedule_from_message(message: Any) -> ChargingSchedule:
    return ChargingSchedule(
        id=getattr(message, "id", None),
        rate_unit=RateUnit(_text(message.charging_rate_unit)),
        periods=tuple(period_from_message(p) for p in message.charging_schedule_period),
        start_schedule=message.start_schedule,
        duration=message.duration,
        min_charging_rate=message.min_charging_rate,
        use_local_time=getattr(message, "use_local_time", None),
        randomized_delay=getattr(message, "randomized_delay", None),
        extras=_extras(message, _SCHEDULE_FIELDS),
    )


def profile_from_message(message: Any) -> ChargingProfile:
    """The neutral form of a ``ChargingProfile`` message object of any version."""
    version = version_of(message)
    purpose = purpose_of(message.charging_profile_purpose)
    schedules: tuple[ChargingSchedule, ...]
    if version == "1.6":
        profile_id = message.charging_profile_id
        schedules = (schedule_from_message(message.charging_schedule),)
    else:
        profile_id = message.id
        schedules = tuple(schedule_from_message(s) for s in message.charging_schedule)
    recurrency = message.recurrency_kind
    return ChargingProfile(
        id=profile_id,
        stack_level=message.stack_level,
        purpose=purpose,
        kind=Kind(_text(message.charging_profile_kind)),
        schedules=schedules,
        recurrency=None if recurrency is None else Recurrency(_text(recurrency)),
        valid_from=message.valid_from,
        valid_to=message.valid_to,
        transaction_id=message.transaction_id,
        max_offline_duration=getattr(message, "max_offline_duration", None),
        invalid_after_offline_duration=getattr(message, "invalid_after_offline_duration", None),
        origin=version,
        extras=_extras(message, _PROFILE_FIELDS),
    )


# --- to messages --------------------------------------------------------------------------


def _enum_type(annotation: Any) -> type[enum.Enum] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _enum_type(arg)
            if found is not None:
                return found
    return None


def _make(cls: type, fields: dict[str, Any], extras: Mapping[str, Any]) -> Any:
    """An instance of ``cls`` from ``fields`` (enum fields as text) plus ``extras``; a
    value the version cannot hold raises LocalProtocolError."""
    hints = _hints(cls)
    values = {name: value for name, value in fields.items() if name in hints}
    for name, value in fields.items():
        if name not in hints and value is not None:
            raise LocalProtocolError(f"{cls.__name__} has no field {name!r}")
    for name, value in list(values.items()):
        enum_cls = _enum_type(hints[name])
        if enum_cls is not None and isinstance(value, str):
            try:
                values[name] = enum_cls(value)
            except ValueError:
                raise LocalProtocolError(
                    f"{value!r} is not a {cls.__name__}.{name} value in this version"
                ) from None
    values.update({name: value for name, value in extras.items() if name in hints})
    return cls(**{k: v for k, v in values.items() if v is not None or k in extras})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    for module in _MODULES.values():
        if cls.__module__ == module.__name__:
            return get_type_hints(cls, vars(module))
    raise LocalProtocolError(f"{cls.__name__} is not an OCPP message class")


def period_to_message(period: SchedulePeriod, version: str, keep: bool) -> Any:
    m = _MODULES[version]
    fields: dict[str, Any] = {
        "start_period": period.start_period,
        "limit": period.limit,
        "number_phases": period.number_phases,
    }
    if version != "1.6":
        fields["phase_to_use"] = period.phase_to_use
    elif period.phase_to_use is not None:
        raise LocalProtocolError("OCPP 1.6 has no phaseToUse")
    if version != "2.1" and period.limit is None:
        raise LocalProtocolError(f"OCPP {version} needs a limit in every period")
    return _make(m.ChargingSchedulePeriod, fields, period.extras if keep else {})


def schedule_to_message(schedule: ChargingSchedule, version: str, keep: bool) -> Any:
    m = _MODULES[version]
    fields: dict[str, Any] = {
        "charging_rate_unit": schedule.rate_unit.value,
        "charging_schedule_period": [period_to_message(p, version, keep) for p in schedule.periods],
        "start_schedule": schedule.start_schedule,
        "duration": schedule.duration,
        "min_charging_rate": schedule.min_charging_rate,
        "use_local_time": schedule.use_local_time,
        "randomized_delay": schedule.randomized_delay,
    }
    if version != "1.6":
        if schedule.id is None:
            raise LocalProtocolError(f"OCPP {version} needs an id for every chargingSchedule")
        fields["id"] = schedule.id
    return _make(m.ChargingSchedule, fields, schedule.extras if keep else {})


def profile_to_message(profile: ChargingProfile, version: str) -> Any:
    """The ``ChargingProfile`` message object of ``version``; LocalProtocolError when the
    version cannot express it (1.6: one schedule, integer transaction ids, no external
    constraints; 2.x: string transaction ids)."""
    m = _MODULES.get(version)
    if m is None:
        raise LocalProtocolError(f"unknown OCPP version {version!r}")
    keep = profile.origin == version
    purpose = profile.purpose.value
    transaction_id = profile.transaction_id
    if version == "1.6":
        if len(profile.schedules) != 1:
            raise LocalProtocolError("OCPP 1.6 profiles have exactly one chargingSchedule")
        if purpose == Purpose.STATION_MAX:
            purpose = _STATION_MAX_1_6
        if transaction_id is not None and not isinstance(transaction_id, int):
            raise LocalProtocolError("OCPP 1.6 transaction ids are integers")
        fields: dict[str, Any] = {
            "charging_profile_id": profile.id,
            "charging_schedule": schedule_to_message(profile.schedule, version, keep),
        }
    else:
        if transaction_id is not None and not isinstance(transaction_id, str):
            raise LocalProtocolError(f"OCPP {version} transaction ids are strings")
        fields = {
            "id": profile.id,
            "charging_schedule": [schedule_to_message(s, version, keep) for s in profile.schedules],
        }
    fields.update(
        stack_level=profile.stack_level,
        charging_profile_purpose=purpose,
        charging_profile_kind=profile.kind.value,
        recurrency_kind=None if profile.recurrency is None else profile.recurrency.value,
        valid_from=profile.valid_from,
        valid_to=profile.valid_to,
        transaction_id=transaction_id,
        max_offline_duration=profile.max_offline_duration,
        invalid_after_offline_duration=profile.invalid_after_offline_duration,
    )
    return _make(m.ChargingProfile, fields, profile.extras if keep else {})


# --- composite schedules ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CompositePeriod:
    """A period of a composite schedule: the limit in force from ``start_period`` seconds
    after the schedule's start until the next period. ``min_charging_rate`` is the one of
    the transaction-level schedule in force (1.6 reports it; 2.x has no field for it)."""

    start_period: int
    limit: float
    number_phases: int | None = None
    phase_to_use: int | None = None
    min_charging_rate: float | None = None


@attrs.frozen(kw_only=True)
class CompositeSchedule:
    """The limits in force on ``evse_id`` (0: the grid connection) from ``start`` for
    ``duration`` seconds; periods strictly ordered, the first at 0, neighbours different."""

    evse_id: int
    start: datetime
    duration: int
    rate_unit: RateUnit
    periods: tuple[CompositePeriod, ...]

    def period_at(self, when: datetime) -> CompositePeriod | None:
        """The period in force at ``when``, None outside the schedule."""
        offset = (when - self.start).total_seconds()
        if not 0 <= offset < self.duration:
            return None
        found = None
        for period in self.periods:
            if period.start_period > offset:
                break
            found = period
        return found

    def cut(self, duration: int) -> CompositeSchedule:
        """The first ``duration`` seconds of this schedule."""
        if not 0 < duration <= self.duration:
            raise LocalProtocolError(f"cannot cut a {self.duration} s schedule to {duration} s")
        kept = tuple(p for p in self.periods if p.start_period < duration)
        return attrs.evolve(self, duration=duration, periods=kept)

    def to_message(self, version: str) -> Any:
        """1.6: a ``ChargingSchedule`` (without startSchedule, errata 3.57); 2.x: a
        ``CompositeSchedule``. 1.6 limits are cut down to one decimal (schema)."""
        m = _MODULES[version]
        if version == "1.6":
            periods = [
                m.ChargingSchedulePeriod(
                    start_period=p.start_period,
                    limit=floor_tenth(p.limit),
                    number_phases=p.number_phases,
                )
                for p in self.periods
            ]
            rates = [p.min_charging_rate for p in self.periods if p.min_charging_rate is not None]
            return m.ChargingSchedule(
                charging_rate_unit=m.ChargingRateUnitType(self.rate_unit.value),
                charging_schedule_period=periods,
                duration=self.duration,
                min_charging_rate=floor_tenth(max(rates)) if rates else None,
            )
        periods = [
            m.ChargingSchedulePeriod(
                start_period=p.start_period,
                limit=p.limit,
                number_phases=p.number_phases,
                phase_to_use=p.phase_to_use,
            )
            for p in self.periods
        ]
        return m.CompositeSchedule(
            evse_id=self.evse_id,
            duration=self.duration,
            schedule_start=self.start,
            charging_rate_unit=m.ChargingRateUnitEnum(self.rate_unit.value),
            charging_schedule_period=periods,
        )


def floor_tenth(value: float) -> float:
    """``value`` rounded down to one decimal (never above it, tolerant of float noise)."""
    scaled = value * 10
    whole = round(scaled)
    if abs(scaled - whole) < 1e-6:
        return whole / 10
    return int(scaled // 1) / 10


def composite_from_message(message: Any, *, evse_id: int, start: datetime) -> CompositeSchedule:
    """A composite schedule as a station reported it: 1.6 ``ChargingSchedule`` (give the
    answer's connectorId and scheduleStart) or 2.x ``CompositeSchedule``."""
    if hasattr(message, "schedule_start"):
        evse_id, start = message.evse_id, message.schedule_start
    duration = message.duration
    if duration is None:
        raise LocalProtocolError("a composite schedule without duration")
    rate = getattr(message, "min_charging_rate", None)
    periods = tuple(
        CompositePeriod(
            start_period=p.start_period,
            limit=p.limit,
            number_phases=p.number_phases,
            phase_to_use=getattr(p, "phase_to_use", None),
            min_charging_rate=rate,
        )
        for p in message.charging_schedule_period
    )
    return CompositeSchedule(
        evse_id=evse_id,
        start=start,
        duration=duration,
        rate_unit=RateUnit(_text(message.charging_rate_unit)),
        periods=periods,
    )
