"""What every adapter does the same way, kept free of IO: one core, its WebSocket, the
application's waiting calls, and the exceptions and events adapters hand to applications.

An adapter feeds bytes and the time in (``receive``, ``timer``), writes what ``ws`` has to
send, runs the requests ``take_requests()`` returns concurrently and answers them with
``answer`` / ``answer_exception``, and passes ``take_events()`` to the application. The
rules live in the core; the driver only sorts its events, after the application's flows
(``ocpp_sansio.flows.FlowHost``) had their turn.

The policy around connections is here too, so every adapter follows the same one: when a
station tries again and when it gives up (``StationDriver``), and which core a station's
new connection to a CSMS talks to (``CsmsCores``). Adapters only do the IO and the waiting.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ocpp_sansio.config import StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import (
    CallLostError,
    CallTimedOutError,
    ConnectFailedError,
    CoreMismatch,
    InvalidResponseError,
    LocalProtocolError,
    OcppCallError,
    TransactionMessageDiscardedError,
)
from ocpp_sansio.events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    Connected,
    ConnectFailed,
    Disconnected,
    Event,
    InvalidResponse,
    RegistrationStatus,
    RequestReceived,
    ResponseReceived,
    TransactionMessageDiscarded,
    VersionChanged,
)
from ocpp_sansio.flows.host import FlowFactory, FlowHost
from ocpp_sansio.frames import ERROR_CODES, error_codes
from ocpp_sansio.rules import is_transaction_message
from ocpp_sansio.station import StationCore

from ._options import (
    DEFAULT_MAX_CALLS_IN_PROGRESS,
    Direction,
    FrameObserver,
    ServerOptions,
    StationOptions,
    WallClock,
)
from ._ws import (
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    ClientWebSocket,
    Closed,
    Endpoint,
    Phase,
    ServerPolicy,
    SessionCheck,
    SpeaksFor,
    TextReceived,
    _WebSocket,
    identity_key,
)

log = logging.getLogger("ocpp_sansio.adapters")
#: Every frame, both ways, at DEBUG: ``<identity> <version> received|sent <text>``.
frame_log = logging.getLogger("ocpp_sansio.adapters.frames")


def uuid_ids() -> str:
    """A fresh message id: unique across connections and restarts (OCPP-J, Part 4: a
    CALL's message id is unique per identity)."""
    return str(uuid.uuid4())


# --- the driver ----------------------------------------------------------------------------------


class Wire(Protocol):
    """What the driver and the skeleton need of a connection's WebSocket: ``_ws``'s
    byte-level ones, or the ASGI adapter's message-level one (the web server frames)."""

    version: str | None
    identity: str
    phase: Phase
    #: (A CSMS's connection, until placed) what its credentials open: ``SpeaksFor``.
    speaks_for: SpeaksFor | None

    @property
    def done(self) -> bool: ...

    def receive_data(self, data: Any, now: float) -> None: ...

    def events(self) -> list[Any]: ...

    def data_to_send(self) -> Any: ...

    def send_text(self, text: str) -> None: ...

    def close(self, code: int = ..., reason: str = ..., now: float = ...) -> None: ...

    def abort(self, code: int = ..., reason: str = ...) -> None: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Waiter(Protocol):
    """Where an adapter receives the outcome of one ``call``."""

    def settle(self, response: Any, error: BaseException | None) -> None: ...


_OUTCOMES = (
    ResponseReceived,
    CallErrorReceived,
    InvalidResponse,
    CallTimedOut,
    CallLost,
    TransactionMessageDiscarded,
)


def _error_for(event: Event) -> BaseException:
    if isinstance(event, CallErrorReceived):
        return OcppCallError(event.error_code, event.description, event.details)
    if isinstance(event, CallTimedOut):
        return CallTimedOutError(f"{event.action} ({event.message_id}) was not answered in time")
    if isinstance(event, InvalidResponse):
        return InvalidResponseError(f"the answer to {event.action} is invalid: {event.error}")
    if isinstance(event, CallLost):
        return CallLostError(f"{event.action}: {event.reason}")
    assert isinstance(event, TransactionMessageDiscarded)
    return TransactionMessageDiscardedError(
        f"{event.action} dropped after {event.attempts} attempts ({event.reason})"
    )


def posix_wall_clock(now: float) -> datetime:
    """The wall clock of a driver used on its own: ``now`` read as POSIX seconds (the
    adapters give theirs, see ``_skeleton.wall_clock_for``)."""
    return datetime.fromtimestamp(now, UTC)


class Driver:
    """One core across its connections; ``ws`` is the connection it talks over now.
    ``flows(core)`` gives the flows that see the core's events before the application;
    ``observer`` sees every frame; ``wall_clock`` dates them (and is offered to the core's
    flows: a core with a ``wall_clock`` attribute left unset gets this one)."""

    def __init__(
        self,
        core: StationCore | CsmsCore,
        flows: FlowFactory | None = None,
        *,
        identity: str = "",
        observer: FrameObserver | None = None,
        wall_clock: WallClock | None = None,
        max_calls_in_progress: int = DEFAULT_MAX_CALLS_IN_PROGRESS,
        boot_timeout: float = 0.0,
    ) -> None:
        self.core = core
        self.identity = identity or getattr(core, "identity", "")
        self.observer = observer
        #: Frames go to the observer or the frame logger (checked as a connection opens).
        self._tapping = observer is not None
        self.wall_clock = wall_clock or posix_wall_clock
        if core.wall_clock is None:
            core.wall_clock = self.wall_clock
        self.host = FlowHost(core, flows(core)) if flows is not None else None
        self.ws: Wire | None = None
        #: The latest time an entry point was given (flows need one for every event).
        self.now = 0.0
        #: Station side: why the station stopped trying (``StationDriver``).
        self.failure: ConnectFailedError | None = None
        #: Bumped per connection, so an answer computed for an older one is dropped.
        self.generation = 0
        self._waiters: dict[str, Waiter] = {}
        #: Station transaction messages: retried by the core, settled only by delivery
        #: or by being discarded.
        #: (a dict as a set: an empty set takes 216 bytes, an empty dict 64)
        self._durable: dict[str, None] = {}
        self._requests: list[tuple[int, RequestReceived]] = []
        self._events: list[Event] = []
        #: The peer's requests on this connection with a handler now; past
        #: ``max_calls_in_progress`` more are answered with a CALLERROR.
        self.max_calls_in_progress = max_calls_in_progress
        self._in_progress = 0
        #: CALLERRORs for excess requests were queued in the core since the last flush.
        self._refused = False
        #: The connection (generation) whose excess requests were logged.
        self._warned = 0
        #: (A CSMS's) how long a connection may go without a boot answered, when the
        #: station's registration is unknown (0: no limit); when that runs out.
        self.boot_timeout = boot_timeout
        self._boot_due: float | None = None
        #: Bumped by every method that may change a deadline: ``next_deadline`` is
        #: computed again only after a change (one entry point may transmit twice when
        #: a handler answers inline).
        self.changes = 0
        #: ``changes`` when ``flush`` last collected the flows' events.
        self._flows_collected = -1
        #: ``next_deadline(ws)`` as of ``changes`` (three fields rather than a tuple made
        #: per message, which would outlive the message for the cyclic collector).
        self._deadline_at = -1
        self._deadline_ws: Wire | None = None
        self._deadline: float | None = None

    def _tap(self, direction: Direction, text: str, now: float) -> None:
        """Show one frame to the observer and the frame logger."""
        if frame_log.isEnabledFor(logging.DEBUG):
            frame_log.debug("%s %s %s %s", self.identity, self.core.version, direction, text)
        observer = self.observer
        if observer is not None:
            try:
                observer(direction, self.identity, self.core.version, text, self.wall_clock(now))
            except Exception:
                log.exception("the frame observer failed")

    # --- connections ------------------------------------------------------------------------

    def attach(self, ws: Wire, now: float) -> None:
        """``ws`` finished its handshake: the core talks over it from now on."""
        self.changes += 1
        assert ws.version == self.core.version, "a core keeps its version"
        self.now = now
        if self.ws is not None:
            self.detach(now, 1000, "replaced by a new connection")
        self._sort_core_events()
        self.ws = ws
        if isinstance(ws, _WebSocket):
            ws.on_text = self._text
        self._tapping = self.observer is not None or frame_log.isEnabledFor(logging.DEBUG)
        self.generation += 1
        self._in_progress = 0
        if self.boot_timeout and self.core.registration is None:
            self._boot_due = now + self.boot_timeout
        self._events.append(Connected(version=ws.version))
        self.core.connection_made(now)
        self._drain(ws, now)

    def detach(self, now: float, code: int, reason: str) -> None:
        self.changes += 1
        if self.ws is None:
            return
        self.now = now
        if isinstance(self.ws, _WebSocket):
            self.ws.on_text = None
        self.ws = None
        self._sort_core_events()
        self._events.append(Disconnected(code=code, reason=reason))
        self.core.connection_lost(now)

    def receive(self, ws: Wire, data: bytes | None, now: float) -> None:
        """Bytes from ``ws``'s socket (None: end of file)."""
        self.changes += 1
        self.now = now
        ws.receive_data(data, now)
        self._drain(ws, now)

    def timer(self, ws: Wire, now: float) -> None:
        self.changes += 1
        self.now = now
        ws.handle_timer(now)
        self._drain(ws, now)
        if ws is self.ws:
            self.core.handle_timer(now)
            if self.host is not None:
                self.host.handle_timer(now)
            due = self._boot_due
            if due is not None and now >= due:
                self._boot_expired(ws, now)

    def next_deadline(self, ws: Wire) -> float | None:
        """The earliest of the WebSocket's, the core's and the flows' deadlines (the core's
        and the flows' only on the current connection)."""
        if self._deadline_at == self.changes and self._deadline_ws is ws:
            return self._deadline
        own = ws.next_deadline()
        if ws is not self.ws:
            return own
        core = self.core.next_deadline()
        if self._boot_due is not None and (core is None or self._boot_due < core):
            core = self._boot_due
        if self.host is not None:
            flows = self.host.next_deadline()
            if flows is not None and (core is None or flows < core):
                core = flows
        deadline = core if own is None else own if core is None else min(own, core)
        self._deadline_at, self._deadline_ws, self._deadline = self.changes, ws, deadline
        return deadline

    def _boot_expired(self, ws: Wire, now: float) -> None:
        """``boot_timeout`` ran out: a station that has had no BootNotification answered
        (any status: Pending and Rejected stations stay, B02.FR.06) is closed with 1008."""
        self._boot_due = None
        if self.core.registration is None:
            reason = f"no BootNotification within {self.boot_timeout:g} s of connecting"
            log.warning("%s: %s: closing", self.identity, reason)
            self.close(ws, POLICY_VIOLATION, reason, now)

    def close(self, ws: Wire, code: int, reason: str, now: float) -> None:
        self.changes += 1
        self.now = now
        ws.close(code, reason, now)
        self._drain(ws, now)

    def _text(self, text: str) -> None:
        """A whole text message from the current connection, read on the WebSocket's fast
        path during ``receive`` (what ``_drain`` does for a ``TextReceived``)."""
        if self._tapping:
            self._tap("received", text, self.now)
        self.core.receive_text(text, self.now)

    def abort(self, ws: Wire, code: int, reason: str, now: float) -> None:
        """End ``ws`` at once, without a closing handshake (the adapter drops its socket)."""
        self.changes += 1
        self.now = now
        ws.abort(code, reason)
        self._drain(ws, now)

    def _drain(self, ws: Wire, now: float) -> None:
        for event in ws.events():
            if ws is not self.ws:
                continue  # a replaced connection: what it still says means nothing
            if type(event) is TextReceived:
                if self._tapping:
                    self._tap("received", event.text, now)
                self.core.receive_text(event.text, now)
            elif type(event) is Closed:  # (Opened was handled by whoever attached ws)
                self.detach(now, event.code, event.reason)

    def flush(self) -> None:
        """Move the core's frames onto the current WebSocket (after the flows answered
        what they take)."""
        self.changes += 1
        if self.host is not None:
            self._sort_core_events()
        # Asked for offline too: a core with a store commits there (docs/store.md).
        texts = self.core.data_to_send()
        ws = self.ws
        if ws is not None:
            if texts and self._tapping:
                for text in texts:
                    self._tap("sent", text, self.now)
            for text in texts:
                ws.send_text(text)
        if self.host is not None and not (texts and self._tapping):
            # The flows' events are collected: a ``take_work`` right after (every entry
            # point's) need not ask each flow again. (Not after the frame observer ran: it
            # is the application's, and may have acted.)
            self._flows_collected = self.changes

    # --- the application's calls ---------------------------------------------------------------

    def call(self, payload: Any, waiter: Waiter, now: float) -> str | None:
        """Send ``payload``; ``waiter`` learns the outcome. Returns the message id, or None
        for a 2.1 SEND (never answered). Raises LocalProtocolError when the core refuses."""
        self.changes += 1
        self.now = now
        message_id = self.core.send_request(payload, now)
        spec = self.core.registry.for_payload(payload)
        if spec.response is None:
            return None
        self._waiters[message_id] = waiter
        if isinstance(self.core, StationCore) and is_transaction_message(spec.name, payload):
            self._durable[message_id] = None
        return message_id

    def forget(self, message_id: str) -> None:
        """The caller stopped waiting (cancelled); the request itself stays sent."""
        self.changes += 1
        self._waiters.pop(message_id, None)
        self._durable.pop(message_id, None)

    # --- what the adapter acts on --------------------------------------------------------------

    def take_work(self) -> tuple[list[tuple[int, RequestReceived]], list[Event]]:
        """``take_requests()`` and ``take_events()`` at once (the core's events sorted
        once): what every entry point of an adapter acts on."""
        collected = self._flows_collected == self.changes  # nothing since flush()
        self.changes += 1
        self._sort_core_events(collected)
        if self._refused:  # the CALLERRORs go out with this entry point's frames
            self._refused = False
            self.flush()
        requests, events = self._requests, self._events
        if requests:
            self._requests = []
        if events:
            self._events = []
        return requests, events

    def take_requests(self) -> list[tuple[int, RequestReceived]]:
        """The peer's requests to run, each with the generation to answer under."""
        self.changes += 1
        self._sort_core_events()
        out = self._requests
        self._requests = []
        return out

    def take_events(self) -> list[Event]:
        """Events for the application's ``on_event``, oldest first."""
        self.changes += 1
        self._sort_core_events()
        out = self._events
        self._events = []
        return out

    def report(self, event: Event) -> None:
        """An event of the adapter's own for the application, after the core's so far."""
        self.changes += 1
        self._sort_core_events()
        self._events.append(event)

    def _sort_core_events(self, flows_collected: bool = False) -> None:
        """Route the core's events through the flows, then collect the flows' own
        (``flows_collected``: they were collected since the flows last ran, so unless the
        core has new events, there is nothing to ask them)."""
        host = self.host
        if host is None:  # the common case, kept short: it runs for every frame
            for event in self.core.events():
                self._sort(event)
            return
        events = self.core.events()
        if flows_collected and not events:
            return
        while events:
            for event in events:
                if not host.route(event, self.now):
                    self._sort(event)
            events = self.core.events()  # what the flows sent may have made new events
        self._events += host.events()  # the flows' own, after the core's

    def _sort(self, event: Event) -> None:
        if type(event) is RequestReceived:
            if self._in_progress < self.max_calls_in_progress:
                self._in_progress += 1
                self._requests.append((self.generation, event))
            else:
                self._refuse_excess(event)
            return
        if isinstance(event, _OUTCOMES):
            message_id = event.message_id
            waiter = self._waiters.get(message_id)
            if waiter is not None:
                final = message_id not in self._durable or isinstance(
                    event, ResponseReceived | TransactionMessageDiscarded
                )
                if final:
                    del self._waiters[message_id]
                    self._durable.pop(message_id, None)
                    if type(event) is ResponseReceived:
                        waiter.settle(event.response, None)
                    else:
                        waiter.settle(None, _error_for(event))
                    return
        self._events.append(event)

    def _refuse_excess(self, event: RequestReceived) -> None:
        """A request beyond ``max_calls_in_progress``: the peer did not wait for our
        answers (OCPP-J section 4.1.1 "Synchronicity"; 2.x FR.01 with FR.03: a CALL that
        breaks the RPC framework is answered with a CALLERROR), with the version's code
        for it (``ErrorCodes.out_of_turn``), as for a message id already in progress."""
        if self._warned != self.generation:  # once per connection
            self._warned = self.generation
            log.warning(
                "%s sends requests without waiting for our answers: more than %d in "
                "progress are answered with a CALLERROR",
                self.identity,
                self.max_calls_in_progress,
            )
        self._refused = True
        code = error_codes(self.core.version).out_of_turn
        limit = self.max_calls_in_progress
        self._send_error(
            event.message_id,
            code,
            f"the limit of {limit} requests in progress is reached: send a request once "
            "the previous one is answered (OCPP-J 4.1.1)",
        )

    def _handled(self, generation: int) -> None:
        """A handler of connection ``generation`` is done."""
        if generation == self.generation:
            self._in_progress -= 1

    def answer(self, generation: int, message_id: str, response: Any, now: float) -> None:
        """The handler's answer to the peer's request ``message_id``."""
        self.changes += 1
        self._handled(generation)
        if generation != self.generation or self.ws is None:
            return  # its connection is gone; the peer will ask again if it still cares
        self.now = now
        try:
            self.core.send_response(message_id, response, now)
        except LocalProtocolError as error:
            log.error("%s: cannot send this answer to %s: %s", self.core.version, message_id, error)
            self._send_error(message_id, "InternalError", "the handler gave an invalid answer")

    def answer_exception(self, generation: int, message_id: str, error: BaseException) -> None:
        """The handler raised ``error`` instead of answering."""
        self.changes += 1
        self._handled(generation)
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


# --- what the application gives instead of a plain core ------------------------------------------


def station_core(
    core: StationCore | None,
    *,
    version: str | None,
    boot: Any,
    station_config: StationConfig | None,
    id_generator: Callable[[], str] | None,
    rng: random.Random,
) -> StationCore:
    """The core a station client drives: the application's own ``core``, or one built from
    ``version`` and ``boot``. Mixing the two is refused, so no option is silently lost."""
    if core is None:
        if version is None or boot is None:
            raise TypeError("connect() needs version= and boot=, or core=")
        return StationCore(
            version, boot, config=station_config, id_generator=id_generator or uuid_ids, rng=rng
        )
    if not isinstance(core, StationCore):
        raise CoreMismatch(f"core must be a StationCore, not {type(core).__name__}")
    given = [
        name
        for name, value in (
            ("boot", boot),
            ("station_config", station_config),
            ("id_generator", id_generator),
        )
        if value is not None
    ]
    if given:
        raise TypeError(f"{', '.join(given)}: set these on the core you pass, not next to it")
    if version is not None and version != core.version:
        raise CoreMismatch(f"version={version!r}, but the core speaks OCPP {core.version}")
    if core.connected:
        raise CoreMismatch("the core is connected elsewhere (one connection per core)")
    return core


class _HasDriver(Protocol):
    driver: Driver
    link: Any


S = TypeVar("S", bound=_HasDriver)


#: ``observe(core, flows) -> [flow, ...]``: flows to put ahead of ``flows`` (the
#: application's, just made for the new ``core``) on a CSMS's every new core.
ObserverFlows = Callable[[CsmsCore, Sequence[Any]], Sequence[Any]]


class CsmsCores:
    """A CSMS's choice of core for each station connection: the session it had (one core
    per identity, case-insensitive, kept across reconnects) or a new one from the
    application's ``core_factory`` (or a plain ``CsmsCore``), each with its own flows:
    the observers' first (``observer_flows``), then the application's."""

    def __init__(self, options: ServerOptions, wall_clock: WallClock) -> None:
        self.options = options
        self.id_generator = options.id_generator or uuid_ids
        self.wall_clock = options.wall_clock or wall_clock
        #: Who adds flows ahead of the application's on every new core (a cluster node's
        #: tap); they see each event first and should keep none.
        self.observer_flows: list[ObserverFlows] = []

    def _flows(self) -> FlowFactory | None:
        """The flows factory of a new core: the application's, behind the observers'."""
        app = self.options.flows
        observers = list(self.observer_flows)
        if not observers:
            return app

        def flows(core: CsmsCore) -> list[Any]:
            own = list(app(core)) if app is not None else []
            first = [flow for observe in observers for flow in observe(core, own)]
            return [*first, *own]

        return flows

    def new_driver(self, identity: str, version: str) -> Driver:
        options = self.options
        factory = options.core_factory
        if factory is None:
            core = CsmsCore(
                version, identity, config=options.csms_config, id_generator=self.id_generator
            )
        else:
            core = factory(identity, version)
            if not isinstance(core, CsmsCore):
                raise CoreMismatch(f"core_factory gave a {type(core).__name__}, not a CsmsCore")
            if core.version != version:
                raise CoreMismatch(
                    f"core_factory gave an OCPP {core.version} core for {identity!r}, "
                    f"whose connection negotiated {version}"
                )
            if identity_key(core.identity) != identity_key(identity):
                raise CoreMismatch(f"core_factory gave {core.identity!r}'s core for {identity!r}")
            if core.connected:
                raise CoreMismatch(
                    f"core_factory gave a core that is connected elsewhere ({identity!r})"
                )
        return Driver(
            core,
            self._flows(),
            identity=identity,
            observer=options.observer,
            wall_clock=self.wall_clock,
            max_calls_in_progress=options.max_calls_in_progress,
            boot_timeout=options.boot_timeout,
        )

    def place(
        self,
        sessions: MutableMapping[str, S],
        ws: Wire,
        now: float,
        new_session: Callable[[str, Driver], S],
    ) -> tuple[S, Any] | None:
        """The session ``ws`` (just opened) belongs to, and the session's previous link
        when it still lingers (closed here in the driver: the adapter transmits what that
        produced). None when there is none: the core could not be made (the factory
        raised, or CoreMismatch: logged, and ``ws`` closed with 1011)."""
        if ws.phase is not Phase.OPEN or ws.version is None:
            return None  # a connection whose core could not be made, still closing
        key = identity_key(ws.identity)
        session = sessions.get(key)
        if session is None or session.driver.core.version != ws.version:
            # A station back with another version gets a fresh core, and the application
            # is told (the session's registration starts again).
            try:
                driver = self.new_driver(ws.identity, ws.version)
            except Exception:
                log.exception("no core for station %r", ws.identity)
                ws.close(INTERNAL_ERROR, "the CSMS could not set up this station", now)
                return None
            old = session
            if old is not None:
                previous = old.driver.core
                driver.report(
                    VersionChanged(
                        previous=previous.version,
                        version=ws.version,
                        registration=previous.registration,
                    )
                )
            session = sessions[key] = new_session(ws.identity, driver)
        else:
            old = session
        lingering = old.link if old is not None else None
        if old is not None and lingering is not None:
            old.driver.close(lingering.ws, NORMAL_CLOSURE, "replaced by a new connection", now)
        return session, lingering


def server_policy(
    versions: Sequence[str], options: ServerOptions, session_check: SessionCheck | None = None
) -> ServerPolicy:
    """The handshake policy of every adapter's ``serve()``; ``session_check`` the server's."""
    return ServerPolicy(
        versions=tuple(versions),
        known_identity=options.known_identity,
        password_for=options.auth,
        certificate_check=options.certificate_check,
        session_check=session_check,
        options=options.ws_options,
    )


# --- the station's connection policy --------------------------------------------------------------


class StationDriver(Driver):
    """A station's one core across its connection attempts, with the policy every adapter
    follows: a new attempt after each loss with the waits of ``backoff`` (OCPP 2.x
    B04/OCPPCommCtrlr.RetryBackOff*), given up after ``max_attempts`` failures in a row;
    the adapter only connects, runs the connection, and sleeps the returned wait::

        while (wait := driver.attempt_ended(...)) is not None: sleep(wait); connect again
    """

    def __init__(
        self,
        core: StationCore,
        endpoint: Endpoint,
        options: StationOptions,
        *,
        rng: random.Random,
        wall_clock: WallClock,
    ) -> None:
        super().__init__(
            core,
            options.flows,
            identity=endpoint.identity,
            observer=options.observer,
            wall_clock=options.wall_clock or wall_clock,
            max_calls_in_progress=options.max_calls_in_progress,
        )
        self.endpoint = endpoint
        self.password = options.auth
        self.options = options.ws_options
        self.backoff = options.backoff
        self.rng = rng
        self.max_attempts = options.max_attempts
        #: The application asked the station to close: no further attempt.
        self.closing = False
        self._failures = 0
        self._waits = self.backoff.waits(rng)
        self._refusal: Closed | None = None

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        version: str | None,
        boot: Any,
        core: StationCore | None,
        options: StationOptions,
        wall_clock: WallClock,
    ) -> StationDriver:
        """The driver of every adapter's ``connect()``, from its arguments. A URL that is
        not ``ws[s]://host[:port]/.../IDENTITY`` is a ValueError saying why."""
        endpoint = Endpoint.from_url(url)
        if not endpoint.identity:
            raise ValueError(f"the URL has no station identity as its last path segment: {url!r}")
        rng = options.rng or random.Random()
        core = station_core(
            core,
            version=version,
            boot=boot,
            station_config=options.station_config,
            id_generator=options.id_generator,
            rng=rng,
        )
        return cls(core, endpoint, options, rng=rng, wall_clock=wall_clock)

    @property
    def trying(self) -> bool:
        return not self.closing and self.failure is None

    def new_websocket(self, now: float) -> ClientWebSocket:
        """The WebSocket of the next attempt (the stream to the CSMS is open)."""
        self._refusal = None
        return ClientWebSocket(
            self.endpoint,
            versions=(self.core.version,),
            options=self.options,
            password=self.password,
            now=now,
        )

    def unreachable(self, error: BaseException) -> ConnectFailedError:
        """The error for an attempt whose TCP or TLS connection failed."""
        endpoint = self.endpoint
        return ConnectFailedError(f"cannot connect to {endpoint.host}:{endpoint.port}: {error!r}")

    def refused(self, closed: Closed) -> None:
        """The handshake of the current attempt was refused (HTTP status, no subprotocol)."""
        self._refusal = closed

    def attempt_ended(
        self, ws: Wire | None, error: ConnectFailedError | None = None
    ) -> float | None:
        """An attempt is over: ``ws`` ran (its handshake may have failed), or ``error``
        says why no WebSocket started. Returns the wait before the next attempt, or None
        for no further attempt; a failure is reported as ``ConnectFailed``."""
        if error is None and (ws is None or ws.version is None):
            if self.closing:
                return None  # the application closed the station during the handshake
            refusal = self._refusal or Closed(code=1006, reason="connection lost", by_peer=True)
            error = ConnectFailedError(refusal.reason, refusal.status)
        if error is None:
            self._failures = 0
            self._waits = self.backoff.waits(self.rng)
            return None if self.closing else next(self._waits)
        self._failures += 1
        give_up = self.max_attempts is not None and self._failures >= self.max_attempts
        wait = None if give_up or self.closing else next(self._waits)
        self.report(ConnectFailed(error=error, retry_in=wait))
        if give_up:
            self.failure = error
        return wait

    def offline_wake(self, until: float) -> float:
        """Between connections: when to wake before ``until`` (the next attempt), for the
        flows' timers (a meter sample, a reservation expiring); ``until`` if none is due."""
        due = self.host.next_deadline() if self.host is not None and self.ws is None else None
        return until if due is None else min(due, until)

    def offline_timer(self, now: float) -> None:
        """Run the flows' timers while no connection is open; what they send is held or
        refused by the core as offline rules say. The adapter then pumps events."""
        self.changes += 1
        self.now = now
        if self.host is not None and self.ws is None:
            self.host.handle_timer(now)

    def stop(self) -> Wire | None:
        """The application closes the station: no more attempts. Returns the connection
        to close in order, if one is open."""
        self.changes += 1
        self.closing = True
        return self.ws

    def is_connected(self) -> bool:
        """What ``wait_connected`` waits for; raises the failure once attempts ran out."""
        if self.ws is not None:
            return True
        if self.failure is not None:
            raise self.failure
        return False

    def is_registered(self) -> bool:
        """What ``wait_registered`` waits for; raises the failure once attempts ran out."""
        if self.core.registration is RegistrationStatus.ACCEPTED:
            return True
        if self.failure is not None:
            raise self.failure
        return False
