"""Reservations: ReserveNow and CancelReservation on the station, expiry, which connector
or EVSE a reservation holds, and the 2.x ReservationStatusUpdate (1.6 §3.11, §5.1, §5.13;
2.x H01-H04).

The station application tells the flow each connector's (1.6) or EVSE's (2.x) state with
``set_status``; the flow answers the CSMS, keeps the reservations, expires them on time and
says which connectors to report Reserved or Available again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..errors import LocalProtocolError
from ..events import Event, RequestReceived, ResponseReceived
from ._base import Emitter, FlowEvent, Outbox, WallClock, WallClocked, core_time
from ._store import NoSettings, Settings, messages_for, read_bool, read_list
from .authorization import token_key

AVAILABLE, OCCUPIED, FAULTED, UNAVAILABLE = "Available", "Occupied", "Faulted", "Unavailable"
_STATES = frozenset({AVAILABLE, OCCUPIED, FAULTED, UNAVAILABLE})


@attrs.define(eq=False)
class Reservation:
    reservation_id: int
    expiry: datetime
    #: The core time ``expiry`` comes.
    expires_at: float
    #: 1.6 idTag (str); 2.x IdToken.
    id_token: Any
    #: 1.6 parentIdTag, 2.x groupIdToken.idToken.
    group: str | None
    #: The connector (1.6) or EVSE (2.x) it holds; None: any of ``targets``.
    target: int | None
    #: 2.x connectorType asked for.
    connector_type: str | None
    targets: tuple[int, ...]


@attrs.frozen(kw_only=True)
class ReservationAccepted(FlowEvent):
    """A reservation was made (or replaced one with the same id). ``newly_reserved`` are
    the connectors (1.6) / EVSEs (2.x) to report Reserved now (H01.FR.20/23)."""

    reservation: Reservation
    newly_reserved: tuple[int, ...]


@attrs.frozen(kw_only=True)
class ReservationEnded(FlowEvent):
    """A reservation ended: ``reason`` is Expired, Cancelled, Removed (its connector became
    Faulted or Unavailable) or Used (a transaction for its identifier started).
    ``released`` are the connectors / EVSEs to report Available again (H04.FR.03)."""

    reservation: Reservation
    reason: str
    released: tuple[int, ...]


@attrs.frozen(kw_only=True)
class ReservedTargetsChanged(FlowEvent):
    """A connector's / EVSE's new state changed which free ones reservations on any
    connector need: report ``reserved`` as Reserved and ``released`` as Available
    (H01.FR.20/24)."""

    reserved: tuple[int, ...]
    released: tuple[int, ...]


class Reservations(Emitter, WallClocked):
    """The station side of reservations.

    ``connectors`` is, in 1.6, the number of connectors; in 2.x, EVSE id -> its connector
    types (an int means that many EVSEs of unknown types). Settings read: 1.6
    ``SupportedFeatureProfiles`` (Reservation) and ``ReserveConnectorZeroSupported``; 2.x
    ``ReservationCtrlr.Enabled`` and ``ReservationCtrlr.NonEvseSpecific``.
    """

    def __init__(
        self,
        core: Any,
        *,
        connectors: int | Mapping[int, Sequence[str]] = 1,
        settings: Settings | None = None,
        clock: WallClock | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.settings: Settings = settings or NoSettings()
        self._own_clock = clock
        if isinstance(connectors, int):
            connectors = {n: () for n in range(1, connectors + 1)}
        self.connector_types = {k: tuple(v) for k, v in connectors.items()}
        self.status = dict.fromkeys(self.connector_types, AVAILABLE)
        self.reservations: dict[int, Reservation] = {}
        self._m = messages_for(self.version)
        self._outbox = Outbox(core)

    # --- what the application reports and asks ---------------------------------------------

    def set_status(self, target: int, status: str, now: float) -> None:
        """The connector (1.6) / EVSE (2.x) is now Available, Occupied, Faulted or
        Unavailable. Faulted or Unavailable ends the reservations on it (1.6 §5.13,
        H01.FR.16/17)."""
        if target not in self.status:
            raise LocalProtocolError(f"no connector/EVSE {target}")
        if status not in _STATES:
            raise LocalProtocolError(f"status must be one of {sorted(_STATES)}")
        before = self._reported_reserved()
        self.status[target] = status
        if status in (FAULTED, UNAVAILABLE):
            for reservation in list(self.reservations.values()):
                if reservation.target == target:
                    self._end(reservation, "Removed", now)
        after = self._reported_reserved()
        reserved = tuple(sorted(after - before))
        released = tuple(sorted((before - after) - {target}))
        if reserved or released:
            self._emit(ReservedTargetsChanged(reserved=reserved, released=released))

    def reported_reserved(self) -> set[int]:
        """The connectors (1.6) / EVSEs (2.x) to show as Reserved now (H01.FR.20/24)."""
        return self._reported_reserved()

    def restore(self, reservation: Reservation, now: float) -> None:
        """Take back a reservation kept across a reboot (its ``expires_at`` recomputed
        by the caller from ``expiry``); one already expired ends at the next timer."""
        for target in reservation.targets:
            if target not in self.status:
                raise LocalProtocolError(f"no connector/EVSE {target}")
        self.reservations[reservation.reservation_id] = reservation

    def reserved_for(self, target: int) -> Reservation | None:
        """The reservation holding ``target`` specifically, if any."""
        return next((r for r in self.reservations.values() if r.target == target), None)

    def may_charge(self, target: int, id_token: Any, group: str | None = None) -> bool:
        """Whether ``id_token`` (with its parent / group id) may charge on ``target`` without
        breaking a reservation (1.6 §5.13; H01.FR.07/09, H03)."""
        holder = self.reserved_for(target)
        if holder is not None:
            return self._matches(holder, id_token, group)
        pooled = self._pooled()
        if any(target in r.targets and self._matches(r, id_token, group) for r in pooled):
            return True
        return _feasible(self._free() - {target}, pooled)

    def use(
        self, target: int, id_token: Any, now: float, group: str | None = None
    ) -> Reservation | None:
        """A transaction starts on ``target`` for ``id_token``: the reservation it fulfils
        ends (Used) and is returned; put its id in StartTransaction / TransactionEvent
        (1.6 §5.13, H01.FR.15, H03.FR.09)."""
        candidates = [
            r
            for r in self.reservations.values()
            if (r.target == target or (r.target is None and target in r.targets))
            and self._matches(r, id_token, group)
        ]
        if not candidates:
            return None
        chosen = min(candidates, key=lambda r: r.target is None)
        self._end(chosen, "Used", now)
        return chosen

    def _matches(self, reservation: Reservation, id_token: Any, group: str | None) -> bool:
        if token_key(self.version, id_token) == token_key(self.version, reservation.id_token):
            return True
        return (
            group is not None
            and reservation.group is not None
            and group.casefold() == reservation.group.casefold()
        )

    # --- the CSMS's requests --------------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        if self._outbox.handle_event(event, now):
            return True
        if not isinstance(event, RequestReceived):
            return False
        m = self._m
        if event.action == "ReserveNow":
            status = self.reserve(event.request, now)
            status_type = m.ReservationStatus if self.version == "1.6" else m.ReserveNowStatusEnum
            self.core.send_response(
                event.message_id, m.ReserveNowResponse(status=status_type(status)), now
            )
            return True
        if event.action == "CancelReservation":
            reservation = self.reservations.get(event.request.reservation_id)
            status = "Rejected"  # H02.FR.01
            if reservation is not None:
                status = "Accepted"  # H02.FR.02
            status_type = (
                m.CancelReservationStatus
                if self.version == "1.6"
                else m.CancelReservationStatusEnum
            )
            self.core.send_response(
                event.message_id, m.CancelReservationResponse(status=status_type(status)), now
            )
            if reservation is not None:
                self._end(reservation, "Cancelled", now)
            return True
        return False

    def reserve(self, request: Any, now: float) -> str:
        """Decide on a ReserveNow and keep the reservation when Accepted; the status."""
        v16 = self.version == "1.6"
        if not self._enabled():
            return "Rejected"  # H01.FR.01
        reservation_id = request.reservation_id if v16 else request.id
        expiry = request.expiry_date if v16 else request.expiry_date_time
        expires_at = core_time(expiry, now, self.clock)
        if expires_at <= now:
            return "Rejected"
        targets, specific, connector_type = self._targets(request)
        if targets is None:
            return "Rejected"
        replaced = self.reservations.get(reservation_id)  # H01.FR.02: replace it
        others = [r for r in self.reservations.values() if r is not replaced]
        status = self._judge(targets, specific, others)
        if status != "Accepted":
            return status
        if replaced is not None:
            del self.reservations[reservation_id]
        before = self._reported_reserved()
        group = request.parent_id_tag if v16 else request.group_id_token
        reservation = Reservation(
            reservation_id=reservation_id,
            expiry=expiry,
            expires_at=expires_at,
            id_token=request.id_tag if v16 else request.id_token,
            group=group if v16 or group is None else group.id_token,
            target=specific,
            connector_type=connector_type,
            targets=targets,
        )
        self.reservations[reservation_id] = reservation
        newly = tuple(sorted(self._reported_reserved() - before))
        self._emit(ReservationAccepted(reservation=reservation, newly_reserved=newly))
        return "Accepted"

    def _enabled(self) -> bool:
        if self.version == "1.6":
            profiles = self.settings.setting("SupportedFeatureProfiles")
            return profiles is None or "Reservation" in read_list(
                self.settings, "SupportedFeatureProfiles"
            )
        return read_bool(self.settings, "ReservationCtrlr.Enabled", True)

    def _targets(self, request: Any) -> tuple[tuple[int, ...] | None, int | None, str | None]:
        """Which connectors / EVSEs the request may use, and the one it names."""
        everything = tuple(sorted(self.connector_types))
        if self.version == "1.6":
            connector = request.connector_id
            if connector == 0:
                supported = read_bool(self.settings, "ReserveConnectorZeroSupported", False)
                return (everything if supported else None), None, None
            return ((connector,) if connector in self.connector_types else None), connector, None
        evse_id = request.evse_id
        wanted = str(request.connector_type) if request.connector_type is not None else None
        if evse_id is not None:
            types = self.connector_types.get(evse_id)
            if types is None or (wanted is not None and types and wanted not in types):
                return None, None, wanted
            return (evse_id,), evse_id, wanted
        if not read_bool(self.settings, "ReservationCtrlr.NonEvseSpecific", False):
            return None, None, wanted  # H01.FR.19
        if wanted is not None:
            matching = tuple(t for t in everything if wanted in self.connector_types[t])
            return (matching or None), None, wanted
        return everything, None, None  # H01.FR.18

    def _judge(
        self, targets: tuple[int, ...], specific: int | None, others: list[Reservation]
    ) -> str:
        """Accepted, or why not (1.6 §5.13, H01.FR.11/12/14). Reservations on any
        connector must each keep a free one of their own (H01.FR.07/09)."""
        held = {r.target for r in others if r.target is not None}
        free = {t for t, state in self.status.items() if state == AVAILABLE and t not in held}
        pooled = [r for r in others if r.target is None]
        if specific is not None:
            state = self.status[specific]
            if state in (FAULTED, UNAVAILABLE):
                return state
            if state == OCCUPIED or specific in held:
                return "Occupied"
            return "Accepted" if _feasible(free - {specific}, pooled) else "Occupied"
        if _feasible(free, [*pooled, targets]):
            return "Accepted"
        states = {self.status[t] for t in targets}
        if states == {FAULTED}:
            return FAULTED
        if states == {UNAVAILABLE}:
            return UNAVAILABLE
        return "Occupied"

    def _pooled(self) -> list[Reservation]:
        return [r for r in self.reservations.values() if r.target is None]

    def _free(self) -> set[int]:
        held = {r.target for r in self.reservations.values() if r.target is not None}
        return {t for t, state in self.status.items() if state == AVAILABLE and t not in held}

    def _reported_reserved(self) -> set[int]:
        """Connectors / EVSEs to show as Reserved: those held by a specific reservation,
        and every free one that reservations on any connector cannot do without
        (H01.FR.20/24)."""
        reserved = {r.target for r in self.reservations.values() if r.target is not None}
        pooled = self._pooled()
        free = self._free()
        if pooled:
            reserved |= {t for t in free if not _feasible(free - {t}, pooled)}
        return {t for t in reserved if t is not None}

    # --- ending ----------------------------------------------------------------------------

    def _end(self, reservation: Reservation, reason: str, now: float) -> None:
        before = self._reported_reserved()
        del self.reservations[reservation.reservation_id]
        released = tuple(sorted(before - self._reported_reserved()))
        if self.version != "1.6" and reason in ("Expired", "Removed"):
            m = self._m
            self._outbox.submit(
                m.ReservationStatusUpdateRequest(
                    reservation_id=reservation.reservation_id,
                    reservation_update_status=m.ReservationUpdateStatusEnum(reason),
                ),
                now,
            )  # H04.FR.01, H01.FR.16/17
        self._emit(ReservationEnded(reservation=reservation, reason=reason, released=released))

    def next_deadline(self) -> float | None:
        return min((r.expires_at for r in self.reservations.values()), default=None)

    def handle_timer(self, now: float) -> None:
        for reservation in sorted(self.reservations.values(), key=lambda r: r.expires_at):
            if reservation.expires_at <= now:
                self._end(reservation, "Expired", now)  # H04.FR.01, 1.6 §5.13


def _feasible(free: set[int], pooled: Sequence[Reservation | tuple[int, ...]]) -> bool:
    """Whether every reservation on any connector can have a free connector of its own
    among its targets (a bipartite matching, found by augmenting paths)."""
    wanted = [r if isinstance(r, tuple) else r.targets for r in pooled]
    owner: dict[int, int] = {}

    def place(index: int, seen: set[int]) -> bool:
        for target in wanted[index]:
            if target in free and target not in seen:
                seen.add(target)
                if target not in owner or place(owner[target], seen):
                    owner[target] = index
                    return True
        return False

    return all(place(index, set()) for index in range(len(wanted)))


# --- the CSMS side ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReservationStatusReported(FlowEvent):
    """CSMS side: the station ended a reservation (2.x ReservationStatusUpdate); ``known``
    is False when we hold no accepted reservation with that id."""

    reservation_id: int
    status: str
    known: bool


class CsmsReservations(Emitter):
    """The CSMS side: remembers the reservations the station accepted and answers
    ReservationStatusUpdate, flagging ones for reservations we do not know."""

    def __init__(self, core: Any) -> None:
        super().__init__()
        self.core = core
        self.reservations: dict[int, Any] = {}

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, ResponseReceived) and event.action in (
            "ReserveNow",
            "CancelReservation",
        ):
            request = event.request
            accepted = str(event.response.status) == "Accepted"
            if event.action == "ReserveNow" and accepted:
                key = request.reservation_id if self.core.version == "1.6" else request.id
                self.reservations[key] = request
            elif event.action == "CancelReservation" and accepted:
                self.reservations.pop(request.reservation_id, None)
            return True
        if isinstance(event, RequestReceived) and event.action == "ReservationStatusUpdate":
            request = event.request
            self.core.send_response(
                event.message_id, self.core.registry[event.action].response(), now
            )
            known = self.reservations.pop(request.reservation_id, None) is not None
            self._emit(
                ReservationStatusReported(
                    reservation_id=request.reservation_id,
                    status=str(request.reservation_update_status),
                    known=known,
                )
            )
            return True
        return False
