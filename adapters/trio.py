"""The trio adapter: a CSMS server and a station client with structured concurrency.

Only trio's side is here: the skeleton (``_skeleton``) does the rest. Every connection a
CSMS accepts on plain TCP (where the system has epoll) is served by one task per server,
the ``_Reactor``: it sleeps on one epoll set, reads and writes the sockets directly and
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
import errno
import heapq
import itertools
import math
import os
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
#: Bytes read from a connection at a time. Small enough that a peer pipelining requests
#: costs the others little latency per read (about 110 Heartbeats at most).
_READ_SIZE = 4096
#: The most epoll events handled per wake-up, and connections accepted per listener.
_MAX_EVENTS = 1024
_ACCEPT_BATCH = 64
#: The longest pause after a failing ``accept()`` (out of descriptors or buffers).
MAX_ACCEPT_PAUSE = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: The close code of a connection whose peer does not read (RFC 6455 §7.4.1).
_HUNG_UP = select.EPOLLHUP | select.EPOLLERR


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


class _Connection:
    """A connection the CSMS accepted on plain TCP, served by the server's ``_Reactor``:
    no task of its own, the socket read and written directly when epoll says so.

    Writes go straight to the socket; what it does not take waits in ``_out`` until it is
    writable. Past ``write_high_water`` unsent bytes the connection is not read any more
    (back-pressure) until a quarter of it is left; past ``max_write_buffer`` it is closed
    with 1008. The timer is a heap entry, only ever moved earlier: waking early is harmless
    (the core re-checks) and much cheaper than moving it on every message.
    """

    __slots__ = (
        "_done",
        "_finished",
        "_mask",
        "_out",
        "_overflowed",
        "_paused",
        "_reactor",
        "_reading",
        "closed",
        "due",
        "fd",
        "link",
        "sock",
    )

    link: Link

    def __init__(self, reactor: _Reactor, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        #: Made only when someone waits for the socket to close.
        self._finished: trio.Event | None = None
        self.due = math.inf
        self._reactor = reactor
        self._out = bytearray()
        self._mask = select.EPOLLIN
        #: The skeleton wants it read (False while the server admits the link).
        self._reading = True
        #: Not read while too much of what we wrote waits for the peer.
        self._paused = False
        #: The WebSocket is done: close once ``_out`` is written.
        self._done = False
        self._overflowed = False
        self.closed = False

    # --- the link's transport ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or self._overflowed:
            return
        out = self._out
        if not out:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._reactor.soon(self)  # (read it: the end of file or the error)
                return
            if sent == len(data):
                return
            out += memoryview(data)[sent:]
        else:
            out += data
        if len(out) > self._reactor.max_buffer:
            self._overflowed = True
            self._reactor.soon(self)
        elif len(out) > self._reactor.high_water:
            self._paused = True
        self._watch()

    def finish(self) -> None:
        self._done = True
        if not self._out or self._overflowed:
            self.end(self._reactor.now())
        else:  # give the peer close_timeout to take the rest
            self.due = math.inf
            self.arm(self._reactor.now() + self._reactor.close_timeout)

    def arm(self, deadline: float | None) -> None:
        if deadline is not None and deadline < self.due:
            self.due = deadline
            self._reactor.add_timer(deadline, self)

    def peer_certificate(self) -> dict[str, Any] | None:
        return None

    async def wait_finished(self) -> None:
        if not self.closed:
            if self._finished is None:
                self._finished = trio.Event()
            await self._finished.wait()

    # --- what the reactor calls -------------------------------------------------------------------

    def reading(self, on: bool) -> None:
        self._reading = on
        self._watch()

    def ready(self, events: int, now: float) -> None:
        """epoll reported ``events`` for the socket."""
        if events & select.EPOLLOUT:
            self._flush()
            if self.closed:
                return
        # A hang-up or an error is read even while not reading: level-triggered, it
        # would otherwise be reported on every wait.
        if (events & select.EPOLLIN and self._mask & select.EPOLLIN) or events & _HUNG_UP:
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self.link.received(data, now)
            else:
                self.end(now)

    def timer_fired(self, now: float) -> None:
        self.due = math.inf
        if self._done:  # close_timeout passed with bytes still unsent
            self.end(now)
        else:
            self.link.timer_fired(now)

    def overflow_or_break(self, now: float) -> None:
        """Deferred from ``write``: the peer left too much unread, or the socket broke."""
        self.end(now)

    def end(self, now: float) -> None:
        """Close the socket now (what is unsent is dropped) and tell the link."""
        if self.closed:
            return
        self.closed = True
        self._reactor.forget(self)
        self.sock.close()
        try:
            ws = self.link.ws
            if self._overflowed and isinstance(ws, ServerWebSocket) and not ws.done:
                ws.abort(POLICY_VIOLATION, "the peer does not read what it is sent")
                self.link.received(None, now)  # (tells the session why)
            elif not ws.done:
                self.link.received(None, now)
        finally:
            if self._finished is not None:
                self._finished.set()

    def _flush(self) -> None:
        out = self._out
        try:
            del out[: os.write(self.fd, out)]
        except BlockingIOError:
            return
        except OSError:
            out.clear()
            self.end(self._reactor.now())
            return
        if self._paused and len(out) <= self._reactor.high_water // 4:
            self._paused = False
        if not out and self._done:
            self.end(self._reactor.now())
            return
        self._watch()

    def _watch(self) -> None:
        """Tell epoll what we wait for now."""
        if self.closed:
            return
        mask = select.EPOLLOUT if self._out else 0
        if self._reading and not self._paused and not self._done:
            mask |= select.EPOLLIN
        if mask != self._mask:
            self._mask = mask
            self._reactor.epoll.modify(self.fd, mask)


class _Reactor:
    """Every plain-TCP connection of one server, served by one task over one epoll set:
    the task sleeps in ``wait_readable`` on the epoll descriptor (or until the earliest
    timer), then reads, writes and fires timers for whatever is ready. No task, cancel
    scope or trio wait per connection or per message."""

    def __init__(self, server: CsmsServer, listeners: list[socket.socket]) -> None:
        self.server = server
        options = server.policy.options
        self.high_water = options.write_high_water
        self.max_buffer = options.max_write_buffer
        self.close_timeout = options.close_timeout
        self.epoll = select.epoll()
        self.now = trio.current_time
        self._connections: dict[int, _Connection] = {}
        self._listeners = {listener.fileno(): listener for listener in listeners}
        self._timers: list[tuple[float, int, _Connection]] = []
        self._order = itertools.count()
        #: Connections whose write overflowed or broke, handled after the current step.
        self._soon: list[_Connection] = []
        #: The scope the task sleeps in (its deadline: the earliest timer).
        self._sleep: trio.CancelScope | None = None
        self._accept_pause = 0.0
        self._accept_again = math.inf
        for fd in self._listeners:
            self.epoll.register(fd, select.EPOLLIN)

    # --- what connections call --------------------------------------------------------------------

    def add_timer(self, deadline: float, connection: _Connection) -> None:
        heapq.heappush(self._timers, (deadline, next(self._order), connection))
        sleep = self._sleep
        if sleep is not None and deadline < sleep.deadline:
            sleep.deadline = deadline

    def soon(self, connection: _Connection) -> None:
        self._soon.append(connection)
        if self._sleep is not None:
            self._sleep.deadline = -math.inf

    def forget(self, connection: _Connection) -> None:
        del self._connections[connection.fd]
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(connection.fd)
        self.server.links.discard(connection.link)

    # --- the task ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                # One scope for as long as no timer is due (its deadline follows the
                # earliest timer): no scope, and no trio deadline, per wake-up.
                with trio.CancelScope(deadline=self._due()) as self._sleep:
                    await self._serve()
                self._sleep = None
                self._after(trio.current_time())
        finally:
            self._close_all()

    def _due(self) -> float:
        if self._soon:
            return -math.inf
        return min(self._timers[0][0] if self._timers else math.inf, self._accept_again)

    async def _serve(self) -> None:
        """Handle what epoll reports until the sleep scope's deadline (a timer) ends it:
        sleep until the epoll descriptor is readable, handle a batch; after a full batch
        only a checkpoint (other tasks run) before the next."""
        poll = self.epoll.poll
        epoll_fd = self.epoll.fileno()
        connections = self._connections
        listeners = self._listeners
        sleep = self._sleep
        assert sleep is not None
        while True:
            await trio.lowlevel.wait_readable(epoll_fd)
            events = poll(0, _MAX_EVENTS)
            while events:
                now = trio.current_time()
                for fd, mask in events:
                    connection = connections.get(fd)
                    if connection is None:
                        if fd in listeners:
                            self._accept(listeners[fd], now)
                        continue
                    try:
                        connection.ready(mask, now)
                    except Exception:
                        self._failed(connection)
                self._after(now)
                due = self._due()
                if due != sleep.deadline:
                    sleep.deadline = due
                if len(events) < _MAX_EVENTS:
                    break
                await trio.lowlevel.checkpoint()
                events = poll(0, _MAX_EVENTS)

    def _after(self, now: float) -> None:
        """Run what was deferred, the timers that are due, and resume accepting."""
        while self._soon:
            soon, self._soon = self._soon, []
            for connection in soon:
                self._guarded(connection.overflow_or_break, connection, now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, connection = heapq.heappop(timers)
            if connection.due == deadline and not connection.closed:
                self._guarded(connection.timer_fired, connection, max(now, deadline))
        if now >= self._accept_again:
            self._accept_again = math.inf
            for fd in self._listeners:
                self.epoll.modify(fd, select.EPOLLIN)

    def _guarded(self, step: Callable[..., None], connection: _Connection, *args: Any) -> None:
        """One connection's step; an error ends that connection, never the server."""
        try:
            step(*args)
        except Exception:
            self._failed(connection)

    def _failed(self, connection: _Connection) -> None:
        log.exception("connection failed")
        with contextlib.suppress(Exception):
            connection.end(self.now())

    def _accept(self, listener: socket.socket, now: float) -> None:
        """Accept what is waiting (a bounded batch). Running out of descriptors or buffers
        pauses accepting, doubling the pause up to MAX_ACCEPT_PAUSE: never fatal."""
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, _address = listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    continue  # (that one connection failed: ECONNABORTED, EPROTO ...)
                self._accept_pause = min(max(2 * self._accept_pause, 0.01), MAX_ACCEPT_PAUSE)
                log.warning("accept failed (%s); trying again in %.2f s", error, self._accept_pause)
                self._accept_again = now + self._accept_pause
                for fd in self._listeners:
                    self.epoll.modify(fd, 0)
                return
            self._accept_pause = 0.0
            self._adopt(sock, now)

    def _adopt(self, sock: socket.socket, now: float) -> None:
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.epoll.register(sock.fileno(), select.EPOLLIN)
        except OSError as error:  # (reset before we got to it)
            log.info("accepted connection failed: %s", error)
            sock.close()
            return
        connection = _Connection(self, sock)
        self._connections[connection.fd] = connection
        try:
            connection.link = self.server.new_link(connection)
        except Exception:
            log.exception("connection failed")
            del self._connections[connection.fd]
            self.epoll.unregister(connection.fd)
            sock.close()
            return
        self._guarded(connection.link.begin, connection)

    def stop_listening(self) -> None:
        for fd, listener in self._listeners.items():
            with contextlib.suppress(OSError, ValueError):
                self.epoll.unregister(fd)
            listener.close()
        self._listeners.clear()

    def _close_all(self) -> None:
        self.stop_listening()
        now = self.now()
        for connection in list(self._connections.values()):
            with contextlib.suppress(Exception):
                connection.end(now)
        self.epoll.close()


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
    assert isinstance(transport, _Stream | _Connection)
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
        self._reactor: _Reactor | None = None

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def _run_soon(
        self, link: Link, function: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        self._nursery.start_soon(function, *args)

    def _reading(self, link: Link, on: bool) -> None:
        transport = link.transport
        if isinstance(transport, _Connection):
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
            server._reactor = _Reactor(server, sockets)
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
