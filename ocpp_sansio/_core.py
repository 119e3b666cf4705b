"""What the station and CSMS cores share: the channel per connection, the event queue,
answers to the peer, timers, and message ids."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from .connection import RpcChannel
from .errors import LocalProtocolError
from .events import (
    Event,
    InvalidResponse,
    ProtocolViolation,
    RequestReceived,
    RequestRefused,
    TransactionMessageDiscarded,
    UnmatchedResponse,
)
from .frames import ERROR_CODES, registry
from .messages._registry import ActionSpec, Role

#: Maps core time (``now``) to an aware UTC datetime.
WallClock = Callable[[float], datetime]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def posix_clock(now: float) -> datetime:
    """Core time read as POSIX seconds: the wall clock when no other was given."""
    return _EPOCH + timedelta(seconds=now)


def counter_ids(prefix: str = "") -> Callable[[], str]:
    """Message ids from a counter: deterministic, for tests. Adapters inject UUIDs so ids
    stay unique across process restarts (OCPP-J: an id is unique per sender and
    station identity, on any connection)."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def status_response(cls: type, status: str, **fields: Any) -> Any:
    """An instance of response class ``cls`` whose ``status`` enum holds ``status``."""
    status_type = attrs.fields(cls).status.type
    return cls(status=status_type(status), **fields)


def _describe(event: Event) -> str:
    """One log line's text for an event worth logging."""
    if isinstance(event, ProtocolViolation):
        answered = "answered" if event.answered else "not answered, as the version says"
        return f"the peer broke the protocol ({answered}): {event.error}"
    if isinstance(event, RequestRefused):
        how = event.error_code or (f"status {event.response.status}" if event.response else None)
        return f"refused {event.action} ({event.message_id}) with {how or 'silence'}: {event.rule}"
    if isinstance(event, InvalidResponse):
        return f"the answer to {event.action} ({event.message_id}) is invalid: {event.error}"
    if isinstance(event, TransactionMessageDiscarded):
        return (
            f"{event.action} ({event.message_id}) dropped after {event.attempts} attempts: "
            f"{event.reason}"
        )
    assert isinstance(event, UnmatchedResponse)
    return f"an answer ({event.message_id}) to no request of ours, ignored"


#: The events logged when taken, and at which level: the peer's violations and lost data
#: as warnings, refusals by a rule as information. Each is logged here only, once.
_LOGGED: dict[type[Event], int] = {
    ProtocolViolation: logging.WARNING,
    InvalidResponse: logging.WARNING,
    TransactionMessageDiscarded: logging.WARNING,
    RequestRefused: logging.INFO,
    UnmatchedResponse: logging.INFO,
}


class CoreBase:
    """One side's protocol state for one station, across its connections."""

    role: Role
    #: ``ocpp_sansio.station`` or ``ocpp_sansio.csms``.
    log: logging.Logger

    def __init__(
        self,
        version: str,
        *,
        call_timeout: float,
        id_generator: Callable[[], str] | None,
        wall_clock: WallClock | None,
    ) -> None:
        self.version = version
        #: The wall-clock time of core time ``now``, for the flows that stamp messages or
        #: read dates (None: ``now`` is POSIX seconds). The adapters set it; a flow given
        #: a clock of its own uses that one.
        self.wall_clock = wall_clock
        self.registry = registry(version)
        self._call_timeout = call_timeout
        #: (None: a counter, made at the first id: most CSMS cores never send a request)
        self._id_generator = id_generator
        self.channel: RpcChannel | None = None
        #: A list, not a deque: it rarely holds more than a few events, and an idle deque
        #: keeps a 0.5 KiB block per core.
        self._events: list[Event] = []
        #: The peer's requests not answered yet, by message id (per connection).
        self._inbound: dict[str, Any] = {}

    def _new_id(self) -> str:
        """A message id for our next request."""
        if self._id_generator is None:
            self._id_generator = counter_ids()
        return self._id_generator()

    def wall_time(self, now: float) -> datetime:
        """The wall-clock time of core time ``now``."""
        return (self.wall_clock or posix_clock)(now)

    # --- connection ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.channel is not None

    def connection_made(self, now: float) -> None:
        """A WebSocket to the peer is open (again)."""
        if self.channel is not None:
            raise LocalProtocolError("connection_made called twice without connection_lost")
        self.channel = RpcChannel(self.version, self.role, call_timeout=self._call_timeout)
        self._inbound.clear()

    def _set_call_timeout(self, seconds: float) -> None:
        """For CALLs from now on, on this connection and the next ones."""
        self._call_timeout = seconds
        if self.channel is not None:
            self.channel.call_timeout = seconds

    def connection_lost(self, now: float) -> None:
        """The WebSocket closed; what was outstanding on it is settled by the subclass."""
        self.channel = None
        self._inbound.clear()

    # --- the application's side ---------------------------------------------------------

    def next_event(self) -> Event | None:
        if not self._events:
            return None
        event = self._events.pop(0)
        if type(event) in _LOGGED:
            self._log_event(event)
        return event

    def events(self) -> list[Event]:
        """All pending events, oldest first."""
        if not self._events:
            return []
        out = self._events.copy()  # (the list is kept: one swapped in would outlive it)
        self._events.clear()
        for event in out:
            if type(event) in _LOGGED:
                self._log_event(event)
        return out

    def _log_event(self, event: Event) -> None:
        level = _LOGGED[type(event)]
        if self.log.isEnabledFor(level):
            self.log.log(level, "%s%s", self._log_prefix(), _describe(event))

    def _log_prefix(self) -> str:
        return ""

    def data_to_send(self) -> list[str]:
        """Text frames to write to the WebSocket, in order."""
        channel = self.channel
        if channel is None or not channel.outbox:
            return []
        # A copy, and the outbox kept: a new list per message would live until the next
        # one, long enough for the cyclic collector to carry it to its oldest generation.
        out = channel.outbox.copy()
        channel.outbox.clear()
        return out

    def send_response(self, message_id: str, response: Any, now: float) -> None:
        """Answer the peer's request ``message_id``. Goes out at once, never behind our CALL."""
        channel = self._require_channel("answer")
        request = self._inbound.get(message_id)
        action = channel.answer(message_id, response)
        del self._inbound[message_id]
        self._answered(action, request, response, now)

    def send_error(
        self,
        message_id: str,
        error_code: str,
        description: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Answer the peer's request ``message_id`` with a CALLERROR."""
        channel = self._require_channel("answer")
        if error_code not in ERROR_CODES[self.version]:
            raise LocalProtocolError(f"{error_code!r} is not an OCPP {self.version} error code")
        channel.answer_error(message_id, error_code, description, details)
        self._inbound.pop(message_id, None)

    def receive_text(self, text: str, now: float) -> None:
        """One text message from the WebSocket."""
        channel = self._require_channel("receive")
        for event in channel.receive(text):
            if isinstance(event, RequestReceived):
                self._inbound[event.message_id] = event.request
            self._on_event(event, now)
        self._pump(now)

    def handle_timer(self, now: float) -> None:
        """Call when ``next_deadline()`` has passed (calling early is harmless)."""
        if self.channel is not None:
            timed_out = self.channel.expire(now)
            if timed_out is not None:
                self._on_event(timed_out, now)
        self._on_timer(now)
        self._pump(now)

    def next_deadline(self) -> float | None:
        """The earliest time ``handle_timer`` must be called, or None."""
        earliest = self.channel.deadline() if self.channel is not None else None
        for deadline in self._deadlines():  # (asked after every read: no lists made)
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    # --- for subclasses -----------------------------------------------------------------

    def _require_channel(self, what: str) -> RpcChannel:
        if self.channel is None:
            raise LocalProtocolError(f"cannot {what}: not connected")
        return self.channel

    def _spec_for_request(self, payload: Any) -> ActionSpec:
        try:
            spec = self.registry.for_payload(payload)
        except KeyError:
            raise LocalProtocolError(
                f"{type(payload).__name__} is not an OCPP {self.version} message"
            ) from None
        if payload.__class__ is not spec.request:
            raise LocalProtocolError(f"{type(payload).__name__} is a response, not a request")
        if not spec.sender.may_send(self.role):
            raise LocalProtocolError(f"the {self.role.value} never sends {spec.name}")
        return spec

    def _refuse(self, event: RequestReceived, error_code: str | None, rule: str) -> None:
        assert self.channel is not None
        self._inbound.pop(event.message_id, None)
        self._events.append(self.channel.refuse(event, error_code, rule))

    def _on_event(self, event: Event, now: float) -> None:
        self._events.append(event)

    def _answered(self, action: str, request: Any, response: Any, now: float) -> None:
        """Hook: we answered the peer's ``action``."""

    def _on_timer(self, now: float) -> None:
        """Hook: a timer may have expired."""

    def _deadlines(self) -> list[float | None]:
        return []

    def _pump(self, now: float) -> None:
        """Hook: put the next queued CALL on the wire if the rules allow."""
