"""The in-memory adapter: a CSMS and its stations connected through memory, on a virtual
clock, under anyio (trio or asyncio). Use it through ``ocpp_sansio.testing.memory``.

Everything the socket adapters run runs here too, on the same skeleton (``_skeleton``):
the WebSocket handshake and frames, the driver, the cores and their flows, handlers and
``on_event`` as tasks. Only the sockets are gone: each end of a connection is a link's
transport whose bytes the other end reads at once, and whose timer is a deadline on a
``VirtualClock``, which moves when a test says ``await clock.run_for(seconds)``. A server
listens on a made-up ``host:port`` in this process; ``connect(url)`` finds it there.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from ocpp_sansio.errors import needs_extra

with needs_extra("testing", needed_by="ocpp_sansio.testing.memory"):
    import anyio
    import anyio.abc
    import sniffio

from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.pair import VirtualClock

from ._driver import Driver, StationDriver, Wire
from ._options import ServerOptions, StationOptions, WallClock
from ._skeleton import (
    Link,
    LoopCsmsSession,
    LoopServer,
    LoopSession,
    LoopStation,
    StationSetup,
)
from ._ws import DEFAULT_VERSIONS, Endpoint

__all__ = ["CsmsServer", "CsmsSession", "Station", "VirtualClock", "connect", "serve"]

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


class _Pipe:
    """Both directions of one connection: bytes are read in the order they were written,
    one delivery at a time (an answer written while reading waits its turn, so nothing
    recurses)."""

    def __init__(self) -> None:
        self._queue: deque[tuple[_End, bytes | None]] = deque()
        self._busy = False

    def deliver(self, to: _End, data: bytes | None) -> None:
        self._queue.append((to, data))
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                end, chunk = self._queue.popleft()
                end.feed(chunk)
        finally:
            self._busy = False


class _End:
    """One end of a connection, the transport of its link: what it writes the peer reads
    at once, its end of stream (``finish``) too; its timer is a deadline on the clock."""

    link: Link

    def __init__(self, clock: VirtualClock, pipe: _Pipe, links: set[Link] | None = None) -> None:
        self.clock = clock
        self.pipe = pipe
        self.peer: _End | None = None
        self.finished = anyio.Event()
        self._deadline: float | None = None
        #: The server's open links, which this one leaves when finished.
        self._links = links
        clock.attach(self)

    # --- the link's transport

    def write(self, data: bytes) -> None:
        if self.peer is not None:
            self.pipe.deliver(self.peer, data)

    def finish(self) -> None:
        if self.finished.is_set():
            return
        self.finished.set()
        self.clock.detach(self)
        if self._links is not None:
            self._links.discard(self.link)
        if self.peer is not None:
            self.pipe.deliver(self.peer, None)

    def arm(self, deadline: float | None) -> None:
        self._deadline = deadline

    def peer_certificate(self) -> dict[str, Any] | None:
        return None  # no TLS in memory

    # --- on the clock

    def next_deadline(self) -> float | None:
        return None if self.finished.is_set() else self._deadline

    def handle_timer(self, now: float) -> None:
        self.link.timer_fired(now)

    # --- what the peer wrote (None: it is gone)

    def feed(self, data: bytes | None) -> None:
        if not self.link.ws.done:
            self.link.received(data, self.clock.now)


class _InMemory(LoopSession):
    """The memory side of a session: tasks in the owner's task group, the virtual clock."""

    _new_event = anyio.Event
    clock: VirtualClock
    _tasks: anyio.abc.TaskGroup

    def _clock(self) -> float:
        return self.clock.now

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._tasks.start_soon(function, *args)

    async def _link_finished(self, link: Link) -> None:
        end = link.transport
        assert isinstance(end, _End)
        if not link.ws.done:
            # The peer answers a close at once when it is there: no one is left to.
            link.received(None, self.clock.now)
        await end.finished.wait()


# --- the CSMS ----------------------------------------------------------------------------------


class CsmsSession(_InMemory, LoopCsmsSession):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        self._tasks = server._tasks
        self.clock = server.clock
        super().__init__(identity, driver, server)


class CsmsServer(LoopServer):
    """A CSMS listening in memory: ``port`` is its port, ``sessions`` the stations by
    ``identity_key``, as on the socket adapters."""

    _new_event = anyio.Event
    sessions: dict[str, CsmsSession]

    def __init__(
        self,
        handler: Any,
        versions: Sequence[str],
        options: ServerOptions,
        tasks: anyio.abc.TaskGroup,
        clock: VirtualClock,
    ) -> None:
        self.clock = clock
        self._tasks = tasks
        super().__init__(handler, versions, options, lambda: clock.now)

    def _wall_clock(self, clock: Callable[[], float]) -> WallClock:
        return self.clock.wall_time

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def _run_soon(
        self, link: Link, function: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        self._tasks.start_soon(function, *args)

    def accept(self, client: _End) -> None:
        """A station's connection arrives: our end of it."""
        end = _End(self.clock, client.pipe, self.links)
        end.link = self.new_link(end)
        end.peer, client.peer = client, end
        end.link.begin()

    async def aclose(self) -> None:
        """Close every connection with 1001, then stop everything the server runs."""
        self._stopped.set()
        for link in self.going_away():
            if not link.ws.done:
                link.received(None, self.clock.now)  # no one left to answer
        self._tasks.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def serve(
    handler: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    options: ServerOptions | None = None,
    clock: VirtualClock | None = None,
) -> AsyncIterator[CsmsServer]:
    """Run a CSMS in memory at ``ws://host:port/.../IDENTITY`` while the block runs: the
    arguments of the socket adapters' ``serve`` (a handler object or a ``Router``, and
    ``ServerOptions``; there is no TLS here, so ``ssl_context`` and ``backlog`` have no
    effect), on ``clock`` (a new ``VirtualClock`` when None). ``port`` 0 picks a free one."""
    options = options or ServerOptions()
    port = port or next(p for p in _FREE_PORTS if (host, p) not in _LISTENING)
    if (host, port) in _LISTENING:
        raise OSError(f"{host}:{port} is in use by another in-memory server")
    async with anyio.create_task_group() as tasks:
        server = CsmsServer(handler, versions, options, tasks, _use(clock))
        server.port = port
        _LISTENING[host, port] = server
        try:
            yield server
        finally:
            del _LISTENING[host, port]
            with anyio.CancelScope(shield=True):
                await server.aclose()


# --- the station -------------------------------------------------------------------------------


class Station(_InMemory, LoopStation):
    """A charging station connected in memory, reconnecting with back-off on the virtual
    clock, as on the socket adapters."""

    def __init__(
        self, setup: StationSetup, tasks: anyio.abc.TaskGroup, clock: VirtualClock
    ) -> None:
        self._tasks = tasks
        self.clock = clock
        super().__init__(setup)

    async def _sleep_until(self, deadline: float) -> None:
        await _sleep_until(self.clock, deadline)

    async def _connect_once(self) -> Wire:
        endpoint = self.endpoint
        server = _LISTENING.get((endpoint.host, endpoint.port))
        if server is None:
            refused = ConnectionRefusedError(
                f"no in-memory server at {endpoint.host}:{endpoint.port}"
            )
            raise self.driver.unreachable(refused)
        if server.clock is not self.clock:
            raise self.driver.unreachable(ValueError("the server runs on another VirtualClock"))
        ws = self.driver.new_websocket(self.clock.now)
        end = _End(self.clock, _Pipe())
        end.link = self.link = Link(ws, self, end)
        server.accept(end)
        try:
            end.link.begin()
            await end.finished.wait()
        finally:
            self.clock.detach(end)
        return ws


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    version: str | None = None,
    boot: Any = None,
    core: StationCore | None = None,
    on_request: Callable[[Any, Any], Any] | None = None,
    on_event: Callable[[Any, Any], Any] | None = None,
    options: StationOptions | None = None,
    clock: VirtualClock | None = None,
) -> AsyncIterator[Station]:
    """Run a station connected to the in-memory server at ``url`` while the block runs:
    the arguments of the socket adapters' ``connect`` (``StationOptions``; no TLS here,
    so ``ssl_context`` has no effect), on ``clock`` (None: the server's when one listens
    at ``url``, else a new one). The flows date their messages on the clock's
    ``wall_time`` unless the options or the core give a wall clock."""
    options = options or StationOptions()
    endpoint = Endpoint.from_url(url)
    if clock is None:
        server = _LISTENING.get((endpoint.host, endpoint.port))
        clock = server.clock if server is not None else None
    clock = _use(clock)
    driver = StationDriver.for_url(
        url, version=version, boot=boot, core=core, options=options, wall_clock=clock.wall_time
    )
    async with anyio.create_task_group() as tasks:
        station = Station(StationSetup(driver, options, on_request, on_event), tasks, clock)
        tasks.start_soon(station._run)
        try:
            yield station
        finally:
            with anyio.CancelScope(shield=True):
                await station.aclose()
            tasks.cancel_scope.cancel()
