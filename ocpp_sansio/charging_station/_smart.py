"""Smart charging inside the station (K01-K13; 1.6 §3.13, §5.5, §5.7, §5.16): the
``SmartCharging`` flow configured from the device model or the 1.6 keys, the limit in
force handed to the hardware whenever it changes, external limits, and the installed
profiles kept in the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows.device_model import ComponentKey, VariableKey
from ocpp_sansio.flows.smart_charging import (
    ChargingProfileInstalled,
    ChargingProfilesCleared,
    LimitChanged,
    SmartCharging,
)
from ocpp_sansio.smart_charging import (
    ChargingSchedule,
    CompositeSchedule,
    EvseLimits,
    RateUnit,
    SmartChargingConfig,
    convert,
)

from ._application import ChargingLimit

if TYPE_CHECKING:
    from ._facade import ChargingStation

#: The record that keeps the installed profiles (K01.FR.27).
RECORD = "charging_profiles"

#: What the configuration cannot hold: the hardware and the grid connection. Everything
#: else comes from the device model (2.x) or the 1.6 keys (``from_settings``).
_HARDWARE = (
    "evses",
    "station_max_current",
    "station_max_power",
    "nominal_voltage",
    "default_rate_unit",
    "default_phases",
    "local_time",
    "max_external_constraints_id",
)
_ENTRIES = (ComponentKey("SmartChargingCtrlr"), VariableKey("Entries", "ChargingProfiles"))
_UNITS_1_6 = {RateUnit.A: "Current", RateUnit.W: "Power"}


def default_config(evses: int, max_power_w: float) -> SmartChargingConfig:
    """Every EVSE AC, three phases, at most ``max_power_w``."""
    limits = EvseLimits(max_current=None, max_power=max_power_w)
    return SmartChargingConfig(evses={n: limits for n in range(1, evses + 1)})


def seed_settings(station: ChargingStation, given: SmartChargingConfig) -> None:
    """The given configuration as the factory values of the settings that hold it, so the
    station reports what it obeys (a value the CSMS set later, kept in the store, wins)."""
    units = sorted(given.rate_units)
    if station.version == "1.6":
        keys = station.keys
        for key, value in (
            ("ChargeProfileMaxStackLevel", given.max_stack_level),
            ("ChargingScheduleMaxPeriods", given.max_periods),
            ("MaxChargingProfilesInstalled", given.max_profiles),
            ("ChargingScheduleAllowedChargingRateUnit", ",".join(_UNITS_1_6[u] for u in units)),
        ):
            keys.write(key, str(value))
        if not given.enabled:
            profiles = keys.read("SupportedFeatureProfiles") or ""
            kept = [p for p in profiles.split(",") if p.strip() != "SmartCharging"]
            keys.write("SupportedFeatureProfiles", ",".join(kept))
        return
    model = station.model
    component = ComponentKey("SmartChargingCtrlr")
    for name, value in (
        ("ProfileStackLevel", str(given.max_stack_level)),
        ("PeriodsPerSchedule", str(given.max_periods)),
        ("RateUnit", ",".join(u.value for u in units)),
        ("Enabled", str(given.enabled).lower()),
        ("LimitChangeSignificance", f"{given.limit_change_significance:g}"),
        ("NotifyChargingLimitWithSchedules", str(given.notify_with_schedules).lower()),
    ):
        model.write(component, VariableKey(name), "Actual", value)
    found = model.lookup(*_ENTRIES)
    if found is not None:
        found.max_limit = given.max_profiles


class SmartChargingHost:
    def __init__(self, station: ChargingStation, given: SmartChargingConfig) -> None:
        self.station = station
        self._hardware: dict[str, Any] = {name: getattr(given, name) for name in _HARDWARE}
        if station.version != "1.6":  # 1.6 has MaxChargingProfilesInstalled
            self._hardware["max_profiles"] = given.max_profiles
        self.flow = SmartCharging(
            station.core,
            config=self.configured(),
            activity=station.activity,
            clock=station.clock,
        )

    def configured(self) -> SmartChargingConfig:
        station = self.station
        return SmartChargingConfig.from_settings(
            station.settings, station.version, **self._hardware
        )

    @property
    def config(self) -> SmartChargingConfig:
        return self.flow.config

    # --- life

    def start(self, now: float) -> None:
        """The profiles of the previous life, and the limits in force told to the hardware."""
        snapshot = self.station.store.load(RECORD)
        if snapshot:
            self.flow.restore(snapshot, now)
        else:
            self.flow.refresh(now)
        self._count()

    def reconfigure(self, now: float) -> None:
        """A setting changed: SmartChargingCtrlr.* (2.x) may change what the flow obeys;
        with smart charging disabled a remote start's profile is ignored (K05.FR.04)."""
        config = self.configured()
        if config != self.flow.config:
            self.flow.reconfigure(config, now)
            self.station.remote.smart_charging = config.enabled

    def profiles_changed(self, event: ChargingProfileInstalled | ChargingProfilesCleared) -> None:
        """K01.FR.27: the installed profiles survive a reboot."""
        store = self.flow.store
        self.station.store.save(RECORD, self.flow.snapshot() if len(store) else None)
        self._count()

    def _count(self) -> None:
        if self.station.version != "1.6":
            self.station.model.write(*_ENTRIES, "Actual", str(len(self.flow.store)))

    # --- the limit in force

    def limit_changed(self, event: LimitChanged, now: float) -> None:
        """Tell the hardware; a significant change of a running 2.x transaction's limit
        goes to the CSMS as TransactionEvent ChargingRateChanged (K11.FR.04, K13.FR.03)."""
        station = self.station
        station.application.set_limit(event.evse_id, self._limit(event), now)
        evse = station.evses.get(event.evse_id)
        if (
            station.version != "1.6"
            and evse is not None
            and evse.transaction is not None
            and event.previous is not None
            and event.significant
        ):
            station.transactions.update(
                evse.transaction, trigger_reason="ChargingRateChanged", now=now
            )

    def _limit(self, event: LimitChanged) -> ChargingLimit:
        phases = self._phases(event.evse_id, event.number_phases)
        volts = self.config.nominal_voltage

        def both(value: float | None) -> tuple[float | None, float | None]:
            if value is None:
                return None, None
            amps = convert(value, event.rate_unit, RateUnit.A, phases, volts)
            watts = convert(value, event.rate_unit, RateUnit.W, phases, volts)
            return amps, watts

        amps, watts = both(event.limit)
        min_amps, min_watts = both(event.min_charging_rate)
        return ChargingLimit(
            amps=amps,
            watts=watts,
            number_phases=event.number_phases,
            phase_to_use=event.phase_to_use,
            min_amps=min_amps,
            min_watts=min_watts,
            next_change=event.next_change,
            next_change_at=event.next_change_at,
        )

    def _phases(self, evse_id: int, number_phases: int | None) -> int:
        """The phases a limit is converted with (K01.FR.49/50): the period's, else the
        default, never more than the EVSE has; DC: none."""
        config = self.config
        wanted = number_phases or config.default_phases
        hardware = config.evses.get(evse_id)
        if hardware is None:
            return wanted
        return 0 if hardware.is_dc else min(wanted, hardware.phases)

    def power_path_closed(self, evse_id: int, now: float) -> None:
        """Relative schedules of the transaction count from now (K01.FR.42)."""
        if evse_id in self.flow.sessions():
            self.flow.power_path_closed(evse_id, now)

    # --- composite schedules and external limits

    def composite(
        self, evse_id: int, duration: int, unit: RateUnit | str | None, now: float
    ) -> CompositeSchedule:
        return self.flow.get_composite_schedule(evse_id, duration, unit, now)

    def all_composites(
        self, duration: int, unit: RateUnit | str | None, now: float
    ) -> dict[int, CompositeSchedule]:
        return self.flow.get_all_composite_schedules(duration, unit, now)

    def external_limit(
        self,
        limit: float | ChargingSchedule,
        now: float,
        *,
        source: str,
        evse_id: int,
        unit: RateUnit | str | None,
        grid_critical: bool | None,
    ) -> None:
        if not self._external_signals():
            raise LocalProtocolError(
                "SmartChargingCtrlr.ExternalControlSignalsEnabled is false: external limits "
                "are not obeyed"
            )
        if isinstance(limit, ChargingSchedule):
            if unit is not None:
                raise LocalProtocolError("a schedule carries its own rate unit")
            self.flow.set_external_limit(
                now, source=source, evse_id=evse_id, schedule=limit, grid_critical=grid_critical
            )
        else:
            self.flow.set_external_limit(
                now,
                source=source,
                evse_id=evse_id,
                limit=limit,
                unit=unit,
                grid_critical=grid_critical,
            )

    def external_limit_cleared(self, now: float, *, source: str, evse_id: int) -> bool:
        return self.flow.clear_external_limit(now, source=source, evse_id=evse_id)

    def _external_signals(self) -> bool:
        if self.station.version == "1.6":
            return True
        return self.station.setting.flag("SmartChargingCtrlr.ExternalControlSignalsEnabled", True)
