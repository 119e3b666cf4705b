"""The adapters' public surface, declared once: what ``serve()``, ``connect()`` and the
objects they yield offer on every adapter. The event-loop adapters (trio, asyncio, and
ASGI's sessions) share the async surface; the threads adapter has the same names with
blocking calls. mypy checks each adapter against these (``_conformance``), so an adapter
that drifts fails the type check, not a user.

The application's side is one ``Handler`` for all of them: an object with
``on_request(session, request)`` (and, optionally, ``on_event(session, event)``). Plain
methods work on every adapter; coroutine methods on the event-loop ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol, TypeVar

from ocpp_sansio.errors import ConnectFailedError
from ocpp_sansio.events import RegistrationStatus
from ocpp_sansio.messages._model import Request

from ._options import ServerOptions, StationOptions

__all__ = [
    "AsyncConnect",
    "AsyncCsmsSession",
    "AsyncServe",
    "AsyncServer",
    "AsyncStation",
    "Connect",
    "Handler",
    "Serve",
    "SessionBase",
    "SyncConnect",
    "SyncCsmsSession",
    "SyncServe",
    "SyncServer",
    "SyncStation",
]


Made = TypeVar("Made", covariant=True)
R = TypeVar("R")


class Serve(Protocol[Made]):
    """``serve(handler, host, port, *, versions, options)``, the same on every adapter;
    ``Made`` is what it returns (an async or a plain context manager of its server)."""

    def __call__(
        self,
        handler: Any,
        host: str = ...,
        port: int = ...,
        *,
        versions: Sequence[str] = ...,
        options: ServerOptions | None = ...,
    ) -> Made: ...


class Connect(Protocol[Made]):
    """``connect(url, *, version, boot, core, on_request, on_event, options)``, the same on
    every adapter; ``Made`` is what it returns (a context manager of its station)."""

    def __call__(
        self,
        url: str,
        *,
        version: str | None = ...,
        boot: Any = ...,
        core: Any = ...,
        on_request: Callable[[Any, Any], Any] | None = ...,
        on_event: Callable[[Any, Any], Any] | None = ...,
        options: StationOptions | None = ...,
    ) -> Made: ...


class Handler(Protocol):
    """The application's side of a CSMS (``serve(handler)``): the typed response to each
    request, or raise ``OcppCallError`` for a CALLERROR. ``on_event(session, event)`` is
    optional and gets everything else in order."""

    def on_request(self, session: Any, request: Any) -> Any: ...


class SessionBase(Protocol):
    """What a CSMS session and a station show on every adapter."""

    @property
    def identity(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def registration(self) -> RegistrationStatus | None: ...

    @property
    def core(self) -> Any: ...

    @property
    def flows(self) -> tuple[Any, ...]: ...

    @property
    def peer_certificate(self) -> dict[str, Any] | None: ...

    def act(self, action: Callable[[float], Any]) -> Any: ...


# --- trio, asyncio, ASGI -------------------------------------------------------------------------


class AsyncCsmsSession(SessionBase, Protocol):
    async def call(self, request: Request[R]) -> R: ...

    async def wait_registered(self) -> None: ...

    async def close(self, code: int = ..., reason: str = ...) -> None: ...


class AsyncServer(Protocol):
    @property
    def port(self) -> int: ...

    @property
    def sessions(self) -> Mapping[str, AsyncCsmsSession]: ...

    async def serve_forever(self) -> None: ...

    def stop(self) -> None: ...

    async def aclose(self) -> None: ...


class AsyncStation(SessionBase, Protocol):
    @property
    def failure(self) -> ConnectFailedError | None: ...

    async def call(self, request: Request[R]) -> R: ...

    async def wait_connected(self) -> None: ...

    async def wait_registered(self) -> None: ...

    async def aclose(self, code: int = ..., reason: str = ...) -> None: ...


AsyncServe = Serve[AbstractAsyncContextManager[AsyncServer]]


AsyncConnect = Connect[AbstractAsyncContextManager[AsyncStation]]


# --- threads -------------------------------------------------------------------------------------


class SyncCsmsSession(SessionBase, Protocol):
    def call(self, request: Request[R], timeout: float | None = ...) -> R: ...

    def wait_registered(self, timeout: float | None = ...) -> bool: ...

    def close(self, code: int = ..., reason: str = ...) -> None: ...


class SyncServer(Protocol):
    @property
    def port(self) -> int: ...

    @property
    def sessions(self) -> Mapping[str, SyncCsmsSession]: ...

    def serve_forever(self) -> None: ...

    def stop(self) -> None: ...


class SyncStation(SessionBase, Protocol):
    @property
    def failure(self) -> ConnectFailedError | None: ...

    def call(self, request: Request[R], timeout: float | None = ...) -> R: ...

    def wait_connected(self, timeout: float | None = ...) -> bool: ...

    def wait_registered(self, timeout: float | None = ...) -> bool: ...

    def close(self, code: int = ..., reason: str = ...) -> None: ...


SyncServe = Serve[AbstractContextManager[SyncServer]]


SyncConnect = Connect[AbstractContextManager[SyncStation]]
