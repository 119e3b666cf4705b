"""The cluster parts of the ``ocpp-sansio`` command: ``csms --cluster URL --node NAME`` (the
demo CSMS as one node of a cluster, docs/cluster.md) and ``call --cluster URL IDENTITY
ACTION JSON`` (one CSMS-initiated call from any process).

The cluster engine is asyncio only: under the asyncio adapter it runs on the command's own
loop; under trio on an asyncio loop in a thread (``AsyncioThread``), with the node's seam
bridging the two. The ``cluster`` extra is imported only when ``--cluster`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TextIO

import anyio

from ocpp_sansio.errors import MissingExtraError, needs_extra

#: ``ocpp-sansio call`` exit statuses (docs/cli.md). Argument mistakes exit 2 as well.
EXIT_ANSWERED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_CONNECTED = 3
EXIT_CALL_ERROR = 4
EXIT_TIMEOUT = 5
EXIT_CALL_LOST = 6
EXIT_REFUSED = 7
EXIT_INVALID_ANSWER = 8
EXIT_ENGINE_UNREACHABLE = 9

#: ``RoutedCallFailed.kind`` -> exit status.
_KIND_STATUS = {
    "bad_request": EXIT_USAGE,
    "call_error": EXIT_CALL_ERROR,
    "timeout": EXIT_TIMEOUT,
    "connection_lost": EXIT_CALL_LOST,
    "refused": EXIT_REFUSED,
    "invalid_answer": EXIT_INVALID_ANSWER,
    "node_error": EXIT_FAILED,
}


def cluster_url(text: str) -> str:
    """A cluster engine URL (argparse type): ``nats://`` or ``tls://`` (NATS)."""
    if not text.startswith(("nats://", "tls://")):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a cluster URL starts with nats:// (e.g. nats://127.0.0.1:4222)"
        )
    return text


def cluster_modules() -> Any:
    """``ocpp_sansio.adapters.cluster``; MissingExtraError naming the ``cluster`` extra when
    its packages are not installed."""
    with needs_extra("cluster", needed_by="ocpp-sansio --cluster"):
        import nats  # noqa: F401  (the engine's client: say so now, not at the first call)

        from ocpp_sansio.adapters import cluster
    return cluster


class ClusterRun:
    """One command's hold on the cluster: the engine on its asyncio loop (``run(coro)``
    runs a coroutine there, from the command's adapter), and the 1.6 transaction ids the
    demo CSMS gives (unique across the cluster)."""

    def __init__(
        self,
        adapter: str,
        engine: Any,
        ids: Any,
        run: Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]],
        thread: Any,
    ) -> None:
        self.adapter = adapter
        self.engine = engine
        self.ids = ids
        self.run = run
        self.thread = thread


@contextlib.asynccontextmanager
async def joined(adapter: str, url: str, node: str) -> AsyncIterator[ClusterRun]:
    """The engine at ``url`` as node ``node`` and the id reservations, for the block.
    Raises ClusterUnavailable when the engine cannot be reached."""
    cluster = cluster_modules()
    from ocpp_sansio.adapters.cluster.ids import TRANSACTION_IDS_16, ClusterSequence

    thread: Any = None
    if adapter == "trio":
        from ocpp_sansio.adapters.cluster.trio_seam import AsyncioThread

        thread = AsyncioThread()
        run: Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]] = thread.run
    else:

        async def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
            return await coroutine

    try:
        engine = await run(cluster.connect_engine(url, node=node))
        try:
            ids = ClusterSequence(engine, TRANSACTION_IDS_16)
            await run(ids.start())
            try:
                yield ClusterRun(adapter, engine, ids, run, thread)
            finally:
                with anyio.CancelScope(shield=True):
                    await run(ids.close())
        finally:
            with anyio.CancelScope(shield=True):
                await run(engine.close())
    finally:
        if thread is not None:
            thread.close()


@contextlib.asynccontextmanager
async def node_of(run: ClusterRun, server: Any) -> AsyncIterator[Any]:
    """``server`` as a node of the cluster while the block runs: on leaving (even when
    cancelled) it releases its stations and leaves the cluster."""
    cluster = cluster_modules()
    if run.adapter == "trio":
        from ocpp_sansio.adapters.cluster.trio_seam import trio_cluster_node

        async with trio_cluster_node(server, run.engine, run.thread) as node:
            yield node
        return
    node = cluster.ClusterNode(run.engine, cluster.AsyncioSeam(server))
    await node.start()
    try:
        yield node
    finally:
        with anyio.CancelScope(shield=True):
            await node.stop()


# --- ocpp-sansio call ------------------------------------------------------------------------


def _payload(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the payload is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError('the payload must be a JSON object, e.g. \'{"type": "Immediate"}\'')
    return payload


def _check_locally(version: str, action: str, payload: dict[str, Any]) -> None:
    """With ``--version``: the action exists, is one a CSMS sends, and the payload fits
    its schema (ValueError otherwise), before anything is sent."""
    from ocpp_sansio.adapters.cluster.node import converter
    from ocpp_sansio.errors import SchemaViolation
    from ocpp_sansio.frames import registry

    try:
        found = registry(version)[action]
    except KeyError:
        raise ValueError(f"OCPP {version} has no action {action!r}") from None
    if found.request is None or found.response is None:
        raise ValueError(f"{action} is not a call a CSMS sends and waits for")
    try:
        converter(version).structure(payload, found.request)
    except SchemaViolation as error:
        raise ValueError(f"{action}: {error}") from None


def run_call(args: argparse.Namespace, out: TextIO) -> int:
    """``ocpp-sansio call``: the answer's JSON payload on ``out``, or one line on stderr
    and an exit status that says what went wrong."""
    try:
        payload = _payload(args.payload)
        if args.version:
            _check_locally(args.version, args.action, payload)
    except ValueError as error:
        return _fail(EXIT_USAGE, str(error))
    try:
        cluster = cluster_modules()
    except MissingExtraError as missing:
        return _fail(EXIT_USAGE, str(missing))
    try:
        answer = asyncio.run(_call(cluster, args, payload))
    except cluster.StationNotConnected as error:
        return _fail(EXIT_NOT_CONNECTED, f"not connected: {error}")
    except cluster.OwnerLost as error:
        return _fail(EXIT_CALL_LOST, f"call lost: {error}")
    except cluster.RoutedCallFailed as error:
        if error.kind == "call_error":
            details = f" {json.dumps(error.details)}" if error.details else ""
            return _fail(
                EXIT_CALL_ERROR, f"CALLERROR {error.error_code}: {error.description}{details}"
            )
        return _fail(
            _KIND_STATUS.get(error.kind, EXIT_FAILED), f"{error.kind}: {error.description}"
        )
    except cluster.ClusterUnavailable as error:
        return _fail(EXIT_ENGINE_UNREACHABLE, f"cluster engine unreachable: {error}")
    out.write(json.dumps(answer) + "\n")
    out.flush()
    return EXIT_ANSWERED


async def _call(cluster: Any, args: argparse.Namespace, payload: dict[str, Any]) -> Any:
    engine = await cluster.connect_engine(args.cluster)
    try:
        client = cluster.ClusterClient(engine, timeout=args.timeout)
        return await client.call_json(args.identity, args.action, payload, version=args.version)
    finally:
        await engine.close()


def _fail(status: int, message: str) -> int:
    print(f"ocpp-sansio call: {message}", file=sys.stderr)
    return status
