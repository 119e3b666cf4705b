"""What every adapter does the same way, kept free of IO: one core, its WebSocket, the
application's waiting calls, and the exceptions and events adapters hand to applications.

An adapter feeds bytes and the time in (``receive``, ``timer``), writes what ``ws`` has to
send, runs the requests ``take_requests()`` returns concurrently and answers them with
``answer`` / ``answer_exception``, and passes ``take_events()`` to the application. The
rules live in the core; the driver only sorts its events.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import LocalProtocolError, OcppError
from ocpp_sansio.events import (
    CallFailed,
    CallTimedOut,
    ErrorReceived,
    Event,
    InvalidResponse,
    RequestReceived,
    ResponseReceived,
    TransactionMessageDiscarded,
)
from ocpp_sansio.frames import ERROR_CODES
from ocpp_sansio.station import StationCore, is_transaction_message

from ._ws import Closed, TextReceived, _WebSocket

log = logging.getLogger("ocpp_sansio.adapters")


def uuid_ids() -> str:
    """A fresh message id: unique across connections and restarts (digest §1.2)."""
    return str(uuid.uuid4())


# --- exceptions ----------------------------------------------------------------------------------


class OcppCallError(OcppError):
    """A CALLERROR, both ways: raise it in a request handler to answer with ``error_code``;
    ``call()`` raises it when the peer answered ours with one."""

    def __init__(
        self, error_code: str, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{error_code}: {description}" if description else error_code)
        self.error_code = error_code
        self.description = description
        self.details = details or {}


class RequestFailed(OcppError):
    """Our request got no usable answer (base of the ones below)."""


class CallTimeout(RequestFailed):
    """No answer within the call timeout."""


class ConnectionLost(RequestFailed):
    """The connection closed before the answer came (or before the request went out)."""


class InvalidAnswer(RequestFailed):
    """The answer broke its schema (2.1: we told the peer with a CALLRESULTERROR)."""


class MessageDiscarded(RequestFailed):
    """A transaction-related message failed on every attempt and was dropped (E13.FR.04)."""


class ConnectFailed(OcppError):
    """A station's connection attempt failed. ``status`` is the CSMS's HTTP status when it
    refused the handshake (401, 404 …)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# --- events the adapters add to the core's ------------------------------------------------------


@attrs.frozen(kw_only=True)
class Connected(Event):
    """A WebSocket to the peer is open; ``version`` was negotiated."""

    version: str


@attrs.frozen(kw_only=True)
class Disconnected(Event):
    """The WebSocket closed with ``code``."""

    code: int
    reason: str


@attrs.frozen(kw_only=True)
class ConnectionAttemptFailed(Event):
    """Station side: an attempt failed; the next one starts after ``retry_in`` seconds
    (None: no further attempt)."""

    error: ConnectFailed
    retry_in: float | None


# --- reconnect back-off -------------------------------------------------------------------------


def _not_negative(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Backoff:
    """The station's reconnect waits (digest §2.4; 2.x OCPPCommCtrlr.RetryBackOff*).

    Wait n (from 0) is ``minimum * 2**min(n, repeat_times)`` plus a new random part in
    ``[0, random_range]``; a successful connection starts again from wait 0. 1.6 has no
    such keys: the same scheme with these defaults.
    """

    minimum: float = attrs.field(default=10.0, validator=_not_negative)
    random_range: float = attrs.field(default=10.0, validator=_not_negative)
    repeat_times: int = attrs.field(default=5, validator=_not_negative)

    def waits(self, rng: random.Random) -> Iterator[float]:
        doublings = 0
        while True:
            yield self.minimum * 2**doublings + rng.uniform(0, self.random_range)
            doublings = min(doublings + 1, self.repeat_times)


# --- the driver ----------------------------------------------------------------------------------


class Waiter(Protocol):
    """Where an adapter receives the outcome of one ``call``."""

    def settle(self, response: Any, error: BaseException | None) -> None: ...


_OUTCOMES = (
    ResponseReceived,
    ErrorReceived,
    InvalidResponse,
    CallTimedOut,
    CallFailed,
    TransactionMessageDiscarded,
)


def _error_for(event: Event) -> BaseException:
    if isinstance(event, ErrorReceived):
        return OcppCallError(event.error_code, event.description, event.details)
    if isinstance(event, CallTimedOut):
        return CallTimeout(f"{event.action} ({event.message_id}) was not answered in time")
    if isinstance(event, InvalidResponse):
        return InvalidAnswer(f"the answer to {event.action} is invalid: {event.error}")
    if isinstance(event, CallFailed):
        return ConnectionLost(f"{event.action}: {event.reason}")
    assert isinstance(event, TransactionMessageDiscarded)
    return MessageDiscarded(
        f"{event.action} dropped after {event.attempts} attempts ({event.reason})"
    )


class Driver:
    """One core across its connections; ``ws`` is the connection it talks over now."""

    def __init__(self, core: StationCore | CsmsCore) -> None:
        self.core = core
        self.ws: _WebSocket | None = None
        #: Bumped per connection, so an answer computed for an older one is dropped.
        self.generation = 0
        self._waiters: dict[str, Waiter] = {}
        #: Station transaction messages: retried by the core, settled only by delivery
        #: or by being discarded.
        self._durable: set[str] = set()
        self._requests: list[tuple[int, RequestReceived]] = []
        self._events: list[Event] = []

    # --- connections ------------------------------------------------------------------------

    def attach(self, ws: _WebSocket, now: float) -> None:
        """``ws`` finished its handshake: the core talks over it from now on."""
        assert ws.version == self.core.version, "a core keeps its version"
        if self.ws is not None:
            self.detach(now, 1000, "replaced by a new connection")
        self._sort_core_events()
        self.ws = ws
        self.generation += 1
        self._events.append(Connected(version=ws.version))
        self.core.connection_made(now)
        self._drain(ws, now)

    def detach(self, now: float, code: int, reason: str) -> None:
        if self.ws is None:
            return
        self.ws = None
        self._sort_core_events()
        self._events.append(Disconnected(code=code, reason=reason))
        self.core.connection_lost(now)

    def receive(self, ws: _WebSocket, data: bytes | None, now: float) -> None:
        """Bytes from ``ws``'s socket (None: end of file)."""
        ws.receive_data(data, now)
        self._drain(ws, now)

    def timer(self, ws: _WebSocket, now: float) -> None:
        ws.handle_timer(now)
        self._drain(ws, now)
        if ws is self.ws:
            self.core.handle_timer(now)

    def next_deadline(self, ws: _WebSocket) -> float | None:
        own = ws.next_deadline()
        core = self.core.next_deadline() if ws is self.ws else None
        if own is None:
            return core
        return own if core is None else min(own, core)

    def close(self, ws: _WebSocket, code: int, reason: str, now: float) -> None:
        ws.close(code, reason, now)
        self._drain(ws, now)

    def _drain(self, ws: _WebSocket, now: float) -> None:
        for event in ws.events():
            if ws is not self.ws:
                continue  # a replaced connection: what it still says means nothing
            if type(event) is TextReceived:
                self.core.receive_text(event.text, now)
            elif type(event) is Closed:  # (Opened was handled by whoever attached ws)
                self.detach(now, event.code, event.reason)

    def flush(self) -> None:
        """Move the core's frames onto the current WebSocket."""
        ws = self.ws
        if ws is not None:
            for text in self.core.data_to_send():
                ws.send_text(text)

    # --- the application's calls ---------------------------------------------------------------

    def call(self, payload: Any, waiter: Waiter, now: float) -> str | None:
        """Send ``payload``; ``waiter`` learns the outcome. Returns the message id, or None
        for a 2.1 SEND (never answered). Raises LocalProtocolError when the core refuses."""
        message_id = self.core.send_request(payload, now)
        spec = self.core.registry.for_payload(payload)
        if spec.response is None:
            return None
        self._waiters[message_id] = waiter
        if isinstance(self.core, StationCore) and is_transaction_message(spec.name, payload):
            self._durable.add(message_id)
        return message_id

    def forget(self, message_id: str) -> None:
        """The caller stopped waiting (cancelled); the request itself stays sent."""
        self._waiters.pop(message_id, None)
        self._durable.discard(message_id)

    # --- what the adapter acts on --------------------------------------------------------------

    def take_requests(self) -> list[tuple[int, RequestReceived]]:
        """The peer's requests to run, each with the generation to answer under."""
        self._sort_core_events()
        out = self._requests
        self._requests = []
        return out

    def take_events(self) -> list[Event]:
        """Events for the application's ``on_event``, oldest first."""
        self._sort_core_events()
        out = self._events
        self._events = []
        return out

    def report(self, event: Event) -> None:
        """An event of the adapter's own for the application, after the core's so far."""
        self._sort_core_events()
        self._events.append(event)

    def _sort_core_events(self) -> None:
        for event in self.core.events():
            if type(event) is RequestReceived:
                self._requests.append((self.generation, event))
                continue
            if isinstance(event, _OUTCOMES):
                message_id = event.message_id
                waiter = self._waiters.get(message_id)
                if waiter is not None:
                    final = message_id not in self._durable or isinstance(
                        event, ResponseReceived | TransactionMessageDiscarded
                    )
                    if final:
                        del self._waiters[message_id]
                        self._durable.discard(message_id)
                        if type(event) is ResponseReceived:
                            waiter.settle(event.response, None)
                        else:
                            waiter.settle(None, _error_for(event))
                        continue
            self._events.append(event)

    def answer(self, generation: int, message_id: str, response: Any, now: float) -> None:
        """The handler's answer to the peer's request ``message_id``."""
        if generation != self.generation or self.ws is None:
            return  # its connection is gone; the peer will ask again if it still cares
        try:
            self.core.send_response(message_id, response, now)
        except LocalProtocolError as error:
            log.error("%s: cannot send this answer to %s: %s", self.core.version, message_id, error)
            self._send_error(message_id, "InternalError", "the handler gave an invalid answer")

    def answer_exception(self, generation: int, message_id: str, error: BaseException) -> None:
        """The handler raised ``error`` instead of answering."""
        if generation != self.generation or self.ws is None:
            return
        if isinstance(error, OcppCallError):
            if error.error_code in ERROR_CODES[self.core.version]:
                self._send_error(message_id, error.error_code, error.description, error.details)
                return
            log.error("%r is not an OCPP %s error code", error.error_code, self.core.version)
        else:
            log.error("request handler failed on %s", message_id, exc_info=error)
        self._send_error(message_id, "InternalError", type(error).__name__)

    def _send_error(
        self,
        message_id: str,
        code: str,
        description: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        try:
            self.core.send_error(message_id, code, description[:255], details)
        except LocalProtocolError as error:
            log.error("cannot answer %s: %s", message_id, error)


def handler_method(handler: Any, name: str) -> Callable[..., Any] | None:
    """``handler.name`` when the application's handler defines it."""
    method = getattr(handler, name, None)
    return method if callable(method) else None
