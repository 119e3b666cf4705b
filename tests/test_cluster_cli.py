"""The cluster from the command line: ``ocpp-sansio csms --cluster URL --node NAME`` node
processes (one on asyncio, one on trio) on a real nats-server, stations in this process
reaching them through a small TCP proxy, and ``ocpp-sansio call`` processes reaching every
station. One node is SIGKILLed; its stations come back on the other and calls reach them
again: nothing answered twice, no station owned twice, no 1.6 transaction id given twice.
Everything on 127.0.0.1, every wait bounded.
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
from datetime import UTC, datetime
from typing import Any

import pytest
from _adapterkit import QUIET
from _clusterkit import Proxy

from ocpp_sansio.adapters import Backoff, OcppCallError, StationOptions
from ocpp_sansio.adapters.asyncio import connect
from ocpp_sansio.adapters.cluster import CONNECTED, ClusterEngine
from ocpp_sansio.adapters.cluster.nats_engine import NatsEngine
from ocpp_sansio.adapters.cluster.nats_server import free_port
from ocpp_sansio.cli import main
from ocpp_sansio.cli.cluster import (
    EXIT_ANSWERED,
    EXIT_CALL_ERROR,
    EXIT_ENGINE_UNREACHABLE,
    EXIT_NOT_CONNECTED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
)
from ocpp_sansio.flows._store import messages_for

pytestmark = pytest.mark.anyio
FAST_RETRY = Backoff(minimum=0.1, random_range=0.2, repeat_times=2)
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ocpp_sansio.cli", *args]


class Node:
    """An ``ocpp-sansio csms --cluster`` process and the port it listens on."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, port: int) -> None:
        self.name = name
        self.process = process
        self.port = port


async def start_node(url: str, name: str, adapter: str) -> Node:
    process = await asyncio.create_subprocess_exec(
        *command(
            "csms", "--cluster", url, "--node", name, "--port", "0", "--quiet",
            "--adapter", adapter,
        ),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, f"node {name} exited with {await process.wait()}"
            found = LISTENING.search(line)
            if found:
                return Node(name, process, int(found[1]))


@contextlib.asynccontextmanager
async def nodes(url: str, *adapters: str) -> AsyncIterator[list[Node]]:
    started = await asyncio.gather(
        *(start_node(url, chr(ord("A") + n), adapter) for n, adapter in enumerate(adapters))
    )
    try:
        yield list(started)
    finally:
        for node in started:
            if node.process.returncode is None:
                node.process.kill()
            await node.process.wait()


async def call(url: str, identity: str, action: str, payload: str, *extra: str) -> Any:
    """``ocpp-sansio call``: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *command("call", "--cluster", url, identity, action, payload, *extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


class Stations:
    """The stations' side: each DataTransfer token they were sent, counted."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    async def on_request(self, station: Any, message: Any) -> Any:
        m = messages_for(station.version)
        if isinstance(message, m.DataTransferRequest):
            self.received[str(message.data)] += 1
            if message.message_id == "slow":
                await asyncio.sleep(3)
            status = m.DataTransferStatus if station.version == "1.6" else m.DataTransferStatusEnum
            return m.DataTransferResponse(status=status("Accepted"), data=message.data)
        raise OcppCallError("NotSupported", f"{type(message).__name__} is not done here")


def boot_request(version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return m.BootNotificationRequest(charge_point_vendor="V", charge_point_model="M")
    return m.BootNotificationRequest(
        charging_station=m.ChargingStation(vendor_name="V", model="M"),
        reason=m.BootReasonEnum("PowerUp"),
    )


@contextlib.asynccontextmanager
async def stations(
    port: int, identities: list[str], versions: list[str], app: Stations
) -> AsyncIterator[list[Any]]:
    """Stations through the proxy at ``port``, connected one after the other (so the
    proxy alternates them over the nodes), each booted."""
    async with contextlib.AsyncExitStack() as stack:
        connected = []
        for identity, version in zip(identities, versions, strict=True):
            station = await stack.enter_async_context(
                connect(
                    f"ws://127.0.0.1:{port}/ocpp/{identity}",
                    version=version,
                    boot=boot_request(version),
                    on_request=app.on_request,
                    options=StationOptions(ws_options=QUIET, backoff=FAST_RETRY),
                )
            )
            await station.wait_registered()
            connected.append(station)
        yield connected


async def owners(
    engine: ClusterEngine, identities: list[str], wanted: Any, timeout: float = 20
) -> dict[str, str]:
    """Each station's owning node, once ``wanted(node)`` holds for all (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            found = {}
            for identity in identities:
                claim = await engine.owner(identity)
                found[identity] = claim.node if claim is not None else None
            if all(wanted(node) for node in found.values()):
                return {identity: str(node) for identity, node in found.items()}
            await asyncio.sleep(0.1)


async def start_transaction(station: Any, connector: int) -> int:
    m = messages_for("1.6")
    answer = await station.call(
        m.StartTransactionRequest(
            connector_id=connector, id_tag="T", meter_start=0, timestamp=datetime.now(UTC)
        )
    )
    return int(answer.transaction_id)


async def call_everyone(
    url: str, identities: list[str], sent: Counter[str], parallel: int = 4
) -> list[Any]:
    """A DataTransfer with a new token to every station, each by its own ``call`` process."""
    limit = asyncio.Semaphore(parallel)

    async def one(identity: str) -> Any:
        token = uuid.uuid4().hex
        sent[token] += 1
        payload = json.dumps({"vendorId": "test", "data": token})
        async with limit:
            status, out, err = await call(url, identity, "DataTransfer", payload)
        assert status == EXIT_ANSWERED, (identity, err)
        assert json.loads(out) == {"status": "Accepted", "data": token}
        return token

    return await asyncio.gather(*(one(identity) for identity in identities))


# --- ocpp-sansio call: answers and exit statuses -----------------------------------------------


async def test_call_prints_the_answer_and_says_what_failed_with_its_exit_status(
    nats_url: str,
) -> None:
    async with asyncio.timeout(60), nodes(nats_url, "trio") as (node,):
        app = Stations()
        async with stations(node.port, ["CLI1"], ["2.0.1"], app):
            unreachable = f"nats://127.0.0.1:{free_port()}"
            outcomes = await asyncio.gather(
                call(nats_url, "CLI1", "DataTransfer", '{"vendorId": "v", "data": "x"}'),
                call(nats_url, "cli1", "Reset", '{"type": "Immediate"}'),
                call(nats_url, "NOBODY", "Reset", '{"type": "Immediate"}'),
                call(
                    nats_url,
                    "CLI1",
                    "DataTransfer",
                    '{"vendorId": "v", "messageId": "slow"}',
                    "--timeout",
                    "1",
                ),
                call(nats_url, "CLI1", "Reset", "{not json"),
                call(nats_url, "CLI1", "Frobnicate", "{}"),
                call(nats_url, "CLI1", "Reset", '{"type": "Bogus"}', "--version", "2.0.1"),
                call(unreachable, "CLI1", "Reset", '{"type": "Immediate"}'),
            )
    statuses = [status for status, _, _ in outcomes]
    assert statuses == [
        EXIT_ANSWERED,
        EXIT_CALL_ERROR,
        EXIT_NOT_CONNECTED,
        EXIT_TIMEOUT,
        EXIT_USAGE,
        EXIT_USAGE,
        EXIT_USAGE,
        EXIT_ENGINE_UNREACHABLE,
    ]
    answered, call_error, *failures = outcomes
    assert json.loads(answered[1]) == {"status": "Accepted", "data": "x"}
    assert "CALLERROR NotSupported: ResetRequest is not done here" in call_error[2]
    for _, out, err in [call_error, *failures]:
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("ocpp-sansio call: "), err
    assert app.received == Counter({"x": 1, "None": 1})  # the slow one arrived, once


async def test_csms_cluster_misuse_and_an_unreachable_engine_are_one_line_each() -> None:
    async def csms(*args: str) -> tuple[int | None, str]:
        process = await asyncio.create_subprocess_exec(
            *command("csms", "--port", "0", *args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        return process.returncode, err.decode()

    unreachable = f"nats://127.0.0.1:{free_port()}"
    async with asyncio.timeout(40):
        outcomes = await asyncio.gather(
            csms("--cluster", unreachable, "--node", "A"),
            csms("--cluster", unreachable, "--node", "A", "--adapter", "asyncio"),
            csms("--cluster", unreachable, "--node", "A", "--adapter", "threads"),
            csms("--cluster", unreachable),
            csms("--cluster", "redis://127.0.0.1:6379", "--node", "A"),
            csms("--cluster", unreachable, "--node", "A", "--store", "x.sqlite3"),
        )
    statuses = [status for status, _ in outcomes]
    assert statuses == [1, 1, 2, 2, 2, 2]
    for _, err in outcomes:
        assert err.count("\n") == 1, err
    assert "cannot join the cluster at" in outcomes[0][1]
    assert "not threads" in outcomes[2][1]
    assert "--node NAME" in outcomes[3][1]
    assert "starts with nats://" in outcomes[4][1]
    assert "--store and --cluster" in outcomes[5][1]


# --- failover ----------------------------------------------------------------------------------


async def failover(url: str, count: int, tag: str) -> None:
    """``count`` stations (1.6 and 2.0.1) over an asyncio node A and a trio node B; calls
    from other processes reach each; A is SIGKILLed; its stations move to B, and calls
    reach every station again."""
    engine = await NatsEngine.connect(url)
    try:
        async with nodes(url, "asyncio", "trio") as (node_a, node_b):
            proxy = Proxy([node_a.port, node_b.port])
            await proxy.start()
            identities = [f"{tag}{n:03d}" for n in range(count)]
            versions = [("1.6", "1.6", "2.0.1", "2.0.1")[n % 4] for n in range(count)]
            app = Stations()
            sent: Counter[str] = Counter()
            ids: list[int] = []
            async with stations(proxy.port, identities, versions, app) as connected:
                spread = await owners(engine, identities, lambda node: node is not None)
                sixteen = [i for i, v in zip(identities, versions, strict=True) if v == "1.6"]
                assert {spread[identity] for identity in sixteen} == {"A", "B"}
                await call_everyone(url, identities, sent)
                old = [s for s, v in zip(connected, versions, strict=True) if v == "1.6"]
                ids += [await start_transaction(station, 1) for station in old]

                os.kill(node_a.process.pid, signal.SIGKILL)
                await node_a.process.wait()
                await owners(engine, identities, lambda node: node == "B")
                for station in connected:
                    await station.wait_connected()
                    await station.wait_registered()
                ids += [await start_transaction(station, 2) for station in old]
                await call_everyone(url, identities, sent)
            await proxy.stop()

        # Nothing answered twice, nothing unanswered.
        assert app.received == Counter(dict.fromkeys(sent, 1))
        # 1.6 transaction ids from both nodes, never the same twice.
        assert len(set(ids)) == len(ids) == 2 * versions.count("1.6")
        # No station owned twice: each of its connections (epochs) admitted by one node,
        # and every station that was A's came back on B.
        admitted: dict[tuple[str, int], list[str]] = {}
        async with asyncio.timeout(20):
            while len(admitted) < count + list(spread.values()).count("A"):
                for delivery in await engine.fetch("failover-test", 100, 0.5):
                    event = delivery.event
                    if event.kind == CONNECTED and event.identity in identities:
                        admitted.setdefault((event.identity, event.epoch), []).append(event.node)
                    await delivery.ack()
        assert all(len(nodes_) == 1 for nodes_ in admitted.values()), admitted
        for identity, first in spread.items():
            epochs = sorted(e for i, e in admitted if i == identity)
            expected = [first] if first == "B" else ["A", "B"]
            assert [admitted[(identity, e)][0] for e in epochs] == expected
    finally:
        await engine.close()


async def test_failover_of_cli_nodes_sigkill_one_stations_move_calls_reach_them(
    nats_url: str,
) -> None:
    async with asyncio.timeout(60):
        await failover(nats_url, 8, "FC")


@pytest.mark.slow
async def test_failover_of_cli_nodes_with_more_stations(nats_url: str) -> None:
    async with asyncio.timeout(300):
        await failover(nats_url, 40, "FS")


@pytest.mark.parametrize(
    "argv",
    [
        ["call", "--cluster", "nats://127.0.0.1:4222", "CS1", "Reset", "{}"],
        ["csms", "--cluster", "nats://127.0.0.1:4222", "--node", "A"],
    ],
)
def test_without_the_cluster_extra_the_command_names_it_in_one_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "nats", None)  # as if nats-py were not installed
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'ocpp-sansio[cluster]'" in err
