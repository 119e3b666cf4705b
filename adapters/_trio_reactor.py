"""The trio adapter's CSMS on plain TCP: one ``Reactor`` task per server serves every
accepted connection (``Connection``) over one epoll set, reading and writing the sockets
directly and firing the links' timers from one heap, so a message costs no task switch and
no trio wait (a task per connection waiting in ``wait_readable`` cost a wake-up and its
objects per message). Only where the system has epoll; TLS connections and stations keep
a task of their own (``adapters/trio.py``)."""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import math
import os
import select
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import needs_extra

with needs_extra("trio", needed_by="ocpp_sansio.adapters.trio"):
    import trio

from ._driver import log
from ._skeleton import Link
from ._ws import POLICY_VIOLATION, ServerWebSocket

if TYPE_CHECKING:
    from .trio import CsmsServer

#: Bytes read from a connection at a time. Small enough that a peer pipelining requests
#: costs the others little latency per read (about 110 Heartbeats at most).
READ_SIZE = 4096
#: The most epoll events handled per wake-up, and connections accepted per listener.
_MAX_EVENTS = 1024
_ACCEPT_BATCH = 64
#: The longest pause after a failing ``accept()`` (out of descriptors or buffers).
MAX_ACCEPT_PAUSE = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: What epoll reports for a socket the peer hung up on or that failed.
_HUNG_UP = select.EPOLLHUP | select.EPOLLERR


class Connection:
    """A connection the CSMS accepted on plain TCP, served by the server's ``Reactor``:
    no task of its own, the socket read and written directly when epoll says so.

    Writes go straight to the socket, or after the batch when made during one (see
    ``Reactor.gathering``); what the socket does not take waits in ``_out`` until it is
    writable. Past ``write_high_water`` unsent bytes the connection is not read any more
    (back-pressure) until a quarter of it is left; past ``max_write_buffer`` it is closed
    with 1008. The timer is a heap entry, only ever moved earlier: waking early is harmless
    (the core re-checks) and much cheaper than moving it on every message.
    """

    __slots__ = (
        "_done",
        "_finished",
        "_gathered",
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

    def __init__(self, reactor: Reactor, sock: socket.socket) -> None:
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
        #: Written during the reactor's batch: the reactor writes it after the batch.
        self._gathered = False
        self.closed = False

    # --- the link's transport ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or self._overflowed:
            return
        out = self._out
        reactor = self._reactor
        if out:
            out += data
        elif reactor.gathering:  # written after the batch (``send_gathered``)
            self._gathered = True
            reactor.gathered.append(self)
            out += data
        else:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                reactor.soon(self)  # (read it: the end of file or the error)
                return
            if sent == len(data):
                return
            out += memoryview(data)[sent:]
        if len(out) > reactor.max_buffer:
            self._overflowed = True
            reactor.soon(self)
        elif len(out) > reactor.high_water:
            self._paused = True
        self._watch()

    def send_gathered(self) -> None:
        """(The reactor, after a batch) Write what was gathered during the batch."""
        self._gathered = False
        if not self.closed and not self._overflowed:
            self._flush()

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
                data = os.read(self.fd, READ_SIZE)
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
        self.due = math.inf  # (its heap entry is stale now)
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
            pass  # (full: epoll says when it is writable)
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
        mask = select.EPOLLOUT if self._out and not self._gathered else 0
        if self._reading and not self._paused and not self._done:
            mask |= select.EPOLLIN
        if mask != self._mask:
            self._mask = mask
            self._reactor.epoll.modify(self.fd, mask)


class Reactor:
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
        self._connections: dict[int, Connection] = {}
        self._listeners = {listener.fileno(): listener for listener in listeners}
        self._timers: list[tuple[float, int, Connection]] = []
        self._order = itertools.count()
        #: Connections whose write overflowed or broke, handled after the current step.
        self._soon: list[Connection] = []
        #: While a batch is handled, connections gather what they write and the reactor
        #: writes it after the batch: on loopback each write wakes the peer's process, and
        #: written in one go only the first of a batch does (the peer is awake for the
        #: others), which took a third off a heartbeat's CPU at 10,000 stations.
        self.gathering = False
        self.gathered: list[Connection] = []
        #: The scope the task sleeps in (its deadline: the earliest timer).
        self._sleep: trio.CancelScope | None = None
        self._accept_pause = 0.0
        self._accept_again = math.inf
        for fd in self._listeners:
            self.epoll.register(fd, select.EPOLLIN)

    # --- what connections call --------------------------------------------------------------------

    def add_timer(self, deadline: float, connection: Connection) -> None:
        heapq.heappush(self._timers, (deadline, next(self._order), connection))
        self._compact_timers()
        sleep = self._sleep
        if sleep is not None and deadline < sleep.deadline:
            sleep.deadline = deadline

    def soon(self, connection: Connection) -> None:
        self._soon.append(connection)
        if self._sleep is not None:
            self._sleep.deadline = -math.inf

    def forget(self, connection: Connection) -> None:
        del self._connections[connection.fd]
        self._compact_timers()
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(connection.fd)
        self.server.links.discard(connection.link)

    def _compact_timers(self) -> None:
        """Drop the heap's entries no connection waits for any more (it closed, or its
        timer moved earlier since) once they could outnumber the live ones: an entry keeps
        its connection, and with it the link and the core, alive until its deadline, so a
        peer opening and closing connections fast would make us hold them all (asyncio
        does the same for its cancelled timers)."""
        timers = self._timers
        if len(timers) > 2 * len(self._connections) + 64:
            timers[:] = [entry for entry in timers if entry[2].due == entry[0]]
            heapq.heapify(timers)

    # --- the task ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                # One scope for as long as no timer is due (its deadline follows the
                # earliest timer): no scope, and no trio deadline, per wake-up.
                with trio.CancelScope(deadline=self._due()) as self._sleep:
                    await self._serve()
                self._sleep = None
                with self._gather():
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
                with self._gather():
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

    @contextlib.contextmanager
    def _gather(self) -> Iterator[None]:
        """Gather the writes of a batch; write them at its end."""
        self.gathering = True
        try:
            yield
        finally:
            self.gathering = False
            gathered, self.gathered = self.gathered, []
            for connection in gathered:
                self._guarded(connection.send_gathered, connection)

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

    def _guarded(self, step: Callable[..., None], connection: Connection, *args: Any) -> None:
        """One connection's step; an error ends that connection, never the server."""
        try:
            step(*args)
        except Exception:
            self._failed(connection)

    def _failed(self, connection: Connection) -> None:
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
        connection = Connection(self, sock)
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
