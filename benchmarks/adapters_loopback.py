"""Loopback benchmark: is anyio as fast as native trio and asyncio under our WebSocket glue?

A load generator in its own process opens N WebSocket connections to a server in another
process; each connection sends one OCPP CALL, waits for the answer, and repeats, for a
fixed time. Servers:

* ``*-native`` / ``*-anyio``: the shared WebSocket glue (adapters/_ws.py) answering every
  text frame with a fixed CALLRESULT; only the IO layer differs (asyncio protocols or trio
  streams, against anyio streams on the same event loop). This isolates what choosing
  anyio would cost.
* ``adapter-*``: the real CSMS adapters with a handler answering Heartbeat, for context.

Run: ``python benchmarks/adapters_loopback.py [--connections 200] [--seconds 4]``, or
``--hold 2000 adapter-asyncio adapter-trio`` for the server's memory per idle connection.
Figures and the decision they led to: docs/adapters.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import anyio
import trio

from ocpp_sansio.adapters._ws import ServerPolicy, ServerWebSocket, TextReceived, WsOptions
from ocpp_sansio.testing.builders import minimal

OPTIONS = WsOptions(ping_interval=0)
POLICY = ServerPolicy(options=OPTIONS)
ANSWER = '[3,"{id}",{{"currentTime":"2025-01-01T00:00:00Z"}}]'
BOOT = (
    '[2,"boot","BootNotification",{"reason":"PowerUp",'
    '"chargingStation":{"model":"m","vendorName":"v"}}]'
)


def _answers(ws: ServerWebSocket) -> None:
    for event in ws.events():
        if isinstance(event, TextReceived):
            message_id = event.text.split('"', 2)[1]
            ws.send_text(ANSWER.format(id=message_id))


# --- echo servers: the glue over each IO layer ----------------------------------------------------


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.ws = ServerWebSocket(POLICY, 0.0)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data, 0.0)
        _answers(self.ws)
        self.transport.write(self.ws.data_to_send())


async def asyncio_native(ready: Any) -> None:
    server = await asyncio.get_running_loop().create_server(_EchoProtocol, "127.0.0.1", 0)
    ready.send(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


async def _trio_echo(stream: trio.SocketStream) -> None:
    ws = ServerWebSocket(POLICY, 0.0)
    while not ws.done:
        try:
            data = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
        ws.receive_data(data or None, 0.0)
        _answers(ws)
        out = ws.data_to_send()
        if out:
            await stream.send_all(out)


async def trio_native(ready: Any) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    ready.send(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(_trio_echo, listeners)


async def _anyio_echo(stream: Any) -> None:
    ws = ServerWebSocket(POLICY, 0.0)
    async with stream:
        while not ws.done:
            try:
                data = await stream.receive(65536)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = None
            ws.receive_data(data, 0.0)
            _answers(ws)
            out = ws.data_to_send()
            if out:
                await stream.send(out)


async def anyio_echo(ready: Any) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    ready.send(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.serve(_anyio_echo)


# --- the real adapters ---------------------------------------------------------------------


class _Csms:
    async def on_request(self, session: Any, request: Any) -> Any:
        spec = session.core.registry.for_payload(request)
        if spec.name == "BootNotification":
            return minimal(spec.response, interval=300, current_time=datetime.now(UTC))
        return minimal(spec.response, current_time=datetime.now(UTC))


async def adapter_asyncio(ready: Any) -> None:
    from ocpp_sansio.adapters.asyncio import serve

    async with serve(_Csms(), ws_options=OPTIONS) as server:
        ready.send(server.port)
        await server.serve_forever()


async def adapter_trio(ready: Any) -> None:
    from ocpp_sansio.adapters.trio import serve

    async with serve(_Csms(), ws_options=OPTIONS) as server:
        ready.send(server.port)
        await server.serve_forever()


SERVERS = {
    "asyncio-native": lambda ready: asyncio.run(asyncio_native(ready)),
    "asyncio-anyio": lambda ready: anyio.run(anyio_echo, ready, backend="asyncio"),
    "trio-native": lambda ready: trio.run(trio_native, ready),
    "trio-anyio": lambda ready: anyio.run(anyio_echo, ready, backend="trio"),
    "adapter-asyncio": lambda ready: asyncio.run(adapter_asyncio(ready)),
    "adapter-trio": lambda ready: trio.run(adapter_trio, ready),
}


def _serve(name: str, ready: Any) -> None:
    SERVERS[name](ready)


# --- the load generator --------------------------------------------------------------------


class _Station(asyncio.Protocol):
    """One connection: boot, then heartbeat after heartbeat, timing each round trip."""

    def __init__(self, number: int, latencies: list[float], opened: asyncio.Future[None]) -> None:
        import wsproto
        from wsproto.events import AcceptConnection, Request

        self._accept = AcceptConnection
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.request = Request(host="x", target=f"/ocpp/CS{number}", subprotocols=["ocpp2.0.1"])
        self.latencies = latencies
        self.opened = opened
        self.sent_at = 0.0
        self.count = 0
        self.booted = False
        self.running = True

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.ws.send(self.request))

    def data_received(self, data: bytes) -> None:
        from wsproto.events import TextMessage

        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, self._accept):
                self._send(BOOT)
            elif isinstance(event, TextMessage):
                now = time.perf_counter()
                if self.booted:
                    self.latencies.append(now - self.sent_at)
                else:
                    self.booted = True
                    self.opened.set_result(None)
                if self.running:
                    self.count += 1
                    self._send(f'[2,"{self.count}","Heartbeat",{{}}]')

    def _send(self, text: str) -> None:
        from wsproto.events import TextMessage

        self.sent_at = time.perf_counter()
        self.transport.write(self.ws.send(TextMessage(data=text)))


async def _load(port: int, connections: int, seconds: float) -> tuple[int, list[float]]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    stations = []
    for number in range(connections):
        opened: asyncio.Future[None] = loop.create_future()
        _, station = await loop.create_connection(
            lambda n=number, o=opened: _Station(n, latencies, o), "127.0.0.1", port
        )
        stations.append((station, opened))
    await asyncio.gather(*(opened for _, opened in stations))
    await asyncio.sleep(0.5)  # warm up
    latencies.clear()
    await asyncio.sleep(seconds)
    measured = list(latencies)
    for station, _ in stations:
        station.running = False
        station.transport.close()
    return len(measured), measured


def _generate(port: int, connections: int, seconds: float, results: Any) -> None:
    results.send(asyncio.run(_load(port, connections, seconds)))


def run(name: str, connections: int, seconds: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ready_out, ready_in = context.Pipe(duplex=False)
    server = context.Process(target=_serve, args=(name, ready_in), daemon=True)
    server.start()
    port = ready_out.recv()
    results_out, results_in = context.Pipe(duplex=False)
    load = context.Process(target=_generate, args=(port, connections, seconds, results_in))
    load.start()
    count, latencies = results_out.recv()
    load.join()
    server.kill()
    server.join()
    latencies.sort()
    return {
        "rps": count / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


async def _hold(port: int, connections: int, server_pid: int) -> tuple[float, float]:
    """Boot ``connections`` stations one after the other and keep them open; the server's
    RSS growth per connection (KiB) and the seconds it took."""
    loop = asyncio.get_running_loop()
    stations = []

    async def open_some(count: int) -> None:
        for _ in range(count):
            opened: asyncio.Future[None] = loop.create_future()
            number = len(stations)
            _, station = await loop.create_connection(
                lambda n=number, o=opened: _Station(n, [], o), "127.0.0.1", port
            )
            station.running = False
            stations.append(station)
            await opened

    await open_some(1)  # imports and codecs are loaded from here on
    await asyncio.sleep(0.5)
    before = _rss_kib(server_pid)
    started = time.perf_counter()
    await open_some(connections)
    took = time.perf_counter() - started
    await asyncio.sleep(1.0)
    grown = _rss_kib(server_pid) - before
    for station in stations:
        station.transport.close()
    return grown / connections, took


def _generate_hold(port: int, connections: int, server_pid: int, results: Any) -> None:
    results.send(asyncio.run(_hold(port, connections, server_pid)))


def hold(name: str, connections: int) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    ready_out, ready_in = context.Pipe(duplex=False)
    server = context.Process(target=_serve, args=(name, ready_in), daemon=True)
    server.start()
    port = ready_out.recv()
    results_out, results_in = context.Pipe(duplex=False)
    load = context.Process(target=_generate_hold, args=(port, connections, server.pid, results_in))
    load.start()
    per_connection, took = results_out.recv()
    load.join()
    server.kill()
    server.join()
    return per_connection, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="runs per server; best is kept")
    parser.add_argument("servers", nargs="*", default=list(SERVERS))
    parser.add_argument(
        "--hold",
        type=int,
        metavar="N",
        help="instead: boot N idle stations one by one, report RSS per connection",
    )
    args = parser.parse_args()
    if args.hold:
        for name in args.servers:
            per_connection, took = hold(name, args.hold)
            print(f"{name:<16} {per_connection:6.1f} KiB per connection ({took:.1f} s to boot)")
        return
    print(f"{args.connections} connections, {args.seconds} s, best of {args.rounds}")
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):  # interleaved, so a busy moment hurts every server alike
        for name in args.servers:
            result = run(name, args.connections, args.seconds)
            if name not in best or result["rps"] > best[name]["rps"]:
                best[name] = result
    print(f"{'server':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, result in best.items():
        print(f"{name:<16} {result['rps']:>9.0f} {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f}")


if __name__ == "__main__":
    main()
