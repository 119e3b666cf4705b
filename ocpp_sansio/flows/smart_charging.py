"""Smart charging, station side (1.6 §3.13, §5.5, §5.7, §5.16; 2.x K01-K17).

``SmartCharging`` answers SetChargingProfile, ClearChargingProfile, GetChargingProfiles
(then ReportChargingProfiles) and GetCompositeSchedule from a ``ProfileStore`` and the pure
composite schedule of ``ocpp_sansio.smart_charging``, takes a remote start's TxProfile
(K05), keeps external limits the application reports (K11-K13) and tells the application
the limit in force on each EVSE whenever it changes, with the time of the next change
(``LimitChanged``; feed ``next_deadline``/``handle_timer``). Transactions come from the
shared ``Activity``; a transaction's TxProfiles go when it ends. The CSMS side is
``ocpp_sansio.flows.smart_charging_csms``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import attrs

from ..errors import LocalProtocolError
from ..events import (
    Event,
    Reconnected,
    RegistrationChanged,
    RegistrationStatus,
    RequestReceived,
)
from ..smart_charging.composite import (
    HORIZON,
    Session,
    composite_schedule,
    limits_in_force,
)
from ..smart_charging.config import SmartChargingConfig
from ..smart_charging.model import (
    CSO,
    STATION_OWNED_PURPOSES,
    ChargingProfile,
    ChargingSchedule,
    CompositeSchedule,
    Kind,
    Purpose,
    RateUnit,
    SchedulePeriod,
    profile_from_message,
    profile_to_message,
    schedule_to_message,
)
from ..smart_charging.store import InstalledProfile, ProfileStore
from ..smart_charging.validate import Rejection, check_profile
from ..station import StationCore
from ._base import (
    Activity,
    Emitter,
    FlowEvent,
    Outbox,
    WallClock,
    WallClocked,
    build,
    core_time,
)
from ._store import messages_for
from .remote import RemoteStartAccepted

_ACTIONS = frozenset(
    {"SetChargingProfile", "ClearChargingProfile", "GetChargingProfiles", "GetCompositeSchedule"}
)


# --- station events -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LimitChanged(FlowEvent):
    """The limit in force on ``evse_id`` (0: the grid connection), or when it next changes,
    changed: apply it. ``next_change`` (wall clock) / ``next_change_at`` (core time) is when
    it changes next by itself, None when not within 8 days (the flow looks again then);
    the flow tells you again at that time. ``significant``:
    it moved by more than LimitChangeSignificance percent (SC.03), the threshold for
    telling the CSMS (2.x TransactionEvent ChargingRateChanged, K11.FR.04, K13.FR.03)."""

    evse_id: int
    limit: float
    rate_unit: RateUnit
    number_phases: int | None
    phase_to_use: int | None
    min_charging_rate: float | None
    previous: float | None
    significant: bool
    next_change: datetime | None
    next_change_at: float | None


@attrs.frozen(kw_only=True)
class ChargingProfileInstalled(FlowEvent):
    """A profile was installed (``replaced``: what it replaced); persist the store's
    ``snapshot()`` (K01.FR.27). ``action``: SetChargingProfile, RemoteStart or External."""

    entry: InstalledProfile
    replaced: tuple[InstalledProfile, ...]
    action: str


@attrs.frozen(kw_only=True)
class ChargingProfileRefused(FlowEvent):
    """A profile was not installed, and why."""

    evse_id: int | None
    profile: ChargingProfile
    rejection: Rejection
    action: str


@attrs.frozen(kw_only=True)
class ChargingProfilesCleared(FlowEvent):
    """Profiles were removed. ``reason``: ClearChargingProfile, TransactionEnded (K02.FR.05),
    External (K13) or Offline (2.1 invalidAfterOfflineDuration, K01.FR.102)."""

    entries: tuple[InstalledProfile, ...]
    reason: str


@attrs.define
class _Running:
    ids: set[str | int]
    started: float
    ready: float | None = None


@attrs.frozen
class _InForce:
    limit: float
    phases: int | None
    phase_to_use: int | None
    min_rate: float | None
    next_change: datetime | None
    #: When to look again (core time): the next change, or the horizon.
    next_at: float = attrs.field(eq=False)


class SmartCharging(Emitter, WallClocked):
    """The station side of smart charging.

    ``config`` holds the configured limits and the hardware (``SmartChargingConfig``;
    ``SmartChargingConfig.from_settings`` reads them from the 1.6 keys or the device model).
    ``activity``: the ``Activity`` the transaction flow keeps (a new one when absent).
    ``store``: a ``ProfileStore`` to start from (persist its ``snapshot()`` on every
    ``ChargingProfileInstalled`` / ``ChargingProfilesCleared``). ``profiles_per_report``:
    the most profiles one ReportChargingProfiles carries. ``remote_start_timeout``: how long
    a remote start's TxProfile waits for its transaction. ``max_composite_duration``: longer
    GetCompositeSchedule requests are Rejected (K08.FR.05: more than the station reports).
    """

    def __init__(
        self,
        core: StationCore,
        *,
        config: SmartChargingConfig | None = None,
        activity: Activity | None = None,
        store: ProfileStore | None = None,
        clock: WallClock | None = None,
        profiles_per_report: int = 16,
        remote_start_timeout: float = 120.0,
        max_composite_duration: int = 31 * 86400,
    ) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.config = config or SmartChargingConfig(evses=core.config.connectors)
        self.activity = activity or Activity()
        self.store = store or ProfileStore(self.version)
        if self.store.version != self.version:
            raise LocalProtocolError("the store is for another OCPP version")
        self._own_clock = clock
        if profiles_per_report < 1:
            raise LocalProtocolError("profiles_per_report must be >= 1")
        self.profiles_per_report = profiles_per_report
        self.remote_start_timeout = remote_start_timeout
        self.max_composite_duration = max_composite_duration
        self._m = messages_for(self.version)
        self._outbox = Outbox(core)
        self._running: dict[int, _Running] = {}
        self._in_force: dict[int, _InForce] = {}
        self._refreshed = False
        self._offline_seen: float | None = None
        #: When the last outage began, kept until the station is back (K01.FR.102).
        self._went_offline: float | None = None
        #: A remote start's TxProfile waiting for its transaction: EVSE (None: any) ->
        #: (profile, expiry).
        self._waiting: dict[int | None, tuple[ChargingProfile, float]] = {}
        self._next_external_id = -1
        self.activity.subscribe(self._activity_changed)

    # --- what the facade and the application ask ------------------------------------------

    def sessions(self) -> dict[int, Session]:
        """The running transactions by EVSE, as the composite schedule takes them."""
        return {
            evse_id: Session(
                transaction_ids=run.ids,
                started=self.clock(run.started),
                ready=None if run.ready is None else self.clock(run.ready),
            )
            for evse_id, run in self._running.items()
        }

    def get_composite_schedule(
        self, evse_id: int, duration: int, unit: RateUnit | str | None, now: float
    ) -> CompositeSchedule:
        """The composite schedule of ``evse_id`` (0: the grid connection) from ``now`` for
        ``duration`` seconds (K08.FR.02-06). LocalProtocolError for an unknown EVSE or a
        unit the station does not allow (K08.FR.05/07)."""
        if unit is not None and RateUnit(unit) not in self.config.rate_units:
            raise LocalProtocolError(f"rate unit {unit} is not allowed (K08.FR.07)")
        if duration > self.max_composite_duration:
            raise LocalProtocolError(
                f"durations up to {self.max_composite_duration} s are reported (K08.FR.05)"
            )
        return composite_schedule(
            self.store,
            evse_id,
            self.clock(now),
            duration,
            self.config,
            unit=unit,
            sessions=self.sessions(),
            assume_transaction=True,
            offline_since=self._offline_wall(),
        )

    def get_all_composite_schedules(
        self, duration: int, unit: RateUnit | str | None, now: float
    ) -> dict[int, CompositeSchedule]:
        """``get_composite_schedule`` for EVSE 0 and every EVSE."""
        return {
            evse_id: self.get_composite_schedule(evse_id, duration, unit, now)
            for evse_id in (0, *sorted(self.config.evses))
        }

    def limit(self, evse_id: int) -> float | None:
        """The limit last told for ``evse_id`` (None before the first ``refresh``)."""
        state = self._in_force.get(evse_id)
        return None if state is None else state.limit

    def power_path_closed(self, evse_id: int, now: float) -> None:
        """The EVSE is ready to deliver energy (authorized and connected): relative
        schedules of its transaction count from now (K01.FR.42)."""
        run = self._running.get(evse_id)
        if run is None:
            raise LocalProtocolError(f"no transaction on EVSE {evse_id}")
        if run.ready is None:
            run.ready = now
            self.refresh(now)

    def refresh(self, now: float) -> None:
        """Recompute the limit in force on every EVSE; ``LimitChanged`` for each that
        changed (all of them, the first time). Call once at start-up."""
        self._refreshed = True
        self._offline_seen = self.core.offline_since
        if self._offline_seen is not None:
            self._went_offline = self._offline_seen
        unit = self.config.default_rate_unit
        found = limits_in_force(
            self.store,
            self.clock(now),
            self.config,
            unit=unit,
            sessions=self.sessions(),
            offline_since=self._offline_wall(),
        )
        for evse_id, (period, nxt) in found.items():
            next_at = now + HORIZON if nxt is None else core_time(nxt, now, self.clock)
            state = _InForce(
                period.limit,
                period.number_phases,
                period.phase_to_use,
                period.min_charging_rate,
                nxt,
                next_at,
            )
            before = self._in_force.get(evse_id)
            self._in_force[evse_id] = state
            if before == state:
                continue
            previous = None if before is None else before.limit
            self._emit(
                LimitChanged(
                    evse_id=evse_id,
                    limit=period.limit,
                    rate_unit=unit,
                    number_phases=period.number_phases,
                    phase_to_use=period.phase_to_use,
                    min_charging_rate=period.min_charging_rate,
                    previous=previous,
                    significant=self._significant(previous, period.limit),
                    next_change=nxt,
                    next_change_at=None if nxt is None else next_at,
                )
            )

    def _significant(self, previous: float | None, limit: float | None) -> bool:
        """Whether ``previous`` -> ``limit`` is worth telling (SC.03): a first value, or
        a change above LimitChangeSignificance percent."""
        if limit is None:
            return False
        if previous is None or previous == limit:
            return previous is None
        if previous == 0 or math.isinf(previous) or math.isinf(limit):
            return True
        return abs(limit - previous) / previous * 100 > self.config.limit_change_significance

    def reconfigure(self, config: SmartChargingConfig, now: float) -> None:
        """New configuration (after SetVariables / ChangeConfiguration); limits recomputed."""
        self.config = config
        self.refresh(now)

    # --- time -----------------------------------------------------------------------------

    def _offline_wall(self) -> datetime | None:
        since = self.core.offline_since
        return None if since is None or self.core.connected else self.clock(since)

    def next_deadline(self) -> float | None:
        deadlines = [s.next_at for s in self._in_force.values()]
        deadlines += [expiry for _profile, expiry in self._waiting.values()]
        if self._refreshed and self.core.offline_since != self._offline_seen:
            deadlines.append(self.core.offline_since or 0.0)  # went offline: look again now
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        for key, (_profile, expiry) in list(self._waiting.items()):
            if expiry <= now:
                del self._waiting[key]
        due = [s.next_at for s in self._in_force.values()]
        offline_changed = self._refreshed and self.core.offline_since != self._offline_seen
        if not self._refreshed or offline_changed or any(at <= now for at in due):
            self.refresh(now)

    # --- transactions ---------------------------------------------------------------------

    def _activity_changed(self, now: float) -> None:
        changed = False
        for evse_id in self.config.evses:
            ids = {t.transaction_id for t in self.activity.transactions(evse_id)}
            run = self._running.get(evse_id)
            if ids and run is None:
                self._running[evse_id] = _Running(ids=set(ids), started=now)
                self._bind_waiting(evse_id, now)
                changed = True
            elif ids and run is not None:
                run.ids |= ids  # 1.6: the local id and then the CSMS's name one transaction
            elif run is not None:
                del self._running[evse_id]
                gone = self.store.drop_transactions(run.ids)
                if gone:
                    self._emit(
                        ChargingProfilesCleared(entries=tuple(gone), reason="TransactionEnded")
                    )
                changed = True
        if changed:
            self.refresh(now)

    def _transactions(self) -> dict[int, set[str | int]]:
        return {evse_id: run.ids for evse_id, run in self._running.items()}

    # --- remote start (K05) ---------------------------------------------------------------

    def remote_start_refusal(self, evse_id: int | None, profile: Any) -> str | None:
        """Why a remote start's charging profile cannot be used (K05.FR.05), or None.
        ``RemoteControl(profiles=…)`` asks this before accepting."""
        candidate = profile_from_message(profile)
        rejection = check_profile(
            candidate,
            evse_id if evse_id is not None else min(self.config.evses),
            self.config,
            version=self.version,
            installed=self.store,
            remote_start=True,
        )
        return None if rejection is None else f"{rejection.rule}: {rejection.detail}"

    def remote_start_accepted(self, event: RemoteStartAccepted, now: float) -> None:
        """A remote start was accepted: its TxProfile applies to the transaction it starts
        (K05.FR.03; 1.6 §5.16.2), at once if that transaction runs already (F01.FR.13),
        else when it starts on the EVSE (or, named none, on any EVSE) within
        ``remote_start_timeout``."""
        if event.charging_profile is None:
            return
        profile = profile_from_message(event.charging_profile)
        evse_id = event.evse_id
        if evse_id is not None and evse_id in self._running:
            self._install_remote(evse_id, profile, now)
            return
        self._waiting[evse_id] = (profile, now + self.remote_start_timeout)

    def _bind_waiting(self, evse_id: int, now: float) -> None:
        waiting = self._waiting.pop(evse_id, None) or self._waiting.pop(None, None)
        if waiting is not None:
            self._install_remote(evse_id, waiting[0], now)

    def _install_remote(self, evse_id: int, profile: ChargingProfile, now: float) -> None:
        run = self._running[evse_id]
        rejection = check_profile(
            profile,
            evse_id,
            self.config,
            version=self.version,
            installed=self.store,
            remote_start=True,
        )
        if rejection is not None:
            self._emit(
                ChargingProfileRefused(
                    evse_id=evse_id, profile=profile, rejection=rejection, action="RemoteStart"
                )
            )
            return
        bound = sorted(run.ids, key=str)[0]
        entry = InstalledProfile(evse_id=evse_id, profile=profile, transaction_id=bound)
        replaced = self.store.install(entry)
        self._emit(
            ChargingProfileInstalled(entry=entry, replaced=tuple(replaced), action="RemoteStart")
        )
        self.refresh(now)

    # --- external limits (K11-K13) --------------------------------------------------------

    def set_external_limit(
        self,
        now: float,
        *,
        source: str,
        evse_id: int = 0,
        limit: float | None = None,
        unit: RateUnit | str | None = None,
        schedule: ChargingSchedule | None = None,
        stack_level: int = 0,
        grid_critical: bool | None = None,
    ) -> InstalledProfile:
        """An external system (``source``: EMS, SO, Other … never CSO, K11.FR.05) limits
        ``evse_id`` (0: the grid connection) to ``limit`` from now on, or by ``schedule``.
        It is kept as a ChargingStationExternalConstraints profile (K11.FR.06, K12.FR.05)
        replacing the previous one of that source there, counts in the composite schedule
        (K11.FR.01, K12.FR.01) and, in 2.x, is reported with NotifyChargingLimit when the
        limit moved by more than LimitChangeSignificance (K11.FR.02/03, K12.FR.02/03)."""
        if source == CSO:
            raise LocalProtocolError("external limits never have source CSO (K11.FR.05)")
        if self.version == "2.0.1" and source not in ("EMS", "Other", "SO"):
            raise LocalProtocolError(
                f"2.0.1 ChargingLimitSource is EMS, Other or SO, not {source!r}"
            )
        if not 0 < len(source) <= 20:
            raise LocalProtocolError("a ChargingLimitSource has 1 to 20 characters")
        if (limit is None) == (schedule is None):
            raise LocalProtocolError("give either limit or schedule")
        wall = self.clock(now).replace(microsecond=0)
        if schedule is None:
            assert limit is not None
            schedule = ChargingSchedule(
                id=1,
                rate_unit=RateUnit(unit or self.config.default_rate_unit),
                periods=(SchedulePeriod(start_period=0, limit=limit),),
                start_schedule=wall,
            )
        else:  # laid on the clock from now when it does not say when it starts
            schedule = attrs.evolve(
                schedule, id=schedule.id or 1, start_schedule=schedule.start_schedule or wall
            )
        previous = self.store.matching(evse_id=evse_id, purpose=Purpose.EXTERNAL, sources=(source,))
        profile_id = previous[0].id if previous else self._new_external_id()
        profile = ChargingProfile(
            id=profile_id,
            stack_level=stack_level,
            purpose=Purpose.EXTERNAL,
            kind=Kind.ABSOLUTE,
            schedules=(schedule,),
        )
        installed = [e for e in self.store if e.id != profile_id]
        rejection = check_profile(
            profile,
            evse_id,
            self.config,
            version=self.version,
            installed=installed,
            from_csms=False,
        )
        if rejection is not None:
            raise LocalProtocolError(f"{rejection.rule}: {rejection.detail}")
        old_limit = self._external_limit(previous, evse_id, wall)
        for old in previous:
            self.store.remove(old.id)
        entry = InstalledProfile(evse_id=evse_id, profile=profile, source=source)
        self.store.install(entry)
        self._emit(
            ChargingProfileInstalled(entry=entry, replaced=tuple(previous), action="External")
        )
        new_limit = self._external_limit([entry], evse_id, wall)
        if self.version != "1.6" and self._significant(old_limit, new_limit):
            self._notify_limit(entry, grid_critical, now)
        self.refresh(now)
        return entry

    def clear_external_limit(self, now: float, *, source: str, evse_id: int = 0) -> bool:
        """The external system released its limit on ``evse_id``: it stops counting
        (K13.FR.01) and, in 2.x, ClearedChargingLimit goes out (K13.FR.02). False when
        there was none."""
        gone = self.store.remove_where(
            lambda e: (
                not (e.purpose is Purpose.EXTERNAL and e.source == source and e.evse_id == evse_id)
            )
        )
        if not gone:
            return False
        self._emit(ChargingProfilesCleared(entries=tuple(gone), reason="External"))
        if self.version != "1.6":
            m = self._m
            limit_source = m.ChargingLimitSourceEnum(source) if self.version == "2.0.1" else source
            self._outbox.submit(
                m.ClearedChargingLimitRequest(
                    charging_limit_source=limit_source, evse_id=evse_id or None
                ),
                now,
            )
        self.refresh(now)
        return True

    def _new_external_id(self) -> int:
        """K11.FR.06 recommends negative ids; they also stay below any
        MaxExternalConstraintsId (K01.FR.82)."""
        while self._next_external_id in self.store:
            self._next_external_id -= 1
        chosen = self._next_external_id
        self._next_external_id -= 1
        return chosen

    def _external_limit(
        self, entries: list[InstalledProfile], evse_id: int, wall: datetime
    ) -> float | None:
        """The limit ``entries`` alone impose at ``wall`` (None: there are none)."""
        if not entries:
            return None
        schedule = composite_schedule(
            entries, evse_id, wall, 1, self.config, assume_transaction=False, hardware=False
        )
        return schedule.periods[0].limit

    def _notify_limit(
        self, entry: InstalledProfile, grid_critical: bool | None, now: float
    ) -> None:
        m = self._m
        source: Any = entry.source
        if self.version == "2.0.1":
            source = m.ChargingLimitSourceEnum(source)
        schedules = None
        if self.config.notify_with_schedules:
            schedules = [
                schedule_to_message(s, self.version, keep=False) for s in entry.profile.schedules
            ]
        self._outbox.submit(
            m.NotifyChargingLimitRequest(
                charging_limit=m.ChargingLimit(
                    charging_limit_source=source, is_grid_critical=grid_critical
                ),
                charging_schedule=schedules,
                evse_id=entry.evse_id or None,
            ),
            now,
        )

    # --- the CSMS's requests --------------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        if self._outbox.handle_event(event, now):
            return True
        if isinstance(event, Reconnected):
            self._back_online(now, event.offline_for)
            return False
        if isinstance(event, RegistrationChanged) and event.status is RegistrationStatus.ACCEPTED:
            self._back_online(now, None)
            return False
        if not isinstance(event, RequestReceived) or event.action not in _ACTIONS:
            if not self._refreshed:
                self.refresh(now)
            return False
        if not self.config.enabled:
            self.core.send_error(
                event.message_id, "NotSupported", "smart charging is not supported (K01.FR.29)"
            )
            return True
        if event.action == "SetChargingProfile":
            self._on_set(event, now)
        elif event.action == "ClearChargingProfile":
            self._on_clear(event, now)
        elif event.action == "GetChargingProfiles":
            self._on_get_profiles(event, now)
        else:
            self._on_composite(event, now)
        return True

    def _back_online(self, now: float, offline_for: float | None) -> None:
        """K01.FR.102: profiles invalid while offline count again, except those marked
        invalidAfterOfflineDuration whose maxOfflineDuration passed: they go."""
        since, self._went_offline = self._went_offline, None
        if offline_for is None and since is not None:
            offline_for = now - since
        if offline_for is not None:
            outage = offline_for
            gone = self.store.remove_where(
                lambda e: (
                    not (
                        e.profile.invalid_after_offline_duration
                        and e.profile.max_offline_duration is not None
                        and outage > e.profile.max_offline_duration
                    )
                )
            )
            if gone:
                self._emit(ChargingProfilesCleared(entries=tuple(gone), reason="Offline"))
        self.refresh(now)

    def _status(self, action: str, status: str, rejection: Rejection | None = None) -> Any:
        response = self.core.registry[action].response
        assert response is not None
        fields: dict[str, Any] = {"status": status}
        if rejection is not None and self.version != "1.6":
            fields["status_info"] = self._m.StatusInfo(
                reason_code=rejection.reason_code, additional_info=rejection.detail[:512]
            )
        return build(response, **fields)

    def _on_set(self, event: RequestReceived, now: float) -> None:
        request = event.request
        v16 = self.version == "1.6"
        evse_id = request.connector_id if v16 else request.evse_id
        if v16 and evse_id != 0 and evse_id not in self.config.evses:
            self.core.send_error(
                event.message_id,
                "PropertyConstraintViolation",
                f"no connector {evse_id} (1.6 errata 3.39)",
            )
            return
        profile = profile_from_message(
            request.cs_charging_profiles if v16 else request.charging_profile
        )
        rejection = check_profile(
            profile,
            evse_id,
            self.config,
            version=self.version,
            installed=self.store,
            transactions=self._transactions(),
        )
        if rejection is not None:
            self.core.send_response(
                event.message_id, self._status("SetChargingProfile", "Rejected", rejection), now
            )
            self._emit(
                ChargingProfileRefused(
                    evse_id=evse_id, profile=profile, rejection=rejection, action=event.action
                )
            )
            return
        bound = None
        replaced: list[InstalledProfile] = []
        if profile.purpose is Purpose.TX:
            run = self._running[evse_id]
            bound = profile.transaction_id
            if bound is None:  # 1.6: the transaction running on the connector
                bound = sorted(run.ids, key=str)[0]
            if v16:  # 1.6 §5.16.2: same stack level for this transaction replaces
                replaced = self.store.remove_where(
                    lambda e: (
                        not (
                            e.purpose is Purpose.TX
                            and e.evse_id == evse_id
                            and e.transaction_id in run.ids
                            and e.profile.stack_level == profile.stack_level
                            and e.id != profile.id
                        )
                    )
                )
        entry = InstalledProfile(evse_id=evse_id, profile=profile, transaction_id=bound)
        replaced += self.store.install(entry)
        self.core.send_response(
            event.message_id, self._status("SetChargingProfile", "Accepted"), now
        )
        self._emit(
            ChargingProfileInstalled(entry=entry, replaced=tuple(replaced), action=event.action)
        )
        self.refresh(now)  # K01.FR.07, K01.FR.32

    def _on_clear(self, event: RequestReceived, now: float) -> None:
        request = event.request
        removable: list[InstalledProfile]
        if self.version == "1.6":
            # 1.6 errata 3.25: every field given must match (logical AND); none: all.
            candidates = self.store.matching(
                evse_id=request.connector_id,
                profile_ids=None if request.id is None else (request.id,),
                purpose=request.charging_profile_purpose,
                stack_level=request.stack_level,
                sources=(CSO,),
            )
            removable = candidates
        else:
            entry = (
                None
                if request.charging_profile_id is None
                else self.store.get(request.charging_profile_id)
            )
            criteria = request.charging_profile_criteria
            if entry is not None:
                # K10.FR.03; K10.FR.09: external constraints are not the CSMS's to clear.
                removable = [] if entry.purpose in STATION_OWNED_PURPOSES else [entry]
            elif request.charging_profile_id is not None and criteria is None:
                removable = []  # K10.FR.01
            else:
                candidates = self.store.matching(
                    evse_id=None if criteria is None else criteria.evse_id,
                    purpose=None if criteria is None else criteria.charging_profile_purpose,
                    stack_level=None if criteria is None else criteria.stack_level,
                )
                # K10.FR.04; K10.FR.08 when only external constraints matched.
                removable = [e for e in candidates if e.purpose not in STATION_OWNED_PURPOSES]
        for entry in removable:
            self.store.remove(entry.id)
        status = "Accepted" if removable else "Unknown"  # K10.FR.01
        self.core.send_response(event.message_id, self._status("ClearChargingProfile", status), now)
        if removable:
            self._emit(
                ChargingProfilesCleared(entries=tuple(removable), reason="ClearChargingProfile")
            )
            self.refresh(now)  # K10.FR.05

    def _on_get_profiles(self, event: RequestReceived, now: float) -> None:
        request = event.request
        criterion = request.charging_profile
        sources = criterion.charging_limit_source
        found = self.store.matching(
            evse_id=request.evse_id,  # K09.FR.04-06
            profile_ids=criterion.charging_profile_id,
            purpose=criterion.charging_profile_purpose,
            stack_level=criterion.stack_level,
            sources=None if sources is None else {str(getattr(s, "value", s)) for s in sources},
        )
        if not found:
            self.core.send_response(
                event.message_id, self._status("GetChargingProfiles", "NoProfiles"), now
            )
            return
        self.core.send_response(
            event.message_id, self._status("GetChargingProfiles", "Accepted"), now
        )
        groups: dict[tuple[int, str], list[InstalledProfile]] = {}
        for entry in sorted(found, key=lambda e: (e.evse_id, e.source, e.id)):
            groups.setdefault((entry.evse_id, entry.source), []).append(entry)
        parts = []
        for (evse_id, source), entries in groups.items():
            for start in range(0, len(entries), self.profiles_per_report):
                parts.append((evse_id, source, entries[start : start + self.profiles_per_report]))
        m = self._m
        for index, (evse_id, source, entries) in enumerate(parts):
            limit_source: Any = source
            if self.version == "2.0.1":
                limit_source = m.ChargingLimitSourceEnum(source)
            self._outbox.submit(
                m.ReportChargingProfilesRequest(
                    request_id=request.request_id,  # K09.FR.01
                    charging_limit_source=limit_source,
                    charging_profile=[profile_to_message(e.profile, self.version) for e in entries],
                    evse_id=evse_id,
                    tbc=True if index < len(parts) - 1 else None,  # K09.FR.02
                ),
                now,
            )

    def _on_composite(self, event: RequestReceived, now: float) -> None:
        request = event.request
        v16 = self.version == "1.6"
        evse_id = request.connector_id if v16 else request.evse_id
        unit = request.charging_rate_unit
        unit_text = None if unit is None else str(getattr(unit, "value", unit))
        try:
            schedule = self.get_composite_schedule(evse_id, request.duration, unit_text, now)
        except LocalProtocolError as exc:  # K08.FR.05, K08.FR.07; 1.6 §5.7
            rejection = Rejection(rule="K08.FR.05/07", reason_code="InvalidValue", detail=str(exc))
            response = self._status("GetCompositeSchedule", "Rejected", rejection)
            self.core.send_response(event.message_id, response, now)
            return
        m = self._m
        if v16:
            response = m.GetCompositeScheduleResponse(
                status=m.GetCompositeScheduleStatus.ACCEPTED,
                connector_id=evse_id,
                schedule_start=schedule.start,
                charging_schedule=schedule.to_message(self.version),
            )
        else:
            response = m.GetCompositeScheduleResponse(
                status=m.GenericStatusEnum.ACCEPTED, schedule=schedule.to_message(self.version)
            )
        self.core.send_response(event.message_id, response, now)

    # --- persistence ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The installed profiles as JSON data (K01.FR.27)."""
        return self.store.snapshot()

    def restore(self, snapshot: Any, now: float) -> None:
        """Install a ``snapshot()`` after a reboot. TxProfiles of transactions that are
        not running (register resumed ones in the ``Activity`` first) are dropped."""
        self.store.restore(snapshot)
        running = {i for run in self._running.values() for i in run.ids}
        self.store.remove_where(
            lambda e: e.purpose is not Purpose.TX or e.transaction_id in running
        )
        self.refresh(now)
