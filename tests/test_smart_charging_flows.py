"""Smart charging over the wire, station and CSMS flows on an in-memory pair (2.x K01, K02,
K05-K11, K13, K15-K17; 1.6 §3.13, §5.5, §5.7, §5.16 with the errata): answers, reports,
composite schedules, the limit told to the application in time, offline behaviour,
external limits, remote starts with a profile, persistence, and the CSMS's mirror and
prediction."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
from _flowkit import Rig, wall
from _smartkit import limits, profile
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows._base import Activity, build
from ocpp_sansio.flows.remote import RemoteControl, RemoteStartAccepted
from ocpp_sansio.flows.smart_charging import (
    ChargingProfileInstalled,
    ChargingProfileRefused,
    ChargingProfilesCleared,
    LimitChanged,
    SmartCharging,
)
from ocpp_sansio.flows.smart_charging_csms import (
    ChargingProfileAnswered,
    ChargingProfilesReported,
    CompositeScheduleReported,
    CsmsSmartCharging,
    EVChargingNeedsReceived,
    EVChargingScheduleReceived,
    ExternalLimitCleared,
    ExternalLimitReported,
)
from ocpp_sansio.smart_charging import (
    ChargingProfile,
    EvseLimits,
    Purpose,
    SmartChargingConfig,
    profile_to_message,
)
from ocpp_sansio.smart_charging.model import schedule_to_message

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")


class Setup:
    """A station with two EVSEs (16 A hardware each) and a CSMS, both with the smart
    charging flow; transactions registered in the station's ``Activity``."""

    def __init__(self, version: str, *, evses: int = 2, current: float = 16, **config: Any) -> None:
        self.version = version
        self.rig = Rig(version, connectors=evses)
        self.rig.flush()
        config.setdefault(
            "evses", {n: EvseLimits(max_current=current) for n in range(1, evses + 1)}
        )
        self.config = SmartChargingConfig(**config)
        self.activity = Activity()
        self.smart = SmartCharging(self.rig.station, config=self.config, activity=self.activity)
        self.csms = CsmsSmartCharging(self.rig.csms, config=self.config)
        self.rig.station_flows.append(self.smart)
        self.rig.csms_flows.append(self.csms)
        self.smart.refresh(self.rig.now)
        self.m = self.rig.m

    @property
    def now(self) -> float:
        return self.rig.now

    @property
    def wall(self) -> datetime:
        return wall(self.rig.now)

    def tx_id(self, n: int = 1) -> Any:
        return 100 + n if self.version == "1.6" else f"tx{n}"

    def start(self, evse_id: int, n: int = 1) -> Any:
        self.activity.transaction_started(self.tx_id(n), evse_id, self.now)
        return self.tx_id(n)

    def end(self, n: int = 1) -> None:
        self.activity.transaction_ended(self.tx_id(n), self.now)

    # --- the CSMS's requests

    def set(self, evse_id: int, item: ChargingProfile) -> dict[str, Any]:
        message = profile_to_message(item, self.version)
        if self.version == "1.6":
            request = self.m.SetChargingProfileRequest(
                connector_id=evse_id, cs_charging_profiles=message
            )
        else:
            request = self.m.SetChargingProfileRequest(evse_id=evse_id, charging_profile=message)
        self.rig.csms_sends(request)
        return self.last_answer()

    def last_answer(self) -> Any:
        """The station's latest CALLRESULT payload ({} when it sent none)."""
        answers = self.rig.answers()
        return answers[-1] if answers else {}

    def clear(self, **criteria: Any) -> str:
        self.rig.csms_sends(self.csms.clear_request(**criteria))
        return str(self.last_answer()["status"])

    def get(self, request_id: int = 7, **criteria: Any) -> str:
        self.rig.csms_sends(self.csms.get_profiles_request(request_id, **criteria))
        return str(self.rig.answers()[-1]["status"])

    def composite(self, evse_id: int, duration: int, unit: str | None = None) -> dict[str, Any]:
        if self.version == "1.6":
            request = build(
                self.m.GetCompositeScheduleRequest,
                connector_id=evse_id,
                duration=duration,
                charging_rate_unit=unit,
            )
        else:
            request = build(
                self.m.GetCompositeScheduleRequest,
                evse_id=evse_id,
                duration=duration,
                charging_rate_unit=unit,
            )
        self.rig.csms_sends(request)
        return dict(self.last_answer())

    def reports(self) -> list[dict[str, Any]]:
        return self.rig.calls("ReportChargingProfiles")

    def station_events(self, kind: type | None = None) -> list[Any]:
        events = self.smart.events()
        return [e for e in events if kind is None or isinstance(e, kind)]


def periods(answer: dict[str, Any]) -> list[tuple[int, float]]:
    schedule = answer.get("schedule") or answer["chargingSchedule"]
    return [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]]


def default(profile_id: int, limit: float = 10, **kw: Any) -> ChargingProfile:
    kw.setdefault("kind", "Relative")
    return profile(profile_id, "TxDefaultProfile", [(0, limit)], **kw)


def tx_profile(
    profile_id: int, transaction_id: Any, limit: float = 8, **kw: Any
) -> ChargingProfile:
    kw.setdefault("kind", "Relative")
    return profile(profile_id, "TxProfile", [(0, limit)], transaction_id=transaction_id, **kw)


# --- SetChargingProfile (K01; 1.6 §5.16) ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_02_K01_FR_07_a_default_profile_limits_at_once(version: str) -> None:
    s = Setup(version)
    s.station_events()
    assert s.set(1, default(1, 10))["status"] == "Accepted"
    changed = s.station_events(LimitChanged)
    assert [(e.evse_id, e.limit, e.previous) for e in changed] == [(0, 26.0, 32.0), (1, 10.0, 16.0)]
    assert all(e.next_change is None for e in changed)
    assert s.smart.limit(1) == 10 and s.smart.limit(2) == 16


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_15_TC_K_01_CS_default_on_one_evse_is_reported_for_it(version: str) -> None:
    s = Setup(version)
    assert s.set(2, default(5, 6))["status"] == "Accepted"
    assert s.smart.limit(1) == 16 and s.smart.limit(2) == 6
    if version == "1.6":
        return
    assert s.get(11, profile_ids=[5]) == "Accepted"
    report = s.reports()[-1]
    assert report["requestId"] == 11 and report["evseId"] == 2
    assert report["chargingProfile"][0]["id"] == 5
    assert report["chargingLimitSource"] == "CSO"


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_14_TC_K_10_CS_default_on_evse_0_applies_to_all(version: str) -> None:
    s = Setup(version)
    assert s.set(0, default(5, 6))["status"] == "Accepted"
    assert (s.smart.limit(1), s.smart.limit(2), s.smart.limit(0)) == (6, 6, 12)
    if version != "1.6":
        assert s.get(3, profile_ids=[5]) == "Accepted"
        report = s.reports()[-1]
        assert report["evseId"] == 0 and "tbc" not in report


@pytest.mark.parametrize("version", V2)
def test_K01_FR_52_K01_FR_53_duplicate_defaults_rejected_with_reason(version: str) -> None:
    s = Setup(version)
    assert s.set(0, default(1, 6))["status"] == "Accepted"
    answer = s.set(1, default(2, 7))
    assert answer["status"] == "Rejected"
    assert answer["statusInfo"]["reasonCode"] == "DuplicateProfile"
    refused = s.station_events(ChargingProfileRefused)
    assert refused[-1].rejection.rule == "K01.FR.53"


def test_1_6_3_13_2_same_stack_level_replaces_on_the_connector() -> None:
    s = Setup("1.6")
    assert s.set(1, default(1, 6))["status"] == "Accepted"
    assert s.set(1, default(2, 7))["status"] == "Accepted"
    assert [e.id for e in s.smart.store] == [2]
    installed = s.station_events(ChargingProfileInstalled)[-1]
    assert [e.id for e in installed.replaced] == [1]
    assert s.smart.limit(1) == 7


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_05_TC_K_04_CS_same_id_replaces(version: str) -> None:
    s = Setup(version)
    s.set(1, default(3, 6))
    assert s.set(1, default(3, 10, stack=2))["status"] == "Accepted"
    assert [(e.id, e.profile.stack_level) for e in s.smart.store] == [(3, 2)]
    assert s.smart.limit(1) == 10


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_09_TC_K_02_CS_tx_profile_without_transaction_rejected(version: str) -> None:
    s = Setup(version)
    answer = s.set(1, tx_profile(1, s.tx_id()))
    assert answer["status"] == "Rejected"
    if version != "1.6":
        assert answer["statusInfo"]["reasonCode"] == "TxNotFound"


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_16_TC_K_11_CS_tx_profile_on_evse_0_rejected(version: str) -> None:
    s = Setup(version)
    s.start(1)
    assert s.set(0, tx_profile(1, s.tx_id()))["status"] == "Rejected"


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_01_K01_FR_04_TC_K_60_CS_tx_profile_for_the_running_transaction(
    version: str,
) -> None:
    s = Setup(version)
    s.set(1, default(1, 12))
    s.start(1)
    assert s.set(1, tx_profile(2, s.tx_id(), 8))["status"] == "Accepted"
    assert s.smart.limit(1) == 8  # K02.FR.04: over the default
    assert periods(s.composite(1, 300)) == [(0, 8)]


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_33_TC_K_16_CS_unknown_transaction_rejected(version: str) -> None:
    s = Setup(version)
    s.start(1)
    assert s.set(1, tx_profile(1, s.tx_id(9)))["status"] == "Rejected"


def test_1_6_tx_profile_without_transaction_id_takes_the_running_one() -> None:
    s = Setup("1.6")
    s.start(2)
    assert s.set(2, tx_profile(1, None, 7))["status"] == "Accepted"
    assert [e.transaction_id for e in s.smart.store] == [101]
    assert s.smart.limit(2) == 7


@pytest.mark.parametrize("version", V2)
def test_K01_FR_26_TC_K_12_CS_unit_not_configured_rejected(version: str) -> None:
    s = Setup(version, rate_units={"A"})
    answer = s.set(1, default(1, 6000, unit="W"))
    assert answer == {"status": "Rejected", "statusInfo": answer["statusInfo"]}
    assert answer["statusInfo"]["reasonCode"] == "UnsupportedRateUnit"


@pytest.mark.parametrize("version", V2)
def test_K01_FR_28_TC_K_14_CS_unknown_evse_rejected(version: str) -> None:
    s = Setup(version)
    assert s.set(3, default(1))["statusInfo"]["reasonCode"] == "UnknownEVSE"


def test_1_6_errata_3_39_unknown_connector_gets_property_constraint_violation() -> None:
    s = Setup("1.6")
    s.set(3, default(1))
    assert s.rig.errors()[-1][2] == "PropertyConstraintViolation"


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_29_TC_K_15_CS_no_smart_charging_answers_not_supported(version: str) -> None:
    s = Setup(version, enabled=False)
    s.set(1, default(1))
    assert s.rig.errors()[-1][2] == "NotSupported"
    s.composite(1, 60)
    assert s.rig.errors()[-1][2] == "NotSupported"


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_32_TC_K_28_CS_new_default_applies_to_the_running_transaction(version: str) -> None:
    s = Setup(version)
    s.start(1)
    s.rig.advance(600)
    s.set(1, default(1, 6))
    assert s.smart.limit(1) == 6
    assert periods(s.composite(1, 300)) == [(0, 6)]


@pytest.mark.parametrize("version", VERSIONS)
def test_K01_FR_27_TC_K_13_CS_profiles_survive_a_reboot(version: str) -> None:
    s = Setup(version)
    s.set(1, default(1, 6))
    s.set(0, profile(2, "ChargingStationMaxProfile", [(0, 20)], start=s.wall))
    snapshot = s.smart.snapshot()
    core = s.rig.reboot()
    s.rig.station_flows.clear()
    again = SmartCharging(core, config=s.config)
    again.restore(snapshot, s.now)
    assert sorted((e.id, e.evse_id) for e in again.store) == [(1, 1), (2, 0)]
    assert again.limit(1) == 6 and again.limit(0) == 20
    assert again.store.snapshot() == snapshot


# --- ClearChargingProfile (K10; 1.6 §5.5) -----------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_K10_FR_03_TC_K_05_CS_clear_by_id(version: str) -> None:
    s = Setup(version)
    s.set(1, default(4, 6))
    assert s.clear(profile_id=4) == "Accepted"
    assert len(s.smart.store) == 0
    if version != "1.6":
        assert s.get(1, profile_ids=[4]) == "NoProfiles"


@pytest.mark.parametrize("version", VERSIONS)
def test_K10_FR_01_TC_K_07_CS_TC_K_08_CS_nothing_matching_answers_unknown(version: str) -> None:
    s = Setup(version)
    assert s.clear(profile_id=9) == "Unknown"
    s.set(1, default(1, 6, stack=1))
    assert s.clear(purpose="ChargingStationMaxProfile", stack_level=0) == "Unknown"
    assert len(s.smart.store) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_K10_FR_04_TC_K_24_CS_clear_by_criteria_on_every_evse(version: str) -> None:
    s = Setup(version)
    s.set(1, default(1, 6, stack=2))
    s.set(2, default(2, 7, stack=2))
    s.set(2, default(3, 8, stack=3))
    assert s.clear(purpose="TxDefaultProfile", stack_level=2) == "Accepted"
    assert [e.id for e in s.smart.store] == [3]
    if version != "1.6":
        assert s.get(2, purpose="TxDefaultProfile", stack_level=2) == "NoProfiles"


@pytest.mark.parametrize("version", VERSIONS)
def test_K10_FR_05_K10_FR_07_TC_K_09_CS_clearing_the_default_mid_transaction(version: str) -> None:
    s = Setup(version)
    s.set(1, default(1, 6))
    s.start(1)
    assert periods(s.composite(1, 300)) == [(0, 6)]
    s.station_events()
    assert s.clear(purpose="TxDefaultProfile") == "Accepted"
    assert [(e.evse_id, e.limit) for e in s.station_events(LimitChanged)] == [(0, 32), (1, 16)]
    assert periods(s.composite(1, 300)) == [(0, 16)]  # as if started without it


def test_1_6_errata_3_25_clear_matches_every_field_given_and_nothing_means_all() -> None:
    s = Setup("1.6")
    s.set(1, default(1, 6))
    s.set(2, default(2, 7))
    assert s.clear(profile_id=1, evse_id=2) == "Unknown"  # logical AND
    assert s.clear(profile_id=1, evse_id=1) == "Accepted"
    s.set(0, profile(3, "ChargingStationMaxProfile", [(0, 20)], start=s.wall))
    assert s.clear(purpose="ChargingStationMaxProfile") == "Accepted"  # ChargePointMaxProfile
    assert s.clear() == "Accepted"
    assert len(s.smart.store) == 0


@pytest.mark.parametrize("version", V2)
def test_K10_FR_02_K10_FR_06_csms_names_what_to_clear_and_never_external(version: str) -> None:
    s = Setup(version)
    with pytest.raises(LocalProtocolError, match=r"K10\.FR\.02"):
        s.csms.clear_request()
    with pytest.raises(LocalProtocolError, match=r"K10\.FR\.06"):
        s.csms.clear_request(purpose="ChargingStationExternalConstraints")


@pytest.mark.parametrize("version", V2)
def test_K10_FR_08_K10_FR_09_external_constraints_are_not_cleared(version: str) -> None:
    s = Setup(version)
    entry = s.smart.set_external_limit(s.now, source="EMS", limit=10)
    assert s.clear(profile_id=entry.id) == "Unknown"  # K10.FR.09
    criteria = s.m.ClearChargingProfileRequest(
        charging_profile_criteria=build(
            s.m.ClearChargingProfile,
            evse_id=0,
            charging_profile_purpose="ChargingStationExternalConstraints",
        )
    )
    s.rig.csms_sends(criteria)
    assert s.last_answer()["status"] == "Unknown"  # K10.FR.08
    assert [e.id for e in s.smart.store] == [entry.id]


# --- GetChargingProfiles (K09) ---------------------------------------------------------------


def installed_for_reports(s: Setup) -> None:
    s.set(0, profile(1, "ChargingStationMaxProfile", [(0, 30)], start=s.wall))
    s.set(1, default(2, 6, stack=1))
    s.set(2, default(3, 7, stack=2))


@pytest.mark.parametrize("version", V2)
def test_K09_FR_01_K09_FR_02_request_id_everywhere_and_tbc_but_the_last(version: str) -> None:
    s = Setup(version)
    installed_for_reports(s)
    s.smart.profiles_per_report = 1
    s.rig.csms_sends(
        s.m.GetChargingProfilesRequest(
            request_id=42, charging_profile=build(s.m.ChargingProfileCriterion, stack_level=None)
        )
    )
    reports = s.reports()
    assert [r["requestId"] for r in reports] == [42, 42, 42]
    assert [r.get("tbc", False) for r in reports] == [True, True, False]
    reported = s.csms.events()
    assert [type(e) for e in reported] == [ChargingProfileAnswered] * 3 + [ChargingProfilesReported]
    assert sorted(e.id for e in reported[-1].entries) == [1, 2, 3]


@pytest.mark.parametrize("version", V2)
def test_K09_FR_03_csms_gives_ids_or_criteria(version: str) -> None:
    s = Setup(version)
    with pytest.raises(LocalProtocolError, match=r"K09\.FR\.03"):
        s.csms.get_profiles_request(1)
    with pytest.raises(LocalProtocolError, match=r"K09\.FR\.03"):
        s.csms.get_profiles_request(1, evse_id=1)


@pytest.mark.parametrize("version", V2)
def test_K09_FR_04_TC_K_30_CS_TC_K_33_CS_evse_above_0_reports_its_own(version: str) -> None:
    s = Setup(version)
    installed_for_reports(s)
    assert s.get(5, evse_id=1, purpose="TxDefaultProfile") == "Accepted"
    assert [(r["evseId"], [p["id"] for p in r["chargingProfile"]]) for r in s.reports()] == [
        (1, [2])
    ]
    assert s.get(6, evse_id=2, stack_level=1) == "NoProfiles"


@pytest.mark.parametrize("version", V2)
def test_K09_FR_05_TC_K_29_CS_evse_0_reports_only_the_stations(version: str) -> None:
    s = Setup(version)
    installed_for_reports(s)
    assert s.get(5, evse_id=0, purpose="ChargingStationMaxProfile") == "Accepted"
    assert [(r["evseId"], [p["id"] for p in r["chargingProfile"]]) for r in s.reports()] == [
        (0, [1])
    ]


@pytest.mark.parametrize("version", V2)
def test_K09_FR_06_TC_K_31_CS_TC_K_34_CS_no_evse_reports_all_matching_by_source(
    version: str,
) -> None:
    s = Setup(version)
    installed_for_reports(s)
    assert s.get(5, sources=["CSO"]) == "Accepted"
    assert sorted(p["id"] for r in s.reports() for p in r["chargingProfile"]) == [1, 2, 3]
    assert s.get(6, evse_id=1, sources=["EMS"]) == "NoProfiles"


@pytest.mark.parametrize("version", V2)
def test_K11_FR_06_K12_FR_05_TC_K_52_CS_external_limit_reported_as_external_constraints(
    version: str,
) -> None:
    s = Setup(version)
    entry = s.smart.set_external_limit(s.now, source="EMS", limit=10, evse_id=1)
    assert entry.id < 0  # K11.FR.06: negative ids
    assert s.get(5, purpose="ChargingStationExternalConstraints") == "Accepted"
    report = s.reports()[-1]
    assert report["chargingLimitSource"] == "EMS" and report["evseId"] == 1
    assert (
        report["chargingProfile"][0]["chargingProfilePurpose"]
        == "ChargingStationExternalConstraints"
    )


# --- GetCompositeSchedule (K08; 1.6 §5.7) ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_K08_FR_01_K08_FR_02_schedule_from_receipt_for_the_duration(version: str) -> None:
    s = Setup(version)
    s.rig.advance(1000)
    answer = s.composite(1, 300)
    assert answer["status"] == "Accepted"
    if version == "1.6":
        assert answer["connectorId"] == 1 and answer["scheduleStart"] == "1970-01-01T00:16:40Z"
        assert answer["chargingSchedule"]["duration"] == 300
        assert "startSchedule" not in answer["chargingSchedule"]  # 1.6 errata 3.57
    else:
        schedule = answer["schedule"]
        assert (schedule["evseId"], schedule["duration"]) == (1, 300)
        assert schedule["scheduleStart"] == "1970-01-01T00:16:40Z"
    reported = [e for e in s.csms.events() if isinstance(e, CompositeScheduleReported)]
    assert reported[-1].schedule is not None and reported[-1].schedule.duration == 300


@pytest.mark.parametrize("version", VERSIONS)
def test_K08_FR_03_evse_0_reports_the_grid_connection(version: str) -> None:
    s = Setup(version)
    s.set(0, profile(1, "ChargingStationMaxProfile", [(0, 20)], start=s.wall))
    assert periods(s.composite(0, 60)) == [(0, 20)]
    s.set(0, default(2, 6))
    assert periods(s.composite(0, 60)) == [(0, 12)]


@pytest.mark.parametrize("version", VERSIONS)
def test_K08_FR_04_TC_K_41_CS_over_the_wire(version: str) -> None:
    s = Setup(version, evses=1, current=32)
    start = s.wall
    s.set(0, profile(1, "ChargingStationMaxProfile", [(0, 10)], start=start, duration=86400))
    s.set(
        1,
        profile(
            2,
            "TxDefaultProfile",
            list(zip([0, 60, 120, 180, 260], [6, 10, 8, 15, 8], strict=True)),
            start=start,
            duration=300,
        ),
    )
    s.start(1)
    tx = profile(
        3,
        "TxProfile",
        list(zip([0, 50, 140, 200, 240], [8, 11, 16, 6, 12], strict=True)),
        start=start,
        duration=260,
        transaction_id=s.tx_id(),
    )
    assert s.set(1, tx)["status"] == "Accepted"
    assert periods(s.composite(1, 400)) == [
        (0, 8),
        (50, 10),
        (200, 6),
        (240, 10),
        (260, 8),
        (300, 10),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_K08_FR_05_TC_K_47_CS_unknown_evse_rejected(version: str) -> None:
    s = Setup(version)
    answer = s.composite(3, 300)
    assert answer["status"] == "Rejected"
    assert "schedule" not in answer and "chargingSchedule" not in answer
    # More than the station reports (a year of a daily profile's periods) is refused too.
    s.set(
        1,
        profile(
            1,
            "TxDefaultProfile",
            [(0, 6), (3600, 8)],
            kind="Recurring",
            recurrency="Daily",
            start=s.wall,
        ),
    )
    assert s.composite(1, 365 * 86400)["status"] == "Rejected"
    assert s.composite(1, 31 * 86400)["status"] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
def test_K08_FR_06_TC_K_21_CS_idle_evse_as_if_charging_now(version: str) -> None:
    s = Setup(version)
    later = s.wall + timedelta(seconds=300)
    s.set(1, profile(1, "TxDefaultProfile", [(0, 6)], kind="Relative", valid_from=later))
    assert periods(s.composite(1, 400)) == [(0, 16), (300, 6)]


@pytest.mark.parametrize("version", VERSIONS)
def test_K08_FR_07_TC_K_42_CS_unit_not_configured_rejected(version: str) -> None:
    s = Setup(version, rate_units={"A"})
    assert s.composite(0, 300, "W")["status"] == "Rejected"
    assert s.composite(0, 300, "A")["status"] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
def test_composite_in_watts_and_the_facade_members(version: str) -> None:
    s = Setup(version)
    s.set(1, default(1, 10))
    assert periods(s.composite(1, 60, "W")) == [(0, 6900)]
    all_of_them = s.smart.get_all_composite_schedules(60, "A", s.now)
    assert {k: limits(v) for k, v in all_of_them.items()} == {
        0: [(0, 26)],
        1: [(0, 10)],
        2: [(0, 16)],
    }
    with pytest.raises(LocalProtocolError):
        s.smart.get_composite_schedule(9, 60, None, s.now)


# --- limits reach the hardware ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_limit_follows_the_schedule_in_time_with_the_next_change(version: str) -> None:
    s = Setup(version)
    start = s.wall + timedelta(seconds=100)
    s.set(1, profile(1, "TxDefaultProfile", [(0, 6), (200, 10)], start=start, duration=500))
    first = s.station_events(LimitChanged)[-1]
    assert (first.limit, first.next_change, first.next_change_at) == (16, start, s.now + 100)
    seen = []
    for _ in range(4):
        deadline = s.rig.next_deadline()
        assert deadline is not None
        s.rig.run_until(deadline)
        seen += [(s.now, e.limit) for e in s.station_events(LimitChanged) if e.evse_id == 1]
    assert seen[:3] == [(100.0, 6), (300.0, 10), (600.0, 16)]


@pytest.mark.parametrize("version", VERSIONS)
def test_transaction_start_and_end_change_the_limit_and_K02_FR_05_drop_tx_profiles(
    version: str,
) -> None:
    s = Setup(version)
    s.set(1, default(1, 10, kind="Relative"))
    s.set(
        1,
        profile(2, "TxDefaultProfile", [(0, 8), (60, 12)], kind="Relative", stack=1, duration=3600),
    )
    s.station_events()
    s.rig.advance(30)
    s.start(1)
    started = s.station_events(LimitChanged)
    assert [(e.evse_id, e.limit, e.next_change_at) for e in started if e.evse_id == 1] == [
        (1, 8, 90.0)
    ]
    s.set(1, tx_profile(3, s.tx_id(), 5))
    assert s.smart.limit(1) == 5
    s.station_events()
    s.end()
    cleared = s.station_events(ChargingProfilesCleared)
    assert [(e.reason, [x.id for x in e.entries]) for e in cleared] == [("TransactionEnded", [3])]
    assert s.smart.limit(1) == 8  # idle again: a new transaction would start at 8 A


@pytest.mark.parametrize("version", VERSIONS)
def test_power_path_closed_restarts_relative_schedules_K01_FR_42(version: str) -> None:
    s = Setup(version)
    s.set(1, profile(1, "TxDefaultProfile", [(0, 8), (60, 12)], kind="Relative"))
    s.start(1)
    s.rig.advance(100)
    s.smart.handle_timer(s.now)
    assert s.smart.limit(1) == 12
    s.smart.power_path_closed(1, s.now)
    assert s.smart.limit(1) == 8
    with pytest.raises(LocalProtocolError):
        s.smart.power_path_closed(2, s.now)


# --- offline (K06, K07) -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_K06_FR_01_tx_profile_keeps_working_offline(version: str) -> None:
    s = Setup(version)
    s.start(1)
    s.set(1, profile(1, "TxProfile", [(0, 6), (300, 9)], kind="Relative", transaction_id=s.tx_id()))
    s.rig.disconnect()
    s.station_events()
    s.rig.advance(400)
    assert [(e.evse_id, e.limit) for e in s.station_events(LimitChanged)] == [(0, 25), (1, 9)]


@pytest.mark.parametrize("version", VERSIONS)
def test_K06_FR_02_offline_without_profiles_no_constraints(version: str) -> None:
    s = Setup(version)
    s.rig.disconnect()
    s.start(2)
    s.rig.advance(100)
    assert s.smart.limit(2) == 16  # the hardware's own limit
    assert periods({"schedule": {"chargingSchedulePeriod": [
        {"startPeriod": p.start_period, "limit": p.limit}
        for p in s.smart.get_composite_schedule(2, 60, None, s.now).periods
    ]}}) == [(0, 16)]  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_K07_FR_01_offline_start_uses_the_default_profile(version: str) -> None:
    s = Setup(version)
    s.set(2, profile(1, "TxDefaultProfile", [(0, 6), (120, 11)], kind="Relative"))
    s.rig.disconnect()
    s.rig.advance(1000)
    s.start(2)
    assert s.smart.limit(2) == 6
    s.rig.advance(130)
    assert s.smart.limit(2) == 11


def test_K01_FR_101_K01_FR_102_K01_FR_103_offline_validity_in_2_1() -> None:
    s = Setup("2.1")
    base = profile(1, "TxDefaultProfile", [(0, 6)], kind="Relative")
    keep = attrs.evolve(base, max_offline_duration=100)
    drop = attrs.evolve(
        default(2, 4, stack=1), max_offline_duration=300, invalid_after_offline_duration=True
    )
    always = default(3, 2, stack=2)
    s.set(1, keep)
    s.set(2, drop)
    s.set(2, attrs.evolve(always, id=3))  # K01.FR.103: no maxOfflineDuration
    s.clear(profile_id=3)
    s.rig.disconnect()
    s.rig.advance(50)
    assert (s.smart.limit(1), s.smart.limit(2)) == (6, 4)
    s.rig.advance(100)
    assert s.smart.limit(1) == 16  # K01.FR.101: offline for longer than 100 s
    s.rig.advance(200)
    assert s.smart.limit(2) == 16
    s.rig.connect()
    s.rig.flush()
    assert s.smart.limit(1) == 6  # K01.FR.102: valid again
    assert [e.id for e in s.smart.store] == [1]  # invalidAfterOfflineDuration: gone
    assert s.smart.limit(2) == 16


# --- remote start with a profile (K05; 1.6 §5.16.2) -------------------------------------------


def remote_setup(version: str, **remote: Any) -> tuple[Setup, RemoteControl]:
    s = Setup(version)
    control = RemoteControl(s.rig.station, s.activity, profiles=s.smart, **remote)
    s.rig.station_flows.insert(0, control)
    return s, control


def remote_start(s: Setup, evse_id: int, item: ChargingProfile | None) -> str:
    message = None if item is None else profile_to_message(item, s.version)
    if s.version == "1.6":
        request = s.m.RemoteStartTransactionRequest(
            id_tag="TAG", connector_id=evse_id, charging_profile=message
        )
    else:
        token = build(s.m.IdToken, id_token="TAG", type="ISO14443")
        request = s.m.RequestStartTransactionRequest(
            id_token=token, remote_start_id=5, evse_id=evse_id, charging_profile=message
        )
    s.rig.csms_sends(request)
    return str(s.last_answer()["status"])


@pytest.mark.parametrize("version", VERSIONS)
def test_K05_FR_01_K05_FR_03_TC_K_37_CS_remote_start_profile_applies_to_its_transaction(
    version: str,
) -> None:
    s, control = remote_setup(version)
    assert remote_start(s, 1, tx_profile(9, None, 7)) == "Accepted"
    assert len(s.smart.store) == 0  # waits for the transaction
    control.claim_start(1, s.now)
    s.start(1)
    assert [(e.id, e.transaction_id) for e in s.smart.store] == [(9, s.tx_id())]
    assert s.smart.limit(1) == 7
    if version != "1.6":
        assert s.get(3, profile_ids=[9]) == "Accepted"
        assert "transactionId" not in s.reports()[-1]["chargingProfile"][0]  # as received


@pytest.mark.parametrize("version", VERSIONS)
def test_K05_FR_02_remote_start_profile_must_be_a_tx_profile(version: str) -> None:
    s, _control = remote_setup(version)
    assert remote_start(s, 1, default(9, 7)) == "Rejected"


@pytest.mark.parametrize("version", VERSIONS)
def test_K05_FR_04_without_smart_charging_the_profile_is_ignored(version: str) -> None:
    s, control = remote_setup(version, smart_charging=False)
    assert remote_start(s, 1, tx_profile(9, None, 7)) == "Accepted"
    accepted = [e for e in control.events() if isinstance(e, RemoteStartAccepted)]
    assert accepted[-1].charging_profile is None
    s.start(1)
    assert len(s.smart.store) == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_K05_FR_05_invalid_remote_start_profile_rejects_the_start(version: str) -> None:
    s = Setup(version, rate_units={"A"})
    control = RemoteControl(s.rig.station, s.activity, profiles=s.smart)
    s.rig.station_flows.insert(0, control)
    assert remote_start(s, 1, tx_profile(9, None, 7000, unit="W")) == "Rejected"


def test_K05_remote_start_profile_expires_without_its_transaction() -> None:
    s, _control = remote_setup("2.0.1")
    remote_start(s, 1, tx_profile(9, None, 7))
    s.rig.advance(121)
    s.start(1)
    assert len(s.smart.store) == 0


def test_1_6_5_16_2_later_profile_for_the_transaction_with_the_same_stack_replaces() -> None:
    s, control = remote_setup("1.6")
    remote_start(s, 1, tx_profile(9, None, 7))
    control.claim_start(1, s.now)
    s.activity.transaction_started("local-1", 1, s.now)
    assert [(e.id, e.transaction_id) for e in s.smart.store] == [(9, "local-1")]
    s.activity.transaction_started(101, 1, s.now)  # the CSMS's id arrives
    s.activity.transaction_ended("local-1", s.now)
    assert s.set(1, tx_profile(10, 101, 5))["status"] == "Accepted"
    assert [e.id for e in s.smart.store] == [10]
    assert s.set(1, tx_profile(11, 101, 4, stack=1))["status"] == "Accepted"
    assert sorted(e.id for e in s.smart.store) == [10, 11]
    s.activity.transaction_ended(101, s.now)
    assert len(s.smart.store) == 0


# --- external limits (K11-K13) ----------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_K11_FR_01_K11_FR_02_K11_FR_05_external_limit_applies_and_is_notified(version: str) -> None:
    s = Setup(version)
    s.start(1)
    s.station_events()
    s.smart.set_external_limit(s.now, source="EMS", limit=10, grid_critical=True)
    s.rig.flush()
    notified = s.rig.calls("NotifyChargingLimit")
    assert notified == [{"chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": True}}]
    assert s.smart.limit(1) == 10 and s.smart.limit(0) == 10
    reported = [e for e in s.csms.events() if isinstance(e, ExternalLimitReported)]
    assert [(e.evse_id, e.source, e.grid_critical) for e in reported] == [(0, "EMS", True)]
    with pytest.raises(LocalProtocolError, match=r"K11\.FR\.05"):
        s.smart.set_external_limit(s.now, source="CSO", limit=5)
    with pytest.raises(LocalProtocolError, match="ChargingLimitSource"):
        s.smart.set_external_limit(s.now, source="DSO" if version == "2.0.1" else "", limit=5)


@pytest.mark.parametrize("version", V2)
def test_K11_FR_02_small_changes_are_not_notified_and_K11_FR_03_schedules_when_configured(
    version: str,
) -> None:
    s = Setup(version, limit_change_significance=10.0, notify_with_schedules=True)
    s.smart.set_external_limit(s.now, source="SO", limit=20, evse_id=2)
    s.smart.set_external_limit(s.now, source="SO", limit=19, evse_id=2)  # 5 %: skipped
    s.smart.set_external_limit(s.now, source="SO", limit=15, evse_id=2)
    s.rig.flush()
    notified = s.rig.calls("NotifyChargingLimit")
    assert [n["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] for n in notified] == [
        20,
        15,
    ]
    assert all(n["evseId"] == 2 for n in notified)
    assert len([e for e in s.smart.store if e.purpose is Purpose.EXTERNAL]) == 1  # replaced


@pytest.mark.parametrize("version", V2)
def test_K12_FR_01_external_limit_without_transaction_caps_the_station(version: str) -> None:
    s = Setup(version)
    s.smart.set_external_limit(s.now, source="EMS", limit=20)
    assert s.smart.limit(0) == 20
    assert periods(s.composite(0, 60)) == [(0, 20)]


@pytest.mark.parametrize("version", V2)
def test_K13_FR_01_K13_FR_02_released_external_limit(version: str) -> None:
    s = Setup(version)
    s.start(1)
    s.smart.set_external_limit(s.now, source="EMS", limit=10, evse_id=1)
    assert s.smart.clear_external_limit(s.now, source="EMS", evse_id=1)
    s.rig.flush()
    assert s.rig.calls("ClearedChargingLimit") == [{"chargingLimitSource": "EMS", "evseId": 1}]
    assert s.smart.limit(1) == 16
    cleared = [e for e in s.csms.events() if isinstance(e, ExternalLimitCleared)]
    assert [(e.evse_id, e.source) for e in cleared] == [(1, "EMS")]
    assert not s.smart.clear_external_limit(s.now, source="EMS", evse_id=1)


def test_1_6_external_limits_count_without_messages() -> None:
    s = Setup("1.6")
    s.smart.set_external_limit(s.now, source="EMS", limit=9, evse_id=1)
    assert s.smart.limit(1) == 9
    assert periods(s.composite(1, 60)) == [(0, 9)]
    snapshot = s.smart.snapshot()
    assert snapshot["profiles"][0]["encoding"] == "2.1"
    s.smart.restore(snapshot, s.now)
    assert s.smart.limit(1) == 9
    s.rig.flush()
    assert s.rig.calls("NotifyChargingLimit") == []


# --- the CSMS side ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_mirror_follows_answers_and_predicts_the_stations_composite(version: str) -> None:
    s = Setup(version)
    s.csms.send_profile(1, default(1, 10), s.now)
    s.csms.send_profile(
        0, profile(2, "ChargingStationMaxProfile", [(0, 30), (600, 12)], start=s.wall), s.now
    )
    s.rig.flush()
    answered = [e for e in s.csms.events() if isinstance(e, ChargingProfileAnswered)]
    assert [e.status for e in answered] == ["Accepted", "Accepted"]
    assert sorted(e.id for e in s.csms.store) == [1, 2]
    predicted = s.csms.predict_composite(0, 1200, s.wall)
    assert limits(predicted) == periods(s.composite(0, 1200))
    s.rig.csms_sends(s.csms.clear_request(profile_id=1))
    assert [e.id for e in s.csms.store] == [2]


@pytest.mark.parametrize("version", V2)
def test_csms_mirror_reconciles_with_a_report(version: str) -> None:
    s = Setup(version)
    s.set(1, default(1, 10))
    s.smart.set_external_limit(s.now, source="EMS", limit=20)
    s.smart.store.remove(1)  # the station lost it (not told)
    assert sorted(e.id for e in s.csms.store) == [1]
    s.rig.csms_sends(s.csms.get_profiles_request(9, purpose="ChargingStationExternalConstraints"))
    s.rig.csms_sends(s.csms.get_profiles_request(10, purpose="TxDefaultProfile"))
    assert sorted((e.id, e.source) for e in s.csms.store) == [(-1, "EMS")]


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_checks_a_profile_before_sending(version: str) -> None:
    s = Setup(version)
    s.csms.send_profile(1, default(1, 10), s.now)
    s.rig.flush()
    with pytest.raises(LocalProtocolError, match=r"K04\.FR\.03|1\.6 §3\.13\.1"):
        s.csms.send_profile(
            1, profile(2, "ChargingStationMaxProfile", [(0, 5)], start=s.wall), s.now
        )
    problems = s.csms.problems(1, default(3, 5))
    expected = [] if version == "1.6" else ["K01.FR.06"]
    assert [p.rule for p in problems] == expected


def needs(s: Setup, **parameters: Any) -> str:
    m = s.m
    charging_needs = build(
        m.ChargingNeeds, requested_energy_transfer="AC_three_phase", **parameters
    )
    s.rig.pair.station.send_request(
        m.NotifyEVChargingNeedsRequest(
            charging_needs=charging_needs, evse_id=1, max_schedule_tuples=2
        ),
        s.now,
    )
    s.rig.flush()
    return "sent"


def ac_parameters(s: Setup) -> Any:
    return s.m.ACChargingParameters(
        energy_amount=20000, ev_min_current=6, ev_max_current=32, ev_max_voltage=400
    )


@pytest.mark.parametrize("version", V2)
def test_K15_FR_02_to_05_K17_FR_02_to_05_charging_needs_answered_by_the_application(
    version: str,
) -> None:
    s = Setup(version)
    needs(s, ac_charging_parameters=ac_parameters(s))
    event = [e for e in s.csms.events() if isinstance(e, EVChargingNeedsReceived)][-1]
    assert (event.evse_id, event.max_schedule_tuples, event.problems) == (1, 2, ())
    s.csms.answer_charging_needs(event.message_id, "Processing", s.now)
    s.rig.flush()
    with pytest.raises(LocalProtocolError):
        s.csms.answer_charging_needs(event.message_id, "Accepted", s.now)
    received = [e for e in s.rig.station_seen if type(e).__name__ == "ResponseReceived"]
    assert str(received[-1].response.status) == "Processing"


@pytest.mark.parametrize("version", V2)
def test_K15_FR_06_K17_FR_06_needs_without_ac_or_dc_parameters_rejected(version: str) -> None:
    s = Setup(version)
    needs(s)
    event = [e for e in s.csms.events() if isinstance(e, EVChargingNeedsReceived)][-1]
    assert event.problems and "K15.FR.06" in event.problems[0]
    received = [e for e in s.rig.station_seen if type(e).__name__ == "ResponseReceived"]
    assert str(received[-1].response.status) == "Rejected"


@pytest.mark.parametrize("version", V2)
def test_K15_FR_07_K17_FR_07_tx_profile_within_the_evs_tuples(version: str) -> None:
    s = Setup(version)
    needs(s, ac_charging_parameters=ac_parameters(s))
    many = profile(
        1, "TxProfile", [(0, 16), (60, 10), (120, 8)], kind="Relative", transaction_id="tx1"
    )
    assert [p.rule for p in s.csms.problems(1, many)] == ["K15.FR.07"]
    assert s.csms.problems(1, tx_profile(1, "tx1")) == []


@pytest.mark.parametrize("version", V2)
def test_K15_FR_11_K15_FR_12_K16_FR_06_K16_FR_07_K17_FR_11_K17_FR_12_ev_schedule_checked(
    version: str,
) -> None:
    s = Setup(version)
    s.start(1)
    s.csms.send_profile(
        1, profile(1, "TxProfile", [(0, 16), (600, 8)], start=s.wall, transaction_id="tx1"), s.now
    )
    s.rig.flush()
    m = s.m
    for limit_after, expected in ((8, "Accepted"), (12, "Rejected")):
        ev = profile(0, "TxProfile", [(0, 16), (600, limit_after)], start=s.wall).schedule
        s.rig.pair.station.send_request(
            m.NotifyEVChargingScheduleRequest(
                time_base=s.wall,
                charging_schedule=schedule_to_message(ev, version, keep=False),
                evse_id=1,
            ),
            s.now,
        )
        s.rig.flush()
        event = [e for e in s.csms.events() if isinstance(e, EVChargingScheduleReceived)][-1]
        assert event.within_limits is (expected == "Accepted")
        responses = [e for e in s.rig.station_seen if type(e).__name__ == "ResponseReceived"]
        assert str(responses[-1].response.status) == expected
    assert event.exceeded_at == s.wall + timedelta(seconds=600)


@settings(deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    data=st.data(),
)
def test_property_the_csms_prediction_equals_the_stations_answer(
    version: str, data: st.DataObject
) -> None:
    """Whatever the CSMS sets and the station accepts, predicting from the mirror gives the
    station's own GetCompositeSchedule answer."""
    s = Setup(version)
    ids = itertools.count(1)
    for _ in range(data.draw(st.integers(1, 5))):
        evse_id = data.draw(st.integers(0, 2))
        purpose = (
            "ChargingStationMaxProfile"
            if evse_id == 0 and data.draw(st.booleans())
            else "TxDefaultProfile"
        )
        starts = sorted(data.draw(st.sets(st.integers(1, 20), max_size=3)))
        item = profile(
            next(ids),
            purpose,
            [(0, data.draw(st.integers(0, 32)))]
            + [(m * 60, data.draw(st.integers(0, 32))) for m in starts],
            stack=data.draw(st.integers(0, 3)),
            start=s.wall + timedelta(minutes=data.draw(st.integers(-30, 30))),
            duration=data.draw(st.none() | st.integers(60, 3600)),
        )
        s.set(evse_id, item)
    s.rig.advance(data.draw(st.integers(0, 600)))
    evse_id = data.draw(st.integers(0, 2))
    predicted = s.csms.predict_composite(evse_id, 3600, s.wall)
    assert limits(predicted) == periods(s.composite(evse_id, 3600))
