"""Failover with real processes: a nats-server, two CSMS node processes (asyncio serve()
on 127.0.0.1) and this process, which runs the stations, a small TCP proxy that spreads
their connections over the live nodes, and the caller. One node is SIGKILLed mid-run; its
stations reconnect (through the proxy) to the other node, and calls reach them again.
Nothing is answered twice and no station is owned twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _adapterkit import QUIET, boot, request
from _clusterkit import Proxy

from ocpp_sansio.adapters import Backoff, OcppCallError, StationOptions
from ocpp_sansio.adapters.asyncio import connect
from ocpp_sansio.adapters.cluster import (
    ClusterClient,
    OwnerLost,
    StationNotConnected,
)
from ocpp_sansio.adapters.cluster.nats_engine import NatsEngine
from ocpp_sansio.adapters.cluster.nats_server import NatsServer
from ocpp_sansio.messages import v201

pytestmark = pytest.mark.anyio
STATIONS = 10
LEASE = 1.5
FAST_RETRY = Backoff(minimum=0.1, random_range=0.2, repeat_times=2)
NODE_SCRIPT = Path(__file__).with_name("_cluster_node.py")
CLAIMED = re.compile(r"claimed (\S+) \(epoch (\d+)\)")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class NodeProcess:
    """A node process; ``claims`` collects the (identity, epoch) it claimed."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, port: int) -> None:
        self.name = name
        self.process = process
        self.port = port
        self.claims: list[tuple[str, int]] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            found = CLAIMED.search(line.decode())
            if found:
                self.claims.append((found[1].casefold(), int(found[2])))


async def start_node(url: str, name: str, prefix: str) -> NodeProcess:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(NODE_SCRIPT),
        url,
        name,
        prefix,
        str(LEASE),
        stdout=asyncio.subprocess.PIPE,
        cwd=NODE_SCRIPT.parent,
    )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), 20)
    return NodeProcess(name, process, json.loads(first)["port"])


class Stations:
    """The stations, each recording the DataTransfer ids the CSMS sent it."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    async def on_request(self, station: Any, message: Any) -> Any:
        if isinstance(message, v201.DataTransferRequest):
            self.received[str(message.data)] += 1
            if message.message_id == "slow":
                await asyncio.sleep(1.0)
            return v201.DataTransferResponse(
                status=v201.DataTransferStatusEnum.ACCEPTED, data=message.data
            )
        raise OcppCallError("NotSupported")


@contextlib.asynccontextmanager
async def cluster_processes(url: str, prefix: str) -> AsyncIterator[list[NodeProcess]]:
    nodes = await asyncio.gather(start_node(url, "A", prefix), start_node(url, "B", prefix))
    try:
        yield list(nodes)
    finally:
        for node in nodes:
            if node.process.returncode is None:
                node.process.kill()
            await node.process.wait()
            node.reader.cancel()


async def call_everyone(
    client: ClusterClient, identities: list[str], sent: Counter[str], slow: bool = False
) -> list[Any]:
    """One DataTransfer with a new token to every station (``slow``: answered after 1 s)."""

    async def one(identity: str) -> Any:
        token = uuid.uuid4().hex
        sent[token] += 1
        try:
            answer = await client.call(
                identity,
                v201.DataTransferRequest(
                    vendor_id="test", message_id="slow" if slow else None, data=token
                ),
                version="2.0.1",
                timeout=10,
            )
        except (OwnerLost, StationNotConnected) as error:
            return error
        assert answer.data == token
        return answer

    return await asyncio.gather(*(one(identity) for identity in identities))


async def test_failover_two_node_processes_sigkill_one_stations_move_calls_reach_them() -> None:
    async with asyncio.timeout(50):
        with NatsServer() as nats_server:
            prefix = f"f{uuid.uuid4().hex[:8]}"
            async with cluster_processes(nats_server.url, prefix) as (node_a, node_b):
                proxy = Proxy([node_a.port, node_b.port])
                await proxy.start()
                engine = await NatsEngine.connect(
                    nats_server.url, prefix=prefix, lease_ttl=LEASE, probe_interval=0.2
                )
                client = ClusterClient(engine)
                app = Stations()
                identities = [f"FO{number:02d}" for number in range(STATIONS)]
                sent: Counter[str] = Counter()
                async with contextlib.AsyncExitStack() as stack:
                    stations = [
                        await stack.enter_async_context(
                            connect(
                                f"ws://127.0.0.1:{proxy.port}/ocpp/{identity}",
                                version="2.0.1",
                                boot=boot("2.0.1"),
                                on_request=app.on_request,
                                options=StationOptions(ws_options=QUIET, backoff=FAST_RETRY),
                            )
                        )
                        for identity in identities
                    ]
                    for station in stations:
                        await station.wait_registered()

                    # Spread over both nodes, every station reachable from here.
                    owners = await owners_of(engine, identities, lambda node: node is not None)
                    assert set(owners.values()) == {"A", "B"}
                    results = await call_everyone(client, identities, sent)
                    assert all(isinstance(r, v201.DataTransferResponse) for r in results)

                    # SIGKILL A while every station is busy answering a call: A's calls fail
                    # (OwnerLost), B's are answered.
                    before = len(app.received)
                    on_the_way = asyncio.ensure_future(
                        call_everyone(client, identities, sent, slow=True)
                    )
                    while len(app.received) < before + STATIONS:
                        await asyncio.sleep(0.01)
                    os.kill(node_a.process.pid, signal.SIGKILL)
                    await node_a.process.wait()
                    during = await on_the_way
                    for identity, result in zip(identities, during, strict=True):
                        if owners[identity] == "B":
                            assert isinstance(result, v201.DataTransferResponse)
                        else:
                            assert isinstance(result, OwnerLost), result

                    # A's stations come back on B, booted as they were, and answer again.
                    await owners_of(engine, identities, lambda node: node == "B")
                    for station in stations:
                        await station.wait_connected()
                        await station.call(request("2.0.1", "Heartbeat"))
                    results = await call_everyone(client, identities, sent)
                    assert all(isinstance(r, v201.DataTransferResponse) for r in results)
                    # Every station is B's now, under B's latest claim of it, and the claims
                    # B made for A's stations come after A's.
                    for identity in identities:
                        claim = await engine.owner(identity)
                        epochs_b = [e for i, e in node_b.claims if i == identity.casefold()]
                        assert claim is not None and claim.node == "B"
                        assert claim.epoch == max(epochs_b)
                        epochs_a = [e for i, e in node_a.claims if i == identity.casefold()]
                        assert not epochs_a or min(epochs_b) > max(epochs_a)

                # Nothing answered twice: no call reached a station more than once.
                assert max(app.received.values()) == 1
                assert set(app.received) <= set(sent)
                # No station owned twice: each (station, epoch) was claimed by one node.
                claims = Counter(node_a.claims + node_b.claims)
                assert claims and max(claims.values()) == 1
                await client.close()
                await proxy.stop()


async def owners_of(engine: NatsEngine, identities: list[str], wanted: Any) -> dict[str, str]:
    """Each station's owning node, once ``wanted(node)`` holds for all (bounded)."""
    async with asyncio.timeout(20):
        while True:
            owners = {}
            for identity in identities:
                claim = await engine.owner(identity)
                owners[identity] = claim.node if claim is not None else None
            if all(wanted(node) for node in owners.values()):
                return {identity: str(node) for identity, node in owners.items()}
            await asyncio.sleep(0.05)
