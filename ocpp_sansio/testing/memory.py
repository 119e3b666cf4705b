"""Test CSMS handlers, routers and station flows in memory, on a virtual clock.

``serve(handler_or_router, versions=..., clock=...)`` and ``connect(url, version=...,
boot=..., clock=...)`` give the server, its sessions and the stations the socket adapters
give, connected through memory: ``await station.wait_registered()``, take
``server.sessions["cs001"]``, ``await session.call(request)``, and move time with ``await
clock.run_for(seconds)``. It runs under anyio, on trio or asyncio (docs/testing.md). The
implementation lives with the adapters (``ocpp_sansio.adapters.memory``); this module
only names it, so that importing ``ocpp_sansio.testing`` never needs anyio.
"""

from ocpp_sansio.adapters.memory import (
    CsmsServer,
    CsmsSession,
    Station,
    VirtualClock,
    connect,
    serve,
)

__all__ = ["CsmsServer", "CsmsSession", "Station", "VirtualClock", "connect", "serve"]
