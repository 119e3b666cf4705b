"""Whether a charging profile may be installed: the same rules for the station that
receives it and the CSMS that is about to send it (2.x K01, K04.FR.03, K05; 1.6 §3.13,
§5.16, §7.8-7.14 with the errata).

``profile_problems`` lists every rule a profile breaks, each with the requirement it comes
from and the 2.x ``statusInfo.reasonCode`` to answer with; ``check_profile`` gives the first.
What the station knows and the CSMS may not (the running transactions) is optional: rules
that need it are skipped when it is not given.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Mapping

import attrs

from .config import SmartChargingConfig
from .model import ChargingProfile, ChargingSchedule, Kind, Purpose
from .store import InstalledProfile

#: 2.1 period fields that ask for more than a charging limit (V2X setpoints, discharging,
#: per-phase limits, frequency curves): not carried out here, so refused.
_UNSUPPORTED_PERIOD_FIELDS = (
    "limit_l2",
    "limit_l3",
    "discharge_limit",
    "discharge_limit_l2",
    "discharge_limit_l3",
    "setpoint",
    "setpoint_l2",
    "setpoint_l3",
    "setpoint_reactive",
    "setpoint_reactive_l2",
    "setpoint_reactive_l3",
    "v2x_baseline",
    "v2x_freq_watt_curve",
    "v2x_signal_watt_curve",
)


@attrs.frozen(kw_only=True)
class Rejection:
    """A rule the profile breaks: ``rule`` names the requirement, ``reason_code`` is the
    2.x statusInfo reasonCode for the answer, ``detail`` says what is wrong."""

    rule: str
    reason_code: str
    detail: str


def check_profile(
    profile: ChargingProfile,
    evse_id: int,
    config: SmartChargingConfig,
    *,
    version: str,
    installed: Iterable[InstalledProfile] = (),
    transactions: Mapping[int, Collection[str | int]] | None = None,
    from_csms: bool = True,
    remote_start: bool = False,
) -> Rejection | None:
    """The first rule ``profile`` (for ``evse_id``) breaks, or None. ``installed``: the
    profiles already there; ``transactions``: running transaction ids by EVSE (station
    side); ``remote_start``: the profile came in a Remote/RequestStartTransaction (K05)."""
    return next(
        profile_problems(
            profile,
            evse_id,
            config,
            version=version,
            installed=installed,
            transactions=transactions,
            from_csms=from_csms,
            remote_start=remote_start,
        ),
        None,
    )


def profile_problems(
    profile: ChargingProfile,
    evse_id: int,
    config: SmartChargingConfig,
    *,
    version: str,
    installed: Iterable[InstalledProfile] = (),
    transactions: Mapping[int, Collection[str | int]] | None = None,
    from_csms: bool = True,
    remote_start: bool = False,
) -> Iterator[Rejection]:
    """Every rule ``profile`` breaks, in the order a station checks them."""
    v16 = version == "1.6"
    others = [e for e in installed if e.id != profile.id]
    same_id = next((e for e in installed if e.id == profile.id), None)

    def no(rule: str, reason: str, detail: str) -> Rejection:
        return Rejection(rule=rule, reason_code=reason, detail=detail)

    # where
    if evse_id != 0 and evse_id not in config.evses:
        yield no("K01.FR.28", "UnknownEVSE", f"no EVSE {evse_id}")
        return
    # purpose
    purpose = profile.purpose
    if purpose is Purpose.EXTERNAL and from_csms:
        yield no("K01.FR.22", "InvalidProfile", "only the station sets external constraints")
    if purpose in (Purpose.PRIORITY, Purpose.LOCAL_GENERATION):
        yield no("K01.FR.120", "UnsupportedPurpose", f"{purpose.value} is not supported")
    if purpose is Purpose.STATION_MAX:
        if evse_id != 0:
            rule = "1.6 §3.13.1" if v16 else "K04.FR.03"
            yield no(rule, "InvalidProfile", "a station maximum belongs on EVSE 0")
        if profile.kind is Kind.RELATIVE:
            yield no("K01.FR.38", "InvalidProfile", "a station maximum cannot be Relative")
    if purpose is Purpose.TX and evse_id == 0 and not remote_start:
        rule = "1.6 §3.13.1" if v16 else "K01.FR.16"
        yield no(rule, "InvalidProfile", "a TxProfile belongs on an EVSE, not EVSE 0")
    if remote_start:
        yield from _remote_start_problems(profile, v16)
    elif purpose is Purpose.TX and profile.transaction_id is None and not v16:
        yield no("K01.FR.03", "InvalidProfile", "a TxProfile names its transaction")
    if not remote_start and purpose is Purpose.TX and evse_id != 0 and transactions is not None:
        yield from _transaction_problems(profile, evse_id, transactions, v16)
    # kind
    yield from _kind_problems(profile, v16)
    # stack level and validity
    if not 0 <= profile.stack_level <= config.max_stack_level:
        rule = (
            "1.6 §9.4.1 ChargeProfileMaxStackLevel"
            if v16
            else "SmartChargingCtrlr.ProfileStackLevel"
        )
        yield no(rule, "InvalidProfile", f"stackLevel must be 0..{config.max_stack_level}")
    if profile.valid_from and profile.valid_to and profile.valid_from >= profile.valid_to:
        yield no("K01.FR.36/37", "InvalidProfile", "validTo is not after validFrom: never valid")
    # schedules
    if not v16 and len(profile.schedules) > 1 and purpose is not Purpose.TX:
        yield no("K01.FR.34", "InvalidProfile", "only an ISO 15118 TxProfile has more schedules")
    for schedule in profile.schedules:
        yield from _schedule_problems(schedule, profile, evse_id, config, version)
    # identity and neighbours
    limit = config.max_external_constraints_id
    if from_csms and limit is not None and profile.id <= limit:
        yield no("K01.FR.81", "InvalidProfileId", f"ids up to {limit} are the station's")
    if same_id is not None and same_id.purpose is Purpose.EXTERNAL and from_csms:
        yield no("K01.FR.05", "InvalidProfile", "external constraints cannot be replaced")
    if not v16:
        yield from _duplicate_problems(profile, evse_id, others)
    yield from _phase_conflicts(profile, evse_id, others)
    replaced = same_id is not None or (
        v16
        and any(
            e.evse_id == evse_id
            and e.purpose is purpose
            and e.profile.stack_level == profile.stack_level
            and purpose is not Purpose.TX
            for e in others
        )
    )
    if not replaced and len(others) >= config.max_profiles:
        rule = "1.6 §9.4.5 MaxChargingProfilesInstalled" if v16 else "Entries[ChargingProfiles]"
        yield no(rule, "NoCapacity", f"{config.max_profiles} profiles are installed already")


def _remote_start_problems(profile: ChargingProfile, v16: bool) -> Iterator[Rejection]:
    if profile.purpose is not Purpose.TX:
        rule = "1.6 §5.16.2" if v16 else "K05.FR.02"
        yield Rejection(rule=rule, reason_code="InvalidProfile", detail="must be a TxProfile")
    if profile.transaction_id is not None:
        rule = "1.6 §5.16.2" if v16 else "F01.FR.11"
        yield Rejection(
            rule=rule, reason_code="InvalidProfile", detail="no transactionId before the start"
        )


def _transaction_problems(
    profile: ChargingProfile,
    evse_id: int,
    transactions: Mapping[int, Collection[str | int]],
    v16: bool,
) -> Iterator[Rejection]:
    running = transactions.get(evse_id, ())
    if not running:
        rule = "1.6 §3.13.1" if v16 else "K01.FR.09"
        yield Rejection(rule=rule, reason_code="TxNotFound", detail=f"no transaction on {evse_id}")
    elif profile.transaction_id is not None and profile.transaction_id not in running:
        rule = "1.6 §7.8" if v16 else "K01.FR.33"
        yield Rejection(
            rule=rule,
            reason_code="TxNotFound",
            detail=f"transaction {profile.transaction_id!r} does not run on {evse_id}",
        )


def _kind_problems(profile: ChargingProfile, v16: bool) -> Iterator[Rejection]:
    kind = profile.kind
    if kind is Kind.DYNAMIC:
        yield Rejection(rule="K01.FR.121", reason_code="UnsupportedKind", detail="no Dynamic")
        return
    for schedule in profile.schedules:
        if kind in (Kind.ABSOLUTE, Kind.RECURRING) and schedule.start_schedule is None:
            yield Rejection(
                rule="1.6 §7.9" if v16 else "K01.FR.40",
                reason_code="InvalidSchedule",
                detail=f"a {kind.value} schedule needs startSchedule",
            )
        if kind is Kind.RELATIVE and schedule.start_schedule is not None:
            yield Rejection(
                rule="1.6 §7.13" if v16 else "K01.FR.41",
                reason_code="InvalidSchedule",
                detail="a Relative schedule has no startSchedule",
            )
    if (kind is Kind.RECURRING) != (profile.recurrency is not None):
        yield Rejection(
            rule="1.6 §7.8 (errata 3.56)" if v16 else "2.x §3.3 ChargingProfileKind",
            reason_code="InvalidProfile",
            detail="recurrencyKind goes with Recurring profiles, and only with them",
        )
    if "dyn_update_interval" in profile.extras or "dyn_update_time" in profile.extras:
        yield Rejection(
            rule="K01.FR.122", reason_code="InvalidProfile", detail="dynUpdate* only for Dynamic"
        )


def _schedule_problems(
    schedule: ChargingSchedule,
    profile: ChargingProfile,
    evse_id: int,
    config: SmartChargingConfig,
    version: str,
) -> Iterator[Rejection]:
    v16 = version == "1.6"

    def no(rule: str, reason: str, detail: str) -> Rejection:
        return Rejection(rule=rule, reason_code=reason, detail=detail)

    if schedule.rate_unit not in config.rate_units:
        rule = "1.6 §9.4.2" if v16 else "K01.FR.26"
        yield no(rule, "UnsupportedRateUnit", f"unit {schedule.rate_unit.value} not allowed")
    periods = schedule.periods
    if not periods:
        yield no("1.6 §7.13" if v16 else "K01.FR.31", "InvalidSchedule", "no periods")
        return
    if len(periods) > config.max_periods:
        rule = (
            "1.6 §9.4.3 ChargingScheduleMaxPeriods"
            if v16
            else "SmartChargingCtrlr.PeriodsPerSchedule"
        )
        yield no(rule, "InvalidSchedule", f"more than {config.max_periods} periods")
    if periods[0].start_period != 0:
        rule = "1.6 §7.13 (errata 3.45)" if v16 else "K01.FR.31"
        yield no(rule, "InvalidSchedule", "the first period starts at 0")
    starts = [p.start_period for p in periods]
    if any(b <= a for a, b in itertools.pairwise(starts)):
        yield no("1.6 §7.14" if v16 else "K01.FR.35", "InvalidSchedule", "periods out of order")
    if schedule.duration is not None and schedule.duration < 0:
        yield no("1.6 §7.13" if v16 else "K01.FR.11", "InvalidSchedule", "negative duration")
    if schedule.min_charging_rate is not None and schedule.min_charging_rate < 0:
        yield no("K01.FR.21", "InvalidSchedule", "negative minChargingRate")
    if schedule.use_local_time and config.local_time is None:
        yield no("K01.FR.123", "InvalidSchedule", "no local time zone configured")
    if schedule.randomized_delay:
        if profile.purpose not in (Purpose.TX, Purpose.TX_DEFAULT):
            yield no("K01.FR.95", "InvalidSchedule", "randomizedDelay only in Tx(Default)")
        else:
            yield no("K01.FR.92", "InvalidSchedule", "randomizedDelay is not supported")
    hardware = config.evses.get(evse_id)
    dc = hardware is not None and hardware.is_dc
    for period in periods:
        if period.limit is not None and period.limit < 0:
            yield no("1.6 §7.14" if v16 else "K01.FR.51", "InvalidSchedule", "negative limit")
        unsupported = [f for f in _UNSUPPORTED_PERIOD_FIELDS if f in period.extras]
        mode = period.extras.get("operation_mode")
        if mode is not None and str(getattr(mode, "value", mode)) != "ChargingOnly":
            unsupported.append("operation_mode")
        if unsupported:
            yield no("2.1 §3.4", "InvalidSchedule", f"not supported: {', '.join(unsupported)}")
        phases, to_use = period.number_phases, period.phase_to_use
        if phases is not None and not 1 <= phases <= 3:
            yield no("K01.FR.43", "InvalidSchedule", f"numberPhases {phases}")
        elif (
            phases is not None
            and hardware is not None
            and not dc
            and phases < hardware.phases
            and not hardware.reduces_phases
        ):
            yield no("K01.FR.43", "InvalidSchedule", f"cannot keep to {phases} phases")
        if dc and (phases is not None or to_use is not None) and version == "2.1":
            yield no("K01.FR.44", "NoPhaseForDC", "phases given for a DC EVSE")
        if to_use is not None:
            if phases != 1:
                yield no("K01.FR.19", "InvalidSchedule", "phaseToUse needs numberPhases 1")
            switching = (
                [config.evses[evse_id]] if evse_id in config.evses else list(config.evses.values())
            )
            if any(not h.phase_switching and not h.is_dc for h in switching):
                yield no("K01.FR.48", "InvalidSchedule", "the EVSE cannot switch phases")


def _overlap(a: ChargingProfile, b: ChargingProfile) -> bool:
    """Whether the validity periods of ``a`` and ``b`` overlap."""
    start_a, end_a = a.valid_from, a.valid_to
    start_b, end_b = b.valid_from, b.valid_to
    if end_a is not None and start_b is not None and end_a <= start_b:
        return False
    return not (end_b is not None and start_a is not None and end_b <= start_a)


def _duplicate_problems(
    profile: ChargingProfile, evse_id: int, others: list[InstalledProfile]
) -> Iterator[Rejection]:
    purpose, level = profile.purpose, profile.stack_level
    for other in others:
        if other.purpose is not purpose or other.profile.stack_level != level:
            continue
        if purpose is Purpose.TX:
            if (
                profile.transaction_id is not None
                and other.transaction_id == profile.transaction_id
            ):
                yield Rejection(
                    rule="K01.FR.39",
                    reason_code="DuplicateProfile",
                    detail=f"profile {other.id} has this stackLevel for this transaction",
                )
            continue
        if purpose is Purpose.TX_DEFAULT and evse_id == 0 and other.evse_id != 0:
            yield Rejection(
                rule="K01.FR.52",
                reason_code="DuplicateProfile",
                detail=f"profile {other.id} has this stackLevel on EVSE {other.evse_id}",
            )
        elif purpose is Purpose.TX_DEFAULT and evse_id != 0 and other.evse_id == 0:
            yield Rejection(
                rule="K01.FR.53",
                reason_code="DuplicateProfile",
                detail=f"profile {other.id} has this stackLevel on EVSE 0",
            )
        elif other.evse_id == evse_id and _overlap(profile, other.profile):
            yield Rejection(
                rule="K01.FR.06",
                reason_code="DuplicateProfile",
                detail=f"profile {other.id} has this stackLevel and purpose here",
            )


def _phases_to_use(profile: ChargingProfile) -> set[int]:
    return {
        p.phase_to_use for s in profile.schedules for p in s.periods if p.phase_to_use is not None
    }


def _phase_conflicts(
    profile: ChargingProfile, evse_id: int, others: list[InstalledProfile]
) -> Iterator[Rejection]:
    """Refuse a phaseToUse that contradicts one of a station-wide limit in force on the
    same EVSE (2.x errata 2.36, 2.1 §3.8)."""
    mine = _phases_to_use(profile)
    if not mine:
        return
    caps = (Purpose.STATION_MAX, Purpose.EXTERNAL)
    for other in others:
        related = other.evse_id in (0, evse_id) or evse_id == 0
        if not related or (profile.purpose in caps) == (other.purpose in caps):
            continue
        theirs = _phases_to_use(other.profile)
        if theirs and theirs != mine:
            yield Rejection(
                rule="2.x §3.7 phaseToUse",
                reason_code="InvalidSchedule",
                detail=f"phaseToUse conflicts with profile {other.id}",
            )
