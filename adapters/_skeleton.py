"""The adapter skeleton: what every adapter does per socket and per session, written once
and free of IO. An adapter (trio, asyncio, threads, ASGI) supplies only its socket, its
tasks or threads and its timer, through three small seams:

- a ``Transport`` per socket: ``write(data)``, ``finish()`` (the WebSocket is done: close
  the socket once what was written is out), ``arm(deadline)`` (the one timer) and
  ``peer_certificate()``;
- a ``Session`` subclass: how a request handler starts, how events reach ``on_event``,
  who is told when the state changes, and the clock;
- for a CSMS, a ``Server`` subclass that makes its sessions; for a station, the reconnect
  loop of ``LoopStation`` (or the threads adapter's own) over ``StationDriver``'s policy.

The path of a frame: bytes → ``Link.received`` → WebSocket (``_ws``) → ``Driver`` → core →
flows → ``Session.process`` (handlers started, events passed on) → ``Link.transmit``.
Every entry point — data received, timer fired, close, and the application's calls
(``Session.transmit``) — ends in one ``transmit()``, after aioquic's: it writes what the
WebSocket produced, finishes the socket when the WebSocket is done, and re-arms the timer.
An entry point reached inside another (a handler answering at once) simply transmits
earlier; bytes still leave in order, because they are taken from the WebSocket in order.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, get_args, get_origin, get_type_hints

import attrs

from ocpp_sansio.errors import ConnectFailedError, OcppCallError
from ocpp_sansio.events import Event, RegistrationStatus, RequestReceived
from ocpp_sansio.messages._model import Request
from ocpp_sansio.station import StationCore

from ._driver import (
    CsmsCores,
    Driver,
    ObserverFlows,
    StationDriver,
    Wire,
    handler_method,
    log,
    server_policy,
)
from ._options import ServerOptions, StationOptions, WallClock
from ._upgrade import HandshakeRefused
from ._ws import (
    DEFAULT_VERSIONS,
    GOING_AWAY,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    ClientWebSocket,
    Closed,
    Phase,
    ServerWebSocket,
    SpeaksFor,
    anyone,
    identity_key,
)
from .surface import Connect, Serve

Made = TypeVar("Made")
R = TypeVar("R")

#: The reason every adapter gives its stations when the CSMS stops (close code 1001).
SHUTTING_DOWN = "the CSMS is shutting down"


def wall_clock_for(clock: Callable[[], float]) -> WallClock:
    """The wall clock an adapter offers its flows by default: its own clock ``clock()``
    (monotonic, trio's, the event loop's) mapped onto UTC at the moment of the reading."""

    def wall_clock(now: float) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=now - clock())

    return wall_clock


# --- serve() and connect(), declared once --------------------------------------------------------


def _adopt(function: Callable[..., Any], start: Callable[..., Any]) -> None:
    """Make ``function`` (written here) read as the adapter's own: its module, and its
    annotations resolved (the adapter's module does not import their names), with the
    context manager ``start`` gives as what it returns."""
    hints = get_type_hints(function)
    made = get_type_hints(start).get("return")
    (of,) = get_args(made) or (Any,)
    if get_origin(made) is AsyncIterator:
        hints["return"] = AbstractAsyncContextManager[of]  # type: ignore[valid-type]
    elif get_origin(made) is Iterator:
        hints["return"] = AbstractContextManager[of]  # type: ignore[valid-type]
    function.__annotations__ = hints
    function.__module__ = start.__module__


def serve_function(
    start: Callable[[Any, str, int, Sequence[str], ServerOptions], Made],
) -> Serve[Made]:
    """An adapter's ``serve()``: the common signature, then ``start(handler, host, port,
    versions, options)`` gives the adapter's context manager."""

    def serve(
        handler: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        versions: Sequence[str] = DEFAULT_VERSIONS,
        options: ServerOptions | None = None,
    ) -> Made:
        """Run a CSMS at ``ws[s]://host:port/.../IDENTITY`` while the block runs.

        ``handler.on_request(session, request)`` answers each station request (raise
        OcppCallError to answer with a CALLERROR); ``handler.on_event(session, event)``
        gets the rest, in order. Plain methods work on every adapter, coroutine methods on
        the event-loop ones. ``versions`` in our order of preference; ``options`` a
        ``ServerOptions``. Leaving the block by any route stops listening and closes every
        connection with 1001 first.
        """
        return start(handler, host, port, versions, options or ServerOptions())

    _adopt(serve, start)
    return serve


@attrs.frozen
class StationSetup:
    """What ``connect()`` was given, for the adapter to run a station with."""

    driver: StationDriver
    options: StationOptions
    on_request: Callable[[Any, Any], Any] | None
    on_event: Callable[[Any, Any], Any] | None


def connect_function(
    start: Callable[[StationSetup], Made], wall_clock: Callable[[], WallClock]
) -> Connect[Made]:
    """An adapter's ``connect()``: the common signature and checks, then ``start(setup)``
    gives the adapter's context manager; ``wall_clock()`` its clock read as UTC."""

    def connect(
        url: str,
        *,
        version: str | None = None,
        boot: Any = None,
        core: StationCore | None = None,
        on_request: Callable[[Any, Any], Any] | None = None,
        on_event: Callable[[Any, Any], Any] | None = None,
        options: StationOptions | None = None,
    ) -> Made:
        """Run a station connected to ``url`` (``ws[s]://host:port/.../IDENTITY``; any other
        URL is a ValueError at once).

        The station boots with ``boot`` for ``version`` (or drives the application's own
        ``core``), answers the CSMS with ``on_request(station, request)`` (raise
        OcppCallError for a CALLERROR) and passes other events to ``on_event(station,
        event)``, after the flows had their turn; ``options`` a ``StationOptions``. It
        reconnects with back-off after each loss. Leaving the block by any route closes
        with 1000 and waits up to close_timeout for the CSMS's answer.
        """
        options = options or StationOptions()
        driver = StationDriver.for_url(
            url, version=version, boot=boot, core=core, options=options, wall_clock=wall_clock()
        )
        return start(StationSetup(driver, options, on_request, on_event))

    _adopt(connect, start)
    return connect


def not_supported(session: Any, request: Any) -> Any:
    """The answer when the application gave no ``on_request``."""
    raise OcppCallError("NotSupported", f"no handler for {type(request).__name__}")


class Transport(Protocol):
    """One socket as the skeleton uses it; the adapter does the IO."""

    def write(self, data: Any) -> None: ...

    def finish(self) -> None: ...

    def arm(self, deadline: float | None) -> None: ...

    def peer_certificate(self) -> dict[str, Any] | None: ...


class Owner(Protocol):
    """Who made a link: the server (places it in a session) or a station."""

    def opened(self, link: Link, now: float) -> None: ...

    def refused(self, link: Link, closed: Closed) -> None: ...


class Link:
    """One socket's plumbing: its WebSocket and, once the handshake placed it, its session."""

    __slots__ = ("held", "owner", "session", "transport", "ws")

    def __init__(self, ws: Wire, owner: Owner, transport: Transport) -> None:
        self.ws = ws
        self.owner = owner
        self.transport = transport
        self.session: Session | None = None
        #: While the server admits the link (``LoopServer.admission``): what arrived
        #: meanwhile, read once it is placed.
        self.held: list[Any] | None = None

    # --- entry points: each ends in transmit() ---------------------------------------------------

    def begin(self) -> None:
        """The socket is open: a station sends its upgrade request; both arm the handshake
        deadline."""
        if isinstance(self.ws, ClientWebSocket):
            self.ws.start()
        self.transmit()

    def accepted(self, now: float) -> None:
        """(ASGI) The web server completed the handshake our policy approved: place the
        link."""
        self._handshake(now)
        self.transmit()

    def received(self, data: Any, now: float) -> None:
        """Bytes from the socket (None: end of file)."""
        session = self.session
        if session is not None:
            session.driver.receive(self.ws, data, now)
            session.process()
        elif self.held is not None and data is not None:
            self.held.append(data)  # (the end of file is not held: the link ends now)
            return
        else:
            self.ws.receive_data(data, now)
            self._handshake(now)
        self.transmit()

    def timer_fired(self, now: float) -> None:
        session = self.session
        if session is not None:
            session.driver.timer(self.ws, now)
            session.process()
        else:
            self.ws.handle_timer(now)
            self._handshake(now)
        self.transmit()

    def close(self, code: int, reason: str, now: float) -> None:
        """Start an orderly close (the peer's answer, or close_timeout, finishes it)."""
        session = self.session
        if session is not None:
            session.driver.close(self.ws, code, reason, now)
            session.process()
        else:
            self.ws.close(code, reason, now)
        self.transmit()

    def abort(self, code: int, reason: str, now: float) -> None:
        """End the connection at once, without a closing handshake: what waits to be sent
        is dropped (a peer that stopped reading, past ``max_write_buffer``). The
        transport's ``finish()`` follows; it drops its unsent bytes too."""
        session = self.session
        if session is not None:
            session.driver.abort(self.ws, code, reason, now)
            session.process()
        else:
            self.ws.abort(code, reason)
        self.transmit()

    def transmit(self) -> None:
        """Write what the WebSocket produced; finish the socket once it is done; re-arm
        the timer for the earliest deadline of the WebSocket, the core and the flows."""
        ws = self.ws
        data = ws.data_to_send()
        if data:
            self.transport.write(data)
        if ws.done:
            self.transport.finish()
            return
        session = self.session
        self.transport.arm(
            ws.next_deadline() if session is None else session.driver.next_deadline(ws)
        )

    def _handshake(self, now: float) -> None:
        ws = self.ws
        if ws.version is not None:
            self.owner.opened(self, now)
            return
        for event in ws.events():
            if isinstance(event, Closed):
                self.owner.refused(self, event)


class Session:
    """One core's life across connections, as the application sees it on every adapter:
    a CSMS's session of one station, or the station itself."""

    def __init__(
        self,
        driver: Driver,
        identity: str,
        on_request: Callable[[Any, Any], Any] | None,
        on_event: Callable[[Any, Any], Any] | None,
    ) -> None:
        self.driver = driver
        self.identity = identity
        #: The link the core talks over now (or last did).
        self.link: Link | None = None
        #: The TLS certificate the peer showed on the current connection (a CSMS's
        #: session: the station's client certificate, security profile 3).
        self.peer_certificate: dict[str, Any] | None = None
        self._on_request = on_request or not_supported
        #: ``on_request`` is a coroutine function: known once, not per request.
        self._awaited = inspect.iscoroutinefunction(self._on_request)
        self._on_event = on_event
        self._seen = self.state()
        #: What ``wait_*`` calls wait on (an Event, a Condition: the adapter's kind).
        self._change = self._new_change()
        #: The server that keeps this session (a CSMS's), told when its station leaves.
        self.server: Server | None = None
        #: When the station's last connection ended (None while it is connected).
        self.left_at: float | None = None

    # --- what the adapter supplies ---------------------------------------------------------------

    def _clock(self) -> float:
        raise NotImplementedError

    def _new_change(self) -> Any:
        raise NotImplementedError

    def _start_request(self, generation: int, request: RequestReceived) -> None:
        """Run ``on_request`` concurrently and hand its outcome to ``answered``."""
        raise NotImplementedError

    def _deliver(self, events: list[Event]) -> None:
        """Queue ``events`` for ``on_event``, in order, one at a time."""
        raise NotImplementedError

    def _changed(self) -> None:
        """Wake whoever waits on ``state()``."""
        raise NotImplementedError

    # --- what the application sees ---------------------------------------------------------------

    @property
    def core(self) -> Any:
        return self.driver.core

    @property
    def version(self) -> str:
        return self.driver.core.version

    @property
    def connected(self) -> bool:
        return self.driver.ws is not None

    @property
    def registration(self) -> RegistrationStatus | None:
        status: RegistrationStatus | None = self.driver.core.registration
        return status

    @property
    def flows(self) -> tuple[Any, ...]:
        """The flows that see this core's events first (from the ``flows`` factory)."""
        host = self.driver.host
        return host.flows if host is not None else ()

    def state(self) -> tuple[Any, ...]:
        """What ``wait_*`` calls wait on: a change here wakes them."""
        driver = self.driver
        return (driver.core.registration, driver.ws is not None, driver.failure)

    # --- the plumbing ----------------------------------------------------------------------------

    def process(self) -> None:
        """After anything touched the core: frames onto the WebSocket, handlers started,
        events passed on, waiters woken. Every entry point runs this, then transmits."""
        driver = self.driver
        driver.flush()
        requests, events = driver.take_work()
        for generation, request in requests:
            self._start_request(generation, request)
        if events and self._on_event is not None:
            self._deliver(events)
        seen = (driver.core.registration, driver.ws is not None, driver.failure)  # state()
        if seen != self._seen:
            was_connected = self._seen[1]
            self._seen = seen
            self._changed()
            if was_connected and not seen[1] and self.server is not None:
                self.server.session_left(self, self._clock())

    def transmit(self) -> None:
        """The end of an application's entry point: process, then transmit on the link."""
        self.process()
        link = self.link
        if link is not None:
            link.transmit()

    def start_call(self, request: Any, waiter: Any) -> str | None:
        """Send ``request`` (LocalProtocolError at once when the protocol forbids it);
        ``waiter.settle`` learns the outcome. None for a 2.1 SEND (never answered)."""
        message_id = self.driver.call(request, waiter, self._clock())
        self.transmit()
        return message_id

    def act(self, action: Callable[[float], Any]) -> Any:
        """Run ``action(now)`` on the core or its flows (``transactions.start(...,
        now=now)``), then send what it produced; returns what ``action`` returned."""
        result = action(self._clock())
        self.driver.changes += 1  # the action may have moved a deadline of the core's
        self.transmit()
        return result

    def answered(
        self, generation: int, message_id: str, response: Any, error: BaseException | None
    ) -> None:
        """A request handler's outcome (``error`` when it raised)."""
        if error is None:
            self.driver.answer(generation, message_id, response, self._clock())
        else:
            self.driver.answer_exception(generation, message_id, error)
        self.transmit()

    def start_closing(self, code: int, reason: str, now: float) -> Link | None:
        """Start closing the current connection in order, or a station's connection still
        in its handshake (it closes as soon as the CSMS accepts); the link to wait for,
        None when there is none."""
        link = self.link
        if link is None or link.ws.done:
            return None
        if link.session is not None and link.ws is not self.driver.ws:
            return None  # (a CSMS's: an older connection, already replaced and closing)
        link.close(code, reason, now)
        return link

    def opened(self, link: Link, now: float) -> None:
        """(Station) ``link`` finished its handshake: the core talks over it."""
        link.session = self
        self.link = link
        self.driver.attach(link.ws, now)
        self.process()


class Waiter:
    """Where one ``call()`` learns its outcome: ``done`` (an Event of the adapter's kind,
    anything with ``set`` and ``is_set``) is set once it is settled."""

    __slots__ = ("done", "error", "response")

    def __init__(self, done: Any) -> None:
        self.done = done
        self.response: Any = None
        self.error: BaseException | None = None

    def settle(self, response: Any, error: BaseException | None) -> None:
        if not self.done.is_set():
            self.response, self.error = response, error
            self.done.set()

    def outcome(self) -> Any:
        """The response, or raise the error the call ended with."""
        if self.error is not None:
            raise self.error
        return self.response


class Server:
    """A CSMS's stations: sessions by ``identity_key`` (identities are case-insensitive)
    and every open link. The adapter's server listens, accepts, and makes its sessions
    (``_new_session``)."""

    def __init__(
        self, handler: Any, versions: Any, options: ServerOptions, clock: Callable[[], float]
    ) -> None:
        self.handler = handler
        self.options = options
        self.policy = server_policy(versions, options, self.session_check)
        self.cores = CsmsCores(options, self._wall_clock(clock))
        self.sessions: dict[str, Any] = {}
        #: The keys of sessions whose station is gone, with when it left, oldest first:
        #: evicted after ``session_keep``, or early past ``max_kept_sessions``. Only keys:
        #: ``sessions.clear()`` alone frees the sessions.
        self._gone: dict[str, float] = {}
        self.links: set[Link] = set()
        self.port = 0
        self.on_request = handler_method(handler, "on_request")
        self.on_event = handler_method(handler, "on_event")
        self._clock = clock

    def _new_session(self, identity: str, driver: Driver) -> Session:
        raise NotImplementedError

    def _wall_clock(self, clock: Callable[[], float]) -> WallClock:
        """The adapter's ``clock()`` read as dates, for the cores' flows by default."""
        return wall_clock_for(clock)

    def add_observer_flows(self, observe: ObserverFlows) -> None:
        """From now on, every new core's flows start with ``observe(core, flows)``
        (``flows``: the application's, just made for it): flows that see each of the
        core's events first and keep none (a cluster node's tap, a recorder). ``observe``
        may also prepare the application's flows before the core's first message (a
        cluster node puts a station's state into them)."""
        self.cores.observer_flows.append(observe)

    def at_capacity(self) -> HandshakeRefused | None:
        """The refusal for a new connection while ``max_connections`` are open (HTTP
        503, before any session is touched), or None."""
        limit = self.options.max_connections
        if len(self.links) < limit:
            return None
        return HandshakeRefused(503, f"the CSMS holds its limit of {limit} connections")

    def new_link(self, transport: Transport, accepted: float | None = None) -> Link:
        """A connection was accepted (at ``accepted``, by the adapter's clock: the
        handshake deadline runs from then; default now): its link, judged by the
        handshake policy, or refused with 503 past ``max_connections``."""
        ws = ServerWebSocket(
            self.policy,
            self._clock() if accepted is None else accepted,
            peer_certificate=transport.peer_certificate,
            refusal=self.at_capacity(),
        )
        link = Link(ws, self, transport)
        self.links.add(link)
        return link

    def session_check(
        self, identity: str, version: str, speaks_for: SpeaksFor
    ) -> HandshakeRefused | None:
        """Whether a connection the handshake authenticated may reach the session of
        ``identity_key(identity)`` (``ServerPolicy.session_check``):

        - a session belongs to the spelling it was made for: another spelling of the
          identity (``cs001``, ``CS001``) reaches it only with credentials that open that
          spelling too (``speaks_for``: the same password, a certificate the check
          accepts for it; ``anyone`` where the CSMS checks no credentials); else 409;
        - a connection with another OCPP version than the session's starts a fresh
          session (``VersionChanged``), replacing an open connection of the other version
          only when its credentials were checked: without, that is refused with 409 (a
          station back with the same version replaces its old connection either way).
        """
        self.evict(self._clock())
        session = self.sessions.get(identity_key(identity))
        if session is None:
            return None
        if session.identity != identity and not speaks_for(session.identity):
            return HandshakeRefused(
                409,
                "another spelling of this station identity has a session here "
                "(identities are case-insensitive): connect as that spelling",
            )
        if session.version != version and session.connected and speaks_for is anyone:
            return HandshakeRefused(
                409,
                f"this station is connected with OCPP {session.version}: "
                "another version may connect once that connection is closed",
            )
        return None

    def opened(self, link: Link, now: float) -> None:
        self.evict(now)
        ws = link.ws
        speaks_for = ws.speaks_for
        if speaks_for is not None and ws.version is not None:
            # Again, now that it is placed: a session may have appeared since the
            # handshake (an admission step ran, the web server accepted).
            ws.speaks_for = None  # (it holds the credentials: not kept any longer)
            refused = self.session_check(ws.identity, ws.version, speaks_for)
            if refused is not None:
                log.info("station %r refused: %s", ws.identity, refused.reason)
                ws.close(POLICY_VIOLATION, refused.reason, now)
                return
        placed = self.cores.place(self.sessions, ws, now, self._new_session)
        if placed is None:
            return
        session, lingering = placed
        if lingering is not None:
            lingering.transmit()  # its close frame ("replaced by a new connection")
        self._gone.pop(identity_key(session.identity), None)
        session.server, session.left_at = self, None
        link.session = session
        session.link = link
        session.peer_certificate = link.transport.peer_certificate()
        session.driver.attach(link.ws, now)
        session.process()

    def refused(self, link: Link, closed: Closed) -> None:
        log.info("handshake refused: %s", closed.reason)

    def session_left(self, session: Session, now: float) -> None:
        """``session``'s station is no longer connected: keep its session for
        ``session_keep`` (it may resume), evicting what is due."""
        key = identity_key(session.identity)
        if self.sessions.get(key) is session:
            session.left_at = now
            self._gone.pop(key, None)
            self._gone[key] = now
        self.evict(now)

    def evict(self, now: float) -> None:
        """Drop the sessions of stations gone for ``session_keep`` or more, and the ones
        gone longest past ``max_kept_sessions``. A session holds no task or thread while
        its station is away, so dropping it frees everything it had."""
        gone, sessions = self._gone, self.sessions
        due = now - self.options.session_keep
        cap = self.options.max_kept_sessions
        while gone:
            key, left_at = next(iter(gone.items()))
            if left_at > due and len(gone) <= cap:
                return
            del gone[key]
            session = sessions.get(key)
            if session is not None and session.left_at == left_at and not session.connected:
                del sessions[key]

    def going_away(self) -> list[Link]:
        """Close every link with 1001; returns them, for the adapter to wait on."""
        now = self._clock()
        links = list(self.links)
        for link in links:
            link.close(GOING_AWAY, SHUTTING_DOWN, now)
        return links


# --- the async adapters' shared half ------------------------------------------------------------


class AsyncEvent(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


class LoopSession(Session):
    """A session on an event loop (trio, asyncio, ASGI, in memory): handlers may be
    coroutine functions or plain ones. The adapter gives ``_new_event`` (its Event
    class) and ``_spawn`` (a task).

    ``on_event`` runs in one task at a time per session, started when events arrive and
    ended once they are delivered: an idle session holds no task (a CSMS may keep many
    sessions of stations that are away)."""

    _new_event: Callable[[], AsyncEvent]
    #: Events not yet given to ``on_event``, oldest first.
    _pending: deque[Event] | None = None
    #: The task delivering ``_pending`` (a token of it), None when there is none.
    _deliverer: object | None = None

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Run ``function(*args)`` as a task of the session's owner."""
        raise NotImplementedError

    def _start_request(self, generation: int, request: RequestReceived) -> None:
        self._spawn(self._run_request, generation, request)

    def _deliver(self, events: list[Event]) -> None:
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        pending.extend(events)
        if self._deliverer is None:
            self._deliverer = token = object()
            self._spawn(self._deliver_pending, token)

    def _new_change(self) -> AsyncEvent | None:
        return None  # made by the first wait: most sessions are never waited on

    def _changed(self) -> None:
        change = self._change
        if change is not None:
            change.set()
            self._change = None

    async def _wait_change(self) -> None:
        """Wait for the next change of ``state()``."""
        change = self._change
        if change is None:
            change = self._change = self._new_event()
        await change.wait()

    async def call(self, request: Request[R]) -> R:
        """Send ``request`` and return the typed response. Raises OcppCallError for a
        CALLERROR, CallTimedOutError, CallLostError, InvalidResponseError or
        TransactionMessageDiscardedError (all but the first are CallFailedError); and
        LocalProtocolError at once when the protocol forbids sending it now. A 2.1 SEND
        returns None at once."""
        waiter = Waiter(self._new_event())
        message_id = self.start_call(request, waiter)
        if message_id is None:
            return None  # type: ignore[return-value]  # (Request[None]: a SEND)
        try:
            await waiter.done.wait()
        finally:
            if not waiter.done.is_set():
                self.driver.forget(message_id)
        response: R = waiter.outcome()
        return response

    async def _run_request(self, generation: int, event: RequestReceived) -> None:
        try:
            if self._awaited:
                response = await self._on_request(self, event.request)
            else:
                response = self._on_request(self, event.request)
                if inspect.isawaitable(response):
                    response = await response
        except Exception as error:
            self.answered(generation, event.message_id, None, error)
        else:
            self.answered(generation, event.message_id, response, None)

    async def _deliver_pending(self, token: object) -> None:
        on_event, pending = self._on_event, self._pending
        assert on_event is not None and pending is not None
        try:
            while pending:
                event = pending.popleft()
                try:
                    result = on_event(self, event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("on_event failed on %r", event)
        finally:
            if self._deliverer is token:
                self._deliverer = None

    async def _link_finished(self, link: Link) -> None:
        """Return once ``link``'s socket is closed."""
        raise NotImplementedError

    async def _close_link(self, code: int, reason: str) -> None:
        link = self.start_closing(code, reason, self._clock())
        if link is not None:
            await self._link_finished(link)


#: ``await admission(identity, link)`` before a station connection reaches a core; raising
#: refuses it (closed with 1013). It may return ``placed(link)``, called once the link's
#: session talks over it.
Admission = Callable[[str, Link], Awaitable[Callable[[Link], None] | None]]
#: The close code of a connection the admission refused (RFC 6455 §7.4.1 "try again later").
TRY_AGAIN_LATER = 1013


class LoopServer(Server):
    """A CSMS server on an event loop: ``serve_forever()`` until ``stop()``; an optional
    ``admission`` step between a station's handshake and its session."""

    _new_event: Callable[[], AsyncEvent]

    def __init__(
        self, handler: Any, versions: Any, options: ServerOptions, clock: Callable[[], float]
    ) -> None:
        super().__init__(handler, versions, options, clock)
        self._stopped = self._new_event()
        #: Run for each station connection once its handshake is done, before its first
        #: message reaches a core (``Admission``): a cluster node claims the station
        #: there. Meanwhile what the station sends waits (asyncio stops reading it); if
        #: it raises, the connection is closed with 1013 and never reaches a session.
        self.admission: Admission | None = None

    def _run_soon(
        self, link: Link, function: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        """Run ``function(*args)`` as a task of the server (or of ``link``'s connection)."""
        raise NotImplementedError

    def _reading(self, link: Link, on: bool) -> None:
        """Stop or resume reading ``link``'s socket, where the adapter can (back-pressure
        while it is admitted)."""

    def opened(self, link: Link, now: float) -> None:
        admission = self.admission
        if admission is None or link.ws.phase is not Phase.OPEN:
            super().opened(link, now)
        elif link.held is None:
            link.held = []
            self._reading(link, False)
            self._run_soon(link, self._admit, admission, link)

    async def _admit(self, admission: Admission, link: Link) -> None:
        identity = link.ws.identity
        try:
            placed = await admission(identity, link)
        except Exception as error:
            link.held = None
            log.warning("station %r not admitted: %s", identity, error)
            link.close(TRY_AGAIN_LATER, "the CSMS cannot take this station now", self._clock())
            return
        finally:
            self._reading(link, True)
        held, link.held = link.held or [], None
        now = self._clock()
        super().opened(link, now)
        if placed is not None and link.session is not None:
            placed(link)
        for data in held:
            link.received(data, now)
        link.transmit()

    async def serve_forever(self) -> None:
        """Wait until ``stop()`` is called (or the task is cancelled)."""
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()


class LoopCsmsSession(LoopSession):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: Server) -> None:
        super().__init__(driver, identity, server.on_request, server.on_event)

    async def wait_registered(self) -> None:
        """Return once this station's boot was answered Accepted: at once if it already
        was (a station back from an outage resumes without a boot, B04), else at the
        answer. Pending and Rejected answers do not end the wait: the station boots again."""
        while self.driver.core.registration is not RegistrationStatus.ACCEPTED:
            await self._wait_change()

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the current connection in order and wait until it is gone."""
        await self._close_link(code, reason)


class StationMixin(Session):
    """What a station adds to its session on every adapter: what ``connect()`` was given,
    the reconnect policy's verdicts and the station's own handshake outcomes."""

    driver: StationDriver

    def __init__(self, setup: StationSetup) -> None:
        driver = setup.driver
        super().__init__(driver, driver.endpoint.identity, setup.on_request, setup.on_event)
        self.endpoint = driver.endpoint
        self._ssl_context = setup.options.ssl_context

    @property
    def failure(self) -> ConnectFailedError | None:
        """Why the station stopped trying, when ``max_attempts`` ran out."""
        return self.driver.failure

    def refused(self, link: Link, closed: Closed) -> None:
        self.driver.refused(closed)


class LoopStation(StationMixin, LoopSession):
    """A charging station connected to its CSMS, reconnecting with back-off; one
    StationCore for its whole life, so registration and held transaction messages resume
    after a reconnect without a new boot (B04). The adapter connects and sleeps."""

    driver: StationDriver

    async def _connect_once(self) -> Wire:
        """Open a socket to the CSMS and run one link until it ends; its WebSocket."""
        raise NotImplementedError

    async def _sleep_until(self, deadline: float) -> None:
        raise NotImplementedError

    async def wait_connected(self) -> None:
        """Return once a connection is open (raise ConnectFailedError if attempts ran out)."""
        while not self.driver.is_connected():
            await self._wait_change()

    async def wait_registered(self) -> None:
        """Return once the CSMS has accepted the station's boot."""
        while not self.driver.is_registered():
            await self._wait_change()

    async def _run(self) -> None:
        driver = self.driver
        while driver.trying:
            try:
                ws = await self._connect_once()
            except ConnectFailedError as error:
                wait = driver.attempt_ended(None, error)
            else:
                wait = driver.attempt_ended(ws)
            self.transmit()
            if wait is None:
                return
            until = self._clock() + wait
            while (wake := driver.offline_wake(until)) < until:
                await self._sleep_until(wake)
                driver.offline_timer(self._clock())
                self.transmit()
            await self._sleep_until(until)

    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection in order (waiting for the CSMS's answer up to
        close_timeout) and stop reconnecting."""
        self.driver.stop()
        await self._close_link(code, reason)
