"""Shared pieces for the adapter tests: one async face over the three adapters, scripted
CSMS and station applications for both flavours (async and blocking), messages per version.

Tests run under anyio's pytest plugin: the trio adapter under trio, the asyncio adapter
under asyncio, and the threads adapter under trio with every blocking call in a worker
thread, so one test body serves all three.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import attrs
import wsproto
import wsproto.events as wse

from ocpp_sansio import registry
from ocpp_sansio.adapters import (
    Backoff,
    OcppCallError,
    ServerOptions,
    StationOptions,
    WsOptions,
)
from ocpp_sansio.adapters import asyncio as asyncio_adapter
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.adapters import trio as trio_adapter
from ocpp_sansio.events import Event
from ocpp_sansio.testing.builders import minimal

VERSIONS = ("1.6", "2.0.1", "2.1")
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
#: Reconnect quickly in tests.
FAST_BACKOFF = Backoff(minimum=0.05, random_range=0.05, repeat_times=1)
QUIET = WsOptions(ping_interval=0, close_timeout=1, handshake_timeout=3)


def action_of(version: str, message: Any) -> str:
    return registry(version).for_payload(message).name


def request(version: str, action: str, **fields: Any) -> Any:
    return minimal(registry(version)[action].request, **fields)


def response(version: str, action: str, **fields: Any) -> Any:
    cls = registry(version)[action].response
    assert cls is not None
    return minimal(cls, **fields)


def boot(version: str) -> Any:
    return request(version, "BootNotification")


def transaction_message(version: str, number: int) -> Any:
    """A transaction-related request (held while offline, E04.FR.01)."""
    if version == "1.6":
        return request(version, "StartTransaction", connector_id=1, meter_start=number)
    return request(version, "TransactionEvent", seq_no=number)


def csms_request(version: str) -> Any:
    """Something the CSMS asks of a station."""
    if version == "1.6":
        return request(version, "ChangeAvailability", connector_id=1)
    return request(version, "ChangeAvailability")


def authorize(version: str) -> Any:
    return request(version, "Authorize")


@attrs.define
class Script:
    """What a scripted application does, and what it saw. Shared by both flavours."""

    boot_status: str = "Accepted"
    #: the heartbeat interval a BootNotification answer gives
    interval: int = 300
    #: action -> seconds to wait before answering
    delays: dict[str, float] = attrs.Factory(dict)
    #: action -> (version -> request): ask the peer this before answering
    ask_first: dict[str, Callable[[str], Any]] = attrs.Factory(dict)
    #: action -> error raised instead of answering
    errors: dict[str, Exception] = attrs.Factory(dict)
    #: (identity, action, request) per request received, in order
    seen: list[tuple[str, str, Any]] = attrs.Factory(list)
    #: answers to what we asked first
    asked: list[Any] = attrs.Factory(list)
    events: list[tuple[str, Event]] = attrs.Factory(list)

    def answer(self, version: str, action: str) -> Any:
        if action == "BootNotification":
            return response(
                version, action, status=self.boot_status, interval=self.interval, current_time=NOW
            )
        if action in ("Heartbeat",):
            return response(version, action, current_time=NOW)
        return response(version, action)

    def actions(self, identity: str | None = None) -> list[str]:
        return [a for i, a, _ in self.seen if identity is None or i.casefold() == identity]

    def event_types(self, identity: str | None = None) -> list[str]:
        return [
            type(e).__name__ for i, e in self.events if identity is None or i.casefold() == identity
        ]


def _identity(party: Any) -> str:
    return str(party.identity)


class AsyncApp:
    """A scripted application for the trio and asyncio adapters (CSMS handler or station)."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def on_request(self, party: Any, message: Any) -> Any:
        script = self.script
        action = action_of(party.version, message)
        script.seen.append((_identity(party), action, message))
        if action in script.delays:
            await anyio.sleep(script.delays[action])
        if action in script.ask_first:
            script.asked.append(await party.call(script.ask_first[action](party.version)))
        if action in script.errors:
            raise script.errors[action]
        return script.answer(party.version, action)

    async def on_event(self, party: Any, event: Event) -> None:
        self.script.events.append((_identity(party), event))


class SyncApp:
    """The same application for the threads adapter."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def on_request(self, party: Any, message: Any) -> Any:
        script = self.script
        action = action_of(party.version, message)
        script.seen.append((_identity(party), action, message))
        if action in script.delays:
            time.sleep(script.delays[action])
        if action in script.ask_first:
            script.asked.append(party.call(script.ask_first[action](party.version)))
        if action in script.errors:
            raise script.errors[action]
        return script.answer(party.version, action)

    def on_event(self, party: Any, event: Event) -> None:
        self.script.events.append((_identity(party), event))


class Kit:
    """One adapter behind an async face."""

    def __init__(self, name: str, module: Any, backend: str, blocking: bool) -> None:
        self.name = name
        self.module = module
        self.backend = backend
        self.blocking = blocking

    def app(self, script: Script) -> Any:
        return SyncApp(script) if self.blocking else AsyncApp(script)

    @contextlib.asynccontextmanager
    async def serve(
        self, script: Script, *, versions: Any = None, **options: Any
    ) -> AsyncIterator[Any]:
        """``serve()`` of the script's application."""
        async with self.serve_handler(self.app(script), versions=versions, **options) as server:
            yield server

    @contextlib.asynccontextmanager
    async def serve_handler(
        self, handler: Any, *, versions: Any = None, **options: Any
    ) -> AsyncIterator[Any]:
        """Serve the application's own ``handler`` (a Router, say) with
        ``ServerOptions(**options)`` (quiet pings by default)."""
        options.setdefault("ws_options", QUIET)
        extra = {} if versions is None else {"versions": versions}
        manager = self.module.serve(
            handler, "127.0.0.1", 0, options=ServerOptions(**options), **extra
        )
        async with self._enter(manager) as server:
            yield server

    @contextlib.asynccontextmanager
    async def connect(
        self, url: str, version: str, script: Script | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """``connect()``: ``core``, ``on_request``, ``on_event`` (and ``version``/``boot``
        unless a core is given) as arguments, the rest as ``StationOptions``."""
        kwargs.setdefault("ws_options", QUIET)
        kwargs.setdefault("backoff", FAST_BACKOFF)
        direct = {k: kwargs.pop(k) for k in ("core", "on_request", "on_event") if k in kwargs}
        if script is not None:
            app = self.app(script)
            direct.setdefault("on_request", app.on_request)
            direct.setdefault("on_event", app.on_event)
        if "core" not in direct:  # else the application's core knows its version and boot
            direct.update(version=version, boot=kwargs.pop("boot", boot(version)))
        manager = self.module.connect(url, options=StationOptions(**kwargs), **direct)
        async with self._enter(manager) as station:
            yield station

    @contextlib.asynccontextmanager
    async def _enter(self, manager: Any) -> AsyncIterator[Any]:
        if not self.blocking:
            async with manager as value:
                yield value
            return
        value = await anyio.to_thread.run_sync(manager.__enter__)
        try:
            yield value
        finally:
            await anyio.to_thread.run_sync(manager.__exit__, None, None, None)

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.blocking:
            return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)
        return await function(*args)

    async def call(self, party: Any, message: Any) -> Any:
        return await self._run(party.call, message)

    async def act(self, party: Any, action: Callable[[float], Any]) -> Any:
        if self.blocking:
            return await anyio.to_thread.run_sync(party.act, action)
        return party.act(action)

    async def wait_registered(self, station: Any) -> None:
        if self.blocking:
            assert await self._run(station.wait_registered, 10)
        else:
            await station.wait_registered()

    async def wait_connected(self, station: Any) -> None:
        if self.blocking:
            assert await self._run(station.wait_connected, 10)
        else:
            await station.wait_connected()

    async def close_session(self, session: Any) -> None:
        await self._run(session.close)

    async def stop_server(self, server: Any) -> None:
        await self._run(server.stop if self.blocking else server.aclose)


KITS = {
    "trio": Kit("trio", trio_adapter, "trio", blocking=False),
    "asyncio": Kit("asyncio", asyncio_adapter, "asyncio", blocking=False),
    "threads": Kit("threads", threads_adapter, "trio", blocking=True),
}


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (polling) until ``predicate()`` holds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


class SilentPeer:
    """A raw WebSocket peer on a blocking socket that completes the handshake and then
    never reads again: it cannot answer pings."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()

    def serve_one(self, subprotocol: str) -> None:
        """Accept one station, open the WebSocket, then go silent (run in a thread)."""
        self.listener.settimeout(5)
        sock, _ = self.listener.accept()
        self.sockets.append(sock)
        conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        while True:
            conn.receive_data(sock.recv(65536))
            requests = [e for e in conn.events() if isinstance(e, wse.Request)]
            if requests:
                sock.sendall(conn.send(wse.AcceptConnection(subprotocol=subprotocol)))
                break
        self._stop.wait(10)

    def connect_silently(self, port: int, target: str, subprotocol: str) -> None:
        """Connect to a CSMS, open the WebSocket, then go silent (run in a thread)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sockets.append(sock)
        conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        sock.sendall(conn.send(wse.Request(host="x", target=target, subprotocols=[subprotocol])))
        while True:
            conn.receive_data(sock.recv(65536))
            if any(isinstance(e, wse.AcceptConnection) for e in conn.events()):
                break
        self._stop.wait(10)

    def close(self) -> None:
        self._stop.set()
        for sock in [*self.sockets, self.listener]:
            sock.close()


def error(code: str) -> OcppCallError:
    return OcppCallError(code, "scripted")
