"""What a station's smart charging obeys: the configured limits of the specification
(1.6 §9.4 keys, 2.x SmartChargingCtrlr variables) and the hardware's own limits, in one
object validated when built."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any, Protocol

import attrs

from .model import RateUnit


class Settings(Protocol):
    """Any object with ``setting(name) -> str | None`` (the flows' 1.6 ``Configuration16``
    and 2.x ``DeviceModel`` are)."""

    def setting(self, name: str) -> str | None: ...


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class EvseLimits:
    """One EVSE's hardware. ``phases``: 1 or 3 for AC, 0 for DC (K01.FR.43/44).
    ``max_current`` (A per phase) and ``max_power`` (W) are its local limits: what it
    charges at when no profile limits it (K06.FR.02)."""

    max_current: float | None = attrs.field(default=32.0, validator=_positive)
    max_power: float | None = attrs.field(default=None, validator=_positive)
    phases: int = attrs.field(default=3, validator=attrs.validators.in_((0, 1, 2, 3)))
    #: 2.x ACPhaseSwitchingSupported: can choose the phase of 1-phase charging (K01.FR.46/48).
    phase_switching: bool = False
    #: Can charge on fewer phases than it has (2.x Phases3to1; 1.6
    #: ConnectorSwitch3to1PhaseSupported); if not, a lower numberPhases is refused (K01.FR.43).
    reduces_phases: bool = True

    def __attrs_post_init__(self) -> None:
        if self.max_current is None and self.max_power is None:
            raise ValueError("an EVSE needs max_current or max_power")

    @property
    def is_dc(self) -> bool:
        return self.phases == 0


def _evses(value: int | Mapping[int, EvseLimits]) -> Mapping[int, EvseLimits]:
    if isinstance(value, int):
        return {n: EvseLimits() for n in range(1, value + 1)}
    return dict(value)


def _units(value: Any) -> frozenset[RateUnit]:
    return frozenset(RateUnit(v) for v in value)


@attrs.frozen(kw_only=True)
class SmartChargingConfig:
    """Limits and hardware facts the validator and the composite schedule read."""

    #: EVSE (1.6 connector) id -> its hardware; an int N means N default EVSEs.
    evses: Mapping[int, EvseLimits] = attrs.field(default=1, converter=_evses)
    #: The grid connection's own limits (None: the sum of the EVSEs').
    station_max_current: float | None = attrs.field(default=None, validator=_positive)
    station_max_power: float | None = attrs.field(default=None, validator=_positive)
    #: The area's line voltage for A <-> W (K01.FR.50); DC EVSEs use it as their voltage.
    nominal_voltage: float = attrs.field(default=230.0, validator=_positive)
    #: 2.x SmartChargingCtrlr.ProfileStackLevel (ChargingProfileMaxStackLevel); 1.6
    #: ChargeProfileMaxStackLevel.
    max_stack_level: int = 10
    #: 2.x SmartChargingCtrlr.RateUnit; 1.6 ChargingScheduleAllowedChargingRateUnit.
    rate_units: frozenset[RateUnit] = attrs.field(
        default=frozenset({RateUnit.A, RateUnit.W}), converter=_units
    )
    #: 2.x SmartChargingCtrlr.PeriodsPerSchedule; 1.6 ChargingScheduleMaxPeriods.
    max_periods: int = 24
    #: 1.6 MaxChargingProfilesInstalled; 2.x maxLimit of Entries[ChargingProfiles].
    max_profiles: int = 100
    #: The unit of composite schedules and limits when none is asked for.
    default_rate_unit: RateUnit = attrs.field(default=RateUnit.A, converter=RateUnit)
    #: numberPhases assumed when a period gives none (K01.FR.49; 1.6 §7.12).
    default_phases: int = attrs.field(default=3, validator=attrs.validators.in_((1, 2, 3)))
    #: 2.1 TimeZone for schedules with useLocalTime (K01.FR.90); None: not supported
    #: (K01.FR.123).
    local_time: tzinfo | None = None
    #: 2.1 MaxExternalConstraintsId (K01.FR.80-82).
    max_external_constraints_id: int | None = None
    #: 2.x SmartChargingCtrlr.LimitChangeSignificance, percent (SC.03, K11.FR.02).
    limit_change_significance: float = 0.0
    #: 2.x SmartChargingCtrlr.NotifyChargingLimitWithSchedules (K11.FR.03, K12.FR.03).
    notify_with_schedules: bool = False
    #: Smart charging supported and enabled; False answers every smart-charging request
    #: with CALLERROR NotSupported (K01.FR.29; 1.6 errata 3.39).
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.evses or any(e < 1 for e in self.evses):
            raise ValueError("EVSE ids are 1, 2, …")
        if not self.rate_units:
            raise ValueError("at least one rate unit must be allowed")
        if self.max_stack_level < 0 or self.max_periods < 1 or self.max_profiles < 1:
            raise ValueError("max_stack_level >= 0, max_periods and max_profiles >= 1")

    @classmethod
    def from_settings(cls, settings: Settings, version: str, **given: Any) -> SmartChargingConfig:
        """Read what the configuration holds (1.6 keys or 2.x variables); ``given`` values
        (hardware, and what the store cannot express) fill in or override."""
        read = settings.setting
        found: dict[str, Any] = {}

        def integer(name: str, key: str) -> None:
            text = read(name)
            if text is not None and text.strip().lstrip("-").isdigit():
                found[key] = int(text)

        if version == "1.6":
            integer("ChargeProfileMaxStackLevel", "max_stack_level")
            integer("ChargingScheduleMaxPeriods", "max_periods")
            integer("MaxChargingProfilesInstalled", "max_profiles")
            units = read("ChargingScheduleAllowedChargingRateUnit")
            if units is not None:
                words = {w.strip() for w in units.split(",")}
                found["rate_units"] = {
                    u for u, w in ((RateUnit.A, "Current"), (RateUnit.W, "Power")) if w in words
                }
            profiles = read("SupportedFeatureProfiles")
            if profiles is not None:
                found["enabled"] = "SmartCharging" in {p.strip() for p in profiles.split(",")}
        else:
            integer("SmartChargingCtrlr.ProfileStackLevel", "max_stack_level")
            integer("SmartChargingCtrlr.PeriodsPerSchedule", "max_periods")
            units = read("SmartChargingCtrlr.RateUnit")
            if units is not None:
                found["rate_units"] = {u.strip() for u in units.split(",") if u.strip()}
            for name, key in (
                ("SmartChargingCtrlr.Enabled", "enabled"),
                ("SmartChargingCtrlr.NotifyChargingLimitWithSchedules", "notify_with_schedules"),
            ):
                text = read(name)
                if text is not None:
                    found[key] = text.strip().lower() == "true"
            significance = read("SmartChargingCtrlr.LimitChangeSignificance")
            if significance is not None:
                with contextlib.suppress(ValueError):
                    found["limit_change_significance"] = float(significance)
        found.update(given)
        return cls(**found)

    def evse(self, evse_id: int) -> EvseLimits:
        return self.evses[evse_id]
