"""The trio adapter: a CSMS server and a station client with structured concurrency.

Only trio's side is here: the skeleton (``_skeleton``) does the rest. A connection the
CSMS accepted on plain TCP is one task waiting for its socket to be readable and reading
it directly; any other stream (TLS, a station's connection) has a reader task and a task
that writes and runs the timer. Handlers and ``on_event`` run as tasks in a nursery that
the caller's cancellation does not reach, so that leaving a block by any route (exit,
cancellation, a timeout, Ctrl-C) first closes in order: a station with 1000, a CSMS every
connection with 1001, each waiting up to ``close_timeout`` for the answer.
"""

from __future__ import annotations

import contextlib
import math
import os
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

__all__ = ["CsmsServer", "CsmsSession", "Station", "connect", "serve", "wall_clock"]

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
#: Bytes read from a connection at a time.
_READ_SIZE = 65536


def wall_clock() -> Callable[[float], Any]:
    """trio's clock read as UTC (what the flows get by default); call inside ``trio.run``."""
    return wall_clock_for(trio.current_time)


class _Stream:
    """A link over a trio stream: a reader task feeds it; a service task writes what the
    link produced and fires its timer (its cancel scope's deadline)."""

    link: Link

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.finished = trio.Event()
        self._out = bytearray()
        self._wakeup = trio.Event()
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None
        self._done = False

    def write(self, data: bytes) -> None:
        self._out += data
        self._wakeup.set()

    def finish(self) -> None:
        self._done = True
        self._wakeup.set()

    def arm(self, deadline: float | None) -> None:
        self._deadline = math.inf if deadline is None else deadline
        if self._scope is not None:
            self._scope.deadline = self._deadline

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
            try:
                data = bytes(await self.stream.receive_some(_READ_SIZE))
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
            while self._out:
                data = bytes(self._out)
                self._out.clear()
                try:
                    await self.stream.send_all(data)
                except _BROKEN:
                    self.link.received(None, trio.current_time())
                    return
            if self._done:
                return


class _Socket:
    """A link the CSMS accepted on a plain TCP socket (POSIX).

    One task waits for the socket to be readable and reads it; whatever task produced
    frames writes them to the socket at once. Only when the kernel's send buffer is full
    does a writer task wait for room. The timer rides on the reader's cancel scope, whose
    deadline is only ever moved earlier: waking early is harmless (the core re-checks)
    and much cheaper than a new scope per message.
    """

    link: Link

    def __init__(self, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.stream = stream
        self.finished = trio.Event()
        self._fd = stream.socket.fileno()
        self._nursery = nursery
        self._out = bytearray()
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None
        self._done = False
        self._broken = False
        #: Set while a writer task waits for room in the send buffer.
        self._drained: trio.Event | None = None
        self._writer: trio.CancelScope | None = None

    def write(self, data: bytes) -> None:
        if self._broken:
            return
        if self._drained is not None:
            self._out += data
            return
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._break()
            return
        if sent < len(data):
            self._out += data[sent:]
            self._drained = trio.Event()
            self._writer = trio.CancelScope()
            self._nursery.start_soon(self._drain, self._writer)

    def finish(self) -> None:
        self._done = True
        if self._scope is not None:
            self._scope.cancel()

    def arm(self, deadline: float | None) -> None:
        if deadline is not None and deadline < self._deadline:
            self._deadline = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    def peer_certificate(self) -> dict[str, Any] | None:
        return None

    def _break(self) -> None:
        self._broken = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        try:
            self.link.begin()
            await self._serve()
        finally:
            if self._writer is not None:
                self._writer.cancel()
            if not self.link.ws.done:
                self.link.received(None, trio.current_time())
            self.finished.set()
            with contextlib.suppress(*_BROKEN):
                await trio.aclose_forcefully(self.stream)

    async def _serve(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                while not (self._done or self._broken):
                    await trio.lowlevel.wait_readable(self._fd)
                    try:
                        data = os.read(self._fd, _READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    self.link.received(data or None, trio.current_time())
            self._scope = None
            if self._broken and not self._done:
                self.link.received(None, trio.current_time())
            if self._done or self._broken:
                if self._drained is not None:
                    await self._drained.wait()
                return
            if trio.current_time() >= self._deadline:
                # The deadline this scope carried may be earlier than the core's now.
                self._deadline, now = math.inf, max(trio.current_time(), self._deadline)
                self.link.timer_fired(now)

    async def _drain(self, scope: trio.CancelScope) -> None:
        """Wait for room in the send buffer until everything queued is written."""
        assert self._drained is not None
        try:
            with scope:
                while self._out and not self._broken:
                    await trio.lowlevel.wait_writable(self._fd)
                    try:
                        del self._out[: os.write(self._fd, self._out)]
                    except BlockingIOError:
                        continue
                    except OSError:
                        self._break()
        finally:
            self._writer = None
            self._drained.set()
            self._drained = None
            self._out.clear()
            if self._done and self._scope is not None:
                self._scope.cancel()


class _Trio(LoopSession):
    """The trio side of a session: tasks in the owner's nursery, trio's clock."""

    _new_event = trio.Event
    _nursery: trio.Nursery

    def _clock(self) -> float:
        return trio.current_time()

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._nursery.start_soon(function, *args)

    async def _link_finished(self, link: Link) -> None:
        await _finished(link)


async def _finished(link: Link) -> None:
    transport = link.transport
    assert isinstance(transport, _Stream | _Socket)
    await transport.finished.wait()


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

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def _run_soon(
        self, link: Link, function: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        self._nursery.start_soon(function, *args)

    async def _listen(self, listeners: list[trio.abc.Listener[Any]]) -> None:
        with self._listening:
            await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        if isinstance(stream, trio.SocketStream) and os.name == "posix":
            transport: _Stream | _Socket = _Socket(stream, self._nursery)
        else:
            transport = _Stream(stream)
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
        links = self.going_away()
        with trio.move_on_after(self.policy.options.close_timeout):
            for link in links:
                await _finished(link)


@contextlib.asynccontextmanager
async def _serving(
    handler: Any, host: str, port: int, versions: Sequence[str], options: ServerOptions
) -> AsyncIterator[CsmsServer]:
    async with _guarded() as (nursery, scope):
        server = CsmsServer(handler, versions, options, nursery)
        tcp = await trio.open_tcp_listeners(port, host=host, backlog=options.backlog)
        server.port = tcp[0].socket.getsockname()[1]
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
        transport = _Stream(stream)
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
