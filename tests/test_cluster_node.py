"""ClusterNode's bookkeeping where timing decides, made deterministic: the in-memory engine
and a seam that records what the node asks of the server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ocpp_sansio.adapters.cluster import (
    Claim,
    ClusterNode,
    Fenced,
    MemoryCluster,
    station_key,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingSeam:
    """Stands in for a server: keeps the node's requests to close connections."""

    def __init__(self) -> None:
        self.closed: list[tuple[Any, int, str]] = []
        self.forgotten: list[str] = []

    def install(self, node: ClusterNode) -> None:
        pass

    def forget_session(self, identity: str) -> None:
        self.forgotten.append(identity)

    def session_of(self, link: Any) -> None:
        return None

    async def call(self, link: Any, request: Any) -> Any:
        raise AssertionError("no call is routed in these tests")

    def version(self, link: Any) -> str | None:
        return "2.0.1"

    def close(self, link: Any, code: int, reason: str) -> None:
        self.closed.append((link, code, reason))


async def node_on(cluster: MemoryCluster) -> tuple[ClusterNode, RecordingSeam]:
    seam = RecordingSeam()
    node = ClusterNode(cluster.engine("A"), seam)
    await node.start()
    return node, seam


async def test_a_fence_notice_that_overtakes_its_own_claim_refuses_the_admission() -> None:
    async with asyncio.timeout(5):
        cluster = MemoryCluster()
        node, _ = await node_on(cluster)
        engine = node.engine
        assert engine.lease is not None  # type: ignore[attr-defined]
        # Another node claims epoch 2 right after ours (epoch 1); its notice comes first.
        node._fenced(Claim(station_key("CS1"), "A", engine.lease, 1))  # type: ignore[attr-defined]
        with pytest.raises(Fenced):
            await node.admit("CS1", "link-1")
        assert "cs1" not in node.held
        await node.stop()


async def test_an_older_admission_that_ends_last_is_refused_and_the_newer_one_kept() -> None:
    async with asyncio.timeout(5):
        cluster = MemoryCluster()
        node, seam = await node_on(cluster)
        await node.admit("CS2", "newer")
        newer = node.held["cs2"].claim
        # An admission whose claim is older than the one held (it lost the race).
        node.held["cs2"].claim = Claim(newer.key, newer.node, newer.lease, newer.epoch + 5)
        with pytest.raises(Fenced):
            await node.admit("CS2", "older")
        assert node.held["cs2"].link == "newer"
        assert seam.closed == []
        await node.stop()


async def test_a_fenced_connection_is_closed_and_its_station_forgotten_here() -> None:
    async with asyncio.timeout(5):
        cluster = MemoryCluster()
        node, seam = await node_on(cluster)
        other = cluster.engine("B")

        async def no_calls(_routed: Any) -> dict[str, Any]:
            return {}

        await other.join(no_calls, lambda claim: None)
        await node.admit("CS3", "link-3")
        await other.claim("CS3")
        await asyncio.sleep(0)  # the notice is delivered
        assert seam.closed == [
            ("link-3", 1000, "fenced: the station connected again (newer claim)")
        ]
        assert "cs3" not in node.held
        # Its next connection here starts from the stored state, not the stale core.
        await node.admit("CS3", "link-4")
        assert seam.forgotten[-1] == "CS3"
        await node.stop()
