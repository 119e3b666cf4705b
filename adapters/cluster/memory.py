"""An in-memory cluster engine for tests: every node of one process shares a
``MemoryCluster``, and the test injects faults (kill a node, delay its calls, lose acks).

It keeps the semantics of docs/cluster.md exactly as the NATS engine does, so one set of
tests runs against both.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import attrs

from .base import (
    Admission,
    CallRunner,
    Claim,
    ClusterUnavailable,
    DedupKey,
    Delivery,
    Fenced,
    FenceListener,
    LeaseLost,
    OwnerLost,
    RoutedCall,
    RoutedCallFailed,
    StationEvent,
    StationNotConnected,
    station_key,
)


@attrs.define
class _Record:
    node: str
    lease: str
    epoch: int
    state: dict[str, Any] | None
    released: bool = False


@attrs.define
class _Lease:
    engine: MemoryEngine
    expires: float


@attrs.define
class _Consumer:
    acked: set[int] = attrs.field(factory=set)
    #: seq -> when it was last handed out
    delivered: dict[int, float] = attrs.field(factory=dict)


@attrs.define(eq=False)
class _MemoryDelivery:
    event: StationEvent
    _cluster: MemoryCluster
    _consumer: _Consumer
    _seq: int

    async def ack(self) -> None:
        self._cluster._ack(self._consumer, self._seq)


class MemoryCluster:
    """The shared engine: ownership records, leases, the event stream, and the faults.

    ``lease_ttl``: seconds a node's lease lives without renewal; ``ack_wait``: seconds before
    an unacknowledged event is delivered again; ``clock``: the time (default: the running
    event loop's)."""

    def __init__(
        self,
        *,
        lease_ttl: float = 3.0,
        ack_wait: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.lease_ttl = lease_ttl
        self.ack_wait = ack_wait
        self._clock = clock
        self._owners: dict[str, _Record] = {}
        self._leases: dict[str, _Lease] = {}
        self._lease_ids = itertools.count(1)
        self._stream: list[StationEvent] = []
        self._stored: set[DedupKey] = set()
        self._sequences: dict[str, int] = {}
        self._fence_delays: dict[str, float] = {}
        self._consumers: dict[str, _Consumer] = {}
        self._appended = asyncio.Event()
        self._delays: dict[str, float] = {}
        self._drops: dict[str, int] = {}
        self._lost_acks = 0
        self._lost_confirms = 0

    def engine(self, node: str = "") -> MemoryEngine:
        """A handle for one process: a node's (``node`` set) or a caller's."""
        return MemoryEngine(self, node)

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # --- faults ---------------------------------------------------------------------------

    def kill(self, node: str) -> None:
        """``node`` dies at once: it answers nothing more, its lease is no longer renewed,
        and calls waiting on it fail with OwnerLost."""
        for lease in self._leases.values():
            if lease.engine.node == node:
                lease.engine._die()

    def delay(self, node: str, seconds: float) -> None:
        """Calls routed to ``node`` reach it ``seconds`` late (0: no delay)."""
        self._delays[node] = seconds

    def drop(self, node: str, count: int = 1) -> None:
        """The next ``count`` calls routed to ``node`` are lost on the way: they never
        reach it, and their callers time out."""
        self._drops[node] = self._drops.get(node, 0) + count

    def delay_fences(self, node: str, seconds: float) -> None:
        """Fence notices reach ``node`` ``seconds`` late (0: at once), so a claim that
        takes a station from it waits that long for the notice to be taken."""
        self._fence_delays[node] = seconds

    def lose_acks(self, count: int) -> None:
        """The next ``count`` consumer acks are lost: those events are delivered again."""
        self._lost_acks += count

    def lose_confirms(self, count: int) -> None:
        """The next ``count`` publishes are stored, but the publisher hears nothing back
        (ClusterUnavailable), as after a lost reply: it must publish again."""
        self._lost_confirms += count

    # --- internals shared by the handles ---------------------------------------------------

    def _alive(self, lease_id: str) -> bool:
        lease = self._leases.get(lease_id)
        return lease is not None and lease.expires > self.now() and not lease.engine._dead

    def _live_record(self, key: str) -> _Record | None:
        record = self._owners.get(key)
        if record is None or record.released or not self._alive(record.lease):
            return None
        return record

    def _append(self, event: StationEvent) -> None:
        key = event.dedup_key
        if key not in self._stored:
            self._stored.add(key)
            self._stream.append(event)
            self._appended.set()
            self._appended = asyncio.Event()

    def _ack(self, consumer: _Consumer, seq: int) -> None:
        if self._lost_acks:
            self._lost_acks -= 1
            return
        consumer.acked.add(seq)
        consumer.delivered.pop(seq, None)

    def _ready(self, consumer: _Consumer, batch: int) -> list[int]:
        now = self.now()
        out = []
        for seq in range(len(self._stream)):
            if seq in consumer.acked:
                continue
            handed = consumer.delivered.get(seq)
            if handed is None or now - handed >= self.ack_wait:
                out.append(seq)
                if len(out) == batch:
                    break
        return out


class MemoryEngine:
    """One process's handle on a ``MemoryCluster`` (see ``ClusterEngine``)."""

    def __init__(self, cluster: MemoryCluster, node: str) -> None:
        self.cluster = cluster
        self.node = node
        self.lease_time = cluster.lease_ttl
        self.lease: str | None = None
        self._run_call: CallRunner | None = None
        self._fenced: FenceListener | None = None
        self._dead = False
        self._closed = False
        self._running: set[asyncio.Future[dict[str, Any]]] = set()
        self._in_flight: set[asyncio.Task[None]] = set()

    def _check(self) -> None:
        if self._dead or self._closed:
            raise ClusterUnavailable(f"node {self.node!r} cannot reach the engine")

    def _die(self) -> None:
        self._dead = True
        for future in list(self._running):
            if not future.done():
                future.set_exception(OwnerLost(f"node {self.node!r} went away before it answered"))

    # --- membership -----------------------------------------------------------------------

    async def join(self, run_call: CallRunner, fenced: FenceListener) -> str:
        self._check()
        cluster = self.cluster
        self.lease = f"{self.node}.{next(cluster._lease_ids)}"
        cluster._leases[self.lease] = _Lease(self, cluster.now() + cluster.lease_ttl)
        self._run_call = run_call
        self._fenced = fenced
        return self.lease

    async def renew(self) -> None:
        self._check()
        cluster = self.cluster
        if self.lease is None or not cluster._alive(self.lease):
            raise LeaseLost(f"node {self.node!r}: its lease expired")
        cluster._leases[self.lease].expires = cluster.now() + cluster.lease_ttl

    async def leave(self) -> None:
        if self.lease is not None:
            self.cluster._leases.pop(self.lease, None)
            self.lease = None
        self._run_call = None

    # --- ownership -------------------------------------------------------------------------

    def _my_lease(self) -> str:
        self._check()
        if self.lease is None:
            raise LeaseLost(f"node {self.node!r} has not joined")
        return self.lease

    async def claim(self, identity: str) -> Admission:
        lease = self._my_lease()
        cluster = self.cluster
        key = station_key(identity)
        previous = cluster._owners.get(key)
        epoch = previous.epoch + 1 if previous is not None else 1
        state = previous.state if previous is not None else None
        cluster._owners[key] = _Record(self.node, lease, epoch, state)
        claim = Claim(key, self.node, lease, epoch)
        replaced = orphaned = None
        if previous is not None and not previous.released and not cluster._alive(previous.lease):
            orphaned = Claim(key, previous.node, previous.lease, previous.epoch)
        elif previous is not None and not previous.released:
            replaced = Claim(key, previous.node, previous.lease, previous.epoch)
            holder = cluster._leases[previous.lease].engine
            if holder is not self and holder._fenced is not None and not holder._dead:
                # The claim is done once the old holder took the notice (it refuses calls
                # for the station from then on).
                delay = cluster._fence_delays.get(holder.node, 0.0)
                if delay:
                    await asyncio.sleep(delay)
                if holder._fenced is not None and not holder._dead:
                    holder._fenced(replaced)
        return Admission(claim, state, replaced, orphaned)

    def _current(self, claim: Claim) -> _Record | None:
        self._check()
        record = self.cluster._owners.get(claim.key)
        if record is None or record.epoch != claim.epoch or record.lease != claim.lease:
            return None
        return record

    async def save_state(self, claim: Claim, state: dict[str, Any]) -> None:
        record = self._current(claim)
        if record is None:
            raise Fenced(f"{claim.key}: epoch {claim.epoch} is no longer the current claim")
        record.state = state

    async def release(self, claim: Claim, state: dict[str, Any]) -> None:
        record = self._current(claim)
        if record is not None:
            record.state = state
            record.released = True

    async def owner(self, identity: str) -> Claim | None:
        self._check()
        key = station_key(identity)
        record = self.cluster._live_record(key)
        if record is None:
            return None
        return Claim(key, record.node, record.lease, record.epoch)

    # --- routing ---------------------------------------------------------------------------

    async def call(
        self, identity: str, version: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        self._check()
        retried = False
        while True:
            record = self.cluster._live_record(station_key(identity))
            if record is None:
                raise StationNotConnected(f"station {identity!r} is not connected to any node")
            try:
                return await self._route(identity, record, version, action, payload, timeout)
            except (StationNotConnected, Fenced) as error:
                # Not run on the station: safe to try once more where it is now.
                if retried:
                    raise StationNotConnected(f"station {identity!r}: {error}") from None
                retried = True

    async def _route(
        self,
        identity: str,
        record: _Record,
        version: str,
        action: str,
        payload: dict[str, Any],
        timeout: float,
    ) -> dict[str, Any]:
        target = self.cluster._leases[record.lease].engine
        key = station_key(identity)
        routed = RoutedCall(key, record.epoch, version, action, payload, timeout)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        target._running.add(future)
        # In flight now: like a message already sent, it reaches the node even if this
        # caller stops waiting.
        runner = asyncio.ensure_future(target._answer(routed, future))
        target._in_flight.add(runner)
        runner.add_done_callback(target._in_flight.discard)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise RoutedCallFailed(
                "timeout", f"node {record.node!r} did not answer within {timeout} s"
            ) from None
        finally:
            target._running.discard(future)

    async def _answer(self, routed: RoutedCall, future: asyncio.Future[dict[str, Any]]) -> None:
        drops = self.cluster._drops
        if drops.get(self.node):
            drops[self.node] -= 1
            return  # lost on the way: nobody answers
        delay = self.cluster._delays.get(self.node, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if self._dead or self._run_call is None:
            if not future.done():
                future.set_exception(OwnerLost(f"node {self.node!r} went away"))
            return
        try:
            answer = await self._run_call(routed)
        except (StationNotConnected, Fenced, RoutedCallFailed) as error:
            if not future.done():
                future.set_exception(error)
            return
        except Exception as error:
            if not future.done():
                future.set_exception(RoutedCallFailed("node_error", repr(error)))
            return
        if not future.done():
            future.set_result(answer)

    # --- events ----------------------------------------------------------------------------

    async def publish(self, event: StationEvent) -> None:
        self._check()
        cluster = self.cluster
        cluster._append(event)
        if cluster._lost_confirms:
            cluster._lost_confirms -= 1
            raise ClusterUnavailable("the engine's confirmation of a publish was lost")

    async def allocate(self, name: str, count: int) -> int:
        self._check()
        sequences = self.cluster._sequences
        first = sequences.get(name, 0) + 1
        sequences[name] = first + count - 1
        return first

    async def fetch(self, consumer: str, batch: int, timeout: float) -> list[Delivery]:
        self._check()
        cluster = self.cluster
        state = cluster._consumers.setdefault(consumer, _Consumer())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ready = cluster._ready(state, batch)
            if ready or loop.time() >= deadline:
                break
            wait = min(deadline - loop.time(), cluster.ack_wait / 4)
            try:
                async with asyncio.timeout(wait):
                    await cluster._appended.wait()
            except TimeoutError:
                pass
        now = cluster.now()
        out: list[Delivery] = []
        for seq in ready:
            state.delivered[seq] = now
            out.append(_MemoryDelivery(cluster._stream[seq], cluster, state, seq))
        return out

    async def close(self) -> None:
        await self.leave()
        self._closed = True
