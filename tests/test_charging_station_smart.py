"""Smart charging inside the ChargingStation facade (issue 14): the OCTT 2.0.1 K cases whose
stimulus comes from the CSMS, their 1.6 equivalents, the composite-schedule members, the
limit the hardware is told (in virtual time), external limits, remote starts with a
profile, and the profiles across a reboot. The station is the facade in memory against a
CSMS core; its hardware records every ``set_limit``."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from _smartkit import profile
from _stationkit import Rig, wall

from ocpp_sansio.charging_station import ChargingLimit
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import CallErrorReceived
from ocpp_sansio.flows._base import build
from ocpp_sansio.smart_charging import (
    ChargingProfile,
    ChargingSchedule,
    EvseLimits,
    SchedulePeriod,
    SmartChargingConfig,
    profile_to_message,
)

V2 = ("2.0.1", "2.1")
ALL = ("1.6", "2.0.1", "2.1")
#: The facade's default hardware: 22 kW on three phases at 230 V.
HARDWARE_A = 31.8


def send_profile(rig: Rig, evse_id: int, item: ChargingProfile) -> Any:
    """SetChargingProfile from the CSMS: the answer's status, or the CALLERROR code."""
    message = profile_to_message(item, rig.version)
    if rig.version == "1.6":
        answer = rig.request(
            "SetChargingProfile", connector_id=evse_id, cs_charging_profiles=message
        )
    else:
        answer = rig.request("SetChargingProfile", evse_id=evse_id, charging_profile=message)
    if isinstance(answer, CallErrorReceived):
        return answer.error_code
    return str(answer.status)


def composite(rig: Rig, evse_id: int, duration: int, unit: str | None = None) -> Any:
    field = "connector_id" if rig.version == "1.6" else "evse_id"
    return rig.request(
        "GetCompositeSchedule", duration=duration, charging_rate_unit=unit, **{field: evse_id}
    )


def periods(answer: Any) -> list[tuple[int, float]]:
    schedule = answer.charging_schedule if hasattr(answer, "charging_schedule") else None
    if schedule is None:
        schedule = answer.schedule
    return [(p.start_period, p.limit) for p in schedule.charging_schedule_period]


def limits(rig: Rig, evse_id: int) -> list[tuple[float | None, float]]:
    """(amps, core time) of every limit the hardware was told for ``evse_id``."""
    return [(lim.amps, when) for e, lim, when in rig.hardware.called("set_limit") if e == evse_id]


def default(profile_id: int, limit: float, **kw: Any) -> ChargingProfile:
    kw.setdefault("kind", "Relative")
    return profile(profile_id, "TxDefaultProfile", [(0, limit)], **kw)


def tx_profile(rig: Rig, profile_id: int, limit: float, evse_id: int = 1) -> ChargingProfile:
    transaction_id = None
    if rig.version != "1.6":
        transaction_id = rig.station.get_evse_transaction_id(evse_id)
    return profile(
        profile_id, "TxProfile", [(0, limit)], kind="Relative", transaction_id=transaction_id
    )


def set_var(rig: Rig, component: str, name: str, value: str) -> str:
    m = rig.m
    answer = rig.request(
        "SetVariables",
        set_variable_data=[
            m.SetVariableData(
                attribute_value=value,
                component=m.Component(name=component),
                variable=m.Variable(name=name),
            )
        ],
    )
    return str(answer.set_variable_result[0].attribute_status)


# --- limits reach the hardware


@pytest.mark.parametrize("version", ALL)
def test_K06_FR_02_every_evse_is_told_its_hardware_limit_at_power_up(version: str) -> None:
    rig = Rig(version, evses=2)
    assert limits(rig, 0)[-1][0] == pytest.approx(2 * HARDWARE_A)
    for evse_id in (1, 2):
        (amps, _), *_ = limits(rig, evse_id)
        assert amps == HARDWARE_A
    told = rig.hardware.called("set_limit")[-1][1]
    assert isinstance(told, ChargingLimit) and told.watts is not None


@pytest.mark.parametrize("version", ALL)
def test_K01_FR_07_the_limit_the_hardware_is_told_follows_the_schedule_in_time(
    version: str,
) -> None:
    rig = Rig(version)
    t0 = rig.now
    steps = profile(
        1,
        "TxDefaultProfile",
        [(0, 16.0), (60, 10.0), (120, 6.0)],
        start=wall(t0).replace(microsecond=0),
        duration=180,
    )
    assert send_profile(rig, 1, steps) == "Accepted"
    first = rig.hardware.called("set_limit")[-1]
    assert first[0] == 1 and first[1].amps == 16.0
    assert first[1].next_change_at == pytest.approx(t0 - wall(t0).microsecond / 1e6 + 60)
    rig.pair.advance(200)
    told = limits(rig, 1)
    assert [a for a, _ in told][-4:] == [16.0, 10.0, 6.0, HARDWARE_A]
    times = [when for _, when in told][-3:]
    start = t0 - wall(t0).microsecond / 1e6
    assert times == pytest.approx([start + 60, start + 120, start + 180])


@pytest.mark.parametrize("version", ALL)
def test_K02_limits_follow_the_transaction_start_and_end(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    assert send_profile(rig, 1, tx_profile(rig, 5, 8.0)) == "Accepted"
    assert limits(rig, 1)[-1][0] == 8.0
    rig.station.on_transaction_finished(1, rig.now)
    rig.pair.advance(0.1)
    assert limits(rig, 1)[-1][0] == HARDWARE_A  # K02.FR.05: the TxProfile went with it


@pytest.mark.parametrize("version", V2)
def test_K11_FR_04_a_significant_change_during_a_transaction_is_ChargingRateChanged(
    version: str,
) -> None:
    rig = Rig(version)
    rig.charge()
    assert set_var(rig, "SmartChargingCtrlr", "LimitChangeSignificance", "20") == "Accepted"
    assert send_profile(rig, 1, tx_profile(rig, 5, 30.0)) == "Accepted"  # 31.8 -> 30: 6 %
    assert send_profile(rig, 1, tx_profile(rig, 5, 10.0)) == "Accepted"  # 30 -> 10: 67 %
    triggers = [e["triggerReason"] for e in rig.tx_events()]
    assert triggers.count("ChargingRateChanged") == 1


@pytest.mark.parametrize("version", ALL)
def test_K06_FR_01_K07_FR_01_profiles_keep_working_offline(version: str) -> None:
    rig = Rig(version, evses=2)
    rig.charge(1)
    assert send_profile(rig, 1, tx_profile(rig, 5, 8.0)) == "Accepted"
    assert send_profile(rig, 0, default(6, 12.0)) == "Accepted"
    rig.pair.disconnect()
    rig.pair.advance(30)
    assert rig.station.get_composite_schedule(1, 60, "A", rig.now).periods[0].limit == 8.0
    token = rig.token("OFFLINE") if version != "1.6" else "OFFLINE"
    rig.station.on_transaction_started(2, 1, rig.now, id_token=token)  # started offline
    rig.pair.advance(1)
    assert rig.station.get_composite_schedule(2, 60, "A", rig.now).periods[0].limit == 12.0
    assert limits(rig, 2)[-1][0] == 12.0


# --- SetChargingProfile (K01; 1.6 §5.16)


@pytest.mark.parametrize("version", V2)
def test_TC_K_01_CS_tx_default_profile_on_one_evse(version: str) -> None:
    rig = Rig(version, evses=2)
    assert send_profile(rig, 1, default(10, 6.0)) == "Accepted"
    assert periods(composite(rig, 1, 300)) == [(0, 6.0)]
    assert periods(composite(rig, 2, 300)) == [(0, HARDWARE_A)]


@pytest.mark.parametrize("version", ALL)
def test_TC_K_02_CS_tx_profile_without_a_transaction_is_rejected(version: str) -> None:
    rig = Rig(version)
    item = profile(
        5,
        "TxProfile",
        [(0, 8.0)],
        kind="Relative",
        transaction_id=None if version == "1.6" else "no-such",
    )
    assert send_profile(rig, 1, item) == "Rejected"


@pytest.mark.parametrize("version", ALL)
def test_TC_K_03_CS_station_max_profile_caps_every_evse(version: str) -> None:
    rig = Rig(version, evses=2)
    purpose = "ChargePointMaxProfile" if version == "1.6" else "ChargingStationMaxProfile"
    cap = profile(1, purpose, [(0, 40.0)], start=wall(rig.now))
    assert send_profile(rig, 0, cap) == "Accepted"
    assert periods(composite(rig, 0, 300))[0][1] == 40.0
    assert limits(rig, 0)[-1][0] == 40.0


@pytest.mark.parametrize("version", V2)
def test_TC_K_10_CS_tx_default_profile_on_evse_0_applies_to_every_evse(version: str) -> None:
    rig = Rig(version, evses=2)
    assert send_profile(rig, 0, default(11, 12.0)) == "Accepted"
    assert periods(composite(rig, 1, 60)) == [(0, 12.0)]
    assert periods(composite(rig, 2, 60)) == [(0, 12.0)]
    assert limits(rig, 1)[-1][0] == limits(rig, 2)[-1][0] == 12.0


@pytest.mark.parametrize("version", ALL)
def test_TC_K_12_CS_a_rate_unit_the_station_does_not_allow_is_rejected(version: str) -> None:
    amps_only = SmartChargingConfig(evses={1: EvseLimits(max_current=32)}, rate_units={"A"})
    rig = Rig(version, smart_charging=amps_only)
    assert send_profile(rig, 1, default(1, 7000.0, unit="W")) == "Rejected"
    assert send_profile(rig, 1, default(1, 16.0)) == "Accepted"


@pytest.mark.parametrize("version", ALL)
def test_TC_K_13_CS_profiles_survive_a_reboot(version: str) -> None:
    rig = Rig(version)
    assert send_profile(rig, 1, default(3, 9.0)) == "Accepted"
    assert rig.store.load("charging_profiles") is not None
    rig.reboot()
    assert periods(composite(rig, 1, 60)) == [(0, 9.0)]
    assert limits(rig, 1)[-1][0] == 9.0  # told again by the new life


@pytest.mark.parametrize("version", V2)
def test_TC_K_14_CS_unknown_evse_is_rejected(version: str) -> None:
    rig = Rig(version)
    assert send_profile(rig, 7, default(3, 9.0)) == "Rejected"


def test_TC_K_14_CS_1_6_unknown_connector_is_a_property_constraint_violation() -> None:
    rig = Rig("1.6")
    assert send_profile(rig, 7, default(3, 9.0)) == "PropertyConstraintViolation"


@pytest.mark.parametrize("version", V2)
def test_TC_K_15_CS_smart_charging_disabled_answers_NotSupported(version: str) -> None:
    rig = Rig(version)
    assert set_var(rig, "SmartChargingCtrlr", "Enabled", "false") == "Accepted"
    assert send_profile(rig, 1, default(3, 9.0)) == "NotSupported"


def test_TC_K_15_CS_1_6_without_the_smart_charging_profile_answers_NotSupported() -> None:
    rig = Rig("1.6", smart_charging=SmartChargingConfig(evses=1, enabled=False))
    assert "SmartCharging" not in (rig.station.settings.setting("SupportedFeatureProfiles") or "")
    assert send_profile(rig, 1, default(3, 9.0)) == "NotSupported"


@pytest.mark.parametrize("version", ALL)
def test_TC_K_60_CS_tx_profile_for_the_running_transaction(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    assert send_profile(rig, 1, tx_profile(rig, 5, 8.0)) == "Accepted"
    assert periods(composite(rig, 1, 60)) == [(0, 8.0)]


@pytest.mark.parametrize("version", ALL)
def test_TC_K_28_CS_a_new_default_applies_to_the_running_transaction(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    assert send_profile(rig, 1, default(3, 9.0)) == "Accepted"
    assert limits(rig, 1)[-1][0] == 9.0


@pytest.mark.parametrize("version", V2)
def test_TC_P_04_CS_a_charging_profile_with_custom_data_is_accepted(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    message = attrs.evolve(
        profile_to_message(default(12, 9.0), version),
        custom_data=m.CustomData(vendor_id="org.example"),
    )
    answer = rig.request("SetChargingProfile", evse_id=1, charging_profile=message)
    assert str(answer.status) == "Accepted"
    assert limits(rig, 1)[-1][0] == 9.0


# --- ClearChargingProfile (K10)


@pytest.mark.parametrize("version", ALL)
def test_TC_K_05_CS_clear_by_id_and_the_hardware_limit_comes_back(version: str) -> None:
    rig = Rig(version)
    assert send_profile(rig, 1, default(3, 9.0)) == "Accepted"
    field = "id" if version == "1.6" else "charging_profile_id"
    assert str(rig.request("ClearChargingProfile", **{field: 3}).status) == "Accepted"
    assert limits(rig, 1)[-1][0] == HARDWARE_A
    assert rig.store.load("charging_profiles") is None


@pytest.mark.parametrize("version", V2)
def test_TC_K_08_CS_clear_without_profiles_is_Unknown(version: str) -> None:
    rig = Rig(version)
    answer = rig.request("ClearChargingProfile", charging_profile_id=99)
    assert str(answer.status) == "Unknown"


# --- GetChargingProfiles (K09)


@pytest.mark.parametrize("version", V2)
def test_TC_K_29_CS_get_profiles_of_evse_0(version: str) -> None:
    rig = Rig(version, evses=2)
    assert send_profile(rig, 0, default(1, 12.0)) == "Accepted"
    assert send_profile(rig, 1, default(2, 9.0, stack=1)) == "Accepted"  # K01.FR.52
    criterion = build(rig.m.ChargingProfileCriterion, charging_profile_purpose="TxDefaultProfile")
    answer = rig.request("GetChargingProfiles", request_id=4, evse_id=0, charging_profile=criterion)
    assert str(answer.status) == "Accepted"
    (report,) = rig.sent("ReportChargingProfiles")
    assert report["evseId"] == 0 and [p["id"] for p in report["chargingProfile"]] == [1]


def get_profiles(rig: Rig, request_id: int, evse_id: int | None = None, **criteria: Any) -> Any:
    """GetChargingProfiles: the answer's status and the profile ids reported."""
    criterion = build(rig.m.ChargingProfileCriterion, **criteria)
    answer = rig.request(
        "GetChargingProfiles", request_id=request_id, evse_id=evse_id, charging_profile=criterion
    )
    reported = [
        p["id"]
        for r in rig.sent("ReportChargingProfiles")
        if r["requestId"] == request_id
        for p in r["chargingProfile"]
    ]
    return str(answer.status), sorted(reported)


@pytest.mark.parametrize("version", V2)
def test_TC_K_06_CS_clear_by_stack_level_and_purpose(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    assert send_profile(rig, 1, default(4, 9.0, stack=2)) == "Accepted"
    criteria = build(
        rig.m.ClearChargingProfile, charging_profile_purpose="TxDefaultProfile", stack_level=2
    )
    answer = rig.request("ClearChargingProfile", charging_profile_criteria=criteria)
    assert str(answer.status) == "Accepted"  # K10.FR.04
    status, _ = get_profiles(rig, 5, charging_profile_purpose="TxDefaultProfile", stack_level=2)
    assert status == "NoProfiles"


@pytest.mark.parametrize("version", V2)
def test_TC_K_32_K_35_K_36_CS_get_profiles_by_id_purpose_and_stack_level(version: str) -> None:
    rig = Rig(version, evses=2)
    assert send_profile(rig, 1, default(1, 9.0, stack=1)) == "Accepted"
    assert send_profile(rig, 1, default(2, 8.0, stack=2)) == "Accepted"
    assert send_profile(rig, 2, default(3, 7.0, stack=1)) == "Accepted"
    assert get_profiles(rig, 11, charging_profile_id=[2]) == ("Accepted", [2])  # TC_K_32
    status, ids = get_profiles(rig, 12, 1, charging_profile_purpose="TxDefaultProfile")
    assert (status, ids) == ("Accepted", [1, 2])  # TC_K_35, K09.FR.04
    status, ids = get_profiles(
        rig, 13, 1, charging_profile_purpose="TxDefaultProfile", stack_level=1
    )
    assert (status, ids) == ("Accepted", [1])  # TC_K_36


@pytest.mark.parametrize("version", ALL)
def test_TC_K_19_CS_a_recurring_daily_profile(version: str) -> None:
    rig = Rig(version)
    start = wall(rig.now).replace(microsecond=0)
    daily = profile(
        6,
        "TxDefaultProfile",
        [(0, 8.0)],
        kind="Recurring",
        recurrency="Daily",
        start=start,
        duration=3600,
    )
    assert send_profile(rig, 1, daily) == "Accepted"
    assert limits(rig, 1)[-1][0] == 8.0
    rig.pair.advance(3600)
    assert limits(rig, 1)[-1][0] == HARDWARE_A
    rig.pair.advance(86400 - 3600)
    assert limits(rig, 1)[-1][0] == 8.0  # the next day, at the same time (K01.FR.40)


@pytest.mark.parametrize("version", V2)
def test_TC_K_21_CS_a_profile_counts_from_validFrom(version: str) -> None:
    rig = Rig(version)
    later = default(7, 6.0, valid_from=wall(rig.now + 300).replace(microsecond=0))
    assert send_profile(rig, 1, later) == "Accepted"
    first, second = periods(composite(rig, 1, 400))
    assert first[1] == HARDWARE_A and second[1] == 6.0
    assert 299 <= second[0] <= 300  # K01.FR.36


@pytest.mark.parametrize("version", V2)
def test_TC_K_22_CS_a_profile_stops_counting_at_validTo(version: str) -> None:
    rig = Rig(version, evses=2)
    start = wall(rig.now).replace(microsecond=0)
    until = profile(8, "TxDefaultProfile", [(0, 6.0)], start=start, valid_to=wall(rig.now + 300))
    assert send_profile(rig, 0, until) == "Accepted"
    for evse_id in (1, 2):
        first, second = periods(composite(rig, evse_id, 400))
        assert first[1] == 6.0 and second[1] == HARDWARE_A  # K01.FR.37
        assert 299 <= second[0] <= 300


@pytest.mark.parametrize("version", V2)
def test_TC_K_23_CS_an_absolute_profile_counts_from_its_startSchedule(version: str) -> None:
    rig = Rig(version)
    start = wall(rig.now + 100).replace(microsecond=0)
    assert send_profile(rig, 1, profile(9, "TxDefaultProfile", [(0, 6.0)], start=start)) == (
        "Accepted"
    )
    first, second = periods(composite(rig, 1, 300))
    assert first[1] == HARDWARE_A and second[1] == 6.0
    assert 99 <= second[0] <= 100  # K01.FR.30


# --- GetCompositeSchedule (K08; 1.6 §5.7)


@pytest.mark.parametrize("version", ALL)
def test_TC_K_39_CS_composite_without_profiles_is_the_hardware_limit(version: str) -> None:
    rig = Rig(version)
    answer = composite(rig, 1, 300, "A")
    assert str(answer.status) == "Accepted"
    assert periods(answer) == [(0, HARDWARE_A)]


@pytest.mark.parametrize("version", ALL)
def test_TC_K_40_CS_stacking_the_higher_stack_level_leads(version: str) -> None:
    rig = Rig(version)
    start = wall(rig.now).replace(microsecond=0)
    low = profile(1, "TxDefaultProfile", [(0, 10.0)], start=start, stack=0)
    high = profile(2, "TxDefaultProfile", [(0, 6.0)], start=start, stack=1, duration=120)
    assert send_profile(rig, 1, low) == "Accepted"
    assert send_profile(rig, 1, high) == "Accepted"
    answer = composite(rig, 1, 300)
    offset = round(rig.now - (rig.now - wall(rig.now).microsecond / 1e6))
    assert periods(answer) == [(0, 6.0), (120 - offset, 10.0)]


@pytest.mark.parametrize("version", ALL)
def test_TC_K_41_CS_combining_purposes_gives_the_lowest(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    purpose = "ChargePointMaxProfile" if version == "1.6" else "ChargingStationMaxProfile"
    assert send_profile(rig, 0, profile(1, purpose, [(0, 20.0)], start=wall(rig.now))) == (
        "Accepted"
    )
    assert send_profile(rig, 1, default(2, 16.0)) == "Accepted"
    assert send_profile(rig, 1, tx_profile(rig, 3, 12.0)) == "Accepted"
    assert periods(composite(rig, 1, 60)) == [(0, 12.0)]
    assert send_profile(rig, 1, tx_profile(rig, 3, 25.0)) == "Accepted"
    assert periods(composite(rig, 1, 60)) == [(0, 20.0)]


@pytest.mark.parametrize("version", ALL)
def test_TC_K_42_CS_a_unit_the_station_does_not_allow_is_rejected(version: str) -> None:
    rig = Rig(version, smart_charging=SmartChargingConfig(evses=1, rate_units={"A"}))
    assert str(composite(rig, 1, 60, "W").status) == "Rejected"


@pytest.mark.parametrize("version", ALL)
def test_TC_K_47_CS_unknown_evse_is_rejected(version: str) -> None:
    rig = Rig(version)
    assert str(composite(rig, 9, 60).status) == "Rejected"


@pytest.mark.parametrize("version", ALL)
def test_K08_the_facade_members_give_the_composite_schedules(version: str) -> None:
    rig = Rig(version, evses=2)
    assert send_profile(rig, 2, default(3, 9.0)) == "Accepted"
    one = rig.station.get_composite_schedule(2, 600, "W", rig.now)
    assert one.evse_id == 2 and one.rate_unit.value == "W"
    assert [p.limit for p in one.periods] == [9.0 * 230 * 3]
    every = rig.station.get_all_composite_schedules(600, None, rig.now)
    assert sorted(every) == [0, 1, 2]
    assert every[2].periods[0].limit == 9.0
    with pytest.raises(LocalProtocolError):
        rig.station.get_composite_schedule(5, 600, None, rig.now)


# --- remote start with a profile (K05)


@pytest.mark.parametrize("version", V2)
def test_TC_K_37_CS_remote_start_with_a_charging_profile(version: str) -> None:
    rig = Rig(version)
    item = profile(7, "TxProfile", [(0, 6.0)], kind="Relative")
    answer = rig.request(
        "RequestStartTransaction",
        id_token=rig.token(),
        remote_start_id=3,
        evse_id=1,
        charging_profile=profile_to_message(item, version),
    )
    assert str(answer.status) == "Accepted"
    rig.plug()
    assert rig.station.get_evse_transaction_id(1) is not None
    assert periods(composite(rig, 1, 60)) == [(0, 6.0)]
    assert limits(rig, 1)[-1][0] == 6.0


def test_K05_1_6_remote_start_with_a_charging_profile() -> None:
    rig = Rig("1.6")
    item = profile(7, "TxProfile", [(0, 6.0)], kind="Relative")
    answer = rig.request(
        "RemoteStartTransaction",
        id_tag="TOKEN1",
        connector_id=1,
        charging_profile=profile_to_message(item, "1.6"),
    )
    assert str(answer.status) == "Accepted"
    rig.plug()
    assert periods(composite(rig, 1, 60)) == [(0, 6.0)]


@pytest.mark.parametrize("version", V2)
def test_TC_K_38_CS_without_smart_charging_the_start_profile_is_ignored(version: str) -> None:
    rig = Rig(version)
    assert set_var(rig, "SmartChargingCtrlr", "Enabled", "false") == "Accepted"
    item = profile(7, "TxProfile", [(0, 6.0)], kind="Relative")
    answer = rig.request(
        "RequestStartTransaction",
        id_token=rig.token(),
        remote_start_id=3,
        evse_id=1,
        charging_profile=profile_to_message(item, version),
    )
    assert str(answer.status) == "Accepted"  # K05.FR.04
    rig.plug()
    assert rig.station.get_evse_transaction_id(1) is not None
    assert limits(rig, 1)[-1][0] == HARDWARE_A


# --- external limits (K11-K13)


@pytest.mark.parametrize("version", V2)
def test_TC_K_52_CS_external_limit_notified_and_reported_as_external_constraints(
    version: str,
) -> None:
    rig = Rig(version)
    rig.station.on_external_limits_changed(20.0, rig.now, source="EMS", evse_id=1)
    rig.pair.advance(0.1)
    (notified,) = rig.sent("NotifyChargingLimit")
    assert notified["chargingLimit"]["chargingLimitSource"] == "EMS"  # K11.FR.05: never CSO
    assert limits(rig, 1)[-1][0] == 20.0
    criterion = build(rig.m.ChargingProfileCriterion, charging_limit_source=["EMS"])
    rig.request("GetChargingProfiles", request_id=9, charging_profile=criterion)
    (report,) = rig.sent("ReportChargingProfiles")
    purposes = [p["chargingProfilePurpose"] for p in report["chargingProfile"]]
    assert purposes == ["ChargingStationExternalConstraints"]  # K12.FR.05


@pytest.mark.parametrize("version", V2)
def test_K13_FR_01_K13_FR_02_K13_FR_03_released_external_limit(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    rig.station.on_external_limits_changed(10.0, rig.now, source="SO", evse_id=1)
    rig.pair.advance(0.1)
    assert rig.station.on_external_limits_cleared(rig.now, source="SO", evse_id=1)
    rig.pair.advance(0.1)
    assert rig.sent("ClearedChargingLimit")[0]["chargingLimitSource"] == "SO"
    assert limits(rig, 1)[-1][0] == HARDWARE_A
    triggers = [e["triggerReason"] for e in rig.tx_events()]
    assert triggers.count("ChargingRateChanged") == 2  # K11.FR.04 on, K13.FR.03 off
    assert not rig.station.on_external_limits_cleared(rig.now, source="SO", evse_id=1)


def test_K11_1_6_an_external_limit_only_counts() -> None:
    rig = Rig("1.6")
    schedule = ChargingSchedule(
        id=1, rate_unit="A", periods=(SchedulePeriod(start_period=0, limit=11.0),)
    )
    rig.station.on_external_limits_changed(schedule, rig.now, source="EMS")
    rig.pair.advance(0.1)
    assert limits(rig, 0)[-1][0] == 11.0
    assert rig.sent("NotifyChargingLimit") == []


@pytest.mark.parametrize("version", V2)
def test_K11_external_limits_need_ExternalControlSignalsEnabled(version: str) -> None:
    rig = Rig(version)
    assert set_var(rig, "SmartChargingCtrlr", "ExternalControlSignalsEnabled", "false") == (
        "Accepted"
    )
    with pytest.raises(LocalProtocolError, match="ExternalControlSignalsEnabled"):
        rig.station.on_external_limits_changed(10.0, rig.now, source="EMS")
    with pytest.raises(LocalProtocolError, match=r"K11\.FR\.05"):
        Rig(version).station.on_external_limits_changed(10.0, rig.now, source="CSO")


# --- the device model and the 1.6 keys report what the station obeys


def test_the_given_configuration_is_what_the_settings_report() -> None:
    config = SmartChargingConfig(evses=2, max_stack_level=4, max_periods=12, rate_units={"W"})
    rig = Rig("2.0.1", evses=2, smart_charging=config)
    read = rig.station.get_variables(
        [("SmartChargingCtrlr", "ProfileStackLevel"), ("SmartChargingCtrlr", "RateUnit")],
        rig.now,
    )
    assert read == ["4", "W"]
    assert send_profile(rig, 1, default(1, 16.0)) == "Rejected"  # A is not allowed
    old = Rig("1.6", evses=2, smart_charging=config)
    assert old.station.settings.setting("ChargingScheduleAllowedChargingRateUnit") == "Power"
    assert old.station.settings.setting("ChargeProfileMaxStackLevel") == "4"


def test_smart_charging_must_describe_every_evse() -> None:
    with pytest.raises(ValueError, match="EVSEs"):
        Rig("2.0.1", evses=2, smart_charging=SmartChargingConfig(evses=1))
