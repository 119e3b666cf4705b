"""The asyncio adapter: a CSMS server and a station client on asyncio's protocols.

Only asyncio's side is here: the skeleton (``_skeleton``) does the rest. Each connection
is an ``asyncio.Protocol`` that hands bytes to its link and writes what the link gives
back at once; its timer is one ``loop.call_at`` handle. Request handlers start eagerly
(a handler that answers without suspending costs no task and no trip through the loop)
and ``on_event`` runs in a task per session. Leaving a block by any route closes in order
first: a station with 1000, a CSMS every connection with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, cast

from ocpp_sansio.events import RequestReceived

from ._driver import Driver, Wire, log
from ._eager import EagerStarter
from ._options import ServerOptions
from ._skeleton import (
    Link,
    LoopCsmsSession,
    LoopServer,
    LoopSession,
    LoopStation,
    StationSetup,
    Transport,
    connect_function,
    serve_function,
    wall_clock_for,
)
from ._ws import POLICY_VIOLATION, WsOptions

__all__ = ["CsmsServer", "CsmsSession", "Station", "connect", "serve", "wall_clock"]

#: Bytes read from a server connection at a time.
_READ_SIZE = 65536


def wall_clock() -> Callable[[float], Any]:
    """The event loop's clock read as UTC (what the flows get by default)."""
    return wall_clock_for(asyncio.get_running_loop().time)


class _Protocol(asyncio.Protocol):
    """One socket: hands what arrives to its link, writes what the link produces, runs
    the link's timer."""

    __slots__ = (
        "_dropping",
        "_holds",
        "_options",
        "_timer",
        "_timer_at",
        "finished",
        "link",
        "loop",
        "transport",
    )

    def __init__(self, make_link: Callable[[Transport], Link]) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.link = make_link(self)
        self._options: WsOptions = getattr(self.link.ws, "options", None) or WsOptions()
        #: Why reading is stopped now: "writing" (back-pressure), "admission".
        self._holds: set[str] = set()
        #: The connection ends without flushing (it overflowed ``max_write_buffer``).
        self._dropping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        high_water = self._options.write_high_water
        self.transport.set_write_buffer_limits(high_water, high_water // 4)
        self.link.begin()

    # --- back-pressure ----------------------------------------------------------------------------

    def hold_reading(self, reason: str, held: bool) -> None:
        """Stop reading for ``reason`` (or no longer for it): reading goes on once no
        reason holds it."""
        transport = self.transport
        was_held = bool(self._holds)
        (self._holds.add if held else self._holds.discard)(reason)
        if transport is None or transport.is_closing() or was_held == bool(self._holds):
            return
        (transport.pause_reading if self._holds else transport.resume_reading)()

    def pause_writing(self) -> None:
        """More than ``write_high_water`` bytes wait for the peer: stop reading from it."""
        self.hold_reading("writing", True)

    def resume_writing(self) -> None:
        self.hold_reading("writing", False)

    def _overflow(self) -> None:
        if not self.link.ws.done:
            limit = self._options.max_write_buffer
            reason = f"the peer does not read what we send (over {limit} bytes wait)"
            self.link.abort(POLICY_VIOLATION, reason, self.loop.time())

    def data_received(self, data: bytes) -> None:
        self.link.received(data, self.loop.time())

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.link.ws.done:
            self.link.received(None, self.loop.time())
        self._cancel_timer()
        if not self.finished.done():
            self.finished.set_result(None)

    # --- the link's transport ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            if (
                "writing" in self._holds
                and not self._dropping
                and transport.get_write_buffer_size() > self._options.max_write_buffer
            ):
                self._dropping = True
                self.loop.call_soon(self._overflow)

    def finish(self) -> None:
        self._cancel_timer()
        transport = self.transport
        if transport is None:
            return
        if self._dropping:
            transport.abort()
            return
        unsent = transport.get_write_buffer_size()
        transport.close()  # after what was written, if it goes out within close_timeout
        if unsent:
            self.loop.call_later(self._options.close_timeout, transport.abort)

    def arm(self, deadline: float | None) -> None:
        # Re-armed only when the deadline moves earlier: most messages push the core's
        # deadline later, and a timer that fires early is harmless (the core re-checks,
        # then this re-arms for the deadline of the moment).
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._fire)
            self._timer_at = deadline

    def peer_certificate(self) -> dict[str, Any] | None:
        if self.transport is None:
            return None
        cert: dict[str, Any] | None = self.transport.get_extra_info("peercert")
        return cert

    def _fire(self) -> None:
        now = max(self.loop.time(), self._timer_at or 0.0)
        self._timer = self._timer_at = None
        self.link.timer_fired(now)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None


class _Writes:
    """A server's writes of one pass of the loop, made together after it: while a pass
    handles what the sockets brought, what each connection answers waits, then every
    socket is written in one go. On loopback each write wakes the peer's process; written
    in one go, only the first of a pass does (the peer is awake for the others), which
    took a third off a heartbeat's CPU at 10,000 stations. What one connection says twice
    in a pass leaves in one write."""

    __slots__ = ("_loop", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[_ServerProtocol] = []

    def add(self, protocol: _ServerProtocol) -> None:
        if not self._waiting:
            self._loop.call_soon(self._send)
        self._waiting.append(protocol)

    def _send(self) -> None:
        waiting, self._waiting = self._waiting, []
        for protocol in waiting:
            try:
                protocol.send_unsent()
            except Exception:  # that connection's problem: the others are still written
                log.exception("writing to a connection failed")
                protocol.drop()


class _Sweep:
    """Deadlines further away than ``far`` seconds, kept for a server's connections by
    one task instead of a timer each: a timer costs about 0.6 KiB per connection, and a
    CSMS connection's usual deadline (its station's heartbeat falling overdue) is minutes
    away. Every ``far / 2`` seconds the task gives each connection whose deadline came
    within ``far`` a timer of its own, so no deadline is met late."""

    far = 60.0

    def __init__(self) -> None:
        self.waiting: set[_ServerProtocol] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.far / 2)
            soon = loop.time() + self.far
            for protocol in list(self.waiting):
                if protocol.arm_if_due(soon):
                    self.waiting.discard(protocol)


class _ServerProtocol(_Protocol, asyncio.BufferedProtocol):
    """A connection the CSMS accepted. It reads into a buffer the server's connections
    share: asyncio's plain reads allocate 256 KiB per ``recv``, which on loopback costs
    more than the WebSocket and the core spend on a heartbeat. A far deadline waits in
    the server's sweep."""

    __slots__ = ("_buffer", "_links", "_sweep", "_unsent", "_writes")

    def __init__(
        self,
        make_link: Callable[[Transport], Link],
        buffer: memoryview,
        links: set[Link],
        sweep: _Sweep,
        writes: _Writes,
    ) -> None:
        self._sweep = sweep
        self._writes = writes
        #: What this pass of the loop wrote so far (``_Writes`` sends it after the pass).
        self._unsent = b""
        super().__init__(make_link)
        self._buffer = buffer
        self._links = links

    def write(self, data: bytes) -> None:
        if self._unsent:
            self._unsent += data
        else:
            self._unsent = data
            self._writes.add(self)

    def send_unsent(self) -> None:
        data, self._unsent = self._unsent, b""
        if data:
            super().write(data)

    def drop(self) -> None:
        """End the connection at once (writing to it failed)."""
        self._unsent = b""
        if self.transport is not None:
            self.transport.abort()

    def finish(self) -> None:
        if self._dropping:
            self._unsent = b""
        else:
            self.send_unsent()  # the socket closes after what was written
        super().finish()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._links.discard(self.link)

    def arm(self, deadline: float | None) -> None:
        if deadline is None:
            return
        if deadline - self.loop.time() <= self._sweep.far:
            super().arm(deadline)
            return
        # ``deadline`` is the earliest of the moment: a timer set for an earlier one that
        # no longer applies (the handshake's) goes, and the sweep keeps this one.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        self._sweep.waiting.add(self)

    def arm_if_due(self, soon: float) -> bool:
        """(The sweep) Arm the timer if the deadline comes by ``soon``; True when the
        connection no longer needs the sweep."""
        at = self._timer_at
        if self._timer is not None or at is None:
            return True
        if at > soon:
            return False
        self._timer = self.loop.call_at(at, self._fire)
        return True

    def _cancel_timer(self) -> None:
        super()._cancel_timer()
        self._timer_at = None
        self._sweep.waiting.discard(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.link.received(bytes(self._buffer[:nbytes]), self.loop.time())


class _Asyncio(LoopSession):
    """The asyncio side of a session: tasks kept in the owner's set, the loop's clock."""

    _new_event = asyncio.Event
    _tasks: set[asyncio.Task[Any]]

    def _clock(self) -> float:
        return asyncio.get_running_loop().time()

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        task = asyncio.ensure_future(function(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _link_finished(self, link: Link) -> None:
        await _finished(link)


def protocol_of(link: Link) -> _Protocol:
    """The asyncio protocol ``link`` runs on (``finished`` resolves once its socket is
    closed)."""
    transport = link.transport
    assert isinstance(transport, _Protocol)
    return transport


async def _finished(link: Link) -> None:
    await asyncio.shield(protocol_of(link).finished)


# --- the CSMS ----------------------------------------------------------------------------------


class CsmsSession(_Asyncio, LoopCsmsSession):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        self._tasks = server._tasks
        self._starter = server._starter
        super().__init__(identity, driver, server)

    def _start_request(self, generation: int, request: RequestReceived) -> None:
        self._starter.start(self._run_request(generation, request))


class CsmsServer(LoopServer):
    """A listening CSMS: ``port`` is the bound port, ``sessions`` the stations by
    ``identity_key``."""

    _new_event = asyncio.Event
    sessions: dict[str, CsmsSession]

    def __init__(self, handler: Any, versions: Sequence[str], options: ServerOptions) -> None:
        super().__init__(handler, versions, options, asyncio.get_running_loop().time)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starter = EagerStarter(self._tasks)
        #: Every connection reads into this, one at a time, and copies out what it got.
        self._read_buffer = memoryview(bytearray(_READ_SIZE))
        self._sweep = _Sweep()
        self._writes = _Writes(asyncio.get_running_loop())

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def _run_soon(
        self, link: Link, function: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        task = asyncio.ensure_future(function(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reading(self, link: Link, on: bool) -> None:
        protocol_of(link).hold_reading("admission", not on)

    async def _start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        context = self.options.ssl_context
        self._server = await loop.create_server(
            self._new_protocol,
            host,
            port,
            ssl=context,
            backlog=self.options.backlog,
            ssl_handshake_timeout=self.policy.options.handshake_timeout if context else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        sweeping = asyncio.ensure_future(self._sweep.run())
        self._tasks.add(sweeping)
        sweeping.add_done_callback(self._tasks.discard)

    def _new_protocol(self) -> _Protocol:
        return _ServerProtocol(
            self.new_link, self._read_buffer, self.links, self._sweep, self._writes
        )

    async def aclose(self) -> None:
        """Stop listening, close every connection with 1001 (waiting up to
        close_timeout for their answers), then cancel the handlers."""
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        links = self.going_away()
        protocols = [cast(_Protocol, link.transport) for link in links]
        waiting = [p.finished for p in protocols if not p.finished.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=self.policy.options.close_timeout)
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def _serving(
    handler: Any, host: str, port: int, versions: Sequence[str], options: ServerOptions
) -> AsyncIterator[CsmsServer]:
    server = CsmsServer(handler, versions, options)
    await server._start(host, port)
    try:
        yield server
    finally:
        await _uncancelled(server.aclose())


serve = serve_function(_serving)


async def _uncancelled(closing: Coroutine[Any, Any, None]) -> None:
    """Run ``closing`` to its end even when the caller is being cancelled (again: anyio
    cancels at every await), then let the cancellation go on."""
    task = asyncio.ensure_future(closing)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


# --- the station -------------------------------------------------------------------------------


class Station(_Asyncio, LoopStation):
    """A charging station connected to its CSMS, reconnecting with back-off (B04)."""

    def __init__(self, setup: StationSetup) -> None:
        self._tasks = set()
        super().__init__(setup)

    async def _sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(deadline - asyncio.get_running_loop().time())

    def _new_link(self, transport: Transport) -> Link:
        ws = self.driver.new_websocket(self._clock())
        self.link = Link(ws, self, transport)
        return self.link

    async def _connect_once(self) -> Wire:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        timeout = self.driver.options.handshake_timeout
        context = self._ssl_context
        if endpoint.secure and context is None:
            context = ssl.create_default_context()
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self._new_link),
                    endpoint.host,
                    endpoint.port,
                    ssl=context if endpoint.secure else None,
                    ssl_handshake_timeout=timeout if endpoint.secure else None,
                )
        except (OSError, TimeoutError) as error:
            raise self.driver.unreachable(error) from error
        try:
            await protocol.finished
        finally:
            if not protocol.finished.done() and protocol.transport is not None:
                protocol.transport.close()  # cancelled: the station is closing
        return protocol.link.ws


@contextlib.asynccontextmanager
async def _station(setup: StationSetup) -> AsyncIterator[Station]:
    station = Station(setup)
    runner = asyncio.ensure_future(station._run())
    try:
        yield station
    finally:
        await _uncancelled(_stop_station(station, runner))


connect = connect_function(_station, wall_clock)


async def _stop_station(station: Station, runner: asyncio.Task[None]) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(station.driver.options.close_timeout):
            await station.aclose()
    tasks = [runner, *station._tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
