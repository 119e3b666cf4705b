"""The version-neutral model and the profile store: conversion from and to every version's
message classes without loss, what a version cannot express, the store's replacement rules
and its JSON snapshot (K01.FR.27), the configuration read from 1.6 keys and 2.x variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import attrs
import pytest
from _smartkit import T0, on, profile
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.smart_charging import (
    CompositePeriod,
    CompositeSchedule,
    InstalledProfile,
    ProfileStore,
    Purpose,
    RateUnit,
    SmartChargingConfig,
    composite_from_message,
    profile_from_message,
    profile_to_message,
)
from ocpp_sansio.smart_charging.model import floor_tenth
from ocpp_sansio.testing.strategies import messages

MODULES = {"1.6": v16, "2.0.1": v201, "2.1": v21}


@settings(deadline=None)
@given(st.data())
def test_property_every_versions_profile_converts_back_unchanged(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(sorted(MODULES)))
    message = data.draw(messages(MODULES[version].ChargingProfile))
    item = profile_from_message(message)
    assert item.origin == version
    assert profile_to_message(item, version) == message


def test_1_6_charge_point_max_profile_is_the_station_maximum() -> None:
    message = v16.ChargingProfile(
        charging_profile_id=3,
        stack_level=0,
        charging_profile_purpose=v16.ChargingProfilePurposeType.CHARGE_POINT_MAX_PROFILE,
        charging_profile_kind=v16.ChargingProfileKindType.ABSOLUTE,
        charging_schedule=v16.ChargingSchedule(
            charging_rate_unit=v16.ChargingRateUnitType.A,
            charging_schedule_period=[v16.ChargingSchedulePeriod(start_period=0, limit=16.0)],
            start_schedule=T0,
        ),
    )
    item = profile_from_message(message)
    assert item.purpose is Purpose.STATION_MAX and item.id == 3
    with pytest.raises(LocalProtocolError, match="needs an id"):
        profile_to_message(item, "2.0.1")  # 2.x schedules have ids, 1.6 ones do not
    numbered = attrs.evolve(item, schedules=[attrs.evolve(item.schedule, id=1)])
    as_2_x = profile_to_message(numbered, "2.0.1")
    assert as_2_x.charging_profile_purpose == "ChargingStationMaxProfile"
    assert profile_to_message(profile_from_message(as_2_x), "1.6") == message  # the id goes


def test_what_a_version_cannot_express_is_a_local_error() -> None:
    external = profile(1, "ChargingStationExternalConstraints", [(0, 10)])
    with pytest.raises(LocalProtocolError):
        profile_to_message(external, "1.6")
    with pytest.raises(LocalProtocolError):
        profile_to_message(profile(1, "TxProfile", [(0, 10)], transaction_id="abc"), "1.6")
    with pytest.raises(LocalProtocolError):
        profile_to_message(profile(1, "TxProfile", [(0, 10)], transaction_id=5), "2.0.1")
    with pytest.raises(LocalProtocolError):
        profile_to_message(profile(1, "TxDefaultProfile", [(0, 10)], schedule_id=None), "2.1")
    with pytest.raises(LocalProtocolError):
        profile(1, "TxDefaultProfile", [(0, 10)], start=datetime(2024, 1, 1))  # naive


def test_extras_stay_with_their_version() -> None:
    message = v201.ChargingProfile(
        id=1,
        stack_level=0,
        charging_profile_purpose=v201.ChargingProfilePurposeEnum.TX_DEFAULT_PROFILE,
        charging_profile_kind=v201.ChargingProfileKindEnum.RELATIVE,
        charging_schedule=[
            v201.ChargingSchedule(
                id=1,
                charging_rate_unit=v201.ChargingRateUnitEnum.A,
                charging_schedule_period=[v201.ChargingSchedulePeriod(start_period=0, limit=6.0)],
            )
        ],
        custom_data=v201.CustomData(vendor_id="acme"),
    )
    item = profile_from_message(message)
    assert profile_to_message(item, "2.0.1").custom_data == v201.CustomData(vendor_id="acme")
    assert profile_to_message(item, "2.1").custom_data is None


def test_composite_schedule_messages_per_version() -> None:
    schedule = CompositeSchedule(
        evse_id=1,
        start=T0,
        duration=600,
        rate_unit=RateUnit.A,
        periods=(
            CompositePeriod(start_period=0, limit=15.94, number_phases=3, min_charging_rate=6.05),
            CompositePeriod(start_period=300, limit=8.0),
        ),
    )
    old = schedule.to_message("1.6")
    assert [p.limit for p in old.charging_schedule_period] == [15.9, 8.0]
    assert old.min_charging_rate == 6.0 and old.start_schedule is None
    new = schedule.to_message("2.0.1")
    assert (new.evse_id, new.schedule_start, new.duration) == (1, T0, 600)
    back = composite_from_message(new, evse_id=0, start=T0)
    assert back.periods[1].limit == 8.0 and back.evse_id == 1
    assert composite_from_message(old, evse_id=1, start=T0).periods[0].limit == 15.9
    assert schedule.cut(300).periods == schedule.periods[:1]
    assert schedule.period_at(T0) == schedule.periods[0]
    with pytest.raises(LocalProtocolError):
        schedule.cut(601)


@given(st.integers(0, 10**7))
def test_property_floor_tenth_never_raises_and_stays_within_a_tenth(hundredths: int) -> None:
    value = hundredths / 100
    floored = floor_tenth(value)
    assert floored <= value + 1e-9 and value - floored < 0.1 + 1e-9
    assert floor_tenth(floored) == floored


# --- the store -------------------------------------------------------------------------------


def test_store_replaces_by_id_and_in_1_6_by_stack_and_purpose_on_the_connector() -> None:
    store = ProfileStore("2.0.1")
    store.install(on(1, profile(1, "TxDefaultProfile", [(0, 6)])))
    replaced = store.install(on(2, profile(1, "TxDefaultProfile", [(0, 7)], stack=2)))
    assert [e.evse_id for e in replaced] == [1] and [e.evse_id for e in store] == [2]
    old = ProfileStore("1.6")
    old.install(on(1, profile(1, "TxDefaultProfile", [(0, 6)])))
    old.install(on(2, profile(2, "TxDefaultProfile", [(0, 6)])))
    old.install(on(1, profile(3, "TxDefaultProfile", [(0, 7)])))
    assert sorted(e.id for e in old) == [2, 3]


def test_store_queries_match_every_criterion() -> None:
    store = ProfileStore("2.1")
    store.install(on(0, profile(1, "ChargingStationMaxProfile", [(0, 30)])))
    store.install(on(1, profile(2, "TxDefaultProfile", [(0, 6)], stack=1)))
    store.install(on(0, profile(-1, "ChargingStationExternalConstraints", [(0, 9)]), source="EMS"))
    assert [e.id for e in store.matching(evse_id=0, sources={"CSO"})] == [1]
    assert [e.id for e in store.matching(purpose="TxDefaultProfile", stack_level=1)] == [2]
    assert [e.id for e in store.matching(profile_ids=[2, 9])] == [2]
    assert store.matching(evse_id=2) == []
    assert [e.id for e in store.drop_transactions({"x"})] == []


@settings(deadline=None)
@given(st.data())
def test_property_snapshot_is_json_and_restores_the_same_store(data: st.DataObject) -> None:
    """K01.FR.27: whatever is installed survives a JSON round trip."""
    version = data.draw(st.sampled_from(sorted(MODULES)))
    store = ProfileStore(version)
    for evse_id in range(data.draw(st.integers(0, 4))):
        item = profile_from_message(data.draw(messages(MODULES[version].ChargingProfile)))
        store.install(
            InstalledProfile(evse_id=evse_id, profile=item, transaction_id=item.transaction_id)
        )
    store.install(on(0, profile(-5, "ChargingStationExternalConstraints", [(0, 9)]), source="SO"))
    text = json.dumps(store.snapshot())
    again = ProfileStore(version)
    again.restore(json.loads(text))
    assert list(again) == list(store)


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"version": "2.0.1"},
        {"version": "1.6", "profiles": []},
        {"version": "2.0.1", "profiles": [{"evse_id": 1}]},
        {"version": "2.0.1", "profiles": [{"evse_id": 1, "source": "CSO", "transaction_id": None,
                                            "encoding": "9", "profile": {}}]},
        {"version": "2.0.1", "profiles": [{"evse_id": 1, "source": "CSO", "transaction_id": None,
                                            "encoding": "2.0.1", "profile": {"id": "x"}}]},
    ],
)  # fmt: skip
def test_restore_refuses_what_is_not_a_snapshot(snapshot: object) -> None:
    store = ProfileStore("2.0.1")
    store.install(on(1, profile(1, "TxDefaultProfile", [(0, 6)])))
    with pytest.raises(LocalProtocolError):
        store.restore(snapshot)
    assert [e.id for e in store] == [1]  # untouched


# --- configuration ----------------------------------------------------------------------------


class Settings(dict[str, str]):
    def setting(self, name: str) -> str | None:
        return self.get(name)


def test_configuration_from_1_6_keys() -> None:
    config = SmartChargingConfig.from_settings(
        Settings(
            ChargeProfileMaxStackLevel="3",
            ChargingScheduleAllowedChargingRateUnit="Current",
            ChargingScheduleMaxPeriods="5",
            MaxChargingProfilesInstalled="7",
            SupportedFeatureProfiles="Core,Reservation",
        ),
        "1.6",
        evses=2,
    )
    assert (config.max_stack_level, config.max_periods, config.max_profiles) == (3, 5, 7)
    assert config.rate_units == {RateUnit.A} and not config.enabled and len(config.evses) == 2


def test_configuration_from_2_x_variables() -> None:
    config = SmartChargingConfig.from_settings(
        Settings(
            {
                "SmartChargingCtrlr.ProfileStackLevel": "2",
                "SmartChargingCtrlr.RateUnit": "A,W",
                "SmartChargingCtrlr.PeriodsPerSchedule": "12",
                "SmartChargingCtrlr.Enabled": "true",
                "SmartChargingCtrlr.LimitChangeSignificance": "2.5",
                "SmartChargingCtrlr.NotifyChargingLimitWithSchedules": "true",
            }
        ),
        "2.0.1",
        max_profiles=40,
    )
    assert (config.max_stack_level, config.max_periods, config.max_profiles) == (2, 12, 40)
    assert config.rate_units == {RateUnit.A, RateUnit.W} and config.enabled
    assert config.limit_change_significance == 2.5 and config.notify_with_schedules


def test_configuration_is_validated_when_built() -> None:
    for bad in ({"evses": {}}, {"rate_units": set()}, {"max_periods": 0}, {"nominal_voltage": 0}):
        with pytest.raises((ValueError, TypeError)):
            SmartChargingConfig(**bad)  # type: ignore[arg-type]
    assert SmartChargingConfig().evse(1).max_current == 32
    assert datetime(2024, 1, 1, tzinfo=UTC) < T0
