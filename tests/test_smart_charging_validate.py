"""The validator, rule by rule (2.x K01, K04.FR.03, K05; 1.6 §3.13, §5.16, §7.8-7.14, §9.4
and the errata): each check named after its requirement, on the station side (with the
running transactions) and the CSMS side (without)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from _smartkit import T0, on, profile
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.smart_charging import (
    EvseLimits,
    ProfileStore,
    SmartChargingConfig,
    check_profile,
    profile_from_message,
    profile_problems,
    profile_to_message,
)
from ocpp_sansio.smart_charging.model import SchedulePeriod
from ocpp_sansio.testing.strategies import messages

CONFIG = SmartChargingConfig(evses=2)
V2 = ("2.0.1", "2.1")
VERSIONS = ("1.6", *V2)


def rule(item: Any, evse_id: int = 1, version: str = "2.0.1", **kw: Any) -> str | None:
    """The rule ``item`` breaks first on the station (None: accepted)."""
    kw.setdefault("transactions", {1: {"tx1"}, 2: set()})
    config = kw.pop("config", CONFIG)
    found = check_profile(item, evse_id, config, version=version, **kw)
    return None if found is None else found.rule


def default(profile_id: int = 1, **kw: Any) -> Any:
    return profile(profile_id, "TxDefaultProfile", [(0, 16)], **kw)


def tx(profile_id: int = 1, transaction_id: Any = "tx1", **kw: Any) -> Any:
    return profile(
        profile_id, "TxProfile", [(0, 16)], kind="Relative", transaction_id=transaction_id, **kw
    )


def test_a_plain_default_profile_is_accepted_everywhere_K01_FR_08() -> None:
    for version in VERSIONS:
        assert rule(default(), 0, version) is None
        assert rule(default(), 1, version) is None


def test_K01_FR_28_unknown_evse() -> None:
    assert rule(default(), 3) == "K01.FR.28"


def test_K01_FR_22_K02_FR_07_csms_may_not_set_external_constraints() -> None:
    item = profile(1, "ChargingStationExternalConstraints", [(0, 16)])
    assert rule(item, 0) == "K01.FR.22"
    assert rule(item, 0, from_csms=False) is None


def test_K04_FR_03_station_maximum_only_on_evse_0_and_1_6_3_13_1() -> None:
    item = profile(1, "ChargingStationMaxProfile", [(0, 16)])
    assert rule(item, 0) is None
    assert rule(item, 1) == "K04.FR.03"
    assert rule(item, 1, "1.6") == "1.6 §3.13.1"


def test_K01_FR_38_station_maximum_not_relative() -> None:
    item = profile(1, "ChargingStationMaxProfile", [(0, 16)], kind="Relative")
    assert rule(item, 0) == "K01.FR.38"


def test_K01_FR_16_tx_profile_only_on_an_evse_and_1_6_3_13_1() -> None:
    assert rule(tx(), 0) == "K01.FR.16"
    assert rule(tx(transaction_id=7), 0, "1.6", transactions={1: {7}}) == "1.6 §3.13.1"


def test_K01_FR_03_tx_profile_names_its_transaction_on_both_sides() -> None:
    assert rule(tx(transaction_id=None)) == "K01.FR.03"
    assert rule(tx(transaction_id=None), transactions=None) == "K01.FR.03"  # the CSMS's check
    assert rule(tx(transaction_id=None), version="1.6", transactions={1: {7}}) is None


def test_K01_FR_09_tx_profile_without_transaction_and_1_6_3_13_1() -> None:
    assert rule(tx(), 2) == "K01.FR.09"
    assert rule(tx(transaction_id=None), 2, "1.6", transactions={}) == "1.6 §3.13.1"


def test_K01_FR_33_unknown_transaction_id() -> None:
    assert rule(tx(transaction_id="other")) == "K01.FR.33"
    assert rule(tx(transaction_id=8), version="1.6", transactions={1: {7}}) == "1.6 §7.8"


def test_K01_FR_04_known_transaction_accepted() -> None:
    assert rule(tx()) is None
    assert rule(tx(transaction_id=7), version="1.6", transactions={1: {7}}) is None


def test_K01_FR_121_dynamic_kind_not_supported() -> None:
    assert rule(default(kind="Dynamic", start=None), version="2.1") == "K01.FR.121"


def test_K01_FR_40_absolute_and_recurring_need_a_start_and_TC_K_19_CS() -> None:
    assert rule(default(start=None)) == "K01.FR.40"
    recurring = default(kind="Recurring", recurrency="Daily", start=None)
    assert rule(recurring) == "K01.FR.40"
    assert rule(default(kind="Recurring", recurrency="Weekly")) is None  # TC_K_19_CS
    assert rule(default(start=None), version="1.6") == "1.6 §7.9"


def test_K01_FR_41_relative_without_start_schedule() -> None:
    item = attrs.evolve(
        default(kind="Relative"),
        schedules=[attrs.evolve(default().schedule, start_schedule=T0)],
    )
    assert rule(item) == "K01.FR.41"


def test_recurrency_kind_goes_with_recurring_only_1_6_errata_3_56() -> None:
    assert rule(default(recurrency="Daily"), version="1.6") == "1.6 §7.8 (errata 3.56)"
    assert rule(default(kind="Recurring"), version="2.1") == "2.x §3.3 ChargingProfileKind"


def test_K01_FR_122_dyn_update_fields_only_for_dynamic() -> None:
    item = attrs.evolve(default(), extras={"dyn_update_interval": 60})
    assert rule(item, version="2.1") == "K01.FR.122"


def test_stack_level_within_the_configured_maximum() -> None:
    config = SmartChargingConfig(evses=2, max_stack_level=3)
    assert rule(default(stack=3), config=config) is None
    assert rule(default(stack=4), config=config) == "SmartChargingCtrlr.ProfileStackLevel"
    assert rule(default(stack=4), config=config, version="1.6") == (
        "1.6 §9.4.1 ChargeProfileMaxStackLevel"
    )


def test_K01_FR_36_K01_FR_37_never_valid_profile() -> None:
    item = default(valid_from=T0, valid_to=T0)
    assert rule(item) == "K01.FR.36/37"


def test_K01_FR_34_one_schedule_unless_iso_15118_tx_profile() -> None:
    two = attrs.evolve(default(), schedules=[default().schedule, default().schedule])
    assert rule(two) == "K01.FR.34"
    tx_two = attrs.evolve(tx(), schedules=[tx().schedule, tx().schedule])
    assert rule(tx_two) is None


def test_K01_FR_26_rate_unit_must_be_configured_and_TC_K_12_CS() -> None:
    config = SmartChargingConfig(evses=2, rate_units={"A"})
    assert rule(default(unit="W"), config=config) == "K01.FR.26"
    assert rule(default(unit="W"), config=config, version="1.6") == "1.6 §9.4.2"


def test_periods_per_schedule_limit() -> None:
    config = SmartChargingConfig(evses=2, max_periods=2)
    item = profile(1, "TxDefaultProfile", [(0, 6), (10, 7), (20, 8)])
    assert rule(item, config=config) == "SmartChargingCtrlr.PeriodsPerSchedule"
    assert rule(item, config=config, version="1.6") == "1.6 §9.4.3 ChargingScheduleMaxPeriods"


def test_K01_FR_31_first_period_starts_at_0_and_1_6_errata_3_45() -> None:
    item = profile(1, "TxDefaultProfile", [(10, 6)])
    assert rule(item) == "K01.FR.31"
    assert rule(item, version="1.6") == "1.6 §7.13 (errata 3.45)"


def test_K01_FR_35_periods_in_increasing_order() -> None:
    item = profile(1, "TxDefaultProfile", [(0, 6), (20, 7), (20, 8)])
    assert rule(item) == "K01.FR.35"


def test_negative_values_refused() -> None:
    assert rule(profile(1, "TxDefaultProfile", [(0, -1)])) == "K01.FR.51"
    assert rule(default(duration=-5)) == "K01.FR.11"
    assert rule(default(min_rate=-1)) == "K01.FR.21"


def test_K01_FR_123_local_time_needs_a_configured_zone() -> None:
    item = default(use_local_time=True)
    assert rule(item, version="2.1") == "K01.FR.123"
    config = SmartChargingConfig(evses=2, local_time=ZoneInfo("Europe/Berlin"))
    assert rule(item, version="2.1", config=config) is None


def test_K01_FR_95_K01_FR_92_randomized_delay() -> None:
    item = profile(1, "ChargingStationMaxProfile", [(0, 16)], randomized_delay=60)
    assert rule(item, 0, version="2.1") == "K01.FR.95"
    assert rule(default(randomized_delay=60), version="2.1") == "K01.FR.92"


def test_v2x_period_fields_refused() -> None:
    item = default()
    period = attrs.evolve(item.schedule.periods[0], extras={"setpoint": 10.0})
    item = attrs.evolve(item, schedules=[attrs.evolve(item.schedule, periods=[period])])
    assert rule(item, version="2.1") == "2.1 §3.4"


def with_phases(item: Any, phases: int | None, to_use: int | None = None) -> Any:
    period = SchedulePeriod(start_period=0, limit=16, number_phases=phases, phase_to_use=to_use)
    return attrs.evolve(item, schedules=[attrs.evolve(item.schedule, periods=[period])])


def test_K01_FR_19_phase_to_use_only_with_one_phase() -> None:
    switching = SmartChargingConfig(evses={1: EvseLimits(phase_switching=True)})
    assert rule(with_phases(default(), 3, 2), config=switching) == "K01.FR.19"
    assert rule(with_phases(default(), 1, 2), config=switching) is None


def test_K01_FR_20_K01_FR_48_phase_to_use_needs_phase_switching() -> None:
    assert rule(with_phases(default(), 1, 2)) == "K01.FR.48"
    assert rule(with_phases(default(), 1, 2), transactions=None) == "K01.FR.48"  # CSMS side


def test_K01_FR_43_fewer_phases_than_the_evse_can_keep_to() -> None:
    fixed = SmartChargingConfig(evses={1: EvseLimits(reduces_phases=False)})
    assert rule(with_phases(default(), 1), config=fixed) == "K01.FR.43"
    assert rule(with_phases(default(), 3), config=fixed) is None
    assert rule(with_phases(default(), 1)) is None


def test_K01_FR_44_phases_for_a_dc_evse() -> None:
    dc = SmartChargingConfig(evses={1: EvseLimits(max_current=None, max_power=50000, phases=0)})
    item = with_phases(default(), 3)
    assert rule(item, config=dc, version="2.0.1") is None  # MAY accept and ignore
    assert rule(item, config=dc, version="2.1") == "K01.FR.44"


def test_K01_FR_45_more_phases_than_the_evse_has_is_accepted() -> None:
    single = SmartChargingConfig(evses={1: EvseLimits(phases=1)})
    assert rule(with_phases(default(), 3), config=single) is None


def test_K01_FR_81_ids_reserved_for_external_constraints() -> None:
    config = SmartChargingConfig(evses=2, max_external_constraints_id=100)
    assert rule(default(100), config=config, version="2.1") == "K01.FR.81"
    assert rule(default(101), config=config, version="2.1") is None


def test_K01_FR_120_additional_purposes_not_supported() -> None:
    item = profile(1, "PriorityCharging", [(0, 16)], kind="Relative")
    assert rule(item, version="2.1") == "K01.FR.120"


def test_K01_FR_05_external_constraints_cannot_be_replaced_by_the_csms() -> None:
    external = on(0, profile(1, "ChargingStationExternalConstraints", [(0, 10)]), source="EMS")
    assert rule(default(1), installed=[external]) == "K01.FR.05"
    assert rule(default(1), installed=[on(1, default(1, stack=3))]) is None  # same id replaces


def test_K01_FR_06_no_second_profile_with_stack_purpose_and_evse_at_the_same_time() -> None:
    installed = [on(1, default(1))]
    assert rule(default(2), installed=installed) == "K01.FR.06"
    assert rule(default(2), installed=installed, transactions=None) == "K01.FR.06"
    assert rule(default(2, stack=1), installed=installed) is None
    assert rule(default(2), 2, installed=installed) is None
    later = default(2, valid_from=T0 + timedelta(days=1))
    earlier = [on(1, default(1, valid_to=T0 + timedelta(days=1)))]
    assert rule(later, installed=earlier) is None  # validity periods do not overlap


def test_K01_FR_39_no_second_tx_profile_with_stack_and_transaction() -> None:
    installed = [on(1, tx(1), transaction_id="tx1")]
    assert rule(tx(2), installed=installed) == "K01.FR.39"
    assert rule(tx(2, stack=1), installed=installed) is None


def test_K01_FR_52_K01_FR_53_tx_default_on_evse_0_and_on_an_evse_with_one_stack_level() -> None:
    assert rule(default(2), 0, installed=[on(1, default(1))]) == "K01.FR.52"
    assert rule(default(2), 1, installed=[on(0, default(1))]) == "K01.FR.53"
    assert rule(default(1), 0, installed=[on(1, default(1))]) is None  # same id: replacement


def test_1_6_3_13_2_same_stack_level_and_purpose_is_not_refused_but_replaced() -> None:
    installed = [on(1, default(1))]
    assert rule(default(2), version="1.6", installed=installed) is None
    store = ProfileStore("1.6", installed)
    assert [e.id for e in store.replaced_by(on(1, default(2)))] == [1]
    assert store.replaced_by(on(2, default(2))) == []


def test_max_profiles_installed() -> None:
    config = SmartChargingConfig(evses=2, max_profiles=2)
    installed = [on(1, default(1)), on(1, default(2, stack=1))]
    assert rule(default(3, stack=2), config=config, installed=installed) == (
        "Entries[ChargingProfiles]"
    )
    assert rule(default(3, stack=2), config=config, installed=installed, version="1.6") == (
        "1.6 §9.4.5 MaxChargingProfilesInstalled"
    )
    assert rule(default(2, stack=2), config=config, installed=installed) is None  # replaces


def test_phase_to_use_must_agree_with_a_station_wide_limit_errata_2_36() -> None:
    switching = SmartChargingConfig(evses={1: EvseLimits(phase_switching=True)})
    station = on(0, with_phases(profile(1, "ChargingStationMaxProfile", [(0, 16)]), 1, 1))
    assert rule(with_phases(default(2), 1, 3), config=switching, installed=[station]) == (
        "2.x §3.7 phaseToUse"
    )
    assert rule(with_phases(default(2), 1, 1), config=switching, installed=[station]) is None


def test_K05_FR_02_remote_start_profile_is_a_tx_profile_without_transaction() -> None:
    assert rule(default(), remote_start=True) == "K05.FR.02"
    assert rule(tx(), remote_start=True) == "F01.FR.11"
    assert rule(tx(transaction_id=None), remote_start=True) is None
    assert rule(default(), remote_start=True, version="1.6") == "1.6 §5.16.2"


def test_profile_problems_lists_every_rule_broken() -> None:
    item = profile(1, "ChargingStationMaxProfile", [(5, -1)], kind="Relative", unit="W")
    config = SmartChargingConfig(evses=2, rate_units={"A"})
    rules = [p.rule for p in profile_problems(item, 1, config, version="2.0.1")]
    assert rules == ["K04.FR.03", "K01.FR.38", "K01.FR.26", "K01.FR.31", "K01.FR.51"]


@settings(deadline=None)
@given(st.data())
def test_property_any_schema_valid_profile_gets_an_answer_never_a_crash(
    data: st.DataObject,
) -> None:
    """Whatever a CSMS sends that passes the schema, the validator answers with a rule or
    accepts it, and an accepted one converts back unchanged."""
    version = data.draw(st.sampled_from(VERSIONS))
    module = {"1.6": v16, "2.0.1": v201, "2.1": v21}[version]
    message = data.draw(messages(module.ChargingProfile))
    item = profile_from_message(message)
    evse_id = data.draw(st.integers(0, 3))
    found = check_profile(item, evse_id, CONFIG, version=version, transactions={1: {"tx1", 7}})
    if found is None:
        assert profile_to_message(item, version) == message
    else:
        assert found.rule and found.reason_code and len(found.reason_code) <= 20


@pytest.mark.parametrize("version", VERSIONS)
def test_every_reason_code_fits_status_info(version: str) -> None:
    item = profile(1, "ChargingStationMaxProfile", [(5, -1)], kind="Relative", unit="W")
    for problem in profile_problems(
        item, 1, SmartChargingConfig(rate_units={"A"}), version=version
    ):
        assert len(problem.reason_code) <= 20
