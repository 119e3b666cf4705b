"""mypy's check that every adapter offers the surface ``surface`` declares: each
assignment below fails the type check when an adapter's ``serve``, ``connect``, server,
session or station drifts from it. (Imported by a test too, so it stays importable.)"""

from __future__ import annotations

from ocpp_sansio.calls import SupportsBlockingCall, SupportsCall

from . import asgi as asgi_adapter
from . import asyncio as asyncio_adapter
from . import memory as memory_adapter
from . import threads as threads_adapter
from . import trio as trio_adapter
from .surface import (
    AsyncConnect,
    AsyncCsmsSession,
    AsyncServe,
    AsyncServer,
    AsyncStation,
    SyncConnect,
    SyncCsmsSession,
    SyncServe,
    SyncServer,
    SyncStation,
)

SERVE: dict[str, AsyncServe] = {
    "trio": trio_adapter.serve,
    "asyncio": asyncio_adapter.serve,
    "memory": memory_adapter.serve,
}
CONNECT: dict[str, AsyncConnect] = {
    "trio": trio_adapter.connect,
    "asyncio": asyncio_adapter.connect,
    "memory": memory_adapter.connect,
}
SYNC_SERVE: SyncServe = threads_adapter.serve
SYNC_CONNECT: SyncConnect = threads_adapter.connect


def trio_objects(
    server: trio_adapter.CsmsServer,
    session: trio_adapter.CsmsSession,
    station: trio_adapter.Station,
) -> tuple[AsyncServer, AsyncCsmsSession, AsyncStation]:
    return server, session, station


def asyncio_objects(
    server: asyncio_adapter.CsmsServer,
    session: asyncio_adapter.CsmsSession,
    station: asyncio_adapter.Station,
) -> tuple[AsyncServer, AsyncCsmsSession, AsyncStation]:
    return server, session, station


def memory_objects(
    server: memory_adapter.CsmsServer,
    session: memory_adapter.CsmsSession,
    station: memory_adapter.Station,
) -> tuple[AsyncServer, AsyncCsmsSession, AsyncStation]:
    return server, session, station


def threads_objects(
    server: threads_adapter.CsmsServer,
    session: threads_adapter.CsmsSession,
    station: threads_adapter.Station,
) -> tuple[SyncServer, SyncCsmsSession, SyncStation]:
    return server, session, station


def asgi_session(session: asgi_adapter.CsmsSession) -> AsyncCsmsSession:
    return session


def typed_calls(
    on_trio: tuple[trio_adapter.CsmsSession, trio_adapter.Station],
    on_asyncio: tuple[asyncio_adapter.CsmsSession, asyncio_adapter.Station],
    on_asgi: asgi_adapter.CsmsSession,
    on_memory: tuple[memory_adapter.CsmsSession, memory_adapter.Station],
    on_threads: tuple[threads_adapter.CsmsSession, threads_adapter.Station],
) -> tuple[list[SupportsCall], list[SupportsBlockingCall]]:
    """Every session and station has ``call(request) -> response`` as the public
    protocols say (``ocpp_sansio.calls``; tests/typing/check_router.py checks the types)."""
    return [*on_trio, *on_asyncio, on_asgi, *on_memory], [*on_threads]
