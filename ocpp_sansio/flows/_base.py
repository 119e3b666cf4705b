"""What the firmware, log, remote-control and availability flows share.

- Wall-clock mapping: the cores count time in float seconds (``now``); OCPP dates are
  wall-clock. A flow converts with the ``WallClock`` the application gave it, else its
  core's ``wall_clock`` (the adapters set it), else ``posix_clock``; never by reading a
  clock.
- ``Outbox``: station-side notifications go through a ``StationCore``; what it cannot take
  yet (offline, not accepted) waits, in order, and what a lost connection swallowed is
  sent again.
- ``Activity``: what the station is busy with (transactions per EVSE, firmware, uploads),
  as the application reports it, so reset, availability and remote control apply the
  "not while a transaction runs" rules the same way.
- Small event classes of the flows' own, and ``FlowAnomaly`` for what a CSMS-side
  monitor saw the station do out of order.
"""

from __future__ import annotations

import abc
import enum
import types
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Union, get_args, get_origin

import attrs

from .._core import WallClock as WallClock
from .._core import posix_clock as posix_clock
from ..csms import CsmsCore
from ..errors import LocalProtocolError
from ..events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    Event,
    InvalidResponse,
    Reconnected,
    RegistrationChanged,
    RegistrationStatus,
    RequestReceived,
    ResponseReceived,
)
from ..station import StationCore


def wall_clock_of(own: WallClock | None, core: Any) -> WallClock:
    """A flow's wall clock: its own, else its core's (every adapter sets one), else
    ``posix_clock``, which reads ``now`` as POSIX seconds."""
    return own or getattr(core, "wall_clock", None) or posix_clock


class WallClocked:
    """A flow that reads wall-clock time through ``clock`` (the rule of ``wall_clock_of``,
    looked up on every use, so a core's clock set after the flow was built counts)."""

    _own_clock: WallClock | None

    @property
    def clock(self) -> WallClock:
        return wall_clock_of(self._own_clock, getattr(self, "core", None))


def core_time(when: datetime, now: float, clock: WallClock) -> float:
    """The core time at which wall-clock ``when`` comes, ``now`` reading as ``clock(now)``."""
    return now + (when - clock(now)).total_seconds()


def build(cls: type, **fields: Any) -> Any:
    """An instance of message class ``cls``; plain strings become the field's enum, so
    what we build compares and prints like what the codec decodes."""
    types = {field.name: field.type for field in attrs.fields(cls)}
    for name, value in fields.items():
        if isinstance(value, str):
            enum_type = _enum_of(types[name])
            if enum_type is not None:
                fields[name] = enum_type(value)
    return cls(**fields)


def _enum_of(annotation: Any) -> type[enum.Enum] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _enum_of(arg)
            if found is not None:
                return found
    return None


def status_of(payload: Any) -> str:
    """A message's ``status`` as plain text."""
    return str(getattr(payload, "status", ""))


def reply(core: Any, event: RequestReceived, now: float, **fields: Any) -> None:
    """Answer ``event`` with its action's response made of ``fields`` (plain strings become
    enums, as in ``build``)."""
    response_cls = core.registry[event.action].response
    assert response_cls is not None
    core.send_response(event.message_id, build(response_cls, **fields), now)


# --- events -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FlowEvent(Event):
    """Base class of the events a flow hands to the application (an ``Event`` like the
    core's and the adapters')."""


@attrs.frozen(kw_only=True)
class FlowAnomaly(FlowEvent):
    """CSMS side: the station sent something a flow's rules do not allow (out of order,
    for an unknown request, Idle without a trigger …). Reported, never answered with an
    error: the message itself was valid OCPP."""

    action: str
    message_id: str
    request_id: int | None
    status: str | None
    rule: str
    reason: str


class Emitter:
    """A flow's own event queue (the core's events stay in the core)."""

    def __init__(self) -> None:
        #: (a list: an idle deque keeps a 0.5 KiB block per flow)
        self._flow_events: list[FlowEvent] = []

    def next_event(self) -> FlowEvent | None:
        return self._flow_events.pop(0) if self._flow_events else None

    def events(self) -> list[FlowEvent]:
        """All pending flow events, oldest first."""
        if not self._flow_events:
            return []
        out = self._flow_events.copy()  # (the list is kept: one swapped in would outlive it)
        self._flow_events.clear()
        return out

    def _emit(self, event: FlowEvent) -> None:
        self._flow_events.append(event)

    def _emit_anomaly(
        self,
        event: RequestReceived,
        rule: str,
        reason: str,
        *,
        status: str | None,
        request_id: int | None = None,
    ) -> None:
        """Report a valid message from the station that breaks ``rule`` (a CSMS-side
        monitor's findings are events, never errors: see ``FlowAnomaly``)."""
        self._emit(
            FlowAnomaly(
                action=event.action,
                message_id=event.message_id,
                request_id=request_id,
                status=status,
                rule=rule,
                reason=reason,
            )
        )


class StatusMonitor(Emitter, abc.ABC):
    """CSMS side of a transfer the station reports on (firmware updates, log uploads):
    follows the station's answers to ``requests`` and its status ``notifications``, and
    answers those (their answer is empty) unless ``answer`` is False."""

    requests: tuple[str, ...]
    notifications: tuple[str, ...]

    def __init__(self, core: CsmsCore, *, answer: bool = True) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.answer = answer

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, ResponseReceived) and event.action in self.requests:
            self._on_answer(event)
            return True
        if isinstance(event, RequestReceived) and event.action in self.notifications:
            self._on_status(event)
            if self.answer:
                reply(self.core, event, now)
            return True
        return False

    @abc.abstractmethod
    def _on_answer(self, event: ResponseReceived) -> None:
        """The station answered one of ``requests``."""

    @abc.abstractmethod
    def _on_status(self, event: RequestReceived) -> None:
        """The station sent one of ``notifications``."""


# --- station side: notifications through the core -----------------------------------------


class Outbox:
    """Requests a station-side flow submits through a ``StationCore``, kept in order.

    The core refuses non-transaction requests while offline or not accepted (E04; 1.6 §3.7;
    B01.FR.08); a flow's notification then waits here and goes once the core is accepted
    again. One the connection swallowed (``CallLost``) is sent again, ahead of newer
    ones. Answers, errors and timeouts settle a request: we never send it twice for those.
    """

    def __init__(self, core: StationCore) -> None:
        self.core = core
        self._waiting: deque[Any] = deque()
        self._lost: list[Any] = []
        self._sent: dict[str, Any] = {}

    @property
    def waiting(self) -> list[Any]:
        """Requests not yet taken by the core, oldest first."""
        return [*self._lost, *self._waiting]

    @property
    def unsettled(self) -> list[Any]:
        """Requests not yet answered: those on their way, then those waiting."""
        return [*self._lost, *self._sent.values(), *self._waiting]

    def submit(self, payload: Any, now: float) -> None:
        self._waiting.append(payload)
        self.flush(now)

    def submit_requested(self, payload: Any, now: float, supersedes: str) -> None:
        """A message a trigger asked for: it goes now (Pending allows it), and waiting
        ``supersedes`` messages are dropped, since the triggered one reports the current
        state and older ones sent after it would contradict it."""
        self.discard(supersedes)
        if self.core.may_send(payload) is None:
            self._sent[self.core.send_request(payload, now)] = payload
        else:
            self._waiting.append(payload)

    def discard(self, action: str) -> None:
        """Forget waiting requests of ``action``."""
        spec = self.core.registry[action].request
        self._lost = [p for p in self._lost if type(p) is not spec]
        self._waiting = deque(p for p in self._waiting if type(p) is not spec)

    def flush(self, now: float) -> None:
        if self._lost:
            self._waiting.extendleft(reversed(self._lost))
            self._lost.clear()
        # (an invalid message raises InvalidPayloadError: it never becomes sendable)
        while self._waiting and self.core.may_send(self._waiting[0]) is None:
            message_id = self.core.send_request(self._waiting[0], now)
            self._sent[message_id] = self._waiting.popleft()

    def handle_event(self, event: Event, now: float) -> bool:
        """Settle our requests; True when ``event`` was about one of them."""
        if isinstance(event, CallLost) and event.message_id in self._sent:
            self._lost.append(self._sent.pop(event.message_id))
            return True
        if (
            isinstance(event, ResponseReceived | CallErrorReceived | CallTimedOut | InvalidResponse)
            and event.message_id in self._sent
        ):
            del self._sent[event.message_id]
            return True
        if isinstance(event, Reconnected) or (
            isinstance(event, RegistrationChanged) and event.status is RegistrationStatus.ACCEPTED
        ):
            self.flush(now)
        return False


# --- station side: what keeps the station busy --------------------------------------------


@attrs.frozen(kw_only=True)
class Transaction:
    """A transaction as the station application reports it. ``evse_id`` is the 1.6
    connector id or the 2.x EVSE id."""

    transaction_id: str | int
    evse_id: int
    connector_id: int | None = None
    authorized: bool = True


ActivityListener = Callable[[float], None]


class Activity:
    """What the station is doing, as far as reset, availability, firmware and remote
    control care: running transactions per EVSE, and other tasks (a firmware update, a log
    upload, a locked cable …) that keep it from being idle (B12.FR.01).

    The application reports changes; flows that wait for "idle" subscribe and are called
    back, synchronously, with the same ``now``.
    """

    def __init__(self) -> None:
        self._transactions: dict[str | int, Transaction] = {}
        #: task name -> may a reset interrupt it
        self._tasks: dict[str, bool] = {}
        self._listeners: list[ActivityListener] = []

    def subscribe(self, listener: ActivityListener) -> None:
        self._listeners.append(listener)

    def _changed(self, now: float) -> None:
        for listener in list(self._listeners):
            listener(now)

    # --- transactions

    def transaction_started(
        self,
        transaction_id: str | int,
        evse_id: int,
        now: float,
        *,
        connector_id: int | None = None,
        authorized: bool = True,
    ) -> None:
        if transaction_id in self._transactions:
            raise LocalProtocolError(f"transaction {transaction_id!r} is already running")
        self._transactions[transaction_id] = Transaction(
            transaction_id=transaction_id,
            evse_id=evse_id,
            connector_id=connector_id,
            authorized=authorized,
        )
        self._changed(now)

    def transaction_authorized(self, transaction_id: str | int, now: float) -> None:
        self._transactions[transaction_id] = attrs.evolve(
            self._require(transaction_id), authorized=True
        )
        self._changed(now)

    def transaction_ended(self, transaction_id: str | int, now: float) -> None:
        self._require(transaction_id)
        del self._transactions[transaction_id]
        self._changed(now)

    def _require(self, transaction_id: str | int) -> Transaction:
        try:
            return self._transactions[transaction_id]
        except KeyError:
            raise LocalProtocolError(f"no running transaction {transaction_id!r}") from None

    def transaction(self, transaction_id: str | int) -> Transaction | None:
        return self._transactions.get(transaction_id)

    def transactions(self, evse_id: int | None = None) -> list[Transaction]:
        """Running transactions, on ``evse_id`` only when given."""
        return [t for t in self._transactions.values() if evse_id in (None, t.evse_id)]

    # --- other tasks

    def task_started(self, task: str, now: float, *, interruptible: bool = True) -> None:
        self._tasks[task] = interruptible
        self._changed(now)

    def task_ended(self, task: str, now: float) -> None:
        if self._tasks.pop(task, None) is not None:
            self._changed(now)

    @property
    def tasks(self) -> dict[str, bool]:
        """Running tasks: name -> whether a reset may interrupt it."""
        return dict(self._tasks)

    def is_idle(self, evse_id: int | None = None) -> bool:
        """No transaction on ``evse_id`` (or anywhere), and, for the whole station, no task."""
        if self.transactions(evse_id):
            return False
        return evse_id is not None or not self._tasks

    @property
    def interruptible(self) -> bool:
        """False while a task that must not be interrupted runs (B11.FR.06)."""
        return all(self._tasks.values())
