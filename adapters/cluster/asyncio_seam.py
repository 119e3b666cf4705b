"""The one place where the cluster layer touches the asyncio adapter's server, so a change
of the adapters only changes this module.

It uses the server's public hooks: its ``admission`` (a station's connection finished its
handshake: nothing it sends reaches a core until the node has claimed the station; then
the server places and attaches it as usual, and the node learns the core it talks to),
its observer flows (``add_observer_flows``: the node's tap first on every new core, and
the previous owner's state put into the application's flows), and the end of each
connection (the protocol's ``finished``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import CallLostError

from .._skeleton import Link
from .._ws import identity_key
from ..asyncio import CsmsServer, CsmsSession, protocol_of
from ._seam import LinkSeam
from .client import connect_engine
from .node import ClusterNode


class AsyncioSeam(LinkSeam):
    """``ServerSeam`` for ``ocpp_sansio.adapters.asyncio.serve()``'s server."""

    def __init__(self, server: CsmsServer) -> None:
        self.server = server

    def install(self, node: ClusterNode) -> None:
        def observe(core: CsmsCore, flows: Sequence[Any]) -> list[Any]:
            node.prepare(core, flows)
            return [node.tap(core)]

        async def admit(identity: str, link: Link) -> Callable[[Link], None]:
            await node.admit(identity, link)  # raises: the server closes it with 1013
            finished = protocol_of(link).finished
            finished.add_done_callback(lambda _: node.link_closed(identity, link))
            return lambda placed: node.attached(identity, placed)

        self.server.add_observer_flows(observe)
        self.server.admission = admit

    def forget_session(self, identity: str) -> None:
        self.server.sessions.pop(identity_key(identity), None)

    async def call(self, link: Link, request: Any) -> Any:
        session = link.session
        if session is None or session.link is not link or not isinstance(session, CsmsSession):
            raise CallLostError("the station's connection on this node has ended")
        return await session.call(request)

    def close(self, link: Link, code: int, reason: str) -> None:
        if not link.ws.done:
            link.close(code, reason, asyncio.get_running_loop().time())


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
