"""Availability and reset, both sides (B11, B12; 1.6 §5.2, §5.14; 2.x G03, G04,
B11, B12, and 2.1 B13).

Station side:

- ``Availability`` answers ChangeAvailability: Accepted when the target already is in the
  requested state (G03.FR.03, G04.FR.04) or changes now, Scheduled while a transaction runs
  in its scope (G03.FR.05, G04.FR.06, 1.6 §5.2) and applied when the last one ends. Each
  change names the connectors whose availability changed, so the application reports them
  (G03.FR.04, G04.FR.05). ``snapshot()`` is what survives a reboot (G03.FR.08, G04.FR.09,
  B11.FR.02, B12.FR.06).
- ``Reset`` answers Reset and tells the application what to stop and when to reboot:
  1.6 Soft stops transactions gracefully first, Hard reboots at once; 2.x OnIdle with
  activity is Scheduled until the station (or EVSE) is idle (B12.FR.01), Immediate is
  Accepted and ends transactions with ResetCommand / ImmediateReset (B12.FR.02/.04); the
  reboot waits until those messages are answered or the call timeout passed (B12.FR.05:
  what is left is held and sent after the reboot).

Both read the shared ``Activity`` for running transactions and tasks. CSMS side,
``AvailabilityMonitor`` follows ChangeAvailability and Reset answers and flags a station
that reports an Inoperative connector as available, or reboots with the wrong reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..csms import CsmsCore
from ..events import (
    CallErrorReceived,
    CallTimedOut,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionMessageDiscarded,
)
from ..station import StationCore
from ._base import Activity, Emitter, FlowAnomaly, FlowEvent, Transaction, build, status_of

#: (EVSE, connector): (None, None) is the whole station; 1.6 connectors are (id, None).
Target = tuple[int | None, int | None]
STATION: Target = (None, None)

OPERATIVE = "Operative"


def _covers(target: Target, evse: int, connector: int | None) -> bool:
    """Whether a setting on ``target`` applies to ``(evse, connector)``."""
    t_evse, t_connector = target
    if t_evse is None:
        return True
    return t_evse == evse and (t_connector is None or t_connector == connector)


def _in_scope(target: Target, transaction: Transaction) -> bool:
    t_evse, t_connector = target
    if t_evse is None:
        return True
    if t_evse != transaction.evse_id:
        return False
    return t_connector is None or transaction.connector_id in (None, t_connector)


# --- station: availability ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AvailabilitySnapshot:
    """The targets the CSMS made Inoperative: persist it, pass it as ``restore``."""

    inoperative: frozenset[Target]


@attrs.frozen(kw_only=True)
class AvailabilityChanged(FlowEvent):
    """The availability of ``changed`` connectors flipped: report each (StatusNotification,
    or 2.1 NotifyEvent AvailabilityState). 1.6 connectors are ``(id, None)``, the charge
    point itself ``(0, None)``; 2.x connectors are ``(evse, connector)``."""

    target: Target
    operative: bool
    changed: tuple[tuple[int, int | None], ...]
    #: It waited for transactions to end (answered Scheduled).
    scheduled: bool
    #: What caused it: "ChangeAvailability", or the key of a ``hold``.
    cause: str


class Availability(Emitter):
    """Station side of ChangeAvailability. ``connectors_per_evse`` (2.x) is one number for
    every EVSE or a mapping EVSE id -> count; EVSE / 1.6 connector ids run 1..the core's
    ``config.connectors``."""

    def __init__(
        self,
        core: StationCore,
        activity: Activity,
        *,
        connectors_per_evse: int | Mapping[int, int] = 1,
        restore: AvailabilitySnapshot | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.activity = activity
        self.evses = core.config.connectors
        self._per_evse = connectors_per_evse
        self._inoperative: set[Target] = set(restore.inoperative) if restore else set()
        #: Changes answered Scheduled: target -> operative.
        self.scheduled: dict[Target, bool] = {}
        #: Temporary unavailability (reset OnIdle waiting, firmware install…): key -> target.
        self._holds: dict[str, Target] = {}
        activity.subscribe(self._activity_changed)

    # --- reading

    def connectors(self) -> list[tuple[int, int | None]]:
        """Every connector this station reports availability for."""
        if self.version == "1.6":
            return [(c, None) for c in range(self.evses + 1)]
        out: list[tuple[int, int | None]] = []
        for evse in range(1, self.evses + 1):
            count = (
                self._per_evse if isinstance(self._per_evse, int) else self._per_evse.get(evse, 1)
            )
            out.extend((evse, c) for c in range(1, count + 1))
        return out

    def is_operative(self, evse: int, connector: int | None = None) -> bool:
        """The effective availability: no setting or hold above it says Inoperative. 1.6:
        ``evse`` is the connector id (0: the charge point)."""
        if self.version == "1.6" and evse == 0:
            return STATION not in self._inoperative and STATION not in self._holds.values()
        targets = (*self._inoperative, *self._holds.values())
        return not any(_covers(t, evse, connector) for t in targets)

    def snapshot(self) -> AvailabilitySnapshot:
        """What survives a reboot. A scheduled change counts as applied: the reboot ends the
        transactions it was waiting for."""
        inoperative = set(self._inoperative)
        for target, operative in self.scheduled.items():
            (inoperative.discard if operative else inoperative.add)(target)
        return AvailabilitySnapshot(inoperative=frozenset(inoperative))

    # --- the core's events

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, RequestReceived) and event.action == "ChangeAvailability":
            self._on_request(event, now)
            return True
        return False

    def _target(self, request: Any) -> Target | None:
        """The request's target, or None when it names something this station lacks."""
        if self.version == "1.6":
            connector = request.connector_id
            if connector == 0:
                return STATION
            return (connector, None) if 1 <= connector <= self.evses else None
        evse = request.evse
        if evse is None or evse.id == 0:
            return STATION  # G04.FR.01
        if not 1 <= evse.id <= self.evses:
            return None
        if evse.connector_id is None:
            return (evse.id, None)
        if (evse.id, evse.connector_id) not in self.connectors():
            return None
        return (evse.id, evse.connector_id)

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        target = self._target(request)
        kind = str(request.type if self.version == "1.6" else request.operational_status)
        operative = kind == OPERATIVE
        if target is None:
            status = "Rejected"
        else:
            self.scheduled.pop(target, None)  # the newest request for a target wins
            if (target not in self._inoperative) == operative:
                status = "Accepted"  # already so: G03.FR.03, G04.FR.04
            elif self._busy(target):
                status = "Scheduled"  # G03.FR.05, G04.FR.06, 1.6 §5.2
            else:
                status = "Accepted"
        response_cls = self.core.registry["ChangeAvailability"].response
        assert response_cls is not None
        self.core.send_response(event.message_id, build(response_cls, status=status), now)
        if target is None or status == "Rejected":
            return
        if status == "Scheduled":
            self.scheduled[target] = operative
        elif (target not in self._inoperative) != operative:
            self._apply(target, operative, scheduled=False, cause="ChangeAvailability")

    def _busy(self, target: Target) -> bool:
        return any(_in_scope(target, t) for t in self.activity.transactions())

    def _apply(self, target: Target, operative: bool, *, scheduled: bool, cause: str) -> None:
        before = {c: self.is_operative(*c) for c in self.connectors()}
        if operative:
            self._inoperative.discard(target)
        else:
            self._inoperative.add(target)
        self._report(target, operative, before, scheduled=scheduled, cause=cause)

    def _report(
        self,
        target: Target,
        operative: bool,
        before: dict[tuple[int, int | None], bool],
        *,
        scheduled: bool,
        cause: str,
    ) -> None:
        changed = tuple(c for c, was in before.items() if self.is_operative(*c) != was)
        if changed:
            self._emit(
                AvailabilityChanged(
                    target=target,
                    operative=operative,
                    changed=changed,
                    scheduled=scheduled,
                    cause=cause,
                )
            )

    def _activity_changed(self, now: float) -> None:
        for target, operative in list(self.scheduled.items()):
            if not self._busy(target):
                del self.scheduled[target]
                self._apply(target, operative, scheduled=True, cause="ChangeAvailability")

    # --- temporary unavailability

    def hold(self, key: str, target: Target = STATION) -> None:
        """Make ``target`` unavailable until ``release(key)`` without touching what the
        CSMS set (B12: EVSEs waiting for an OnIdle reset; L01.FR.07: waiting to install).
        Not persisted."""
        before = {c: self.is_operative(*c) for c in self.connectors()}
        self._holds[key] = target
        self._report(target, False, before, scheduled=False, cause=key)

    def release(self, key: str) -> None:
        if key not in self._holds:
            return
        before = {c: self.is_operative(*c) for c in self.connectors()}
        target = self._holds.pop(key)
        self._report(target, True, before, scheduled=False, cause=key)


# --- station: reset ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ResetAccepted(FlowEvent):
    """A reset was accepted (or scheduled). Stop ``stop`` now with ``stop_reason`` (1.6
    StopTransaction reason; 2.x stoppedReason, with triggerReason ``trigger_reason``);
    ``resume`` (2.1 ImmediateAndResume) get an Updated event with triggerReason
    ResetCommand instead (B13.FR.04); ``after_reboot`` (1.6 Hard) are stopped after the
    reboot. Report each with ``Activity.transaction_ended``."""

    kind: str
    evse_id: int | None
    status: str
    stop: tuple[str | int, ...] = ()
    stop_reason: str | None = None
    trigger_reason: str | None = None
    resume: tuple[str | int, ...] = ()
    after_reboot: tuple[str | int, ...] = ()


@attrs.frozen(kw_only=True)
class ResetDue(FlowEvent):
    """Reset now: reboot the station (``evse_id`` None: boot with ``boot_request`` and
    hand ``core.held_requests`` to the next core) or reset that EVSE."""

    kind: str
    evse_id: int | None
    #: Transaction messages still undelivered (resend after the reboot, B12.FR.05).
    held: tuple[Any, ...]


@attrs.frozen(kw_only=True)
class ResetSnapshot:
    """What a restart must not lose of a reset, for the next boot's reason: an OnIdle reset
    accepted or scheduled and not yet due (``pending``: its kind and EVSE; 2.x boots with
    ScheduledReset), or the kind of the station reset being carried out (``rebooting``)."""

    pending: tuple[str, int | None] | None = None
    rebooting: str | None = None


class _Pending:
    """A reset on its way: waiting for idle (OnIdle), for transactions to stop, or for
    their messages to be answered."""

    def __init__(self, kind: str, evse_id: int | None, wait_for_idle: bool) -> None:
        self.kind = kind
        self.evse_id = evse_id
        self.wait_for_idle = wait_for_idle
        #: Set once nothing runs in scope: the last moment to wait for answers.
        self.drain_until: float | None = None


class Reset(Emitter):
    """Station side of Reset.

    ``evse_reset``: the station can reset a single EVSE (B11.FR.09, B12.FR.09);
    ``resume_transactions`` (2.1): ImmediateAndResume is supported (B13.FR.01);
    ``check(request)`` may return "Rejected" (B11.FR.06: e.g. an update that cannot be
    interrupted); a task marked not interruptible in ``activity`` refuses Immediate resets
    on its own. ``grace`` bounds the wait for the stop messages' answers (default: the
    core's call timeout).
    """

    def __init__(
        self,
        core: StationCore,
        activity: Activity,
        *,
        availability: Availability | None = None,
        evse_reset: bool = False,
        resume_transactions: bool = False,
        check: Callable[[Any], str | None] | None = None,
        grace: float | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.activity = activity
        self.availability = availability
        self.evse_reset = evse_reset
        self.resume_transactions = resume_transactions
        self._check = check
        self.grace = core.config.call_timeout if grace is None else grace
        self._pending: _Pending | None = None
        self._reboot_pending = False
        #: The kind of the station reset that is due (what the next boot follows).
        self._rebooting: str | None = None
        activity.subscribe(self._activity_changed)

    @property
    def pending(self) -> tuple[str, int | None] | None:
        """(kind, EVSE) of a reset accepted or scheduled and not yet due."""
        p = self._pending
        return (p.kind, p.evse_id) if p is not None else None

    @property
    def reboot_pending(self) -> bool:
        """A station reboot was asked for (boot with reason RemoteReset in 2.x)."""
        return self._reboot_pending

    def boot_request(self, base: Any) -> Any:
        """The next power-up's BootNotification: reason RemoteReset after a remote reset
        (2.x, B11.FR.04 via B01); 1.6 has no reason."""
        if self.version == "1.6" or not self._reboot_pending:
            return base
        return attrs.evolve(base, reason=type(base.reason)("RemoteReset"))

    # --- the core's events

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, RequestReceived) and event.action == "Reset":
            self._on_request(event, now)
            return True
        if isinstance(
            event, ResponseReceived | CallErrorReceived | CallTimedOut | TransactionMessageDiscarded
        ):
            self._progress(now)  # a stop message may have been answered
        return False

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        kind = str(request.type)
        evse_id = None if self.version == "1.6" else request.evse_id
        if evse_id == 0:
            evse_id = None
        status = self._judge(request, kind, evse_id)
        response_cls = self.core.registry["Reset"].response
        assert response_cls is not None
        self.core.send_response(event.message_id, build(response_cls, status=status), now)
        if status == "Rejected":
            return
        self._release_hold()
        in_scope = [t.transaction_id for t in self.activity.transactions(evse_id)]
        accepted = ResetAccepted(kind=kind, evse_id=evse_id, status=status)
        if kind == "Soft":
            accepted = attrs.evolve(accepted, stop=tuple(in_scope), stop_reason="SoftReset")
        elif kind == "Hard":
            accepted = attrs.evolve(accepted, after_reboot=tuple(in_scope), stop_reason="HardReset")
        elif kind == "Immediate":
            accepted = attrs.evolve(
                accepted,
                stop=tuple(in_scope),
                stop_reason="ImmediateReset",  # B12.FR.04/.08
                trigger_reason="ResetCommand",
            )
        elif kind == "ImmediateAndResume":
            accepted = attrs.evolve(accepted, resume=tuple(in_scope), trigger_reason="ResetCommand")
        self._emit(accepted)
        if kind == "Hard":
            self._due(kind, evse_id, now)
            return
        wait_for_idle = kind == "OnIdle"
        self._pending = _Pending(kind, evse_id, wait_for_idle)
        if status == "Scheduled" and self.availability is not None:
            target: Target = STATION if evse_id is None else (evse_id, None)
            self.availability.hold("reset", target)  # B12 scenario 3a
        if kind == "ImmediateAndResume":
            self._pending.wait_for_idle = False
            self._pending.drain_until = now + self.grace
        self._progress(now)

    def _judge(self, request: Any, kind: str, evse_id: int | None) -> str:
        if evse_id is not None and (
            not self.evse_reset or not 1 <= evse_id <= self.core.config.connectors
        ):
            return "Rejected"  # B11.FR.09, B12.FR.09
        if self._check is not None and self._check(request) == "Rejected":
            return "Rejected"  # B11.FR.06
        if kind == "ImmediateAndResume" and not self.resume_transactions:
            return "Rejected"  # B13.FR.01
        if kind != "OnIdle" and not self.activity.interruptible:
            return "Rejected"  # B11.FR.06; 2.1 B12.FR.10
        if kind == "OnIdle" and not self._idle(evse_id):
            return "Scheduled"  # B12.FR.01, B11.FR.07
        return "Accepted"  # B11.FR.01, B12.FR.02

    def _idle(self, evse_id: int | None) -> bool:
        return self.activity.is_idle(evse_id)

    def _activity_changed(self, now: float) -> None:
        self._progress(now)

    def _progress(self, now: float) -> None:
        pending = self._pending
        if pending is None:
            return
        if pending.kind == "ImmediateAndResume":
            held = self.core.held_requests
            if not held or (pending.drain_until is not None and now >= pending.drain_until):
                self._due(pending.kind, pending.evse_id, now)
            return
        if self.activity.transactions(pending.evse_id):
            return  # Soft / Immediate: still stopping; OnIdle: still in use
        if pending.wait_for_idle and not self._idle(pending.evse_id):
            return  # OnIdle also waits for tasks (firmware, uploads)
        if pending.drain_until is None:
            pending.drain_until = now + self.grace
        if not self.core.held_requests or now >= pending.drain_until:
            self._due(pending.kind, pending.evse_id, now)

    def _due(self, kind: str, evse_id: int | None, now: float) -> None:
        self._pending = None
        self._release_hold()
        if evse_id is None:
            self._reboot_pending = True
            self._rebooting = kind
        held = tuple(self.core.held_requests) if evse_id is None else ()
        self._emit(ResetDue(kind=kind, evse_id=evse_id, held=held))

    def _release_hold(self) -> None:
        if self.availability is not None:
            self.availability.release("reset")

    def next_deadline(self) -> float | None:
        return self._pending.drain_until if self._pending is not None else None

    def handle_timer(self, now: float) -> None:
        self._progress(now)

    # --- across a restart (docs/store.md)

    def snapshot(self) -> ResetSnapshot | None:
        """The reset a restart must not lose, or None: what the next boot's reason comes
        from. The restart carries out a reset still on its way (it reboots the station,
        and ends the transactions an OnIdle reset waited for), so nothing is taken back."""
        pending = self._pending
        if pending is not None and pending.kind == "OnIdle":
            return ResetSnapshot(pending=(pending.kind, pending.evse_id))
        if pending is not None and pending.evse_id is None:
            return ResetSnapshot(rebooting=pending.kind)
        if self._rebooting is not None:
            return ResetSnapshot(rebooting=self._rebooting)
        return None


# --- CSMS side ----------------------------------------------------------------------------------

#: Connector statuses that mean "in service" (1.6 ChargePointStatus, 2.x ConnectorStatus).
_IN_SERVICE = frozenset(
    {
        "Available",
        "Preparing",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Finishing",
        "Reserved",
        "Occupied",
    }
)


@attrs.frozen(kw_only=True)
class AvailabilityApplied(FlowEvent):
    """A change the station answered Scheduled shows in its connector status now."""

    target: Target
    operative: bool


@attrs.frozen(kw_only=True)
class ResetCompleted(FlowEvent):
    """The station booted after an accepted or scheduled reset."""

    kind: str
    boot_reason: str | None


class AvailabilityMonitor(Emitter):
    """CSMS side of ChangeAvailability and Reset. Feed it the core's events; it answers
    nothing (StatusNotification, BootNotification and TransactionEvent belong to the
    application and other flows) and reports ``FlowAnomaly`` for:

    - a connector reported in service while the CSMS made it (or its EVSE or the station)
      Inoperative and the station accepted (G03.FR.06, G04.FR.07; after a reboot B11.FR.02,
      B12.FR.06; 1.6 §5.2);
    - a boot after a station reset whose reason is not RemoteReset (2.x, B11.FR.04);
    - a transaction that ran when an Immediate reset was accepted ending without
      triggerReason ResetCommand and stoppedReason ImmediateReset (B12.FR.04/.08).
    """

    def __init__(self, core: CsmsCore) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        #: Targets the station accepted to make Inoperative.
        self.inoperative: set[Target] = set()
        #: Changes the station answered Scheduled: target -> operative.
        self.scheduled: dict[Target, bool] = {}
        #: (kind, EVSE) of an accepted or scheduled reset not yet seen through.
        self.reset: tuple[str, int | None] | None = None
        #: 2.x: transactions seen running (id -> EVSE), from their TransactionEvents.
        self.running: dict[str, int | None] = {}
        #: Transactions an accepted Immediate reset must end (B12.FR.04/.08).
        self._to_stop: set[str] = set()

    def _target(self, request: Any) -> Target:
        if self.version == "1.6":
            return STATION if request.connector_id == 0 else (request.connector_id, None)
        evse = request.evse
        if evse is None or evse.id == 0:
            return STATION
        return (evse.id, evse.connector_id)

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, ResponseReceived) and event.action == "ChangeAvailability":
            self._on_change(event)
            return True
        if isinstance(event, ResponseReceived) and event.action == "Reset":
            status = status_of(event.response)
            if status in ("Accepted", "Scheduled"):
                evse_id = None if self.version == "1.6" else event.request.evse_id
                kind = str(event.request.type)
                self.reset = (kind, evse_id or None)
                if kind == "Immediate":
                    self._to_stop = {
                        tx for tx, evse in self.running.items() if evse_id in (None, 0, evse)
                    }
            return True
        if isinstance(event, RequestReceived):
            if event.action == "StatusNotification":
                self._on_status(event)
            elif event.action == "BootNotification":
                self._on_boot(event)
            elif event.action == "TransactionEvent":
                self._on_transaction(event)
        return False

    def _on_change(self, event: ResponseReceived) -> None:
        target = self._target(event.request)
        kind = str(
            event.request.type if self.version == "1.6" else event.request.operational_status
        )
        operative = kind == OPERATIVE
        status = status_of(event.response)
        if status == "Rejected":
            return
        self.scheduled.pop(target, None)
        if status == "Scheduled":
            self.scheduled[target] = operative
            return
        (self.inoperative.discard if operative else self.inoperative.add)(target)

    def _on_status(self, event: RequestReceived) -> None:
        request = event.request
        if self.version == "1.6":
            evse, connector = request.connector_id, None
            status = str(request.status)
        else:
            evse, connector = request.evse_id, request.connector_id
            status = str(request.connector_status)
        in_service = status in _IN_SERVICE
        if status == "Unavailable" or in_service:
            for target, operative in list(self.scheduled.items()):
                if self._covers(target, evse, connector) and operative == in_service:
                    del self.scheduled[target]
                    (self.inoperative.discard if operative else self.inoperative.add)(target)
                    self._emit(AvailabilityApplied(target=target, operative=operative))
        if in_service and any(self._covers(t, evse, connector) for t in self.inoperative):
            rule = "1.6 §5.2" if self.version == "1.6" else "G03.FR.06/G04.FR.07, B11.FR.02"
            self._emit(
                FlowAnomaly(
                    action="StatusNotification",
                    message_id=event.message_id,
                    request_id=None,
                    status=status,
                    rule=rule,
                    reason=f"connector {evse}/{connector} is {status} but was made Inoperative",
                )
            )

    def _covers(self, target: Target, evse: int, connector: int | None) -> bool:
        if self.version == "1.6" and evse == 0:
            return target == STATION
        return _covers(target, evse, connector)

    def _on_boot(self, event: RequestReceived) -> None:
        reset = self.reset
        if reset is None or reset[1] is not None:
            return
        self.reset = None
        reason = None if self.version == "1.6" else str(event.request.reason)
        if reason is not None and reason != "RemoteReset":
            self._emit(
                FlowAnomaly(
                    action="BootNotification",
                    message_id=event.message_id,
                    request_id=None,
                    status=reason,
                    rule="B11.FR.04",
                    reason=f"boot after a {reset[0]} reset with reason {reason}, not RemoteReset",
                )
            )
        self._emit(ResetCompleted(kind=reset[0], boot_reason=reason))

    def _on_transaction(self, event: RequestReceived) -> None:
        request = event.request
        transaction_id = request.transaction_info.transaction_id
        if str(request.event_type) != "Ended":
            evse = request.evse.id if request.evse is not None else None
            self.running[transaction_id] = evse or self.running.get(transaction_id)
            return
        self.running.pop(transaction_id, None)
        if transaction_id not in self._to_stop:
            return
        self._to_stop.discard(transaction_id)
        stopped = request.transaction_info.stopped_reason
        trigger = str(request.trigger_reason)
        if trigger != "ResetCommand" or str(stopped) != "ImmediateReset":
            self._emit(
                FlowAnomaly(
                    action="TransactionEvent",
                    message_id=event.message_id,
                    request_id=None,
                    status=trigger,
                    rule="B12.FR.04",
                    reason=(
                        f"transaction ended during an Immediate reset with triggerReason "
                        f"{trigger} and stoppedReason {stopped}"
                    ),
                )
            )
