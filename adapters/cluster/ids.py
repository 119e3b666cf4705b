"""Numbers unique across a cluster, handed out without waiting: what OCPP 1.6 transaction
ids need when several CSMS nodes give them (a transactionId from node A must never be
one node B gave too)."""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from typing import Any

from .base import ClusterEngine, ClusterError, ClusterUnavailable

log = logging.getLogger("ocpp_sansio.adapters.cluster")

#: The sequence the 1.6 transaction ids of a cluster come from.
TRANSACTION_IDS_16 = "transaction-ids-1.6"


class ClusterSequence:
    """``next_id()`` returns numbers of the cluster-wide sequence ``name`` that no other
    process of the cluster ever gets. A sans-IO flow asks for one while it answers (a
    1.6 StartTransaction) and cannot wait for the engine, so the numbers are reserved
    ahead in blocks of ``block`` (``engine.allocate``): ``start()`` reserves two, and each
    time one is used up the next is reserved in the background. ``next_id()`` may be called
    from any thread; the reservations run on the loop ``start()`` ran on.

    A node that restarts reserves new blocks: the rest of its old ones is never used, so
    numbers grow with gaps, never repeat.
    """

    def __init__(self, engine: ClusterEngine, name: str, *, block: int = 1000) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.engine = engine
        self.name = name
        self.block = block
        #: Reserved ranges not used up yet: [next, end) each.
        self._ranges: collections.deque[list[int]] = collections.deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reserving = False
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Reserve the first two blocks (ClusterUnavailable when the engine cannot)."""
        self._loop = asyncio.get_running_loop()
        for _ in range(2):
            await self._reserve_once()

    def next_id(self) -> int:
        """The next number; ClusterUnavailable when every reserved one is used and the
        engine has not given more yet (``block`` numbers taken within one reservation)."""
        with self._lock:
            if not self._ranges:
                self._reserve_soon()
                raise ClusterUnavailable(
                    f"{self.name}: no number reserved; the cluster engine has not answered"
                )
            current = self._ranges[0]
            number = current[0]
            current[0] += 1
            if current[0] == current[1]:
                self._ranges.popleft()
                self._reserve_soon()
            return number

    __call__ = next_id

    def _reserve_soon(self) -> None:
        """(under the lock) Reserve one more block on the engine's loop, once at a time."""
        if self._reserving or self._loop is None:
            return
        self._reserving = True
        self._loop.call_soon_threadsafe(self._spawn_reserve)

    def _spawn_reserve(self) -> None:
        task = asyncio.ensure_future(self._reserve_in_background())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reserve_in_background(self) -> None:
        wait = 0.05
        try:
            while True:
                try:
                    await self._reserve_once()
                    return
                except ClusterError as error:
                    log.warning(
                        "%s: cannot reserve numbers (%s); again in %.2f s", self.name, error, wait
                    )
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 2.0)
        finally:
            with self._lock:
                self._reserving = False

    async def _reserve_once(self) -> None:
        first = await self.engine.allocate(self.name, self.block)
        with self._lock:
            self._ranges.append([first, first + self.block])

    async def close(self) -> None:
        """Stop reserving."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
