"""The in-memory adapter: a CSMS and its stations connected through memory, on a virtual
clock, under anyio (trio or asyncio). Use it through ``ocpp_sansio.testing.memory``.

Everything the socket adapters run runs here too: the WebSocket handshake and frames, the
driver, the cores and their flows, handlers and ``on_event`` as tasks. Only the sockets are
gone: what one end writes, the other reads at once, and time is a ``VirtualClock``'s, which
moves when a test says ``await clock.run_for(seconds)``. A server listens on a made-up
``host:port`` in this process; ``connect(url)`` finds it there.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from ocpp_sansio.errors import needs_extra

with needs_extra("testing", needed_by="ocpp_sansio.testing.memory"):
    import anyio
    import anyio.abc
    import sniffio
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.errors import ConnectFailedError, OcppCallError
from ocpp_sansio.events import RequestReceived
from ocpp_sansio.flows.host import FlowFactory
from ocpp_sansio.messages._model import Request
from ocpp_sansio.rules import RegistrationStatus
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.pair import VirtualClock

from ._driver import (
    Backoff,
    CoreFactory,
    CsmsCores,
    Driver,
    SessionView,
    StationDriver,
    csms_setup,
    handler_method,
    log,
)
from ._ws import (
    DEFAULT_VERSIONS,
    GOING_AWAY,
    NORMAL_CLOSURE,
    ClientWebSocket,
    Closed,
    PasswordLookup,
    ServerPolicy,
    ServerWebSocket,
    WsOptions,
    _WebSocket,
)

__all__ = ["CsmsServer", "CsmsSession", "Station", "VirtualClock", "connect", "serve"]

R = TypeVar("R")

#: The servers listening in this process, by (host, port).
_LISTENING: dict[tuple[str, int], CsmsServer] = {}
_FREE_PORTS = itertools.count(10_000)
#: Scheduler turns ``run_for`` waits for tasks to block before it calls them stuck.
_SETTLE_TURNS = 100_000


async def _settle() -> None:
    """Return once every other task waits for something (asyncio: with no sleep, unlike
    anyio's ``wait_all_tasks_blocked``)."""
    if sniffio.current_async_library() == "trio":
        import trio.testing

        await trio.testing.wait_all_tasks_blocked()
        return
    import asyncio

    me = asyncio.current_task()
    for _ in range(_SETTLE_TURNS):
        await asyncio.sleep(0)
        if all(task is me or _blocked(task) for task in asyncio.all_tasks()):
            return
    raise RuntimeError("some task never waits: the virtual clock cannot move on")


def _blocked(task: Any) -> bool:
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is not None and not waiter.done()


def _use(clock: VirtualClock | None) -> VirtualClock:
    clock = clock if clock is not None else VirtualClock()
    clock.use_settle(_settle)
    return clock


class _Alarm:
    """A sleep on the virtual clock."""

    def __init__(self, when: float) -> None:
        self.when = when
        self.rung = anyio.Event()

    def next_deadline(self) -> float | None:
        return None if self.rung.is_set() else self.when

    def handle_timer(self, now: float) -> None:
        if now >= self.when:
            self.rung.set()


async def _sleep_until(clock: VirtualClock, when: float) -> None:
    alarm = _Alarm(when)
    clock.attach(alarm)
    try:
        await alarm.rung.wait()
    finally:
        clock.detach(alarm)


class _Waiter:
    __slots__ = ("done", "error", "response")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: Any = None
        self.error: BaseException | None = None

    def settle(self, response: Any, error: BaseException | None) -> None:
        if not self.done.is_set():
            self.response, self.error = response, error
            self.done.set()


async def _not_supported(session: Any, request: Any) -> Any:
    raise OcppCallError("NotSupported", f"no handler for {type(request).__name__}")


class _Wire:
    """Both directions of one connection: bytes are read in the order they were written,
    one delivery at a time (an answer written while reading waits its turn, so nothing
    recurses)."""

    def __init__(self) -> None:
        self._queue: deque[tuple[_Connection, bytes | None]] = deque()
        self._busy = False

    def deliver(self, to: _Connection, data: bytes | None) -> None:
        self._queue.append((to, data))
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                conn, chunk = self._queue.popleft()
                conn.feed(chunk)
        finally:
            self._busy = False


class _Connection:
    """One end of a connection: its WebSocket, and the session it serves once open."""

    def __init__(self, owner: _Owner, ws: _WebSocket, clock: VirtualClock, wire: _Wire) -> None:
        self.owner = owner
        self.ws = ws
        self.clock = clock
        self.wire = wire
        self.session: _Session | None = None
        self.peer: _Connection | None = None
        self.finished = anyio.Event()
        clock.attach(self)

    # --- on the clock

    def next_deadline(self) -> float | None:
        session = self.session
        return session.driver.next_deadline(self.ws) if session else self.ws.next_deadline()

    def handle_timer(self, now: float) -> None:
        session = self.session
        if session is not None:
            session.driver.timer(self.ws, now)
            session.pump()
        else:
            self.ws.handle_timer(now)
            self._refused()
        self.flush()

    # --- bytes

    def feed(self, data: bytes | None) -> None:
        """What the peer wrote (None: it is gone)."""
        if self.ws.done:
            return
        now = self.clock.now
        session = self.session
        if session is not None:
            session.driver.receive(self.ws, data, now)
            session.pump()
        else:
            self.ws.receive_data(data, now)
            if self.ws.version is not None:
                self.owner.opened(self, now)
            else:
                self._refused()
        self.flush()

    def flush(self) -> None:
        """Hand what the WebSocket wrote to the peer; once it is done, the peer reads the
        end of the stream."""
        data = self.ws.data_to_send()
        peer = self.peer
        if data and peer is not None:
            self.wire.deliver(peer, data)
        if self.ws.done and not self.finished.is_set():
            self.finished.set()
            self.clock.detach(self)
            if peer is not None:
                self.wire.deliver(peer, None)

    def _refused(self) -> None:
        for event in self.ws.events():
            if isinstance(event, Closed):
                self.owner.refused(self, event)

    def close(self, code: int, reason: str) -> None:
        """Close in order; with no one left to answer, the stream ends here."""
        now = self.clock.now
        session = self.session
        if session is not None:
            session.driver.close(self.ws, code, reason, now)
            session.pump()
        else:
            self.ws.close(code, reason, now)
        self.flush()
        if not self.ws.done:
            self.feed(None)


class _Owner:
    """Who made a connection: the server, or a station."""

    def opened(self, conn: _Connection, now: float) -> None:
        raise NotImplementedError

    def refused(self, conn: _Connection, closed: Closed) -> None:
        raise NotImplementedError


class _Session(SessionView):
    """One core's life across connections, seen from the application."""

    def __init__(
        self,
        driver: Driver,
        on_request: Callable[[Any, Any], Awaitable[Any]],
        on_event: Callable[[Any, Any], Awaitable[None]] | None,
        tasks: anyio.abc.TaskGroup,
        clock: VirtualClock,
    ) -> None:
        self.driver = driver
        self.clock = clock
        self.conn: _Connection | None = None
        self._on_request = on_request
        self._on_event = on_event
        self._tasks = tasks
        self._events_in: MemoryObjectSendStream[Any] | None = None
        self._changed = anyio.Event()
        self._seen = self.state()

    async def call(self, request: Request[R]) -> R:
        """Send ``request`` and return its typed response, as the socket adapters do:
        OcppCallError for a CALLERROR, a CallFailedError when no usable answer came,
        LocalProtocolError at once when the protocol forbids sending it now; None at once
        for a 2.1 SEND."""
        waiter = _Waiter()
        message_id = self.driver.call(request, waiter, self.clock.now)
        self.pump()
        if message_id is None:
            return None  # type: ignore[return-value]  # (Request[None]: a SEND)
        try:
            await waiter.done.wait()
        finally:
            if not waiter.done.is_set():
                self.driver.forget(message_id)
        if waiter.error is not None:
            raise waiter.error
        response: R = waiter.response
        return response

    def act(self, action: Callable[[float], Any]) -> Any:
        """Run ``action(now)`` on the core or its flows, then send what it produced."""
        result = action(self.clock.now)
        self.pump()
        return result

    def pump(self) -> None:
        """After anything touched the core: write its frames, start handlers, pass events."""
        driver = self.driver
        driver.flush()
        for generation, request in driver.take_requests():
            self._tasks.start_soon(self._run_request, generation, request)
        events = driver.take_events()
        if events and self._on_event is not None:
            if self._events_in is None:
                self._events_in, events_out = anyio.create_memory_object_stream[Any](math.inf)
                self._tasks.start_soon(self._deliver_events, events_out)
            for event in events:
                self._events_in.send_nowait(event)
        if self.conn is not None:
            self.conn.flush()
        seen = self.state()
        if seen != self._seen:
            self._seen = seen
            self._changed.set()
            self._changed = anyio.Event()

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def _run_request(self, generation: int, event: RequestReceived) -> None:
        try:
            response = await self._on_request(self, event.request)
        except Exception as error:
            self.driver.answer_exception(generation, event.message_id, error)
        else:
            self.driver.answer(generation, event.message_id, response, self.clock.now)
        self.pump()

    async def _deliver_events(self, events: MemoryObjectReceiveStream[Any]) -> None:
        assert self._on_event is not None
        async for event in events:
            try:
                await self._on_event(self, event)
            except Exception:
                log.exception("on_event failed on %r", event)


# --- the CSMS ----------------------------------------------------------------------------------


class CsmsSession(_Session):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        on_request = handler_method(server.handler, "on_request") or _not_supported
        on_event = handler_method(server.handler, "on_event")
        super().__init__(driver, on_request, on_event, server._tasks, server.clock)
        self.identity = identity
        #: No TLS in memory.
        self.peer_certificate: dict[str, Any] | None = None

    async def wait_registered(self) -> None:
        """Return once this station's boot was answered Accepted: at once if it already
        was (a station back from an outage resumes without a boot, B04), else at the
        answer. Pending and Rejected answers do not end the wait: the station boots again."""
        await self._until(lambda: self.driver.core.registration is RegistrationStatus.ACCEPTED)

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the current connection in order."""
        conn = self.conn
        if conn is not None:
            conn.close(code, reason)
            await conn.finished.wait()


class CsmsServer(_Owner):
    """A CSMS listening in memory: ``port`` is its port, ``sessions`` the stations by
    identity (case-folded), as on the socket adapters."""

    def __init__(
        self,
        handler: Any,
        *,
        policy: ServerPolicy,
        cores: CsmsCores,
        tasks: anyio.abc.TaskGroup,
        clock: VirtualClock,
    ) -> None:
        self.handler = handler
        self.policy = policy
        self.cores = cores
        self.clock = clock
        self.sessions: dict[str, CsmsSession] = {}
        self.port = 0
        self._tasks = tasks
        self._connections: set[_Connection] = set()
        self._stopped = anyio.Event()

    def accept(self, client: _Connection) -> None:
        """A station's connection arrives: our end of it."""
        conn = _Connection(
            self, ServerWebSocket(self.policy, self.clock.now), self.clock, client.wire
        )
        conn.peer, client.peer = client, conn
        self._connections.add(conn)

    def opened(self, conn: _Connection, now: float) -> None:
        placed = self.cores.place(self.sessions, conn.ws, now, self._new_session)
        if placed is None:
            return
        session, lingering = placed
        if lingering is not None:
            lingering.flush()
        if session.driver.core.wall_clock is None:
            session.driver.core.wall_clock = self.clock.wall_time
        conn.session = session
        session.conn = conn
        session.driver.attach(conn.ws, now)
        session.pump()

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def refused(self, conn: _Connection, closed: Closed) -> None:
        log.info("handshake refused: %s", closed.reason)

    async def serve_forever(self) -> None:
        """Wait until ``stop()`` is called (or the task is cancelled)."""
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    async def aclose(self) -> None:
        """Close every connection with 1001, then stop everything the server runs."""
        self._stopped.set()
        for conn in list(self._connections):
            if not conn.ws.done:
                conn.close(GOING_AWAY, "the CSMS is shutting down")
        self._tasks.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def serve(
    handler: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    clock: VirtualClock | None = None,
    csms_config: CsmsConfig | None = None,
    core_factory: CoreFactory | None = None,
    flows: FlowFactory | None = None,
    auth: PasswordLookup | Mapping[str, str | bytes] | None = None,
    known_identity: Callable[[str], bool] | None = None,
    ws_options: WsOptions | None = None,
    id_generator: Callable[[], str] | None = None,
) -> AsyncIterator[CsmsServer]:
    """Run a CSMS in memory at ``ws://host:port/.../IDENTITY`` while the block runs: the
    arguments of the socket adapters' ``serve`` (a handler object or a ``Router``), on
    ``clock`` (a new ``VirtualClock`` when None). ``port`` 0 picks a free one."""
    policy, cores = csms_setup(
        versions=versions,
        csms_config=csms_config,
        core_factory=core_factory,
        flows=flows,
        auth=auth,
        known_identity=known_identity,
        certificate_check=None,
        ws_options=ws_options,
        id_generator=id_generator,
    )
    port = port or next(p for p in _FREE_PORTS if (host, p) not in _LISTENING)
    if (host, port) in _LISTENING:
        raise OSError(f"{host}:{port} is in use by another in-memory server")
    async with anyio.create_task_group() as tasks:
        server = CsmsServer(handler, policy=policy, cores=cores, tasks=tasks, clock=_use(clock))
        server.port = port
        _LISTENING[host, port] = server
        try:
            yield server
        finally:
            del _LISTENING[host, port]
            with anyio.CancelScope(shield=True):
                await server.aclose()


# --- the station -------------------------------------------------------------------------------


class Station(_Session, _Owner):
    """A charging station connected in memory, reconnecting with back-off on the virtual
    clock, as on the socket adapters."""

    driver: StationDriver

    def __init__(
        self,
        driver: StationDriver,
        *,
        on_request: Callable[[Any, Any], Awaitable[Any]] | None,
        on_event: Callable[[Any, Any], Awaitable[None]] | None,
        tasks: anyio.abc.TaskGroup,
        clock: VirtualClock,
    ) -> None:
        super().__init__(driver, on_request or _not_supported, on_event, tasks, clock)
        self.endpoint = driver.endpoint
        self.identity = driver.endpoint.identity

    @property
    def failure(self) -> ConnectFailedError | None:
        """Why the station stopped trying, when ``max_attempts`` ran out."""
        return self.driver.failure

    async def wait_connected(self) -> None:
        """Return once a connection is open (raise ConnectFailedError if attempts ran out)."""
        await self._until(self.driver.is_connected)

    async def wait_registered(self) -> None:
        """Return once the CSMS has accepted the station's boot."""
        await self._until(self.driver.is_registered)

    async def _run(self) -> None:
        driver = self.driver
        while driver.trying:
            try:
                ws = await self._connect_once()
            except ConnectFailedError as error:
                wait = driver.attempt_ended(None, error)
            else:
                wait = driver.attempt_ended(ws)
            self.pump()
            if wait is None:
                return
            await self._wait_offline(self.clock.now + wait)

    async def _wait_offline(self, until: float) -> None:
        while (wake := self.driver.offline_wake(until)) < until:
            await _sleep_until(self.clock, wake)
            self.driver.offline_timer(self.clock.now)
            self.pump()
        await _sleep_until(self.clock, until)

    async def _connect_once(self) -> _WebSocket:
        endpoint = self.endpoint
        server = _LISTENING.get((endpoint.host, endpoint.port))
        if server is None:
            refused = ConnectionRefusedError(
                f"no in-memory server at {endpoint.host}:{endpoint.port}"
            )
            raise self.driver.unreachable(refused)
        if server.clock is not self.clock:
            raise self.driver.unreachable(ValueError("the server runs on another VirtualClock"))
        ws: ClientWebSocket = self.driver.new_websocket(self.clock.now)
        conn = _Connection(self, ws, self.clock, _Wire())
        self.conn = conn
        server.accept(conn)
        ws.start()
        conn.flush()
        await conn.finished.wait()
        return ws

    def opened(self, conn: _Connection, now: float) -> None:
        conn.session = self
        self.driver.attach(conn.ws, now)
        self.pump()

    def refused(self, conn: _Connection, closed: Closed) -> None:
        self.driver.refused(closed)

    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection in order and stop reconnecting."""
        ws = self.driver.stop()
        conn = self.conn
        if conn is not None and ws is conn.ws:
            conn.close(code, reason)
            await conn.finished.wait()


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    version: str | None = None,
    boot: Any = None,
    clock: VirtualClock | None = None,
    core: StationCore | None = None,
    flows: FlowFactory | None = None,
    station_config: StationConfig | None = None,
    on_request: Callable[[Any, Any], Awaitable[Any]] | None = None,
    on_event: Callable[[Any, Any], Awaitable[None]] | None = None,
    auth: str | bytes | None = None,
    ws_options: WsOptions | None = None,
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
    max_attempts: int | None = None,
    id_generator: Callable[[], str] | None = None,
) -> AsyncIterator[Station]:
    """Run a station connected to the in-memory server at ``url`` while the block runs: the
    arguments of the socket adapters' ``connect``, on ``clock`` (None: the server's when
    one listens at ``url``, else a new one)."""
    driver = StationDriver.for_url(
        url,
        version=version,
        boot=boot,
        core=core,
        flows=flows,
        station_config=station_config,
        auth=auth,
        ws_options=ws_options,
        backoff=backoff,
        rng=rng,
        max_attempts=max_attempts,
        id_generator=id_generator,
    )
    if clock is None:
        server = _LISTENING.get((driver.endpoint.host, driver.endpoint.port))
        clock = server.clock if server is not None else None
    clock = _use(clock)
    if driver.core.wall_clock is None:
        driver.core.wall_clock = clock.wall_time
    async with anyio.create_task_group() as tasks:
        station = Station(
            driver, on_request=on_request, on_event=on_event, tasks=tasks, clock=clock
        )
        tasks.start_soon(station._run)
        try:
            yield station
        finally:
            with anyio.CancelScope(shield=True):
                await station.aclose()
            tasks.cancel_scope.cancel()
