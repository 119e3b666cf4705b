"""The one place where the cluster layer touches the asyncio adapter's server, so a change
of the adapters only changes this module.

It takes over three points of a running ``CsmsServer``: the server's ``opened`` (a station's
connection finished its handshake: reading pauses until the node has claimed the station,
then the server places and attaches it as usual), the ``flows`` factory of its cores (the
node's tap first, then the application's flows, and the previous owner's state put into
them), and the end of each connection (``finished``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import CallLostError

from .._driver import log
from .._ws import Phase
from ..asyncio import CsmsServer
from .client import connect_engine
from .node import TRY_AGAIN_LATER, ClusterNode


class AsyncioSeam:
    """``ServerSeam`` for ``ocpp_sansio.adapters.asyncio.serve()``'s server."""

    def __init__(self, server: CsmsServer) -> None:
        self.server = server
        self._admitting: set[Any] = set()

    def install(self, node: ClusterNode) -> None:
        server = self.server
        original_opened = server.opened
        cores = server.cores
        app_flows = cores.flows

        def flows(core: Any) -> list[Any]:
            own = list(app_flows(core)) if app_flows is not None else []
            node.prepare(core, own)
            return [node.tap(core), *own]

        def opened(conn: Any, now: float) -> None:
            if conn in self._admitting:
                return  # more bytes came before the claim was done
            ws = conn.ws
            transport = conn.transport
            if ws.phase is not Phase.OPEN or ws.version is None or transport is None:
                original_opened(conn, now)
                return
            self._admitting.add(conn)
            transport.pause_reading()
            task = asyncio.ensure_future(admit(conn))
            server._tasks.add(task)
            task.add_done_callback(server._tasks.discard)

        async def admit(conn: Any) -> None:
            identity = conn.ws.identity
            try:
                await node.admit(identity, conn)
            except Exception as error:
                self._admitting.discard(conn)
                log.warning("cannot claim station %r: %s", identity, error)
                conn.close(TRY_AGAIN_LATER, "the CSMS cluster cannot take this station now")
                return
            self._admitting.discard(conn)
            conn.finished.add_done_callback(lambda _: node.link_closed(identity, conn))
            if conn.ws.phase is not Phase.OPEN or conn.finished.done():
                return  # closed while it was being claimed (fenced, or gone)
            original_opened(conn, asyncio.get_running_loop().time())
            node.attached(identity, conn)
            transport = conn.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
            conn.flush()

        server.opened = opened  # type: ignore[method-assign]
        cores.flows = flows

    def forget_session(self, identity: str) -> None:
        self.server.sessions.pop(identity.casefold(), None)

    def session_of(self, link: Any) -> tuple[CsmsCore, Sequence[Any]] | None:
        session = link.session
        if session is None:
            return None
        return session.core, session.flows

    async def call(self, link: Any, request: Any) -> Any:
        session = link.session
        if session is None or session.conn is not link:
            raise CallLostError("the station's connection on this node has ended")
        return await session.call(request)

    def version(self, link: Any) -> str | None:
        session = link.session
        return session.version if session is not None else None

    def close(self, link: Any, code: int, reason: str) -> None:
        if not link.finished.done():
            link.close(code, reason)


@contextlib.asynccontextmanager
async def cluster_node(
    server: CsmsServer, url: str, *, node: str, **engine_options: Any
) -> AsyncIterator[ClusterNode]:
    """Make a running asyncio ``server`` node ``node`` of the cluster at ``url`` while the
    block runs (``engine_options``: ``prefix``, ``lease_ttl`` … of the engine)::

        async with serve(handler, host, port) as server, cluster_node(server, url, node="n1"):
            await server.serve_forever()
    """
    engine = await connect_engine(url, node=node, **engine_options)
    try:
        async with ClusterNode(engine, AsyncioSeam(server)) as joined:
            yield joined
    finally:
        await engine.close()
