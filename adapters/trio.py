"""The trio adapter: a CSMS server and a station client with structured concurrency.

Each connection runs two tasks: a reader that feeds received bytes through the shared
WebSocket glue into the core, and a service task that writes what comes out and runs the
timers (its cancel scope's deadline is the next deadline, moved whenever it changes).
Request handlers and ``on_event`` run as tasks in the server's (or station's) nursery, so a
slow handler never holds up the connection (see docs/adapters.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from ocpp_sansio.errors import needs_extra

with needs_extra("trio", needed_by="ocpp_sansio.adapters.trio"):
    import trio

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

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
#: Bytes read from a server connection at a time.
_READ_SIZE = 65536


class _Waiter:
    __slots__ = ("done", "error", "response")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: Any = None
        self.error: BaseException | None = None

    def settle(self, response: Any, error: BaseException | None) -> None:
        if not self.done.is_set():
            self.response, self.error = response, error
            self.done.set()

    async def wait(self) -> Any:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.response


async def _not_supported(session: Any, request: Any) -> Any:
    raise OcppCallError("NotSupported", f"no handler for {type(request).__name__}")


class _Connection:
    """One stream: a reader task feeds the WebSocket; a service task writes and runs timers."""

    def __init__(self, owner: _Owner, stream: trio.abc.Stream, ws: _WebSocket) -> None:
        self.owner = owner
        self.stream = stream
        self.ws = ws
        self.session: _Session | None = None
        self.finished = trio.Event()
        self._out = bytearray()
        self._wakeup = trio.Event()
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None

    async def run(self) -> None:
        """Serve the connection until its WebSocket is done, then close the stream."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read)
                await self._service()
                nursery.cancel_scope.cancel()
        finally:
            # Settle first: under an outer cancellation aclose_forcefully raises Cancelled.
            if not self.ws.done:
                self._feed(None)
            self.finished.set()
            with contextlib.suppress(*_BROKEN):
                await trio.aclose_forcefully(self.stream)

    async def _read(self) -> None:
        while not self.ws.done:
            try:
                data = bytes(await self.stream.receive_some(65536))  # no copy for bytes
            except _BROKEN:
                data = b""
            self._feed(data or None)

    async def _service(self) -> None:
        if isinstance(self.ws, ClientWebSocket):
            self.ws.start()
            self.flush()
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                await self._wakeup.wait()
            self._scope = None
            if self._wakeup.is_set():
                self._wakeup = trio.Event()
            if trio.current_time() >= self._deadline:
                self._on_timer()
            while self._out:
                data = bytes(self._out)
                self._out.clear()
                try:
                    await self.stream.send_all(data)
                except _BROKEN:
                    self._feed(None)
                    return
            if self.ws.done:
                return

    def _feed(self, data: bytes | None) -> None:
        now = trio.current_time()
        session = self.session
        if session is not None:
            session.driver.receive(self.ws, data, now)
            session.pump()
        else:
            ws = self.ws
            ws.receive_data(data, now)
            if ws.version is not None:
                self.owner.opened(self, now)
            else:
                self._refused()
        self.flush()

    def _on_timer(self) -> None:
        now = max(trio.current_time(), self._deadline)
        session = self.session
        if session is not None:
            session.driver.timer(self.ws, now)
            session.pump()
        else:
            self.ws.handle_timer(now)
            self._refused()
        self.flush()

    def _refused(self) -> None:
        for event in self.ws.events():
            if isinstance(event, Closed):
                self.owner.refused(self, event)

    def flush(self) -> None:
        """Hand what the WebSocket has to the service task and move its deadline."""
        self._out += self.ws.data_to_send()
        session = self.session
        if session is not None:
            deadline = session.driver.next_deadline(self.ws)
        else:
            deadline = self.ws.next_deadline()
        self._deadline = math.inf if deadline is None else deadline
        if self._scope is not None:
            self._scope.deadline = self._deadline
        if self._out or self.ws.done:
            self._wakeup.set()

    def close(self, code: int, reason: str) -> None:
        now = trio.current_time()
        session = self.session
        if session is not None:
            session.driver.close(self.ws, code, reason, now)
            session.pump()
        else:
            self.ws.close(code, reason, now)
        self.flush()

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        if isinstance(self.stream, trio.SSLStream):
            cert: dict[str, Any] | None = self.stream.getpeercert()
            return cert
        return None


class _SocketConnection(_Connection):
    """A connection the CSMS accepted on a plain TCP socket (POSIX).

    One task waits for the socket to be readable, reads, and feeds the core; whatever
    task produces frames (the reader, a request handler, ``session.call``) writes them to
    the socket at once, without waking another task. Only when the kernel's send buffer
    is full does a writer task wait for room. The timers ride on the reader's cancel
    scope, whose deadline is only ever moved earlier: waking too early is harmless (the
    core re-checks) and much cheaper than a new scope per message.
    """

    def __init__(
        self, owner: _Owner, stream: trio.SocketStream, ws: _WebSocket, nursery: trio.Nursery
    ) -> None:
        super().__init__(owner, stream, ws)
        self._fd = stream.socket.fileno()
        self._feeding = False
        self._broken = False
        #: Where a writer task runs when the send buffer is full (no nursery per connection).
        self._nursery = nursery
        #: Set while a writer task waits for room in the send buffer.
        self._drained: trio.Event | None = None
        self._writer: trio.CancelScope | None = None

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            if self._writer is not None:
                self._writer.cancel()
            if not self.ws.done:
                self._feed(None)
            self.finished.set()
            with contextlib.suppress(*_BROKEN):
                await trio.aclose_forcefully(self.stream)

    async def _serve(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                while not (self.ws.done or self._broken):
                    await trio.lowlevel.wait_readable(self._fd)
                    self._read_now()
            self._scope = None
            if self._broken:
                self._feed(None)
            if self.ws.done:
                if self._drained is not None:
                    await self._drained.wait()
                return
            if trio.current_time() >= self._deadline:
                self._on_timer()

    def _read_now(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._feed(data or None)

    def _feed(self, data: bytes | None) -> None:
        self._feeding = True
        try:
            super()._feed(data)
        finally:
            self._feeding = False
        self.flush()

    def _on_timer(self) -> None:
        # The deadline this scope carried may be earlier than the core's now.
        self._deadline, now = math.inf, max(trio.current_time(), self._deadline)
        session = self.session
        if session is not None:
            session.driver.timer(self.ws, now)
            session.pump()
        else:
            self.ws.handle_timer(now)
            self._refused()
        self.flush()

    def flush(self) -> None:
        """Write what the WebSocket has now; move the reader's deadline if it came closer."""
        if self._feeding:
            return
        data = self.ws.data_to_send()
        if data and not self._broken:
            if self._drained is None:
                self._write(data)
            else:
                self._out += data
        session = self.session
        deadline = session.driver.next_deadline(self.ws) if session else self.ws.next_deadline()
        if deadline is not None and deadline < self._deadline:
            self._deadline = deadline
            if self._scope is not None:
                self._scope.deadline = deadline
        if (self.ws.done or self._broken) and self._scope is not None:
            self._scope.cancel()

    def _write(self, data: bytes) -> None:
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._broken = True
            return
        if sent < len(data):
            self._out += data[sent:]
            self._drained = trio.Event()
            self._writer = trio.CancelScope()
            self._nursery.start_soon(self._drain, self._writer)

    async def _drain(self, scope: trio.CancelScope) -> None:
        """Wait for room in the send buffer until everything queued is written."""
        assert self._drained is not None
        try:
            with scope:
                await self._write_queued()
        except _BROKEN:
            self._broken = True
        finally:
            self._writer = None
            self._drained.set()
            self._drained = None
            self._out.clear()
            if (self.ws.done or self._broken) and self._scope is not None:
                self._scope.cancel()

    async def _write_queued(self) -> None:
        while self._out:
            await trio.lowlevel.wait_writable(self._fd)
            try:
                sent = os.write(self._fd, self._out)
            except BlockingIOError:
                continue
            except OSError:
                self._broken = True
                return
            del self._out[:sent]


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
        nursery: trio.Nursery,
    ) -> None:
        self.driver = driver
        self.conn: _Connection | None = None
        self._on_request = on_request
        self._on_event = on_event
        self._nursery = nursery
        self._events_in: trio.MemorySendChannel[Any] | None = None
        self._changed = trio.Event()
        self._seen = self.state()

    async def call(self, request: Any) -> Any:
        """Send ``request`` and return the typed response. Raises OcppCallError for a
        CALLERROR, CallTimedOutError, CallLostError, InvalidResponseError or
        TransactionMessageDiscardedError (all but the first are CallFailedError); and
        LocalProtocolError at once when the protocol forbids sending it now. A 2.1 SEND
        returns None at once."""
        waiter = _Waiter()
        message_id = self.driver.call(request, waiter, trio.current_time())
        self.pump()
        if message_id is None:
            return None
        try:
            return await waiter.wait()
        finally:
            if not waiter.done.is_set():
                self.driver.forget(message_id)

    def act(self, action: Callable[[float], Any]) -> Any:
        """Run ``action(now)`` on the core or its flows (``transactions.start(...,
        now=now)``), then send what it produced; returns what ``action`` returned."""
        result = action(trio.current_time())
        self.pump()
        return result

    def pump(self) -> None:
        """After anything touched the core: write its frames, start handlers, pass events."""
        driver = self.driver
        driver.flush()
        for generation, request in driver.take_requests():
            self._nursery.start_soon(self._run_request, generation, request)
        events = driver.take_events()
        if events and self._on_event is not None:
            if self._events_in is None:
                self._events_in, events_out = trio.open_memory_channel[Any](math.inf)
                self._nursery.start_soon(self._deliver_events, events_out)
            for event in events:
                self._events_in.send_nowait(event)
        if self.conn is not None:
            self.conn.flush()
        seen = self.state()
        if seen != self._seen:
            self._seen = seen
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _run_request(self, generation: int, event: RequestReceived) -> None:
        try:
            response = await self._on_request(self, event.request)
        except Exception as error:
            self.driver.answer_exception(generation, event.message_id, error)
        else:
            self.driver.answer(generation, event.message_id, response, trio.current_time())
        self.pump()

    async def _deliver_events(self, events: trio.MemoryReceiveChannel[Any]) -> None:
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
        super().__init__(
            driver, on_request, handler_method(server.handler, "on_event"), server._nursery
        )
        self.identity = identity
        #: The TLS client certificate of the current connection (security profile 3).
        self.peer_certificate: dict[str, Any] | None = None

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the current connection in order and wait until it is gone."""
        conn = self.conn
        if conn is not None:
            conn.close(code, reason)
            await conn.finished.wait()


class CsmsServer(_Owner):
    """A listening CSMS: ``port`` is the bound port, ``sessions`` the stations by
    identity (case-folded)."""

    def __init__(
        self,
        handler: Any,
        *,
        policy: ServerPolicy,
        cores: CsmsCores,
        nursery: trio.Nursery,
    ) -> None:
        self.handler = handler
        self.policy = policy
        self.cores = cores
        self.sessions: dict[str, CsmsSession] = {}
        self.port = 0
        self._nursery = nursery
        self._connections: set[_Connection] = set()
        self._stopped = trio.Event()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        certificate = (lambda: stream.getpeercert()) if isinstance(stream, trio.SSLStream) else None
        ws = ServerWebSocket(self.policy, trio.current_time(), peer_certificate=certificate)
        if isinstance(stream, trio.SocketStream) and os.name == "posix":
            conn: _Connection = _SocketConnection(self, stream, ws, self._nursery)
        else:
            conn = _Connection(self, stream, ws)
        self._connections.add(conn)
        try:
            await conn.run()
        except Exception:
            log.exception("connection failed")
        finally:
            self._connections.discard(conn)

    def opened(self, conn: _Connection, now: float) -> None:
        placed = self.cores.place(self.sessions, conn.ws, now, self._new_session)
        if placed is None:
            return
        session, lingering = placed
        if lingering is not None:
            lingering.flush()
        conn.session = session
        session.conn = conn
        session.peer_certificate = conn.peer_certificate
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
            conn.close(GOING_AWAY, "the CSMS is shutting down")
        with trio.move_on_after(self.policy.options.close_timeout):
            for conn in list(self._connections):
                await conn.finished.wait()
        self._nursery.cancel_scope.cancel()


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
    async with trio.open_nursery() as nursery:
        server = CsmsServer(handler, policy=policy, cores=cores, nursery=nursery)
        tcp = await trio.open_tcp_listeners(port, host=host, backlog=backlog)
        server.port = tcp[0].socket.getsockname()[1]
        listeners: list[trio.abc.Listener[Any]] = list(tcp)
        if ssl_context is not None:
            listeners = [trio.SSLListener(listener, ssl_context) for listener in tcp]
        nursery.start_soon(trio.serve_listeners, server._handle, listeners)
        try:
            yield server
        finally:
            with trio.CancelScope(shield=True):
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
        nursery: trio.Nursery,
    ) -> None:
        super().__init__(driver, on_request or _not_supported, on_event, nursery)
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
            await self._wait_offline(trio.current_time() + wait)

    async def _wait_offline(self, until: float) -> None:
        while (wake := self.driver.offline_wake(until)) < until:
            await trio.sleep_until(wake)
            self.driver.offline_timer(trio.current_time())
            self.pump()
        await trio.sleep_until(until)

    async def _connect_once(self) -> _WebSocket:
        endpoint = self.endpoint
        try:
            with trio.fail_after(self.driver.options.handshake_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
                if endpoint.secure:
                    context = self._ssl_context or ssl.create_default_context()
                    stream = trio.SSLStream(stream, context, server_hostname=endpoint.host)
                    await stream.do_handshake()
        except (*_BROKEN, trio.TooSlowError) as error:
            raise self.driver.unreachable(error) from error
        conn = _Connection(self, stream, self.driver.new_websocket(trio.current_time()))
        self.conn = conn
        await conn.run()
        return conn.ws

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
    async with trio.open_nursery() as nursery:
        station = Station(
            driver,
            on_request=on_request,
            on_event=on_event,
            ssl_context=ssl_context,
            nursery=nursery,
        )
        nursery.start_soon(station._run)
        try:
            yield station
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(driver.options.close_timeout):
                await station.aclose()
            nursery.cancel_scope.cancel()
