"""The asyncio adapter: a CSMS server and a station client on asyncio's protocols.

Each connection is an ``asyncio.Protocol``: bytes arrive in ``data_received``, go through
the shared WebSocket glue into the core, and what comes out is written at once; timers are
one ``loop.call_at`` handle per connection. Request handlers and ``on_event`` run as tasks,
so a slow handler never holds up the connection (see docs/adapters.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import ssl
import sys
import types
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Mapping,
    Sequence,
)
from typing import Any

from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.errors import ConnectFailedError, OcppCallError
from ocpp_sansio.events import RequestReceived
from ocpp_sansio.flows.host import FlowFactory
from ocpp_sansio.station import StationCore

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
    CertificateCheck,
    ClientWebSocket,
    Closed,
    PasswordLookup,
    ServerPolicy,
    ServerWebSocket,
    WsOptions,
    _WebSocket,
    certificate_names_identity,
)

__all__ = ["CsmsServer", "CsmsSession", "Station", "connect", "serve"]

#: Bytes read from a server connection at a time.
_READ_SIZE = 65536


class _FutureWaiter:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def settle(self, response: Any, error: BaseException | None) -> None:
        if not self.future.done():
            if error is None:
                self.future.set_result(response)
            else:
                self.future.set_exception(error)


async def _not_supported(session: Any, request: Any) -> Any:
    raise OcppCallError("NotSupported", f"no handler for {type(request).__name__}")


class _Connection(asyncio.Protocol):
    """One socket: feeds its WebSocket, writes what it has to send, runs its timer."""

    def __init__(self, owner: _Owner, ws: _WebSocket) -> None:
        self.owner = owner
        self.ws = ws
        self.loop = asyncio.get_running_loop()
        self.session: _Session | None = None
        self.transport: asyncio.Transport | None = None
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        #: True while ``_feed`` runs: it flushes once at its end, so flushes asked for on
        #: the way (by ``pump``) wait for that one.
        self._feeding = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if isinstance(self.ws, ClientWebSocket):
            self.ws.start()
        self.flush()

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ws.done:
            self._feed(None)
        if self._timer is not None:
            self._timer.cancel()
        if not self.finished.done():
            self.finished.set_result(None)

    def _feed(self, data: bytes | None) -> None:
        now = self.loop.time()
        session = self.session
        self._feeding = True
        try:
            if session is not None:
                session.driver.receive(self.ws, data, now)
                session.pump()
            else:
                ws = self.ws
                ws.receive_data(data, now)
                if ws.version is not None:
                    self.owner.opened(self, now)
                else:
                    for event in ws.events():
                        if isinstance(event, Closed):
                            self.owner.refused(self, event)
        finally:
            self._feeding = False
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        now = max(self.loop.time(), self._timer_at or 0.0)
        self._timer_at = None
        session = self.session
        if session is not None:
            session.driver.timer(self.ws, now)
            session.pump()
        else:
            self.ws.handle_timer(now)
            for event in self.ws.events():
                if isinstance(event, Closed):
                    self.owner.refused(self, event)
        self.flush()

    def flush(self) -> None:
        """Write what the WebSocket has, close when it is done, re-arm the timer."""
        transport = self.transport
        if self._feeding or transport is None or transport.is_closing():
            return
        data = self.ws.data_to_send()
        if data:
            transport.write(data)
        if self.ws.done:
            transport.close()
            return
        session = self.session
        if session is not None:
            deadline = session.driver.next_deadline(self.ws)
        else:
            deadline = self.ws.next_deadline()
        # Re-armed only when the deadline moves earlier: most messages push the core's
        # deadline later, and a timer that fires early is harmless (the core re-checks,
        # then this re-arms for the deadline of the moment).
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def close(self, code: int, reason: str) -> None:
        session = self.session
        if session is not None:
            session.driver.close(self.ws, code, reason, self.loop.time())
            session.pump()
        else:
            self.ws.close(code, reason, self.loop.time())
        self.flush()


class _ServerConnection(_Connection, asyncio.BufferedProtocol):
    """A connection the CSMS accepted. It reads into a buffer the server's connections
    share: asyncio's plain reads allocate 256 KiB per ``recv``, which on loopback costs
    more than the WebSocket and the core spend on a heartbeat."""

    def __init__(self, owner: _Owner, ws: _WebSocket, buffer: memoryview) -> None:
        super().__init__(owner, ws)
        self._buffer = buffer

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._feed(bytes(self._buffer[:nbytes]))


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
        tasks: set[asyncio.Task[Any]],
    ) -> None:
        self.driver = driver
        self.conn: _Connection | None = None
        self._on_request = on_request
        self._on_event = on_event
        self._tasks = tasks
        self._queue: asyncio.Queue[Any] | None = None
        self._changed = asyncio.Event()
        self._seen = self.state()

    async def call(self, request: Any) -> Any:
        """Send ``request`` and return the typed response. Raises OcppCallError for a
        CALLERROR, CallTimedOutError, CallLostError, InvalidResponseError or
        TransactionMessageDiscardedError (all but the first are CallFailedError); and
        LocalProtocolError at once when the protocol forbids sending it now. A 2.1 SEND
        returns None at once."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        message_id = self.driver.call(request, _FutureWaiter(future), loop.time())
        self.pump()
        if message_id is None:
            return None
        try:
            return await future
        except asyncio.CancelledError:
            self.driver.forget(message_id)
            raise

    def act(self, action: Callable[[float], Any]) -> Any:
        """Run ``action(now)`` on the core or its flows (``transactions.start(...,
        now=now)``), then send what it produced; returns what ``action`` returned."""
        result = action(asyncio.get_running_loop().time())
        self.pump()
        return result

    def pump(self) -> None:
        """After anything touched the core: write its frames, start handlers, pass events."""
        driver = self.driver
        driver.flush()
        for generation, request in driver.take_requests():
            self._start_request(generation, request)
        events = driver.take_events()
        if events and self._on_event is not None:
            if self._queue is None:
                self._queue = asyncio.Queue()
                self._spawn(self._deliver_events(self._queue))
            for event in events:
                self._queue.put_nowait(event)
        if self.conn is not None:
            self.conn.flush()
        seen = self.state()
        if seen != self._seen:
            self._seen = seen
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_request(self, generation: int, event: RequestReceived) -> None:
        self._spawn(self._run_request(generation, event))

    async def _run_request(self, generation: int, event: RequestReceived) -> None:
        try:
            response = await self._on_request(self, event.request)
        except Exception as error:
            self.driver.answer_exception(generation, event.message_id, error)
        else:
            self.driver.answer(
                generation, event.message_id, response, asyncio.get_running_loop().time()
            )
        self.pump()

    async def _deliver_events(self, queue: asyncio.Queue[Any]) -> None:
        assert self._on_event is not None
        while True:
            event = await queue.get()
            try:
                await self._on_event(self, event)
            except Exception:
                log.exception("on_event failed on %r", event)


# --- the CSMS ----------------------------------------------------------------------------------


@types.coroutine
def _resume(
    coroutine: Coroutine[Any, Any, Any],
    context: contextvars.Context,
    yielded: Any,
    error: BaseException | None = None,
) -> Generator[Any, Any, Any]:
    """Go on driving ``coroutine``, which suspended with ``yielded``, from the task that
    awaits this: what that task's loop sends or throws goes in, each step in ``context``.
    ``error`` is thrown in first instead of waiting."""
    while True:
        if error is not None:
            step: Callable[[Any], Any] = coroutine.throw
            argument: Any = error
            error = None
        else:
            try:
                argument = yield yielded
                step = coroutine.send
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:
                step, argument = coroutine.throw, thrown
        try:
            yielded = context.run(step, argument)
        except StopIteration as stop:
            return stop.value


class _SpareTask:
    """A task started in advance and parked, for a coroutine begun inline to go on in if
    it suspends. It is the current task during that first step, so the coroutine has one
    task from its first line to its last (asyncio.timeout and TaskGroup work as usual)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.handoff: asyncio.Future[tuple[Any, contextvars.Context, Any]] = loop.create_future()
        self.task = loop.create_task(self._continue())

    async def _continue(self) -> Any:
        try:
            coroutine, context, yielded = await self.handoff
        except asyncio.CancelledError as error:
            if not self.handoff.done() or self.handoff.cancelled():
                raise  # cancelled while parked
            # Cancelled between the handoff and this step: the coroutine gets it where
            # it suspended, as it would have in a task of its own.
            coroutine, context, yielded = self.handoff.result()
            return await _resume(coroutine, context, yielded, error)
        return await _resume(coroutine, context, yielded)


class _EagerStarter:
    """Starts request handlers as tasks whose first step runs at once, in the caller.

    A handler that answers without suspending costs no task and no trip through the
    event loop, and its answer leaves in the same write as whatever the connection was
    sending anyway. Python 3.12 has this built in (``eager_start``); on 3.11 a parked
    :class:`_SpareTask` stands in as the current task during the first step and takes
    the coroutine over if it suspends.
    """

    def __init__(self, tasks: set[asyncio.Task[Any]]) -> None:
        self._tasks = tasks
        self._spare: _SpareTask | None = None

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        loop = asyncio.get_running_loop()
        if asyncio.current_task(loop) is not None:  # inside a task: no first step inline
            self._keep(loop.create_task(coroutine))
            return
        if sys.version_info >= (3, 12):
            task = asyncio.Task(coroutine, loop=loop, eager_start=True)
            if not task.done():
                self._keep(task)
            return
        spare = self._spare
        if spare is None or spare.task.done() or spare.task.cancelling():
            spare = self._spare = _SpareTask(loop)
            self._keep(spare.task)
        context = contextvars.copy_context()
        _enter_task(loop, spare.task)
        try:
            yielded = context.run(coroutine.send, None)
        except StopIteration:
            return
        except asyncio.CancelledError:
            return  # the coroutine cancelled itself: as a task, it would just end
        finally:
            _leave_task(loop, spare.task)
        self._spare = None
        if spare.handoff.done():  # the first step cancelled its own task
            spare.handoff = loop.create_future()
        spare.handoff.set_result((coroutine, context, yielded))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class CsmsSession(_Session):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        on_request = handler_method(server.handler, "on_request") or _not_supported
        super().__init__(
            driver, on_request, handler_method(server.handler, "on_event"), server._tasks
        )
        self.identity = identity
        #: The TLS client certificate of the current connection (security profile 3).
        self.peer_certificate: dict[str, Any] | None = None
        self._starter = server._starter

    def _start_request(self, generation: int, event: RequestReceived) -> None:
        self._starter.start(self._run_request(generation, event))

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the current connection in order and wait until it is gone."""
        conn = self.conn
        if conn is not None:
            conn.close(code, reason)
            await conn.finished


class CsmsServer(_Owner):
    """A listening CSMS: ``port`` is the bound port, ``sessions`` the stations by
    identity (case-folded)."""

    def __init__(
        self,
        handler: Any,
        *,
        policy: ServerPolicy,
        cores: CsmsCores,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.handler = handler
        self.policy = policy
        self.cores = cores
        self.ssl_context = ssl_context
        self.sessions: dict[str, CsmsSession] = {}
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starter = _EagerStarter(self._tasks)
        self._connections: set[_Connection] = set()
        self._stopped = asyncio.Event()
        #: Every connection reads into this, one at a time, and copies out what it got.
        self._read_buffer = memoryview(bytearray(_READ_SIZE))

    async def _start(self, host: str, port: int, backlog: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection,
            host,
            port,
            ssl=self.ssl_context,
            backlog=backlog,
            ssl_handshake_timeout=self.policy.options.handshake_timeout
            if self.ssl_context
            else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _new_connection(self) -> _Connection:
        ws = ServerWebSocket(
            self.policy,
            asyncio.get_running_loop().time(),
            peer_certificate=lambda: (
                conn.transport.get_extra_info("peercert") if conn.transport else None
            ),
        )
        conn = _ServerConnection(self, ws, self._read_buffer)
        self._connections.add(conn)
        conn.finished.add_done_callback(lambda _: self._connections.discard(conn))
        return conn

    def opened(self, conn: _Connection, now: float) -> None:
        placed = self.cores.place(self.sessions, conn.ws, now, self._new_session)
        if placed is None:
            return
        session, lingering = placed
        if lingering is not None:
            lingering.flush()
        conn.session = session
        session.conn = conn
        assert conn.transport is not None
        session.peer_certificate = conn.transport.get_extra_info("peercert")
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
        """Stop listening, close every connection with 1001, cancel handlers."""
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close(GOING_AWAY, "the CSMS is shutting down")
        waiting = [conn.finished for conn in self._connections]
        if waiting:
            await asyncio.wait(waiting, timeout=self.policy.options.close_timeout)
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def serve(
    handler: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    csms_config: CsmsConfig | None = None,
    core_factory: CoreFactory | None = None,
    flows: FlowFactory | None = None,
    auth: PasswordLookup | Mapping[str, str | bytes] | None = None,
    known_identity: Callable[[str], bool] | None = None,
    certificate_check: CertificateCheck | None = certificate_names_identity,
    ssl_context: ssl.SSLContext | None = None,
    ws_options: WsOptions | None = None,
    id_generator: Callable[[], str] | None = None,
    backlog: int = 1024,
) -> AsyncIterator[CsmsServer]:
    """Run a CSMS at ``ws[s]://host:port/.../IDENTITY`` while the block runs.

    ``handler.on_request(session, request)`` answers each station request (async; raise
    OcppCallError to answer with a CALLERROR); ``handler.on_event(session, event)`` gets
    the rest, in order. ``versions`` in order of preference; ``auth(identity)`` returns the
    station's Basic password (profiles 1, 2); ``known_identity(identity)`` False gives 404;
    ``certificate_check(identity, certificate)`` False gives 403 (profile 3).
    ``core_factory(identity, version)`` makes each station's CsmsCore (instead of
    ``csms_config`` / ``id_generator``); ``flows(core)`` the flows that see its events first.
    """
    policy, cores = csms_setup(
        versions=versions,
        csms_config=csms_config,
        core_factory=core_factory,
        flows=flows,
        auth=auth,
        known_identity=known_identity,
        certificate_check=certificate_check,
        ws_options=ws_options,
        id_generator=id_generator,
    )
    server = CsmsServer(handler, policy=policy, cores=cores, ssl_context=ssl_context)
    await server._start(host, port, backlog)
    try:
        yield server
    finally:
        await server.aclose()


# --- the station -------------------------------------------------------------------------------


class Station(_Session, _Owner):
    """A charging station connected to its CSMS, reconnecting with back-off (digest §2.4).

    One StationCore for the whole life of the object: after a reconnect, registration and
    held transaction messages resume without a new boot (B04).
    """

    driver: StationDriver

    def __init__(
        self,
        driver: StationDriver,
        *,
        on_request: Callable[[Any, Any], Awaitable[Any]] | None,
        on_event: Callable[[Any, Any], Awaitable[None]] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(driver, on_request or _not_supported, on_event, set())
        self.endpoint = driver.endpoint
        self.identity = driver.endpoint.identity
        self._ssl_context = ssl_context

    @property
    def failure(self) -> ConnectFailedError | None:
        """Why the station stopped trying, when ``max_attempts`` ran out."""
        return self.driver.failure

    async def wait_connected(self) -> None:
        """Return once a connection is open (raise ConnectFailedError if attempts ran out)."""
        while not self.driver.is_connected():
            await self._changed.wait()

    async def wait_registered(self) -> None:
        """Return once the CSMS has accepted the station's boot."""
        while not self.driver.is_registered():
            await self._changed.wait()

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
            await self._wait_offline(asyncio.get_running_loop().time() + wait)

    async def _wait_offline(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while (wake := self.driver.offline_wake(until)) < until:
            await asyncio.sleep(wake - loop.time())
            self.driver.offline_timer(loop.time())
            self.pump()
        await asyncio.sleep(until - loop.time())

    async def _connect_once(self) -> _WebSocket:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        ws = self.driver.new_websocket(loop.time())
        timeout = self.driver.options.handshake_timeout
        context = self._ssl_context
        if endpoint.secure and context is None:
            context = ssl.create_default_context()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, ws),
                    endpoint.host,
                    endpoint.port,
                    ssl=context if endpoint.secure else None,
                    ssl_handshake_timeout=timeout if endpoint.secure else None,
                )
        except (OSError, TimeoutError) as error:
            raise self.driver.unreachable(error) from error
        try:
            await conn.finished
        finally:
            if not conn.finished.done() and conn.transport is not None:
                conn.transport.abort()  # cancelled: the station is closing
        return ws

    def opened(self, conn: _Connection, now: float) -> None:
        self.conn = conn
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
            await conn.finished


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    version: str | None = None,
    boot: Any = None,
    core: StationCore | None = None,
    flows: FlowFactory | None = None,
    station_config: StationConfig | None = None,
    on_request: Callable[[Any, Any], Awaitable[Any]] | None = None,
    on_event: Callable[[Any, Any], Awaitable[None]] | None = None,
    auth: str | bytes | None = None,
    ssl_context: ssl.SSLContext | None = None,
    ws_options: WsOptions | None = None,
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
    max_attempts: int | None = None,
    id_generator: Callable[[], str] | None = None,
) -> AsyncIterator[Station]:
    """Run a station connected to ``url`` (``ws[s]://host:port/.../IDENTITY``).

    The station boots with ``boot`` (or drives the application's own ``core``), answers
    the CSMS with ``on_request(station, request)`` (async; raise OcppCallError for a
    CALLERROR) and passes other events to ``on_event(station, event)``, after the
    ``flows(core)`` had their turn. ``auth`` is the HTTP Basic password (bytes are sent as
    they are: a 1.6 AuthorizationKey as raw bytes). It reconnects with ``backoff`` after
    each loss; ``max_attempts`` consecutive failures end the attempts.
    """
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
    station = Station(driver, on_request=on_request, on_event=on_event, ssl_context=ssl_context)
    runner = asyncio.ensure_future(station._run())
    try:
        yield station
    finally:
        with contextlib.suppress(Exception):
            await station.aclose()
        runner.cancel()
        for task in [runner, *station._tasks]:
            task.cancel()
        await asyncio.gather(runner, *station._tasks, return_exceptions=True)
