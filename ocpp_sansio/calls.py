"""What a party that sends requests looks like to a type checker.

Every request class derives from ``Request[ResponseClass]`` (``ocpp_sansio.messages``),
so one generic signature types ``call`` for every action of every version::

    async def remind(session: SupportsCall) -> None:
        answer = await session.call(v201.HeartbeatRequest())  # v201.HeartbeatResponse

The adapters' sessions and stations have this shape; annotate a handler's session with
these protocols (or with the adapter's own class) and mypy checks what you send and
what you get back.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from .messages._model import Request

R = TypeVar("R")


class SupportsCall(Protocol):
    """A CSMS session or a station of an async adapter (trio, asyncio, in memory)."""

    async def call(self, request: Request[R], /) -> R:
        """Send ``request``; return its response (None for a 2.1 SEND)."""
        ...


class SupportsBlockingCall(Protocol):
    """A CSMS session or a station of the threads adapter."""

    def call(self, request: Request[R], /) -> R:
        """Send ``request``; block until its response (None for a 2.1 SEND)."""
        ...
