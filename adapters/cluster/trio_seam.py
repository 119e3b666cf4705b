"""The cluster layer on the trio adapter's server.

The engine (nats-py) is asyncio only, so the engine and the ``ClusterNode`` run on an
asyncio loop in a thread of their own (``AsyncioThread``), and ``TrioSeam`` carries what
crosses between that loop and the trio run. It uses the same public hooks of the server as
``AsyncioSeam`` (``server.admission``, ``server.add_observer_flows``) and waits for each
connection's end with ``link_finished``.

What keeps it free of deadlocks: the asyncio thread never waits for trio (what the node asks
of the server is queued into the trio run with its token, and a routed call's answer comes
back as a callback on the loop); trio waits for the loop only without blocking (a claim),
except for ``prepare``, which must finish before a new core's first message and takes
microseconds on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import CallLostError, needs_extra
from ocpp_sansio.events import Event

with needs_extra("trio", needed_by="ocpp_sansio.adapters.cluster.trio_seam"):
    import trio

from .._skeleton import Link
from .._ws import identity_key
from ..trio import CsmsServer, CsmsSession, link_finished
from ._seam import LinkSeam
from .base import ClusterEngine
from .node import ClusterNode, log

T = TypeVar("T")
#: How long a new core waits for the node to prepare it (the loop is idle in microseconds).
PREPARE_TIMEOUT = 10.0


class AsyncioThread:
    """An asyncio event loop in a daemon thread, for trio code: ``await run(coroutine)``
    runs the coroutine on that loop and waits for it without blocking the trio run (a
    cancelled wait cancels the coroutine)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="ocpp-sansio cluster loop", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await _wait(future)

    def run_blocking(self, function: Callable[..., T], *args: Any, timeout: float) -> T:
        """``function(*args)`` on the loop; this thread waits for it (briefly: see above)."""

        async def call() -> T:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _wait(future: concurrent.futures.Future[T]) -> T:
    """The outcome of a future completed in another thread, awaited in trio."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: Any) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    try:
        await done.wait()
    except BaseException:
        future.cancel()
        raise
    return future.result()


class _Tap:
    """The node's tap, on the trio side: hands each event to the node's own tap on the
    loop, in order, and keeps nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, inner: Any) -> None:
        self.loop = loop
        self.inner = inner

    def handle_event(self, event: Event, now: float) -> bool:
        self.loop.call_soon_threadsafe(self.inner.handle_event, event, now)
        return False


class TrioSeam(LinkSeam):
    """``ServerSeam`` for ``ocpp_sansio.adapters.trio.serve()``'s server, with the node on
    ``thread``'s loop. Make it inside the trio run; ``nursery`` runs its tasks (watching
    connections, routed calls)."""

    def __init__(self, server: CsmsServer, thread: AsyncioThread, nursery: trio.Nursery) -> None:
        self.server = server
        self.thread = thread
        self.loop = thread.loop
        self.nursery = nursery
        self.token = trio.lowlevel.current_trio_token()

    def _in_trio(self, function: Callable[..., Any], *args: Any) -> None:
        """Queue ``function(*args)`` into the trio run (nothing once the run has ended).
        What it raises is logged: raised there, it would end the whole run."""

        def guarded() -> None:
            try:
                function(*args)
            except Exception:
                log.exception("the cluster node's request to the trio server failed")

        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(guarded)

    # --- on the loop (the node calls these) ---------------------------------------------------

    def install(self, node: ClusterNode) -> None:
        loop = self.loop

        def observe(core: CsmsCore, flows: Sequence[Any]) -> list[Any]:
            # Before the core's first message: the loop is waited for here.
            tap = self.thread.run_blocking(_prepare, node, core, flows, timeout=PREPARE_TIMEOUT)
            return [_Tap(loop, tap)]

        async def admit(identity: str, link: Link) -> Callable[[Link], None]:
            await self.thread.run(node.admit(identity, link))  # raises: closed with 1013
            self.nursery.start_soon(self._watch, node, identity, link)

            def placed(placed_link: Link) -> None:
                loop.call_soon_threadsafe(node.attached, identity, placed_link)

            return placed

        self.server.add_observer_flows(observe)
        self.server.admission = admit

    async def _watch(self, node: ClusterNode, identity: str, link: Link) -> None:
        await link_finished(link)
        self.loop.call_soon_threadsafe(node.link_closed, identity, link)

    def forget_session(self, identity: str) -> None:
        self._in_trio(self.server.sessions.pop, identity_key(identity), None)

    async def call(self, link: Link, request: Any) -> Any:
        answer: asyncio.Future[Any] = self.loop.create_future()

        def settle(response: Any, error: BaseException | None) -> None:
            if answer.done():
                return  # the node stopped waiting
            if error is None:
                answer.set_result(response)
            else:
                answer.set_exception(error)

        async def run() -> None:
            session = link.session
            if session is None or session.link is not link or not isinstance(session, CsmsSession):
                error: BaseException = CallLostError(
                    "the station's connection on this node has ended"
                )
                self.loop.call_soon_threadsafe(settle, None, error)
                return
            try:
                response = await session.call(request)
            except Exception as failed:
                self.loop.call_soon_threadsafe(settle, None, failed)
            except BaseException:
                lost = CallLostError("the CSMS is stopping")
                self.loop.call_soon_threadsafe(settle, None, lost)
                raise
            else:
                self.loop.call_soon_threadsafe(settle, response, None)

        def start() -> None:
            try:
                self.nursery.start_soon(run)
            except RuntimeError:  # the node is leaving: its nursery is closed
                lost = CallLostError("the CSMS node is stopping")
                self.loop.call_soon_threadsafe(settle, None, lost)

        try:
            self.token.run_sync_soon(start)
        except trio.RunFinishedError:
            raise CallLostError("the CSMS has stopped") from None
        return await answer

    def close(self, link: Link, code: int, reason: str) -> None:
        self._in_trio(self._close, link, code, reason)

    @staticmethod
    def _close(link: Link, code: int, reason: str) -> None:
        if not link.ws.done:
            link.close(code, reason, trio.current_time())


def _prepare(node: ClusterNode, core: CsmsCore, flows: Sequence[Any]) -> Any:
    node.prepare(core, flows)
    return node.tap(core)


@contextlib.asynccontextmanager
async def trio_cluster_node(
    server: CsmsServer, engine: ClusterEngine, thread: AsyncioThread, **node_options: Any
) -> AsyncIterator[ClusterNode]:
    """Make a running trio ``server`` a node of ``engine``'s cluster (``engine`` made on
    ``thread``'s loop) while the block runs; on leaving, the node releases its stations
    and leaves (shielded from cancellation)::

        thread = AsyncioThread()
        engine = await thread.run(connect_engine(url, node="n1"))
        async with serve(handler, host, port) as server, trio_cluster_node(server, engine, thread):
            await server.serve_forever()
    """
    async with trio.open_nursery() as nursery:
        node = ClusterNode(engine, TrioSeam(server, thread, nursery), **node_options)
        await thread.run(node.start())
        try:
            yield node
        finally:
            with trio.CancelScope(shield=True):
                await thread.run(node.stop())
            nursery.cancel_scope.cancel()
