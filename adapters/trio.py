"""The trio adapter: a CSMS server and a station client with structured concurrency.

Only trio's side is here: the skeleton (``_skeleton``) does the rest. Every connection a
CSMS accepts on plain TCP (where the system has epoll) is served by one task per server
(``_trio_reactor``): it sleeps on one epoll set, reads and writes the sockets directly and
fires the links' timers from one heap, so a message costs no task switch and no trio wait.
Any other stream (TLS, a station's connection) has a reader task and a task that writes
and runs the timer. Both stop reading a peer that leaves too much of what we sent unread
(``WsOptions.write_high_water``; past ``max_write_buffer`` they end it with 1008).
Handlers and ``on_event`` run as tasks in a nursery that the caller's cancellation does not
reach, so that leaving a block by any route (exit, cancellation, a timeout, Ctrl-C) first
closes in order: a station with 1000, a CSMS every connection with 1001, each waiting up
to ``close_timeout`` for the answer."""

from __future__ import annotations

import contextlib
import math
import select
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from ocpp_sansio.errors import needs_extra

with needs_extra("trio", needed_by="ocpp_sansio.adapters.trio"):
    import trio


from ._driver import Driver, Wire, log
from ._options import ServerOptions
from ._skeleton import (
    Link,
    LoopCsmsSession,
    LoopServer,
    LoopSession,
    LoopStation,
    StationSetup,
    connect_function,
    serve_function,
    wall_clock_for,
)
from ._trio_reactor import READ_SIZE, Connection, Reactor
from ._ws import POLICY_VIOLATION, ClientWebSocket, ServerWebSocket, WsOptions

__all__ = [
    "CsmsServer",
    "CsmsSession",
    "Station",
    "connect",
    "link_finished",
    "serve",
    "wall_clock",
]

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def wall_clock() -> Callable[[float], Any]:
    """trio's clock read as UTC (what the flows get by default); call inside ``trio.run``."""
    return wall_clock_for(trio.current_time)


class _Stream:
    """A link over a trio stream (TLS, a station's connection): a reader task feeds it; a
    service task writes what the link produced and fires its timer (its cancel scope's
    deadline). The reader waits while more than ``write_high_water`` bytes are unsent (the
    peer does not read: back-pressure) until a quarter of it is left; past
    ``max_write_buffer`` the connection is closed with 1008."""

    link: Link

    def __init__(self, stream: trio.abc.Stream, options: WsOptions) -> None:
        self.stream = stream
        self.finished = trio.Event()
        self._high_water = options.write_high_water
        self._max_buffer = options.max_write_buffer
        self._out = bytearray()
        #: Bytes handed to ``send_all`` and not yet sent.
        self._sending = 0
        self._wakeup = trio.Event()
        #: Set when the reader, waiting for the peer to read, may go on.
        self._room: trio.Event | None = None
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None
        self._send_scope: trio.CancelScope | None = None
        self._done = False
        self._overflowed = False

    def write(self, data: bytes) -> None:
        self._out += data
        self._wakeup.set()
        if len(self._out) + self._sending > self._max_buffer and not self._overflowed:
            self._overflowed = True
            if self._send_scope is not None:
                self._send_scope.cancel()

    def finish(self) -> None:
        self._done = True
        self._wakeup.set()

    def arm(self, deadline: float | None) -> None:
        self._deadline = math.inf if deadline is None else deadline
        if self._scope is not None:
            self._scope.deadline = self._deadline

    async def wait_finished(self) -> None:
        await self.finished.wait()

    def peer_certificate(self) -> dict[str, Any] | None:
        if isinstance(self.stream, trio.SSLStream):
            cert: dict[str, Any] | None = self.stream.getpeercert()
            return cert
        return None

    async def run(self) -> None:
        """Serve the link until its WebSocket is done, then close the stream."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read)
                self.link.begin()
                await self._service()
                nursery.cancel_scope.cancel()
        finally:
            if not self.link.ws.done:
                self.link.received(None, trio.current_time())
            self.finished.set()
            with contextlib.suppress(*_BROKEN):
                await trio.aclose_forcefully(self.stream)

    async def _read(self) -> None:
        while not self._done:
            if len(self._out) + self._sending > self._high_water:
                self._room = trio.Event()
                await self._room.wait()
                continue
            try:
                data = bytes(await self.stream.receive_some(READ_SIZE))
            except _BROKEN:
                data = b""
            self.link.received(data or None, trio.current_time())

    async def _service(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                await self._wakeup.wait()
            self._scope = None
            if self._wakeup.is_set():
                self._wakeup = trio.Event()
            if trio.current_time() >= self._deadline:
                self.link.timer_fired(max(trio.current_time(), self._deadline))
            while self._out and not self._overflowed:
                data = bytes(self._out)
                self._out.clear()
                self._sending = len(data)
                try:
                    with trio.CancelScope() as self._send_scope:
                        await self.stream.send_all(data)
                except _BROKEN:
                    self.link.received(None, trio.current_time())
                    return
                finally:
                    self._send_scope = None
                    self._sending = 0
                room = self._room
                if room is not None and len(self._out) <= self._high_water // 4:
                    self._room = None
                    room.set()
            if self._overflowed:
                ws = self.link.ws
                if isinstance(ws, ServerWebSocket | ClientWebSocket) and not ws.done:
                    ws.abort(POLICY_VIOLATION, "the peer does not read what it is sent")
                self.link.received(None, trio.current_time())
                return
            if self._done:
                return


class _Trio(LoopSession):
    """The trio side of a session: tasks in the owner's nursery, trio's clock (events reach
    ``on_event`` as the skeleton delivers them: through a task only while some wait)."""

    _new_event = trio.Event
    _nursery: trio.Nursery

    def _clock(self) -> float:
        return trio.current_time()

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._nursery.start_soon(function, *args)

    async def _link_finished(self, link: Link) -> None:
        await link_finished(link)


async def link_finished(link: Link) -> None:
    """Wait until ``link``'s connection is over (its socket closed), on either kind of
    transport (a reactor connection or a stream with its own tasks)."""
    transport = link.transport
    assert isinstance(transport, _Stream | Connection)
    await transport.wait_finished()


@contextlib.asynccontextmanager
async def _guarded() -> AsyncIterator[tuple[trio.Nursery, trio.CancelScope]]:
    """A nursery the caller's cancellation does not reach, and the scope that ends it:
    the caller closes in order first, then cancels the scope."""

    async def hold(scope: trio.CancelScope, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            async with trio.open_nursery() as inner:
                task_status.started(inner)
                await trio.sleep_forever()

    try:
        async with trio.open_nursery() as outer:
            scope = trio.CancelScope(shield=True)
            try:
                yield await outer.start(hold, scope), scope
            finally:
                scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        # What left the caller's block (its error, a cancellation, KeyboardInterrupt)
        # leaves this block as it came, not wrapped in the nursery's group.
        raised = group.exceptions[0]
        context, cause = raised.__context__, raised.__cause__
        try:
            raise raised
        finally:
            raised.__context__, raised.__cause__ = context, cause


# --- the CSMS ----------------------------------------------------------------------------------


class CsmsSession(_Trio, LoopCsmsSession):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        self._nursery = server._nursery
        super().__init__(identity, driver, server)


class CsmsServer(LoopServer):
    """A listening CSMS: ``port`` is the bound port, ``sessions`` the stations by
    ``identity_key``."""

    _new_event = trio.Event
    sessions: dict[str, CsmsSession]

    def __init__(
        self, handler: Any, versions: Sequence[str], options: ServerOptions, nursery: trio.Nursery
    ) -> None:
        super().__init__(handler, versions, options, trio.current_time)
        self._nursery = nursery
        self._listening = trio.CancelScope()
        #: Serves every connection on plain TCP where the system has epoll.
        self._reactor: Reactor | None = None

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def _run_soon(
        self, link: Link, function: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        self._nursery.start_soon(function, *args)

    def _reading(self, link: Link, on: bool) -> None:
        transport = link.transport
        if isinstance(transport, Connection):
            transport.reading(on)

    async def _listen(self, listeners: list[trio.abc.Listener[Any]]) -> None:
        with self._listening:
            await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        transport = _Stream(stream, self.policy.options)
        transport.link = link = self.new_link(transport)
        try:
            await transport.run()
        except Exception:
            log.exception("connection failed")
        finally:
            self.links.discard(link)

    async def aclose(self) -> None:
        """Stop listening, close every connection with 1001 (waiting up to
        close_timeout for their answers), then end the handlers."""
        self._stopped.set()
        self._listening.cancel()
        if self._reactor is not None:
            self._reactor.stop_listening()
        links = self.going_away()
        with trio.move_on_after(self.policy.options.close_timeout):
            for link in links:
                await link_finished(link)


@contextlib.asynccontextmanager
async def _serving(
    handler: Any, host: str, port: int, versions: Sequence[str], options: ServerOptions
) -> AsyncIterator[CsmsServer]:
    async with _guarded() as (nursery, scope):
        server = CsmsServer(handler, versions, options, nursery)
        tcp = await trio.open_tcp_listeners(port, host=host, backlog=options.backlog)
        server.port = tcp[0].socket.getsockname()[1]
        if options.ssl_context is None and hasattr(select, "epoll"):
            # (The stdlib sockets under trio's: the reactor owns them from here.)
            sockets = [socket.socket(fileno=listener.socket.detach()) for listener in tcp]
            for sock in sockets:
                sock.setblocking(False)
            server._reactor = Reactor(server, sockets)
            nursery.start_soon(server._reactor.run)
        else:
            listeners: list[trio.abc.Listener[Any]] = list(tcp)
            if options.ssl_context is not None:
                listeners = [trio.SSLListener(listener, options.ssl_context) for listener in tcp]
            nursery.start_soon(server._listen, listeners)
        try:
            yield server
        finally:
            with trio.CancelScope(shield=True):
                await server.aclose()
            scope.cancel()


serve = serve_function(_serving)


# --- the station -------------------------------------------------------------------------------


class Station(_Trio, LoopStation):
    """A charging station connected to its CSMS, reconnecting with back-off (B04)."""

    def __init__(self, setup: StationSetup, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        super().__init__(setup)

    async def _sleep_until(self, deadline: float) -> None:
        await trio.sleep_until(deadline)

    async def _connect_once(self) -> Wire:
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
        transport = _Stream(stream, self.driver.options)
        ws = self.driver.new_websocket(trio.current_time())
        transport.link = self.link = Link(ws, self, transport)
        await transport.run()
        return ws


@contextlib.asynccontextmanager
async def _station(setup: StationSetup) -> AsyncIterator[Station]:
    async with _guarded() as (nursery, scope):
        station = Station(setup, nursery)
        nursery.start_soon(station._run)
        try:
            yield station
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(setup.options.ws_options.close_timeout):
                    await station.aclose()
            scope.cancel()


connect = connect_function(_station, wall_clock)
