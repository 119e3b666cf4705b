"""Smart charging, CSMS side (1.6 §3.13, §5.16; 2.x K01-K17).

``CsmsSmartCharging`` keeps what each station has (from the answers to what it set and
cleared, and from ReportChargingProfiles), checks a profile before it is sent with the
station's own validator (``ocpp_sansio.smart_charging.check_profile``), predicts the
station's composite schedule, answers the station's smart-charging notifications and
carries the ISO 15118 ones (K15-K17) to the application as typed events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from ..csms import CsmsCore
from ..errors import LocalProtocolError
from ..events import (
    Event,
    RequestReceived,
    ResponseReceived,
)
from ..smart_charging.composite import (
    Session,
    composite_schedule,
    instant,
    seconds,
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
    composite_from_message,
    profile_from_message,
    profile_to_message,
    purpose_of,
    schedule_from_message,
)
from ..smart_charging.store import InstalledProfile, ProfileStore
from ..smart_charging.validate import Rejection, profile_problems
from ._base import (
    Emitter,
    FlowEvent,
    build,
)
from ._store import messages_for


@attrs.frozen(kw_only=True)
class ChargingProfileAnswered(FlowEvent):
    """The station answered a SetChargingProfile: ``status`` (with 2.x ``reason_code``)."""

    evse_id: int
    profile: ChargingProfile
    status: str
    reason_code: str | None


@attrs.frozen(kw_only=True)
class ChargingProfilesReported(FlowEvent):
    """Every part of the station's report ``request_id`` arrived (K09): the profiles it
    has that match the request, with their EVSE and source."""

    request_id: int
    entries: tuple[InstalledProfile, ...]


@attrs.frozen(kw_only=True)
class CompositeScheduleReported(FlowEvent):
    """The station's answer to GetCompositeSchedule (None when Rejected)."""

    evse_id: int
    status: str
    schedule: CompositeSchedule | None


@attrs.frozen(kw_only=True)
class ExternalLimitReported(FlowEvent):
    """The station reported an external limit (K11, K12): ``source`` is never CSO."""

    evse_id: int
    source: str
    grid_critical: bool | None
    schedules: tuple[ChargingSchedule, ...]


@attrs.frozen(kw_only=True)
class ExternalLimitCleared(FlowEvent):
    """The station reported that an external limit was released (K13.FR.02)."""

    evse_id: int
    source: str


@attrs.frozen(kw_only=True)
class EVChargingNeedsReceived(FlowEvent):
    """2.x NotifyEVChargingNeeds (K15.FR.01, K17.FR.01). Answer it with
    ``answer_charging_needs``: Accepted if you will send a schedule (K15.FR.03), Processing
    if later (K15.FR.05), Rejected if not (K15.FR.04); then send a TxProfile of at most three
    schedules, each within ``max_schedule_tuples`` periods (K15.FR.07). ``problems`` lists
    rules the request breaks; with any, it was answered Rejected already."""

    message_id: str
    evse_id: int
    charging_needs: Any
    max_schedule_tuples: int | None
    problems: tuple[str, ...]


@attrs.frozen(kw_only=True)
class EVChargingScheduleReceived(FlowEvent):
    """2.x NotifyEVChargingSchedule: the EV's schedule from ``time_base``. ``within_limits``
    says whether it stays within the CSMS's profiles for that EVSE at every instant (answered
    Accepted or Rejected accordingly, K15.FR.11/12, K16.FR.06/07, K17.FR.11/12);
    ``exceeded_at`` is the first instant it does not. When it does not, renegotiate (send a
    new TxProfile, K15.FR.13, K17.FR.13)."""

    evse_id: int
    time_base: datetime
    schedule: ChargingSchedule
    within_limits: bool
    exceeded_at: datetime | None


class CsmsSmartCharging(Emitter):
    """The CSMS side of smart charging for one station connection. ``config`` describes
    the station (its EVSEs, units, stack levels …) for checks and predictions."""

    def __init__(self, core: CsmsCore, *, config: SmartChargingConfig | None = None) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.config = config or SmartChargingConfig()
        #: What the station has, as far as its answers and reports tell.
        self.store = ProfileStore(self.version)
        self._m = messages_for(self.version)
        #: Reports being collected: requestId -> (criteria, entries so far).
        self._reports: dict[int, tuple[dict[str, Any], list[InstalledProfile]]] = {}
        #: Answers still owed for NotifyEVChargingNeeds: message id -> EVSE.
        self._needs: dict[str, int] = {}
        #: maxScheduleTuples the EV gave, by EVSE (K15.FR.07).
        self.max_schedule_tuples: dict[int, int] = {}

    # --- building and checking ------------------------------------------------------------

    def problems(
        self,
        evse_id: int,
        profile: ChargingProfile,
        *,
        transactions: Mapping[int, Iterable[str | int]] | None = None,
    ) -> list[Rejection]:
        """Every rule ``profile`` would break on the station (the station's own checks,
        against what it is known to have; transactions checked when given)."""
        found = list(
            profile_problems(
                profile,
                evse_id,
                self.config,
                version=self.version,
                installed=self.store,
                transactions=None
                if transactions is None
                else {k: set(v) for k, v in transactions.items()},
            )
        )
        tuples = self.max_schedule_tuples.get(evse_id)
        if (
            profile.purpose is Purpose.TX
            and tuples is not None
            and (
                len(profile.schedules) > 3
                or any(len(s.periods) > tuples for s in profile.schedules)
            )
        ):
            found.append(
                Rejection(
                    rule="K15.FR.07",
                    reason_code="InvalidSchedule",
                    detail=f"at most 3 schedules of {tuples} periods for this EV",
                )
            )
        return found

    def set_charging_profile_request(self, evse_id: int, profile: ChargingProfile) -> Any:
        """The SetChargingProfile request for ``profile``; LocalProtocolError naming every
        rule it breaks."""
        found = self.problems(evse_id, profile)
        if found:
            raise LocalProtocolError("; ".join(f"{r.rule}: {r.detail}" for r in found))
        message = profile_to_message(profile, self.version)
        if self.version == "1.6":
            return self._m.SetChargingProfileRequest(
                connector_id=evse_id, cs_charging_profiles=message
            )
        return self._m.SetChargingProfileRequest(evse_id=evse_id, charging_profile=message)

    def clear_request(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: Purpose | str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        """A ClearChargingProfile request. 2.x: an id or at least one criterion (K10.FR.02),
        never external constraints (K10.FR.06); 1.6 clears everything when given nothing."""
        wanted = None if purpose is None else purpose_of(purpose)
        m = self._m
        if self.version == "1.6":
            return build(
                m.ClearChargingProfileRequest,
                id=profile_id,
                connector_id=evse_id,
                charging_profile_purpose=None
                if wanted is None
                else profile_to_message_purpose(wanted, self.version),
                stack_level=stack_level,
            )
        if profile_id is None and evse_id is None and wanted is None and stack_level is None:
            raise LocalProtocolError("give a profile id or a criterion (K10.FR.02)")
        if wanted in STATION_OWNED_PURPOSES:
            raise LocalProtocolError(f"the CSMS does not clear {wanted} profiles (K10.FR.06)")
        criteria = None
        if evse_id is not None or wanted is not None or stack_level is not None:
            criteria = build(
                m.ClearChargingProfile,
                evse_id=evse_id,
                charging_profile_purpose=None if wanted is None else wanted.value,
                stack_level=stack_level,
            )
        return m.ClearChargingProfileRequest(
            charging_profile_id=profile_id, charging_profile_criteria=criteria
        )

    def get_profiles_request(
        self,
        request_id: int,
        *,
        evse_id: int | None = None,
        profile_ids: Iterable[int] | None = None,
        purpose: Purpose | str | None = None,
        stack_level: int | None = None,
        sources: Iterable[str] | None = None,
    ) -> Any:
        """A GetChargingProfiles request (2.x): profile ids, or at least one of stack
        level, source and purpose (K09.FR.03)."""
        if self.version == "1.6":
            raise LocalProtocolError("OCPP 1.6 has no GetChargingProfiles")
        ids = None if profile_ids is None else list(profile_ids)
        source_list = None if sources is None else list(sources)
        if not ids and purpose is None and stack_level is None and not source_list:
            raise LocalProtocolError("give profile ids or a criterion (K09.FR.03)")
        m = self._m
        criterion = build(
            m.ChargingProfileCriterion,
            charging_profile_purpose=None if purpose is None else Purpose(purpose).value,
            stack_level=stack_level,
            charging_profile_id=ids or None,
            charging_limit_source=None
            if not source_list
            else [
                m.ChargingLimitSourceEnum(s) if self.version == "2.0.1" else s for s in source_list
            ],
        )
        return m.GetChargingProfilesRequest(
            request_id=request_id, charging_profile=criterion, evse_id=evse_id
        )

    def send_profile(self, evse_id: int, profile: ChargingProfile, now: float) -> str:
        """Check and send ``profile``; its message id."""
        return self.core.send_request(self.set_charging_profile_request(evse_id, profile), now)

    def predict_composite(
        self,
        evse_id: int,
        duration: int,
        start: datetime,
        *,
        unit: RateUnit | str | None = None,
        sessions: Mapping[int, Session] | None = None,
    ) -> CompositeSchedule:
        """What the station should answer to GetCompositeSchedule at ``start``, from the
        profiles it is known to have (``sessions``: its running transactions)."""
        return composite_schedule(
            self.store, evse_id, start, duration, self.config, unit=unit, sessions=sessions
        )

    # --- the station's messages -----------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, ResponseReceived):
            return self._on_answer(event)
        if not isinstance(event, RequestReceived):
            return False
        handlers: dict[str, Callable[[RequestReceived, float], None]] = {
            "ReportChargingProfiles": self._on_report,
            "NotifyChargingLimit": self._on_limit,
            "ClearedChargingLimit": self._on_cleared,
            "NotifyEVChargingNeeds": self._on_needs,
            "NotifyEVChargingSchedule": self._on_ev_schedule,
        }
        handler = handlers.get(event.action)
        if handler is None:
            return False
        handler(event, now)
        return True

    def _empty_answer(self, event: RequestReceived, now: float) -> None:
        response = self.core.registry[event.action].response
        assert response is not None
        self.core.send_response(event.message_id, response(), now)

    def _on_answer(self, event: ResponseReceived) -> bool:
        request, response = event.request, event.response
        status = str(getattr(response, "status", ""))
        v16 = self.version == "1.6"
        if event.action == "SetChargingProfile":
            evse_id = request.connector_id if v16 else request.evse_id
            profile = profile_from_message(
                request.cs_charging_profiles if v16 else request.charging_profile
            )
            if status == "Accepted":
                self.store.install(
                    InstalledProfile(
                        evse_id=evse_id, profile=profile, transaction_id=profile.transaction_id
                    )
                )
            info = getattr(response, "status_info", None)
            self._emit(
                ChargingProfileAnswered(
                    evse_id=evse_id,
                    profile=profile,
                    status=status,
                    reason_code=None if info is None else info.reason_code,
                )
            )
            return True
        if event.action == "ClearChargingProfile":
            if status == "Accepted":
                self._mirror_clear(request)
            return True
        if event.action == "GetChargingProfiles":
            criterion = request.charging_profile
            criteria = {
                "evse_id": request.evse_id,
                "profile_ids": criterion.charging_profile_id,
                "purpose": criterion.charging_profile_purpose,
                "stack_level": criterion.stack_level,
                "sources": None
                if criterion.charging_limit_source is None
                else {str(getattr(s, "value", s)) for s in criterion.charging_limit_source},
            }
            if status == "Accepted":
                entries = self._reports.get(request.request_id, ({}, []))[1]
                self._reports[request.request_id] = (criteria, entries)
            else:  # NoProfiles: the station has none of these
                gone = {e.id for e in self.store.matching(**criteria)}
                self.store.remove_where(lambda e: e.id not in gone)
            return True
        if event.action == "GetCompositeSchedule":
            schedule = None
            if status == "Accepted":
                if v16:
                    if (
                        response.charging_schedule is not None
                        and response.schedule_start is not None
                    ):
                        schedule = composite_from_message(
                            response.charging_schedule,
                            evse_id=request.connector_id,
                            start=response.schedule_start,
                        )
                elif response.schedule is not None:
                    schedule = composite_from_message(
                        response.schedule,
                        evse_id=request.evse_id,
                        start=response.schedule.schedule_start,
                    )
            self._emit(
                CompositeScheduleReported(
                    evse_id=request.connector_id if v16 else request.evse_id,
                    status=status,
                    schedule=schedule,
                )
            )
            return True
        return False

    def _mirror_clear(self, request: Any) -> None:
        if self.version == "1.6":
            gone = self.store.matching(
                evse_id=request.connector_id,
                profile_ids=None if request.id is None else (request.id,),
                purpose=request.charging_profile_purpose,
                stack_level=request.stack_level,
                sources=(CSO,),
            )
        elif request.charging_profile_id is not None and request.charging_profile_id in self.store:
            gone = self.store.matching(profile_ids=(request.charging_profile_id,))
        elif request.charging_profile_id is not None and request.charging_profile_criteria is None:
            gone = []
        else:
            criteria = request.charging_profile_criteria
            gone = self.store.matching(
                evse_id=None if criteria is None else criteria.evse_id,
                purpose=None if criteria is None else criteria.charging_profile_purpose,
                stack_level=None if criteria is None else criteria.stack_level,
            )
        for entry in gone:
            if entry.purpose not in STATION_OWNED_PURPOSES:
                self.store.remove(entry.id)

    def _on_report(self, event: RequestReceived, now: float) -> None:
        request = event.request
        self._empty_answer(event, now)
        criteria, entries = self._reports.setdefault(request.request_id, ({}, []))
        source = str(getattr(request.charging_limit_source, "value", request.charging_limit_source))
        for message in request.charging_profile:
            profile = profile_from_message(message)
            entries.append(
                InstalledProfile(
                    evse_id=request.evse_id,
                    profile=profile,
                    source=source,
                    transaction_id=profile.transaction_id,
                )
            )
        if request.tbc:
            return
        del self._reports[request.request_id]
        reported = {e.id for e in entries}
        if criteria:  # the request is known: what matched it and was not reported is gone
            stale = {e.id for e in self.store.matching(**criteria)} - reported
            self.store.remove_where(lambda e: e.id not in stale)
        for entry in entries:
            self.store.install(entry)
        self._emit(ChargingProfilesReported(request_id=request.request_id, entries=tuple(entries)))

    def _on_limit(self, event: RequestReceived, now: float) -> None:
        request = event.request
        self._empty_answer(event, now)
        limit = request.charging_limit
        self._emit(
            ExternalLimitReported(
                evse_id=request.evse_id or 0,
                source=str(
                    getattr(limit.charging_limit_source, "value", limit.charging_limit_source)
                ),
                grid_critical=limit.is_grid_critical,
                schedules=tuple(schedule_from_message(s) for s in request.charging_schedule or ()),
            )
        )

    def _on_cleared(self, event: RequestReceived, now: float) -> None:
        request = event.request
        self._empty_answer(event, now)
        source = request.charging_limit_source
        self._emit(
            ExternalLimitCleared(
                evse_id=request.evse_id or 0, source=str(getattr(source, "value", source))
            )
        )

    def _on_needs(self, event: RequestReceived, now: float) -> None:
        request = event.request
        needs = request.charging_needs
        kinds = [
            name
            for name in (
                "ac_charging_parameters",
                "dc_charging_parameters",
                "v2x_charging_parameters",
            )
            if getattr(needs, name, None) is not None
        ]
        problems: list[str] = []
        if len(kinds) != 1 or (kinds == ["v2x_charging_parameters"] and self.version == "2.0.1"):
            problems.append("K15.FR.06/K17.FR.06: exactly one of AC or DC charging parameters")
        if request.max_schedule_tuples is not None:
            self.max_schedule_tuples[request.evse_id] = request.max_schedule_tuples
        self._emit(
            EVChargingNeedsReceived(
                message_id=event.message_id,
                evse_id=request.evse_id,
                charging_needs=needs,
                max_schedule_tuples=request.max_schedule_tuples,
                problems=tuple(problems),
            )
        )
        if problems:
            self._answer_needs(event.message_id, "Rejected", now, "InvalidValue")
        else:
            self._needs[event.message_id] = request.evse_id

    def answer_charging_needs(self, message_id: str, status: str, now: float) -> None:
        """Answer a NotifyEVChargingNeeds (K15.FR.02-05, K17.FR.02-05): Accepted,
        Processing, Rejected (2.1 also NoChargingProfile)."""
        if message_id not in self._needs:
            raise LocalProtocolError(f"no NotifyEVChargingNeeds {message_id!r} waits for an answer")
        del self._needs[message_id]
        self._answer_needs(message_id, status, now, None)

    def _answer_needs(self, message_id: str, status: str, now: float, reason: str | None) -> None:
        m = self._m
        info = None if reason is None else m.StatusInfo(reason_code=reason)
        self.core.send_response(
            message_id,
            m.NotifyEVChargingNeedsResponse(
                status=m.NotifyEVChargingNeedsStatusEnum(status), status_info=info
            ),
            now,
        )

    def _on_ev_schedule(self, event: RequestReceived, now: float) -> None:
        request = event.request
        schedule = schedule_from_message(request.charging_schedule)
        exceeded = self._first_excess(request.evse_id, request.time_base, schedule)
        m = self._m
        status = "Accepted" if exceeded is None else "Rejected"
        self.core.send_response(
            event.message_id,
            m.NotifyEVChargingScheduleResponse(status=m.GenericStatusEnum(status)),
            now,
        )
        self._emit(
            EVChargingScheduleReceived(
                evse_id=request.evse_id,
                time_base=request.time_base,
                schedule=schedule,
                within_limits=exceeded is None,
                exceeded_at=exceeded,
            )
        )

    def _first_excess(
        self, evse_id: int, time_base: datetime, schedule: ChargingSchedule
    ) -> datetime | None:
        """The first instant the EV's schedule exceeds the CSMS's profiles on the EVSE
        (None: it never does, or nothing is known about that EVSE)."""
        if evse_id not in self.config.evses or not schedule.periods:
            return None
        start = schedule.start_schedule or time_base
        duration = schedule.duration or schedule.periods[-1].start_period + 1
        ev = InstalledProfile(
            evse_id=evse_id,
            profile=ChargingProfile(
                id=0,
                stack_level=0,
                purpose=Purpose.TX_DEFAULT,
                kind=Kind.ABSOLUTE,
                schedules=(attrs.evolve(schedule, start_schedule=start, duration=duration),),
            ),
        )
        bound = frozenset(e.transaction_id for e in self.store if e.transaction_id is not None)
        sessions = {evse_id: Session(transaction_ids=bound, started=time_base)}
        unit = schedule.rate_unit
        wanted = composite_schedule(
            [ev], evse_id, start, duration, self.config, unit=unit, hardware=False
        )
        allowed = composite_schedule(
            self.store,
            evse_id,
            start,
            duration,
            self.config,
            unit=unit,
            sessions=sessions,
            hardware=False,
        )
        base = seconds(start)
        offsets = {p.start_period for p in wanted.periods} | {
            p.start_period for p in allowed.periods
        }
        for offset in sorted(offsets):
            when = instant(base + offset)
            asked, limit = wanted.period_at(when), allowed.period_at(when)
            if asked is not None and limit is not None and asked.limit > limit.limit + 1e-9:
                return when
        return None


def profile_to_message_purpose(purpose: Purpose, version: str) -> str:
    """A purpose as the version spells it (1.6: ChargePointMaxProfile)."""
    if version == "1.6" and purpose is Purpose.STATION_MAX:
        return "ChargePointMaxProfile"
    return purpose.value
