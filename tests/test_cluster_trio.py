"""A cluster node on the trio adapter, in this process: trio servers and stations, the
in-memory engine and the nodes on an asyncio loop in a thread (``trio_seam``), the caller on
that loop too. What crosses the seam: claims, the new core's state, station messages as
events, routed calls and their answers, fencing and closing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from _adapterkit import QUIET, boot, request, until
from _clusterkit import NO_RETRY, Csms, availability, csms_flows

from ocpp_sansio.adapters import (
    Disconnected,
    OcppCallError,
    ServerOptions,
    StationOptions,
    identity_key,
)
from ocpp_sansio.adapters.cluster import (
    CONNECTED,
    ClusterClient,
    ClusterNode,
    MemoryCluster,
    RoutedCallFailed,
)
from ocpp_sansio.adapters.cluster.trio_seam import AsyncioThread, trio_cluster_node
from ocpp_sansio.adapters.trio import CsmsServer, connect, serve
from ocpp_sansio.events import RegistrationStatus
from ocpp_sansio.flows._store import messages_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.fixture
def thread() -> Any:
    loop_thread = AsyncioThread()
    yield loop_thread
    loop_thread.close()


@contextlib.asynccontextmanager
async def trio_node(
    cluster: MemoryCluster, thread: AsyncioThread, name: str
) -> AsyncIterator[tuple[CsmsServer, ClusterNode]]:
    options = ServerOptions(ws_options=QUIET, flows=csms_flows)
    async with (
        serve(Csms(), options=options) as server,
        trio_cluster_node(server, cluster.engine(name), thread) as node,
    ):
        yield server, node


class Log:
    """What a trio station saw."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.closes: list[Disconnected] = []

    async def on_request(self, station: Any, message: Any) -> Any:
        self.requests.append(message)
        m = messages_for(station.version)
        if type(message).__name__ == "ChangeAvailabilityRequest":
            return m.ChangeAvailabilityResponse(status=m.ChangeAvailabilityStatusEnum("Accepted"))
        raise OcppCallError("NotSupported", "only ChangeAvailability here")

    async def on_event(self, station: Any, event: Any) -> None:
        if isinstance(event, Disconnected):
            self.closes.append(event)


@contextlib.asynccontextmanager
async def station(
    server: CsmsServer, identity: str, log: Log, version: str = "2.0.1", core: Any = None
) -> AsyncIterator[Any]:
    """A station connected to ``server`` (booted, or going on with ``core``)."""
    given: dict[str, Any] = (
        {"core": core} if core is not None else {"version": version, "boot": boot(version)}
    )
    async with connect(
        f"ws://127.0.0.1:{server.port}/ocpp/{identity}",
        on_request=log.on_request,
        on_event=log.on_event,
        options=StationOptions(ws_options=QUIET, backoff=NO_RETRY),
        **given,
    ) as connected:
        await connected.wait_registered()
        await until(lambda: _connected(server, identity))
        yield connected


def _connected(server: CsmsServer, identity: str) -> bool:
    session = server.sessions.get(identity_key(identity))
    return session is not None and session.connected


async def test_a_trio_node_claims_answers_routed_calls_and_publishes_events(
    thread: AsyncioThread,
) -> None:
    cluster = MemoryCluster(lease_ttl=1.5)
    with trio.fail_after(15):
        async with trio_node(cluster, thread, "A") as (server, _):
            log = Log()
            client = ClusterClient(cluster.engine())
            async with station(server, "TR1", log):
                answer = await thread.run(
                    client.call("TR1", availability("2.0.1"), version="2.0.1")
                )
                assert str(answer.status) == "Accepted"
                with pytest.raises(RoutedCallFailed) as raised:
                    await thread.run(client.call_json("tr1", "Reset", {"type": "Immediate"}))
                assert (raised.value.kind, raised.value.error_code) == (
                    "call_error",
                    "NotSupported",
                )
                assert len(log.requests) == 2
            owner = await thread.run(client.engine.owner("TR1"))
            assert owner is None  # released when the station left
            got = await thread.run(client.engine.fetch("app", 10, 1.0))
            assert sorted((d.event.kind, d.event.action) for d in got)[:2] == [
                (CONNECTED, ""),
                ("disconnected", ""),
            ]
            assert {d.event.action for d in got} >= {"BootNotification"}


async def test_a_station_moving_between_trio_nodes_keeps_its_state_and_fences_the_old(
    thread: AsyncioThread,
) -> None:
    cluster = MemoryCluster(lease_ttl=1.5)
    with trio.fail_after(15):
        async with (
            trio_node(cluster, thread, "A") as (server_a, node_a),
            trio_node(cluster, thread, "B") as (server_b, _),
        ):
            old_log, new_log = Log(), Log()
            client = ClusterClient(cluster.engine())
            # The second connection opens once the first is admitted on A.
            async with station(server_a, "TR2", old_log), station(server_b, "TR2", new_log):
                assert "tr2" not in node_a.held  # fenced before B admitted it
                await until(lambda: bool(old_log.closes))
                assert "fenced" in old_log.closes[0].reason
                await thread.run(client.call("TR2", availability("2.0.1"), version="2.0.1"))
                assert (len(old_log.requests), len(new_log.requests)) == (0, 1)


async def test_a_station_that_moves_to_a_trio_node_goes_on_without_a_boot(
    thread: AsyncioThread,
) -> None:
    cluster = MemoryCluster(lease_ttl=1.5)
    client = ClusterClient(cluster.engine())
    with trio.fail_after(15):
        async with (
            trio_node(cluster, thread, "A") as (server_a, _),
            trio_node(cluster, thread, "B") as (server_b, _),
        ):
            log = Log()
            async with station(server_a, "TR3", log, "1.6") as first:
                start = request("1.6", "StartTransaction", connector_id=1, meter_start=10)
                started = await first.call(start)
                core = first.core
            while await thread.run(client.engine.owner("TR3")) is not None:
                await trio.sleep(0.01)  # A stores the state as the station leaves

            # Back on B with the same core, no boot (B04): B knows its registration and
            # its transaction, put into the new core by the node on the other thread.
            async with station(server_b, "TR3", log, core=core) as second:
                session = server_b.sessions[identity_key("TR3")]
                assert session.registration is RegistrationStatus.ACCEPTED
                (moved,) = session.flows[1].open_transactions()
                assert moved.transaction_id == started.transaction_id
                stop = request(
                    "1.6", "StopTransaction", transaction_id=started.transaction_id, meter_stop=20
                )
                await second.call(stop)
                assert session.flows[1].open_transactions() == []
