"""Leaving by any route closes in order, as the peer sees it: a station leaving
``connect()`` sends 1000, a server leaving ``serve()`` closes every connection with 1001,
on every adapter — by the block's end, an error, cancellation, a timeout, Ctrl-C, and (the
``ocpp-sansio`` command, a subprocess) SIGTERM and SIGINT. The peer is the ``websockets``
package, in a thread of its own, reporting the close code it received."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from ocpp_sansio.adapters import ServerOptions, StationOptions, WsOptions
from ocpp_sansio.adapters import asyncio as asyncio_adapter
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.adapters import trio as trio_adapter
from ocpp_sansio.messages import v16

TIMEOUT = 10.0
QUIET = WsOptions(ping_interval=0, close_timeout=2, handshake_timeout=3)
BOOT = v16.BootNotificationRequest(charge_point_vendor="V", charge_point_model="M")
SUBPROTOCOL = Subprotocol("ocpp1.6")


class Peer:
    """The ``websockets`` package on an asyncio loop in its own thread: a CSMS that
    records the close code each station connection received, and stations that record
    the close code our server sent."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.connected = threading.Event()
        self.codes: concurrent.futures.Future[int | None] = concurrent.futures.Future()
        self.port = 0
        #: (``serve(held=True)``) An upgrade request arrived; its answer waits for
        #: ``release()``.
        self.requested = threading.Event()
        self._held: asyncio.Event | None = None

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT)

    def close(self) -> None:
        if self._held is not None:
            self.run(self._release_and_close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)

    # --- a CSMS ------------------------------------------------------------------------------

    async def _release_and_close(self) -> None:
        """(Held) let waiting handshakes go on, so that none is left behind."""
        assert self._held is not None
        self._held.set()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, held: bool) -> int:
        if held:
            self._held = asyncio.Event()

        async def hold(_connection: ServerConnection, _request: Any) -> None:
            if self._held is not None:
                self.requested.set()
                await self._held.wait()

        async def handler(ws: ServerConnection) -> None:
            self.connected.set()
            try:
                async for _ in ws:
                    pass
            except ConnectionClosed:
                pass
            if not self.codes.done():
                self.codes.set_result(ws.close_code)

        self._server = await ws_serve(
            handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL], process_request=hold
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def serve(self, *, held: bool = False) -> str:
        """Listen; the URL a station of ours connects to. ``held``: answer upgrade
        requests only after ``release()``."""
        self.port = self.run(self._serve(held))
        return f"ws://127.0.0.1:{self.port}/ocpp/LIFE1"

    def release(self) -> None:
        """Answer the held upgrade requests."""
        held = self._held
        assert held is not None
        self.loop.call_soon_threadsafe(held.set)

    # --- a station ---------------------------------------------------------------------------

    async def _station(self, port: int) -> None:
        try:
            async with ws_connect(
                f"ws://127.0.0.1:{port}/ocpp/PEER1", subprotocols=[SUBPROTOCOL]
            ) as ws:
                self.connected.set()
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        finally:
            if not self.codes.done():
                self.codes.set_result(ws.close_code)

    def station(self, port: int) -> None:
        """Connect a station to our server on ``port``; returns once it is connected."""
        asyncio.run_coroutine_threadsafe(self._station(port), self.loop)
        assert self.connected.wait(TIMEOUT), "the peer did not connect"

    def code(self) -> int | None:
        return self.codes.result(TIMEOUT)


@pytest.fixture
def peer() -> Iterator[Peer]:
    peer = Peer()
    yield peer
    peer.close()


STATION = StationOptions(ws_options=QUIET)
SERVER = ServerOptions(ws_options=QUIET)


class Csms:
    def on_request(self, session: Any, request: Any) -> Any:
        return None  # never reached here: the peers send nothing


# --- a station leaving connect() -----------------------------------------------------------------

ROUTES = ("end", "error", "cancelled", "timeout", "ctrl-c")


def _expected(route: str) -> type[BaseException] | None:
    return {"error": RuntimeError, "ctrl-c": KeyboardInterrupt}.get(route)


async def _leave_trio(route: str, body: Callable[[], Any]) -> None:
    with trio.CancelScope() as scope:
        if route == "timeout":
            scope.deadline = trio.current_time() + 0.3
        async with body() as party:
            if hasattr(party, "wait_connected"):
                await party.wait_connected()
            if route == "error":
                raise RuntimeError("the application failed")
            if route == "ctrl-c":
                raise KeyboardInterrupt
            if route == "cancelled":
                scope.cancel()
            if route in ("cancelled", "timeout"):
                await trio.sleep_forever()


async def _leave_asyncio(route: str, body: Callable[[], Any]) -> None:
    async def inside() -> None:
        async with body() as party:
            if hasattr(party, "wait_connected"):
                await party.wait_connected()
            if route == "error":
                raise RuntimeError("the application failed")
            if route == "ctrl-c":
                raise KeyboardInterrupt
            if route in ("cancelled", "timeout"):
                await asyncio.sleep(3600)

    if route == "timeout":
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await inside()
        return
    task = asyncio.ensure_future(inside())
    if route == "cancelled":
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return
    await task


def _leave(adapter: str, route: str, body: Callable[[], Any]) -> None:
    expected = _expected(route)
    if adapter == "trio":

        def run() -> None:
            trio.run(_leave_trio, route, body)
    else:

        def run() -> None:
            asyncio.run(_leave_asyncio(route, body))

    if expected is None:
        run()
    else:
        with pytest.raises(expected):
            run()


ASYNC = {"trio": trio_adapter, "asyncio": asyncio_adapter}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("adapter", ["trio", "asyncio"])
def test_a_station_leaving_connect_by_any_route_sends_1000(
    adapter: str, route: str, peer: Peer
) -> None:
    url = peer.serve()
    module = ASYNC[adapter]
    _leave(adapter, route, lambda: module.connect(url, version="1.6", boot=BOOT, options=STATION))
    assert peer.code() == 1000


@pytest.mark.parametrize("route", ["end", "error", "ctrl-c"])
def test_a_threads_station_leaving_connect_by_any_route_sends_1000(route: str, peer: Peer) -> None:
    url = peer.serve()
    expected = _expected(route)
    with (
        pytest.raises(expected) if expected else contextlib.nullcontext(),
        threads_adapter.connect(url, version="1.6", boot=BOOT, options=STATION) as station,
    ):
        assert station.wait_connected(TIMEOUT)
        if route == "error":
            raise RuntimeError("the application failed")
        if route == "ctrl-c":
            raise KeyboardInterrupt
    assert peer.code() == 1000


def _release_once_closing(station: Any, peer: Peer) -> None:
    """Answer the station's upgrade request once its close has begun."""

    def release() -> None:
        deadline = time.monotonic() + TIMEOUT
        while not station.driver.closing and time.monotonic() < deadline:
            time.sleep(0.005)
        peer.release()

    threading.Thread(target=release, daemon=True).start()


def _leave_during_handshake(
    adapter: str,
    url: str,
    peer: Peer,
    *,
    options: StationOptions = STATION,
    on_event: Callable[[Any, Any], Any] | None = None,
    inside: Callable[[Any], Any] = lambda _station: None,
) -> float:
    """Connect a station on ``adapter``, and once its upgrade request reached ``peer`` run
    ``inside(station)`` and leave the block; when it was left (monotonic)."""

    def connect() -> Any:
        module = ASYNC.get(adapter, threads_adapter)
        return module.connect(url, version="1.6", boot=BOOT, options=options, on_event=on_event)

    left = 0.0
    if adapter == "threads":
        with connect() as station:
            assert peer.requested.wait(TIMEOUT), "no upgrade request"
            inside(station)
            left = time.monotonic()
        return left

    async def leave() -> None:
        nonlocal left
        to_thread = trio.to_thread.run_sync if adapter == "trio" else asyncio.to_thread
        async with connect() as station:
            assert await to_thread(peer.requested.wait, TIMEOUT), "no upgrade request"
            inside(station)
            left = time.monotonic()

    trio.run(leave) if adapter == "trio" else asyncio.run(leave())
    return left


@pytest.mark.parametrize("adapter", ["trio", "asyncio", "threads"])
def test_a_station_leaving_connect_during_its_handshake_closes_with_1000_once_accepted(
    adapter: str, peer: Peer
) -> None:
    # Stopped while the CSMS has not answered its upgrade request yet, a station waits for
    # the answer (within close_timeout) and closes in order: the CSMS sees 1000, not a
    # dropped socket, and the application no failed attempt.
    url = peer.serve(held=True)
    events: list[Any] = []
    _leave_during_handshake(
        adapter,
        url,
        peer,
        on_event=lambda _station, event: events.append(event),
        inside=lambda station: _release_once_closing(station, peer),
    )
    assert peer.code() == 1000
    assert events == []


@pytest.mark.parametrize("adapter", ["trio", "asyncio", "threads"])
def test_a_station_leaving_connect_during_a_handshake_never_answered_is_done_within_close_timeout(
    adapter: str, peer: Peer
) -> None:
    url = peer.serve(held=True)
    ws_options = WsOptions(ping_interval=0, close_timeout=0.5, handshake_timeout=60)
    left = _leave_during_handshake(
        adapter, url, peer, options=StationOptions(ws_options=ws_options)
    )
    assert time.monotonic() - left < 5  # close_timeout, not the 60 s handshake_timeout


# --- a server leaving serve() --------------------------------------------------------------------


class _Serving:
    """``serve()`` with a peer station connected once it runs."""

    def __init__(self, module: Any, peer: Peer, to_thread: Callable[..., Any]) -> None:
        self.module = module
        self.peer = peer
        self.to_thread = to_thread
        self._manager: Any = None

    async def __aenter__(self) -> Any:
        self._manager = self.module.serve(Csms(), options=SERVER)
        server = await self._manager.__aenter__()
        await self.to_thread(self.peer.station, server.port)
        return server

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("adapter", ["trio", "asyncio"])
def test_a_server_leaving_serve_by_any_route_closes_every_connection_with_1001(
    adapter: str, route: str, peer: Peer
) -> None:
    module = ASYNC[adapter]
    to_thread = trio.to_thread.run_sync if adapter == "trio" else asyncio.to_thread
    _leave(adapter, route, lambda: _Serving(module, peer, to_thread))
    assert peer.code() == 1001


@pytest.mark.parametrize("route", ["end", "error", "ctrl-c"])
def test_a_threads_server_leaving_serve_by_any_route_closes_with_1001(
    route: str, peer: Peer
) -> None:
    expected = _expected(route)
    with (
        pytest.raises(expected) if expected else contextlib.nullcontext(),
        threads_adapter.serve(Csms(), options=SERVER) as server,
    ):
        peer.station(server.port)
        if route == "error":
            raise RuntimeError("the application failed")
        if route == "ctrl-c":
            raise KeyboardInterrupt
    assert peer.code() == 1001


# --- the command, stopped by a signal ------------------------------------------------------------

COMMAND = [sys.executable, "-m", "ocpp_sansio.cli"]


def _stop(process: subprocess.Popen[str], sent: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(sent)
    out, err = process.communicate(timeout=TIMEOUT * 2)
    return process.returncode, out, err


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("adapter", ["trio", "asyncio", "threads"])
def test_the_station_command_stopped_by_a_signal_closes_with_1000_and_exits_0(
    adapter: str, sent: signal.Signals, peer: Peer
) -> None:
    url = peer.serve()
    station = subprocess.Popen(
        [*COMMAND, "station", "--url", url, "--version", "1.6", "--adapter", adapter],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.connected.wait(TIMEOUT), "the station did not connect"
        code, out, err = _stop(station, sent)
    finally:
        station.kill()
    assert peer.code() == 1000
    assert code == 0, err
    assert f"stopping ({sent.name})" in out and "station LIFE1 stopped after" in out
    assert "Traceback" not in err, err


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("adapter", ["trio", "asyncio", "threads"])
def test_the_csms_command_stopped_by_a_signal_closes_with_1001_and_exits_0(
    adapter: str, sent: signal.Signals, peer: Peer
) -> None:
    csms = subprocess.Popen(
        [*COMMAND, "csms", "--port", "0", "--adapter", adapter, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert csms.stdout is not None
        first = csms.stdout.readline()
        port = int(first.split(":")[2].split("/")[0])
        peer.station(port)
        code, out, err = _stop(csms, sent)
    finally:
        csms.kill()
    assert peer.code() == 1001
    assert code == 0, err
    assert f"stopping ({sent.name})" in out and "CSMS stopped after" in out
    assert "Traceback" not in err, err


def test_the_load_command_stopped_by_sigterm_prints_its_summary(peer: Peer) -> None:
    url = peer.serve().rsplit("/", 1)[0] + "/LOAD"
    load = subprocess.Popen(
        [*COMMAND, "load", "--url", url, "--stations", "2", "--version", "1.6", "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.connected.wait(TIMEOUT), "no station connected"
        code, out, err = _stop(load, signal.SIGTERM)
    finally:
        load.kill()
    assert peer.code() == 1000
    assert code == 0, err
    assert "stopping (SIGTERM)" in out and "stations: 2  connected: 2" in out, out
    assert "Traceback" not in err, err


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["station", "--url", "http://127.0.0.1:9000/CS1", "--version", "1.6"], "not a ws://"),
        (["station", "--url", "ws://127.0.0.1:9000/", "--version", "1.6"], "no station identity"),
        (["load", "--url", "ws://127.0.0.1:9000", "--version", "1.6", "--stations", "2"], "no"),
        (["csms", "--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_a_mistake_on_the_command_line_is_one_line(arguments: list[str], problem: str) -> None:
    done = subprocess.run([*COMMAND, *arguments], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and problem in lines[0], done.stderr
