"""What the cluster tests share: engines of either kind (in-memory, NATS on a real local
nats-server), a CSMS node on asyncio's serve(), and a station that records what the CSMS
asked of it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from _adapterkit import QUIET, boot, request, until

from ocpp_sansio.adapters import (
    Backoff,
    Disconnected,
    OcppCallError,
    ServerOptions,
    StationOptions,
    identity_key,
)
from ocpp_sansio.adapters.asyncio import CsmsServer, connect, serve
from ocpp_sansio.adapters.cluster import (
    AsyncioSeam,
    ClusterEngine,
    ClusterNode,
    MemoryCluster,
)
from ocpp_sansio.flows import CsmsTransactionEvents, CsmsTransactions16
from ocpp_sansio.flows._store import messages_for

#: The lease every test cluster uses: short, so an expiry test stays short.
LEASE = 1.5
#: An unacknowledged event comes again after this long.
ACK_WAIT = 0.5
#: A station that lost its connection tries again only this late: the tests move it.
NO_RETRY = Backoff(minimum=3600, random_range=0, repeat_times=0)
HEARTBEAT_INTERVAL = 120


class Engines:
    """Engine handles of one test cluster (``kind`` "memory" or "nats")."""

    def __init__(self, kind: str, nats_url: str | None) -> None:
        self.kind = kind
        self.nats_url = nats_url
        self.memory = MemoryCluster(lease_ttl=LEASE, ack_wait=ACK_WAIT)
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.handles: dict[str, ClusterEngine] = {}
        self._all: list[ClusterEngine] = []

    async def engine(self, node: str = "") -> ClusterEngine:
        if self.kind == "memory":
            handle: ClusterEngine = self.memory.engine(node)
        else:
            from ocpp_sansio.adapters.cluster.nats_engine import NatsEngine

            assert self.nats_url is not None
            handle = await NatsEngine.connect(
                self.nats_url,
                node=node,
                prefix=self.prefix,
                lease_ttl=LEASE,
                ack_wait=ACK_WAIT,
                probe_interval=0.2,
            )
        if node:
            self.handles[node] = handle
        self._all.append(handle)
        return handle

    async def kill(self, node: str) -> None:
        """The node's link to the engine dies at once, as when its process is killed."""
        if self.kind == "memory":
            self.memory.kill(node)
        else:
            await self.handles[node]._nc.close()  # type: ignore[attr-defined]

    async def close(self) -> None:
        for handle in self._all:
            with contextlib.suppress(Exception):
                await handle.close()


class Csms:
    """The CSMS handler of every node: boots Accepted, answers what stations send."""

    async def on_request(self, session: Any, message: Any) -> Any:
        m = messages_for(session.version)
        name = type(message).__name__
        if name == "BootNotificationRequest":
            return m.BootNotificationResponse(
                current_time=datetime.now(UTC),
                interval=HEARTBEAT_INTERVAL,
                status=m.RegistrationStatus("Accepted")
                if session.version == "1.6"
                else m.RegistrationStatusEnum("Accepted"),
            )
        if name == "HeartbeatRequest":
            return m.HeartbeatResponse(current_time=datetime.now(UTC))
        if name == "StatusNotificationRequest":
            return m.StatusNotificationResponse()
        raise OcppCallError("NotSupported", name)


def csms_flows(core: Any) -> list[Any]:
    if core.version == "1.6":
        return [CsmsTransactions16(core)]
    return [CsmsTransactionEvents(core)]


@contextlib.asynccontextmanager
async def csms_node(engines: Engines, name: str) -> AsyncIterator[tuple[CsmsServer, ClusterNode]]:
    """A CSMS on 127.0.0.1 that is node ``name`` of the cluster."""
    engine = await engines.engine(name)
    options = ServerOptions(ws_options=QUIET, flows=csms_flows)
    async with serve(Csms(), options=options) as server:
        node = ClusterNode(engine, AsyncioSeam(server))
        await node.start()
        try:
            yield server, node
        finally:
            with contextlib.suppress(Exception):
                await node.stop()


class StationLog:
    """What a station saw: the CSMS's requests (in order) and its disconnections."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.closes: list[Disconnected] = []
        self.release = asyncio.Event()
        self.hold = False
        self.arrived = asyncio.Event()

    async def on_request(self, station: Any, message: Any) -> Any:
        self.requests.append(message)
        self.arrived.set()
        if self.hold:
            await self.release.wait()
        m = messages_for(station.version)
        if type(message).__name__ == "ChangeAvailabilityRequest":
            if station.version == "1.6":
                return m.ChangeAvailabilityResponse(status=m.AvailabilityStatus("Accepted"))
            return m.ChangeAvailabilityResponse(status=m.ChangeAvailabilityStatusEnum("Accepted"))
        raise OcppCallError("NotSupported")

    async def on_event(self, station: Any, event: Any) -> None:
        if isinstance(event, Disconnected):
            self.closes.append(event)


def station_url(server: CsmsServer, identity: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ocpp/{identity}"


@contextlib.asynccontextmanager
async def station(
    server: CsmsServer, identity: str, log: StationLog, version: str = "2.0.1", core: Any = None
) -> AsyncIterator[Any]:
    """A station connected to ``server`` (booted, or going on with ``core``)."""
    given: dict[str, Any] = (
        {"core": core} if core is not None else {"version": version, "boot": boot(version)}
    )
    async with connect(
        station_url(server, identity),
        on_request=log.on_request,
        on_event=log.on_event,
        options=StationOptions(ws_options=QUIET, backoff=NO_RETRY),
        **given,
    ) as connected:
        await connected.wait_connected()
        await connected.wait_registered()
        await until(lambda: server_has(server, identity))  # admitted: claimed, then attached
        yield connected


def server_has(server: CsmsServer, identity: str) -> bool:
    session = server.sessions.get(identity_key(identity))
    return session is not None and session.connected


def availability(version: str) -> Any:
    if version == "1.6":
        return request(version, "ChangeAvailability", connector_id=1)
    return request(version, "ChangeAvailability")


class Proxy:
    """Spreads new TCP connections over the backends in turn, skipping one that refuses;
    when either side closes, so does the other."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._turn = itertools.count()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = next(self._turn)
        for port in self.backends[first % 2 :] + self.backends[: first % 2]:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
