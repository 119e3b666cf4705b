"""The composite schedule as a pure function (K08; 1.6 §3.13.3, §5.7): the worked examples
of the specification (2.x §3.5-§3.6.1, 1.6 §3.13.7) and of the K08 conformance cases
(TC_K_21/22/23/39/40/41_CS, with the 2025 errata), stacking and fallback, recurrence across
midnight and daylight-saving changes, and properties checked against a brute-force oracle:
never above any applicable limit, equal to the lowest of them, strictly ordered periods,
shorter requests give prefixes, A <-> W within rounding."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from _smartkit import T0, limits, on, profile
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.smart_charging import (
    EvseLimits,
    InstalledProfile,
    Kind,
    Purpose,
    RateUnit,
    Session,
    SmartChargingConfig,
    composite_schedule,
    convert,
    limit_in_force,
)

BERLIN = ZoneInfo("Europe/Berlin")
CONFIG = SmartChargingConfig(evses=1)
TX = {1: Session(transaction_ids={"tx1"}, started=T0)}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the K08 conformance cases' worked examples --------------------------------------------


def test_TC_K_40_CS_K01_FR_17_stacked_defaults_fall_back_when_the_higher_one_ends() -> None:
    """K08.FR.02/06, K01.FR.17, 1.6 errata 3.43: stack level 1 leads while it has a period;
    after its duration stack level 0 takes over."""
    profiles = [
        on(1, profile(1, "TxDefaultProfile", [(0, 6), (100, 8), (200, 10)], duration=400)),
        on(1, profile(2, "TxDefaultProfile", [(0, 7), (100, 9)], stack=1, duration=150)),
    ]
    result = composite_schedule(profiles, 1, T0, 350, CONFIG)
    assert limits(result) == [(0, 7), (100, 9), (150, 8), (200, 10)]
    assert result.duration == 350 and result.start == T0


def test_TC_K_41_CS_combining_purposes_takes_the_lowest_and_tx_overrides_default() -> None:
    """K08.FR.04, K02.FR.04/08: the TxProfile overrides the TxDefaultProfile while it has
    periods, the station maximum caps both; afterwards the default and then the maximum
    alone (the 2025-04 errata adds the periods at 260 and 300)."""
    profiles = [
        on(0, profile(1, "ChargingStationMaxProfile", [(0, 10)], duration=86400)),
        on(
            1,
            profile(
                2,
                "TxDefaultProfile",
                list(zip([0, 60, 120, 180, 260], [6, 10, 8, 15, 8], strict=True)),
                duration=300,
            ),
        ),
        on(
            1,
            profile(
                3,
                "TxProfile",
                list(zip([0, 50, 140, 200, 240], [8, 11, 16, 6, 12], strict=True)),
                duration=260,
                transaction_id="tx1",
            ),
            transaction_id="tx1",
        ),
    ]
    result = composite_schedule(profiles, 1, T0, 400, CONFIG, sessions=TX)
    assert limits(result) == [(0, 8), (50, 10), (200, 6), (240, 10), (260, 8), (300, 10)]


def test_TC_K_39_CS_no_profile_reports_the_local_limit_for_evse_0() -> None:
    """K08.FR.02/03/06, K06.FR.02: no profile at all: the hardware's own limit."""
    config = SmartChargingConfig(
        evses={1: EvseLimits(max_current=16), 2: EvseLimits(max_current=16)}
    )
    result = composite_schedule([], 0, T0, 300, config)
    assert limits(result) == [(0, 32)]
    assert composite_schedule([], 1, T0, 300, config).periods[0].limit == 16


def test_TC_K_22_CS_evse_0_adds_up_the_evses_until_valid_to() -> None:
    """K01.FR.37, K08.FR.03: a TxDefaultProfile on EVSE 0 limits each EVSE; EVSE 0 reports
    the sum (the test multiplies by the number of EVSEs); at validTo the local limit."""
    config = SmartChargingConfig(evses=2)
    item = profile(
        1,
        "TxDefaultProfile",
        [(0, 6)],
        start=T0,
        valid_from=T0,
        valid_to=T0 + timedelta(seconds=300),
    )
    for evse_id in (1, 2):
        assert limits(composite_schedule([on(0, item)], evse_id, T0, 400, config)) == [
            (0, 6),
            (300, 32),
        ]
    assert limits(composite_schedule([on(0, item)], 0, T0, 400, config)) == [(0, 12), (300, 64)]


def test_TC_K_21_CS_K01_FR_36_valid_from_in_the_future() -> None:
    item = profile(
        1, "TxDefaultProfile", [(0, 6)], kind="Relative", valid_from=T0 + timedelta(seconds=300)
    )
    assert limits(composite_schedule([on(1, item)], 1, T0, 400, CONFIG)) == [(0, 32), (300, 6)]


def test_TC_K_23_CS_K01_FR_30_start_schedule_in_the_future() -> None:
    item = profile(
        1,
        "TxDefaultProfile",
        [(0, 6)],
        start=T0 + timedelta(seconds=60),
        valid_from=T0 + timedelta(seconds=50),
        valid_to=T0 + timedelta(seconds=400),
    )
    assert limits(composite_schedule([on(1, item)], 1, T0, 300, CONFIG)) == [(0, 32), (60, 6)]


# --- the specification's examples ------------------------------------------------------------


def test_K08_spec_3_5_situation_1_lowest_of_the_leading_profile_of_each_purpose() -> None:
    """2.x §3.5 figure 99: max (stack 0), TxDefault (stacks 1 and 2) and external
    constraints (stack 1): the lowest of max, TxDefault stack 2 and the constraints."""
    profiles = [
        on(0, profile(1, "ChargingStationMaxProfile", [(0, 30)])),
        on(1, profile(2, "TxDefaultProfile", [(0, 8)], stack=1)),
        on(1, profile(3, "TxDefaultProfile", [(0, 20)], stack=2)),
        on(0, profile(4, "ChargingStationExternalConstraints", [(0, 25)], stack=1), source="EMS"),
    ]
    assert limits(composite_schedule(profiles, 1, T0, 60, CONFIG)) == [(0, 20)]
    profiles[3] = on(0, profile(4, "ChargingStationExternalConstraints", [(0, 12)], stack=1))
    assert limits(composite_schedule(profiles, 1, T0, 60, CONFIG)) == [(0, 12)]


def test_K08_spec_3_5_situation_2_tx_profile_overrules_tx_default() -> None:
    profiles = [
        on(0, profile(1, "ChargingStationMaxProfile", [(0, 30)])),
        on(1, profile(2, "TxDefaultProfile", [(0, 8)], stack=2)),
        on(
            1,
            profile(3, "TxProfile", [(0, 20)], stack=1, transaction_id="tx1"),
            transaction_id="tx1",
        ),
        on(0, profile(4, "ChargingStationExternalConstraints", [(0, 25)], stack=1), source="EMS"),
    ]
    assert limits(composite_schedule(profiles, 1, T0, 60, CONFIG, sessions=TX)) == [(0, 20)]
    # Without the transaction the TxProfile does not count: the default's 8 A.
    assert limits(composite_schedule(profiles, 1, T0, 60, CONFIG)) == [(0, 8)]


def test_K08_spec_3_6_daily_profile_in_watts() -> None:
    """2.x §3.6 / 1.6 §3.13.7: 11 kW, 6 kW from 08:00 to 20:00, recurring daily from
    2013-01-01; read on any later day, in W and in A (3 phases, 230 V)."""
    item = profile(
        100,
        "TxDefaultProfile",
        [(0, 11000, 3), (28800, 6000, 3), (72000, 11000, 3)],
        kind="Recurring",
        recurrency="Daily",
        start=at(2013, 1, 1),
        duration=86400,
        unit="W",
    )
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=32)})
    day = at(2024, 6, 5)
    result = composite_schedule([on(1, item)], 1, day, 86400, config, unit="W")
    assert limits(result) == [(0, 11000), (28800, 6000), (72000, 11000)]
    amps = composite_schedule([on(1, item)], 1, day, 86400, config, unit="A")
    assert limits(amps) == [(0, 15.9), (28800, 8.6), (72000, 15.9)]
    assert {p.number_phases for p in amps.periods} == {3}


def test_K08_spec_3_6_1_stacked_exceptions_for_sundays_and_christmas() -> None:
    """2.x §3.6.1: 2 kW from 17:00 to 20:00 daily (stack 1; the example's duration 1080 is
    read as the 10800 s its text describes), no limit on Sundays (stack 2, weekly from
    Sunday 2020-01-05) and on Christmas Day 2020 (stack 3, absolute)."""
    profiles = [
        on(
            1,
            profile(
                10,
                "TxDefaultProfile",
                [(0, 2000)],
                stack=1,
                kind="Recurring",
                recurrency="Daily",
                start=at(2020, 1, 9, 17),
                duration=10800,
                unit="W",
            ),
        ),
        on(
            1,
            profile(
                11,
                "TxDefaultProfile",
                [(0, 999999)],
                stack=2,
                kind="Recurring",
                recurrency="Weekly",
                start=at(2020, 1, 5),
                duration=86400,
                unit="W",
            ),
        ),
        on(
            1,
            profile(
                12,
                "TxDefaultProfile",
                [(0, 999999)],
                stack=3,
                start=at(2020, 12, 25),
                duration=86400,
                unit="W",
                valid_from=at(2020, 1, 1),
                valid_to=at(2021, 1, 1),
            ),
        ),
    ]
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=None, max_power=22000)})

    def at_six(day: datetime) -> float:
        result = composite_schedule(profiles, 1, day + timedelta(hours=18), 60, config, unit="W")
        return result.periods[0].limit

    assert at_six(at(2020, 12, 24)) == 2000  # Thursday
    assert at_six(at(2020, 12, 25)) == 22000  # Christmas: the exception, capped by hardware
    assert at_six(at(2020, 12, 27)) == 22000  # Sunday
    assert at_six(at(2020, 12, 28)) == 2000  # Monday
    monday = composite_schedule(profiles, 1, at(2020, 12, 28), 86400, config, unit="W")
    assert limits(monday) == [(0, 22000), (61200, 2000), (72000, 22000)]


# --- K01 rules about time --------------------------------------------------------------------


def test_K01_FR_10_without_valid_from_and_to_valid_indefinitely() -> None:
    item = profile(1, "TxDefaultProfile", [(0, 6)], start=at(2000, 1, 1))
    assert limits(composite_schedule([on(1, item)], 1, at(2090, 1, 1), 60, CONFIG)) == [(0, 6)]


def test_K01_FR_11_K01_FR_12_periods_last_until_the_next_or_the_duration() -> None:
    item = profile(1, "TxDefaultProfile", [(0, 6), (100, 8), (300, 10)], duration=200)
    assert limits(composite_schedule([on(1, item)], 1, T0, 400, CONFIG)) == [
        (0, 6),
        (100, 8),
        (200, 32),
    ]


def test_K01_FR_13_recurrence_shorter_than_its_period_falls_back_then_recurs() -> None:
    """1.6 errata 3.43: after the duration the lower stack level, then the next day again."""
    profiles = [
        on(1, profile(1, "TxDefaultProfile", [(0, 20)], start=at(2000, 1, 1))),
        on(
            1,
            profile(
                2,
                "TxDefaultProfile",
                [(0, 6)],
                stack=1,
                kind="Recurring",
                recurrency="Daily",
                start=at(2024, 1, 1, 17),
                duration=3 * 3600,
            ),
        ),
    ]
    result = composite_schedule(profiles, 1, at(2024, 1, 2, 16), 25 * 3600, CONFIG)
    hour = 3600
    assert limits(result) == [(0, 20), (hour, 6), (4 * hour, 20), (25 * hour, 6)][:3]
    longer = composite_schedule(profiles, 1, at(2024, 1, 2, 16), 26 * hour, CONFIG)
    assert limits(longer) == [(0, 20), (hour, 6), (4 * hour, 20), (25 * hour, 6)]


def test_K01_FR_37_valid_to_ends_a_tx_profile_and_the_default_applies_K02_FR_08() -> None:
    profiles = [
        on(1, profile(1, "TxDefaultProfile", [(0, 10)])),
        on(
            1,
            profile(2, "TxProfile", [(0, 6)], kind="Relative", valid_to=T0 + timedelta(seconds=90)),
            transaction_id="tx1",
        ),
    ]
    assert limits(composite_schedule(profiles, 1, T0, 300, CONFIG, sessions=TX)) == [
        (0, 6),
        (90, 10),
    ]


def test_K01_FR_42_relative_schedules_count_from_the_transaction_or_from_ready() -> None:
    item = profile(1, "TxDefaultProfile", [(0, 16), (3600, 8)], kind="Relative")
    started = T0 - timedelta(minutes=30)
    sessions = {1: Session(transaction_ids={"t"}, started=started)}
    assert limits(composite_schedule([on(1, item)], 1, T0, 7200, CONFIG, sessions=sessions)) == [
        (0, 16),
        (1800, 8),
    ]
    ready = {1: Session(transaction_ids={"t"}, started=started, ready=T0)}
    assert limits(composite_schedule([on(1, item)], 1, T0, 7200, CONFIG, sessions=ready)) == [
        (0, 16),
        (3600, 8),
    ]


def test_K08_FR_06_idle_evse_as_if_a_transaction_started_now() -> None:
    item = profile(1, "TxDefaultProfile", [(0, 16), (600, 8)], kind="Relative")
    assert limits(composite_schedule([on(1, item)], 1, T0, 1200, CONFIG)) == [(0, 16), (600, 8)]
    # The limit in force on an idle EVSE stays at what a transaction starting now gets.
    period, nxt = limit_in_force([on(1, item)], 1, T0, CONFIG)
    assert (period.limit, nxt) == (16, None)


def test_1_6_tx_default_on_the_connector_replaces_connector_0s_for_that_connector() -> None:
    """1.6 §3.13.1: at the same stack level the connector's own default wins there."""
    config = SmartChargingConfig(evses=2)
    profiles = [
        on(0, profile(1, "TxDefaultProfile", [(0, 10)])),
        on(2, profile(2, "TxDefaultProfile", [(0, 20)])),
    ]
    assert limits(composite_schedule(profiles, 1, T0, 60, config)) == [(0, 10)]
    assert limits(composite_schedule(profiles, 2, T0, 60, config)) == [(0, 20)]


def test_K01_FR_21_min_charging_rate_is_kept_from_the_transaction_level_schedule() -> None:
    profiles = [
        on(0, profile(1, "ChargingStationMaxProfile", [(0, 30)], min_rate=1)),
        on(1, profile(2, "TxDefaultProfile", [(0, 16), (60, 10)], min_rate=6, duration=120)),
    ]
    result = composite_schedule(profiles, 1, T0, 180, CONFIG)
    assert [(p.start_period, p.limit, p.min_charging_rate) for p in result.periods] == [
        (0, 16, 6),
        (60, 10, 6),
        (120, 30, None),
    ]
    as_watts = composite_schedule(profiles, 1, T0, 60, CONFIG, unit="W")
    assert as_watts.periods[0].min_charging_rate == 6 * 230 * 3
    assert as_watts.to_message("1.6").min_charging_rate == 4140.0


def test_K01_FR_45_number_phases_the_lowest_in_force_and_never_above_the_evse() -> None:
    """2.x errata 2.36: the lowest numberPhases; W converted with the phases in use."""
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=32, phases=3)})
    profiles = [
        on(0, profile(1, "ChargingStationMaxProfile", [(0, 11040, 3)], unit="W")),
        on(1, profile(2, "TxDefaultProfile", [(0, 32, 1)])),
    ]
    result = composite_schedule(profiles, 1, T0, 60, config)
    assert [(p.limit, p.number_phases) for p in result.periods] == [(32, 1)]
    single = SmartChargingConfig(evses={1: EvseLimits(max_current=32, phases=1)})
    capped = composite_schedule(profiles[:1], 1, T0, 60, single)
    assert [(p.limit, p.number_phases) for p in capped.periods] == [(32, 1)]


def test_dc_evse_converts_with_the_voltage_alone() -> None:
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=None, max_power=50000, phases=0)})
    item = profile(1, "TxDefaultProfile", [(0, 23000)], unit="W")
    result = composite_schedule([on(1, item)], 1, T0, 60, config, unit="A")
    assert [(p.limit, p.number_phases) for p in result.periods] == [(100, None)]


def test_maximum_offline_duration_ends_a_profile_while_offline_K01_FR_101() -> None:
    item = attrs.evolve(profile(1, "TxDefaultProfile", [(0, 6)]), max_offline_duration=100)
    online = composite_schedule([on(1, item)], 1, T0, 300, CONFIG)
    offline = composite_schedule([on(1, item)], 1, T0, 300, CONFIG, offline_since=T0)
    assert limits(online) == [(0, 6)]
    assert limits(offline) == [(0, 6), (100, 32)]


def test_unknown_evse_and_empty_window_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        composite_schedule([], 2, T0, 60, CONFIG)
    with pytest.raises(LocalProtocolError):
        composite_schedule([], 1, T0, 0, CONFIG)


# --- recurrence across midnight and daylight-saving changes ----------------------------------


def evening(*, local: bool, start: datetime) -> InstalledProfile:
    """6 A from 17:00 to 20:00 (of ``start``'s clock), 16 A otherwise, daily."""
    return on(
        1,
        profile(
            1,
            "TxDefaultProfile",
            [(0, 6), (3 * 3600, 16)],
            kind="Recurring",
            recurrency="Daily",
            start=start,
            duration=86400,
            use_local_time=True if local else None,
        ),
    )


def six_amp_window(
    entry: InstalledProfile, day: datetime, config: SmartChargingConfig
) -> list[int]:
    result = composite_schedule([entry], 1, day, 86400, config)
    return [p.start_period // 3600 for p in result.periods if p.limit == 6] + [
        p.start_period // 3600 for p in result.periods if p.limit == 16 and p.start_period
    ]


def test_daily_recurrence_across_midnight() -> None:
    """22:00-01:00 at 6 A: the period that starts before midnight carries on after it."""
    entry = on(
        1,
        profile(
            1,
            "TxDefaultProfile",
            [(0, 6), (3 * 3600, 16)],
            kind="Recurring",
            recurrency="Daily",
            start=at(2024, 1, 1, 22),
            duration=86400,
        ),
    )
    result = composite_schedule([entry], 1, at(2024, 3, 10, 20), 8 * 3600, CONFIG)
    assert limits(result) == [(0, 16), (2 * 3600, 6), (5 * 3600, 16)]
    before_start = composite_schedule([entry], 1, at(2024, 1, 1, 12), 12 * 3600, CONFIG)
    assert limits(before_start) == [(0, 32), (10 * 3600, 6)]  # K01.FR.30: not before it starts


def test_daily_recurrence_in_utc_keeps_its_utc_time_across_dst() -> None:
    """Without useLocalTime a Daily profile recurs every 86,400 s: 17:00-20:00 UTC before
    and after Berlin's spring change (local 18:00 then 19:00)."""
    config = SmartChargingConfig(evses=1, local_time=BERLIN)
    entry = evening(local=False, start=at(2024, 3, 1, 17))
    for day in (at(2024, 3, 30), at(2024, 3, 31), at(2024, 4, 1)):
        assert six_amp_window(entry, day, config) == [17, 20]


@pytest.mark.parametrize(
    ("day", "window"),
    [
        (at(2024, 3, 30), [16, 19]),  # CET, UTC+1
        (at(2024, 3, 31), [15, 18]),  # CEST from 01:00 UTC
        (at(2024, 10, 26), [15, 18]),
        (at(2024, 10, 27), [16, 19]),  # CET again from 01:00 UTC
    ],
)
def test_K01_FR_90_local_time_daily_profile_follows_the_wall_clock(
    day: datetime, window: list[int]
) -> None:
    config = SmartChargingConfig(evses=1, local_time=BERLIN)
    entry = evening(local=True, start=datetime(2024, 3, 1, 17, tzinfo=UTC))  # 17:00 local
    assert six_amp_window(entry, day, config) == window


def test_K01_FR_91_spring_shift_skips_and_autumn_shift_repeats_local_periods() -> None:
    """6 A from 02:00 to 03:00 local time, daily: on the spring day that hour does not
    exist (skipped); on the autumn day it happens twice (two UTC hours)."""
    config = SmartChargingConfig(evses=1, local_time=BERLIN)
    entry = on(
        1,
        profile(
            1,
            "TxDefaultProfile",
            [(0, 16), (2 * 3600, 6), (3 * 3600, 16)],
            kind="Recurring",
            recurrency="Daily",
            start=datetime(2024, 1, 1, tzinfo=UTC),
            duration=86400,
            use_local_time=True,
        ),
    )
    spring = composite_schedule([entry], 1, at(2024, 3, 30, 22), 6 * 3600, config)
    assert limits(spring) == [(0, 16)]
    autumn = composite_schedule([entry], 1, at(2024, 10, 26, 22), 6 * 3600, config)
    assert limits(autumn) == [(0, 16), (2 * 3600, 6), (4 * 3600, 16)]
    ordinary = composite_schedule([entry], 1, at(2024, 11, 2, 22), 6 * 3600, config)
    assert limits(ordinary) == [(0, 16), (3 * 3600, 6), (4 * 3600, 16)]


@settings(deadline=None)
@given(
    day=st.integers(0, 400),
    hour=st.integers(0, 23),
    length=st.integers(1, 23),
    local=st.booleans(),
)
def test_property_daily_recurrence_matches_the_clock_across_midnight_and_dst(
    day: int, hour: int, length: int, local: bool
) -> None:
    """At every hour of two days (spanning midnight, sometimes a DST change), the limit is
    6 A exactly when the profile's clock (UTC, or Berlin's wall clock with useLocalTime)
    shows a time within [hour, hour + length) modulo 24."""
    config = SmartChargingConfig(evses=1, local_time=BERLIN)
    origin = datetime(2024, 1, 1, hour, tzinfo=UTC)
    entry = on(
        1,
        profile(
            1,
            "TxDefaultProfile",
            [(0, 6), (length * 3600, 16)],
            kind="Recurring",
            recurrency="Daily",
            start=origin,
            duration=86400,
            use_local_time=True if local else None,
        ),
    )
    begin = at(2024, 1, 2) + timedelta(days=day)
    result = composite_schedule([entry], 1, begin, 2 * 86400, config)
    for step in range(0, 2 * 86400, 1800):
        moment = begin + timedelta(seconds=step)
        clock_hour = moment.astimezone(BERLIN).hour if local else moment.hour
        expected = 6 if (clock_hour - hour) % 24 < length else 16
        period = result.period_at(moment)
        assert period is not None and period.limit == expected, (moment, clock_hour)


# --- properties against a brute-force oracle ---------------------------------------------------

VOLTS = 230.0
PURPOSES = (
    "ChargingStationMaxProfile",
    "TxDefaultProfile",
    "TxProfile",
    "ChargingStationExternalConstraints",
)


@st.composite
def random_profile(draw: st.DrawFn, profile_id: int) -> InstalledProfile:
    purpose = draw(st.sampled_from(PURPOSES))
    # Relative schedules count from a transaction: not for station-wide limits (K01.FR.38;
    # the station lays external limits on the clock itself).
    relative = purpose in ("TxDefaultProfile", "TxProfile")
    kinds = ["Absolute", "Recurring"] + (["Relative"] if relative else [])
    kind = draw(st.sampled_from(kinds))
    unit = draw(st.sampled_from(["A", "W"]))
    phases = draw(st.sampled_from([None, 1, 3]))
    count = draw(st.integers(1, 4))
    starts = sorted(draw(st.sets(st.integers(1, 60), min_size=count - 1, max_size=count - 1)))
    periods = [
        (
            minute * 60,
            float(draw(st.integers(0, 40) if unit == "A" else st.integers(0, 25000))),
            phases,
        )
        for minute in [0, *starts]
    ]
    offset = timedelta(minutes=draw(st.integers(-120, 120)))
    valid_from = draw(st.none() | st.integers(-60, 120).map(lambda m: T0 + timedelta(minutes=m)))
    valid_to = None
    if draw(st.booleans()):
        base = valid_from or T0 - timedelta(hours=1)
        valid_to = base + timedelta(minutes=draw(st.integers(1, 180)))
    evse = (
        0
        if purpose == PURPOSES[0]
        else draw(st.sampled_from([0, 1]))
        if purpose != "TxProfile"
        else 1
    )
    return on(
        evse,
        profile(
            profile_id,
            purpose,
            periods,
            stack=draw(st.integers(0, 3)),
            kind=kind,
            recurrency="Daily" if kind == "Recurring" else None,
            start=T0 + offset,
            duration=draw(st.none() | st.integers(1, 120).map(lambda m: m * 60)),
            unit=unit,
            valid_from=valid_from,
            valid_to=valid_to,
        ),
        transaction_id="tx1" if purpose == "TxProfile" else None,
        source="EMS" if purpose == PURPOSES[3] else "CSO",
    )


profile_sets = st.integers(0, 6).flatmap(
    lambda n: st.tuples(*(random_profile(i + 1) for i in range(n)))
)


def oracle_period(entry: InstalledProfile, moment: datetime, anchor: datetime) -> Any:
    """The period of ``entry`` in force at ``moment``, by direct reading of K01."""
    item = entry.profile
    if item.valid_from is not None and moment < item.valid_from:
        return None
    if item.valid_to is not None and moment >= item.valid_to:
        return None
    schedule = item.schedule
    if item.kind is Kind.RELATIVE:
        begin = anchor
    else:
        assert schedule.start_schedule is not None
        begin = schedule.start_schedule
        if item.kind is Kind.RECURRING:
            if moment < begin:
                return None
            whole_days = (moment - begin) // timedelta(days=1)
            begin += timedelta(days=whole_days)
    offset = (moment - begin).total_seconds()
    if offset < 0 or (schedule.duration is not None and offset >= schedule.duration):
        return None
    found = None
    for period in schedule.periods:
        if period.start_period <= offset:
            found = period
    return found


def oracle_applicable(
    entries: tuple[InstalledProfile, ...], moment: datetime
) -> list[tuple[Any, str]]:
    """(period, unit) of each purpose's leading profile at ``moment`` for EVSE 1 with
    transaction tx1 started at T0."""
    leading: dict[str, list[tuple[int, bool, Any, str]]] = {}
    for entry in entries:
        period = oracle_period(entry, moment, T0)
        if period is None:
            continue
        purpose = entry.purpose.value
        if entry.purpose is Purpose.EXTERNAL and entry.evse_id == 0:
            purpose += "@0"  # caps the total (K12.FR.01): it counts beside the EVSE's own
        leading.setdefault(purpose, []).append(
            (
                entry.profile.stack_level,
                entry.evse_id != 0,
                period,
                entry.profile.schedule.rate_unit.value,
            )
        )
    out = []
    for purpose, found in leading.items():
        top = max(level for level, *_ in found)
        chosen = [f for f in found if f[0] == top]
        if purpose == "TxDefaultProfile" and any(f[1] for f in chosen):
            chosen = [f for f in chosen if f[1]]
        if purpose == "TxDefaultProfile" and "TxProfile" in leading:
            continue
        out += [(f[2], f[3]) for f in chosen]
    return out


@settings(deadline=None)
@given(entries=profile_sets, unit=st.sampled_from(["A", "W"]))
def test_property_composite_never_exceeds_an_applicable_limit_and_equals_the_lowest(
    entries: tuple[InstalledProfile, ...], unit: str
) -> None:
    """SC.01, K08.FR.04: at every minute of the window the composite limit, taken with the
    phases it says are in use, is within every applicable limit; and it is the lowest of
    them (or of the hardware's)."""
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=32)})
    start = T0 - timedelta(minutes=30)
    result = composite_schedule(entries, 1, start, 4 * 3600, config, unit=unit, sessions=TX)
    for minute in range(0, 4 * 60):
        moment = start + timedelta(minutes=minute)
        period = result.period_at(moment)
        assert period is not None
        phases = period.number_phases or 3
        as_amps = period.limit if unit == "A" else period.limit / (VOLTS * phases)
        applicable = oracle_applicable(entries, moment)
        bounds = [32.0]
        for p, p_unit in applicable:
            bounds.append(p.limit if p_unit == "A" else p.limit / (VOLTS * phases))
        # Never above any applicable limit (tolerance: rounding down to 0.1 only lowers).
        assert as_amps <= min(bounds) + 1e-6, (moment, period, applicable)
        # And the lowest of them, up to the 0.1 rounding of a converted value.
        tolerance = 1e-6 if unit == "A" else 0.1 / (VOLTS * phases) + 1e-6
        assert as_amps >= min(bounds) - 0.1 - tolerance, (moment, period, applicable)


@settings(deadline=None)
@given(entries=profile_sets, short=st.integers(1, 3 * 3600), extra=st.integers(0, 3 * 3600))
def test_property_periods_strictly_ordered_and_shorter_requests_give_prefixes(
    entries: tuple[InstalledProfile, ...], short: int, extra: int
) -> None:
    config = SmartChargingConfig(evses=1)
    long = composite_schedule(entries, 1, T0, short + extra, config, sessions=TX)
    starts = [p.start_period for p in long.periods]
    assert starts[0] == 0 and all(a < b for a, b in itertools.pairwise(starts))
    assert all(s < long.duration for s in starts)
    assert all(a != b for a, b in itertools.pairwise(long.periods))
    assert composite_schedule(entries, 1, T0, short, config, sessions=TX) == long.cut(short)
    for evse_id in (0, 1):
        station = composite_schedule(entries, evse_id, T0, short + extra, config, sessions=TX)
        assert station.periods[0].start_period == 0


@settings(deadline=None)
@given(
    value=st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 1)),
    phases=st.sampled_from([0, 1, 2, 3]),
    volts=st.sampled_from([110.0, 230.0, 400.0]),
)
def test_property_amps_watts_round_trip_within_rounding(
    value: float, phases: int, volts: float
) -> None:
    """K01.FR.50/51: A -> W -> A gives the value back within 0.1 A, W -> A -> W within one
    0.1 A step's worth of watts; conversion never raises a value."""
    a, w = RateUnit.A, RateUnit.W
    watts = convert(value, a, w, phases, volts)
    assert watts <= value * volts * max(phases, 1) + 1e-6
    assert abs(convert(watts, w, a, phases, volts) - value) <= 0.1 + 1e-9
    amps = convert(value * 100, w, a, phases, volts)
    assert amps * volts * max(phases, 1) <= value * 100 + 1e-6
    back = convert(amps, a, w, phases, volts)
    assert abs(back - value * 100) <= 0.1 * volts * max(phases, 1) + 0.1 + 1e-6


def test_limit_in_force_gives_the_next_change() -> None:
    item = profile(1, "TxDefaultProfile", [(0, 6), (600, 10)], duration=1200)
    period, nxt = limit_in_force([on(1, item)], 1, T0 + timedelta(seconds=60), CONFIG)
    assert period.limit == 6 and nxt == T0 + timedelta(seconds=600)
    period, nxt = limit_in_force([on(1, item)], 1, T0 + timedelta(seconds=1300), CONFIG)
    assert period.limit == 32 and nxt is None


def test_infinite_limits_only_without_hardware() -> None:
    result = composite_schedule([], 1, T0, 60, CONFIG, hardware=False)
    assert math.isinf(result.periods[0].limit)


def test_external_purpose_on_the_evse_and_the_station_both_count() -> None:
    profiles = [
        on(0, profile(1, Purpose.EXTERNAL, [(0, 20)]), source="EMS"),
        on(1, profile(2, Purpose.EXTERNAL, [(0, 12)]), source="SO"),
    ]
    assert limits(composite_schedule(profiles, 1, T0, 60, CONFIG)) == [(0, 12)]
    assert limits(composite_schedule(profiles, 0, T0, 60, CONFIG)) == [(0, 12)]


def test_K01_FR_46_K01_FR_47_phase_to_use_reported_only_when_given() -> None:
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=32, phase_switching=True)})
    given = profile(1, "TxDefaultProfile", [(0, 16, 1)])
    given = attrs.evolve(
        given,
        schedules=[
            attrs.evolve(
                given.schedule,
                periods=[attrs.evolve(given.schedule.periods[0], phase_to_use=2)],
            )
        ],
    )
    result = composite_schedule([on(1, given)], 1, T0, 60, config)
    assert [(p.number_phases, p.phase_to_use) for p in result.periods] == [(1, 2)]
    chosen = profile(1, "TxDefaultProfile", [(0, 16, 1)])  # the station picks the phase
    result = composite_schedule([on(1, chosen)], 1, T0, 60, config)
    assert [(p.number_phases, p.phase_to_use) for p in result.periods] == [(1, None)]


def test_K01_FR_49_K01_FR_50_watts_per_phase_with_three_phases_by_default() -> None:
    """Current per phase = limit / (line voltage x numberPhases), 3 when not given."""
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=63)})
    three = profile(1, "TxDefaultProfile", [(0, 11040)], unit="W")
    assert limits(composite_schedule([on(1, three)], 1, T0, 60, config)) == [(0, 16)]
    one = profile(1, "TxDefaultProfile", [(0, 11040, 1)], unit="W")
    assert limits(composite_schedule([on(1, one)], 1, T0, 60, config)) == [(0, 48)]


def test_K01_FR_51_amps_limit_each_phase_not_their_sum() -> None:
    config = SmartChargingConfig(evses={1: EvseLimits(max_current=63)})
    amps = profile(1, "TxDefaultProfile", [(0, 16)])
    result = composite_schedule([on(1, amps)], 1, T0, 60, config, unit="W")
    assert limits(result) == [(0, 16 * 230 * 3)]
    one = profile(1, "TxDefaultProfile", [(0, 16, 1)])
    assert limits(composite_schedule([on(1, one)], 1, T0, 60, config, unit="W")) == [(0, 16 * 230)]
