"""How many stations can one CSMS process hold, how fast do they boot, how many requests a
second does it answer? The demo CSMS and our adapters against a CSMS written with the
``ocpp`` package and ``websockets``, under the same load generator, in the same run.

Three kinds of process, all on loopback:

* the CSMS under test, one of: ``demo-asyncio`` / ``demo-trio``, the real demo CSMS
  (``ocpp-sansio csms --quiet --adapter ...``: its cores, flows hosted, its answers);
  ``trio``, ``asyncio``, ``threads`` (``--serve KIND``: our adapters with a bare handler
  that accepts every boot and answers heartbeats); ``ocpp`` (the ``ocpp`` package's
  ``ChargePoint`` on ``websockets``, handlers for the same two actions, the Heartbeat's
  with ``skip_schema_validation=True``, its fastest setting). ``KIND@PATH`` runs KIND from
  the source tree at PATH (put first on ``PYTHONPATH``): a before/after in the same run;
* the load generator (``--generate``), a lean client of its own on uvloop when it is
  installed (asyncio's loop otherwise): it opens N
  WebSocket connections (subprotocol ocpp1.6, no compression), boots every station, then
  each station sends Heartbeat, waits for the answer and sends the next (one outstanding
  CALL per station, as OCPP requires) for ``--seconds``. It masks frames with a zero key,
  so masking costs it nothing, parses only frame headers and reads into one shared
  buffer: it must not be the bottleneck. At most ``--connecting`` handshakes are in
  flight at once, so the kernel's listen backlog is not what the boot storm measures;
* this orchestrator: starts each CSMS, reads its memory from /proc (VmRSS after start-up,
  after the boot storm, and VmHWM, the peak), its CPU time and the time it spent runnable
  but waiting for a CPU (``/proc/PID/schedstat``), runs the generator, prints a table and
  the figures as JSON. During the saturated window busy + waiting should be about 1 (the
  CSMS always had work); busy alone below 1 means other processes took part of a core.

Pings are off on every server (a 10 s run would only measure their timers). The threads
adapter runs a thread per connection that wakes every 50 ms; it is measured at
``--threads-stations`` (default: at most 1,000). ``--pin`` puts the CSMS on CPU 0 and the
generator on CPU 1. ``--rounds N`` measures every CSMS N times, interleaved, and gives each
round's ratios to that round's ``ocpp`` CSMS (the machine's load varies between rounds).

Run (quick): ``python benchmarks/csms_scale.py --stations 1000``
The figure:  ``python benchmarks/csms_scale.py --stations 10000 --pin --rounds 2``
One adapter: ``python benchmarks/csms_scale.py --adapter trio`` (demo-trio against ocpp)
Figures and their discussion: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

HERE = os.path.abspath(__file__)
#: What ``--servers`` takes (each may end in ``@PATH``: run from the source tree at PATH).
SERVERS = ("demo-asyncio", "demo-trio", "ocpp", "asyncio", "trio", "threads")
#: What ``--serve`` runs in this script (the demo CSMS runs as the ``ocpp-sansio`` command).
OWN_SERVERS = ("trio", "asyncio", "threads", "ocpp")
ADAPTERS = ("asyncio", "trio")
VERSION = "1.6"
BOOT = b'[2,"boot","BootNotification",{"chargePointVendor":"bench","chargePointModel":"scale"}]'


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one (a connection is one fd)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the servers under test ----------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class _OurHandler:
    """Accepts every boot, answers heartbeats (the same two answers the ocpp CSMS gives)."""

    def __init__(self) -> None:
        from ocpp_sansio.messages import v16

        self.m = v16
        self.accepted = v16.RegistrationStatus("Accepted")

    def answer(self, request: Any) -> Any:
        m = self.m
        if type(request) is m.HeartbeatRequest:
            return m.HeartbeatResponse(current_time=_now())
        if type(request) is m.BootNotificationRequest:
            return m.BootNotificationResponse(
                status=self.accepted, current_time=_now(), interval=300
            )
        raise ValueError(type(request).__name__)


class _AsyncHandler(_OurHandler):
    async def on_request(self, session: Any, request: Any) -> Any:
        return self.answer(request)


class _ThreadHandler(_OurHandler):
    def on_request(self, session: Any, request: Any) -> Any:
        return self.answer(request)


def _announce(port: int) -> None:
    print(f"port {port}", flush=True)


def serve(kind: str) -> None:
    """Run the CSMS ``kind`` on a free loopback port until stdin closes."""
    raise_fd_limit()
    if kind == "ocpp":
        asyncio.run(_serve_ocpp())
        return
    from ocpp_sansio.adapters import ServerOptions, WsOptions

    options = ServerOptions(ws_options=WsOptions(ping_interval=0), backlog=4096)
    if kind == "threads":
        from ocpp_sansio.adapters import threads

        with threads.serve(_ThreadHandler(), versions=[VERSION], options=options) as server:
            _announce(server.port)
            sys.stdin.read()
        return
    import anyio

    module = __import__(f"ocpp_sansio.adapters.{kind}", fromlist=["serve"])

    async def main() -> None:
        async with module.serve(_AsyncHandler(), versions=[VERSION], options=options) as server:
            _announce(server.port)
            await anyio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)

    anyio.run(main, backend=kind)


async def _serve_ocpp() -> None:
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action, RegistrationStatus
    from websockets.asyncio.server import serve as ws_serve

    def stamp() -> str:
        return _now().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    class Csms(ChargePoint):  # type: ignore[misc]
        @on(Action.boot_notification)
        def on_boot(self, **_: Any) -> Any:
            return call_result.BootNotification(
                current_time=stamp(), interval=300, status=RegistrationStatus.accepted
            )

        @on(Action.heartbeat, skip_schema_validation=True)
        def on_heartbeat(self, **_: Any) -> Any:
            return call_result.Heartbeat(current_time=stamp())

    async def handler(ws: Any) -> None:
        await Csms(ws.request.path.rsplit("/", 1)[-1], ws).start()

    import logging

    logging.getLogger("ocpp").setLevel(logging.WARNING)
    # The generator aborts its connections at the end: not errors worth a traceback each.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    async with ws_serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ping_interval=None,
        compression=None,
        backlog=4096,
    ) as server:
        _announce(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# --- the load generator --------------------------------------------------------------------------


def _frame(payload: bytes) -> bytes:
    """A masked client text frame; the zero mask key leaves the payload as it is."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + length.to_bytes(8, "big")
    return header + b"\x00\x00\x00\x00" + payload


class _Run:
    """What the generator counts."""

    def __init__(self, stations: int) -> None:
        self.stations = stations
        self.accepted = 0
        self.failed = 0
        self.all_accepted = asyncio.get_running_loop().create_future()
        self.heartbeating = False
        self.measuring = False
        self.answered = 0
        self.latencies: list[float] = []
        #: Latencies of the paced phase (a fixed, light request rate).
        self.paced: list[float] | None = None

    def settled(self) -> None:
        if self.accepted + self.failed >= self.stations and not self.all_accepted.done():
            self.all_accepted.set_result(None)


#: What every generator connection reads into (asyncio's plain ``recv`` allocates 256 KiB
#: per read, which would make the generator as costly as the CSMS it measures).
_READ_BUFFER = memoryview(bytearray(65536))


class _Station(asyncio.BufferedProtocol):
    def __init__(self, run: _Run, identity: str, port: int, connected: asyncio.Future[None]):
        self.run = run
        self.loop = asyncio.get_running_loop()
        self.handshake = (
            f"GET /ocpp/{identity} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
        self.connected = connected
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.booted = False
        self.sent_at = 0.0
        self.count = 0
        self.waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        self.transport.write(self.handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.booted:
            self._fail()
        self.transport = None

    def _fail(self) -> None:
        if not self.connected.done():
            self.connected.set_result(None)
        self.run.failed += 1
        self.run.settled()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self.buffer
        buffer += _READ_BUFFER[:nbytes]
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail()
                assert self.transport is not None
                self.transport.close()
                return
            del buffer[: end + 4]
            self.open = True
            self._send(BOOT)
        while len(buffer) >= 2:
            length = buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length = int.from_bytes(buffer[2:4], "big")
                start = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length = int.from_bytes(buffer[2:10], "big")
                start = 10
            end = start + length
            if len(buffer) < end:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start:end])
            del buffer[:end]
            if opcode == 0x1:
                self._answered(payload)
            elif opcode == 0x9:  # ping: pong with the same payload
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)

    def _send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.sent_at = self.loop.time()
        self.transport.write(_frame(payload))

    def _answered(self, payload: bytes) -> None:
        run = self.run
        if not self.booted:
            self.booted = True
            if not self.connected.done():
                self.connected.set_result(None)
            if b'"Accepted"' in payload:
                run.accepted += 1
            else:
                run.failed += 1
            run.settled()
            return
        self.waiting = False
        if run.paced is not None:
            run.paced.append(self.loop.time() - self.sent_at)
            return
        if run.measuring:
            run.answered += 1
            run.latencies.append(self.loop.time() - self.sent_at)
        if run.heartbeating:
            self.heartbeat()

    def heartbeat(self) -> None:
        if self.transport is None:
            return
        self.count += 1
        self.waiting = True
        self._send(b'[2,"%d","Heartbeat",{}]' % self.count)


def _percentile(ordered: list[float], point: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, round(point / 100 * len(ordered)) - 1))]


async def _paced(run: _Run, protocols: list[_Station], rate: float, seconds: float) -> None:
    """Heartbeats at ``rate`` a second in all, from idle stations in turn: the latency
    of a CSMS that is not saturated."""
    loop = asyncio.get_running_loop()
    booted = [station for station in protocols if station.booted]
    if not booted:
        return
    run.paced = []
    started = loop.time()
    sent = 0
    turn = 0
    while (elapsed := loop.time() - started) < seconds:
        for _ in range(int(rate * elapsed) - sent):
            for _ in range(len(booted)):
                station = booted[turn % len(booted)]
                turn += 1
                if not station.waiting:
                    station.heartbeat()
                    break
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.sleep(1.0)  # the last answers


async def _generate(
    port: int, stations: int, seconds: float, connecting: int, rate: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = _Run(stations)
    gate = asyncio.Semaphore(connecting)
    protocols: list[_Station] = []

    async def open_one(number: int) -> None:
        async with gate:
            connected: asyncio.Future[None] = loop.create_future()
            station = _Station(run, f"S{number:05d}", port, connected)
            protocols.append(station)
            try:
                await loop.create_connection(lambda: station, "127.0.0.1", port)
            except OSError:
                station._fail()
                return
            await connected  # handshake done and boot answered (or failed)

    started = loop.time()
    openers = [asyncio.ensure_future(open_one(n)) for n in range(stations)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(run.all_accepted), timeout=max(60.0, stations / 50))
    storm = loop.time() - started
    print(f"booted {run.accepted} {storm:.3f}", flush=True)
    for opener in openers:
        opener.cancel()
    await asyncio.gather(*openers, return_exceptions=True)

    await _paced(run, protocols, rate, min(5.0, seconds))
    paced = sorted(run.paced or [])
    run.paced = None
    run.heartbeating = True
    for station in protocols:
        if station.booted:
            station.heartbeat()
    await asyncio.sleep(min(2.0, seconds / 4))  # warm-up, not measured
    print("window start", flush=True)
    run.measuring = True
    cpu_before = time.process_time()
    measured_from = loop.time()
    await asyncio.sleep(seconds)
    run.measuring = False
    window = loop.time() - measured_from
    print("window end", flush=True)
    cpu = time.process_time() - cpu_before
    run.heartbeating = False
    ordered = sorted(run.latencies)
    for station in protocols:
        if station.transport is not None:
            station.transport.abort()
    return {
        "stations": stations,
        "accepted": run.accepted,
        "boot_storm_s": storm if run.accepted == stations else None,
        "requests_per_s": run.answered / window,
        "p50_ms": _percentile(ordered, 50) * 1e3,
        "p99_ms": _percentile(ordered, 99) * 1e3,
        "generator_cpu_share": cpu / window,
        "paced_rate": rate,
        "paced_p50_ms": _percentile(paced, 50) * 1e3,
        "paced_p99_ms": _percentile(paced, 99) * 1e3,
    }


def generate(port: int, stations: int, seconds: float, connecting: int, rate: float) -> None:
    raise_fd_limit()
    main = _generate(port, stations, seconds, connecting, rate)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(main)
        loop = "asyncio"
    else:
        result = uvloop.run(main)
        loop = "uvloop"
    result["generator_loop"] = loop
    print(json.dumps(result), flush=True)


# --- the orchestrator ----------------------------------------------------------------------------


def _proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _runqueue_seconds(pid: int) -> float | None:
    """Seconds ``pid`` has spent runnable but waiting for a CPU (None: not reported)."""
    try:
        with open(f"/proc/{pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _spawn(args: list[str], *, cpu: int | None, tree: str | None = None) -> subprocess.Popen[str]:
    """A child process (this script, or the ``ocpp-sansio`` command), on ``cpu`` if given,
    importing ``ocpp_sansio`` from ``tree`` if given."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    # -P: not the working directory first on sys.path (it would shadow ``tree``).
    process = subprocess.Popen(
        [sys.executable, "-P", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(process.pid, {cpu})
    return process


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    for line in process.stdout:
        yield line.rstrip("\n")


def _start_server(kind: str, cpu: int | None) -> tuple[subprocess.Popen[str], int]:
    """Start CSMS ``kind`` (``NAME[@TREE]``); the process and its port."""
    name, _, tree = kind.partition("@")
    if name.startswith("demo-"):
        adapter = name.removeprefix("demo-")
        command = ["-m", "ocpp_sansio.cli", "csms", "--quiet", "--adapter", adapter]
        server = _spawn([*command, "--host", "127.0.0.1", "--port", "0"], cpu=cpu, tree=tree)
    else:
        server = _spawn([HERE, "--serve", name], cpu=cpu, tree=tree)
    for line in _lines(server):
        if line.startswith("port "):  # ours
            return server, int(line.split()[1])
        if line.startswith("CSMS listening on ws://"):  # the ocpp-sansio command's
            return server, int(line.split()[3].split(":")[2].split("/")[0])
    raise RuntimeError(f"{kind} exited before listening")


def _stop_server(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()  # (the ``--serve`` ones stop when stdin closes)
    if "ocpp_sansio.cli" in server.args:
        server.send_signal(signal.SIGINT)  # the ocpp-sansio command stops on it, in order
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def measure(
    kind: str, stations: int, seconds: float, connecting: int, rate: float, pin: bool
) -> dict[str, Any]:
    server, port = _start_server(kind, 0 if pin else None)
    try:
        time.sleep(0.5)
        baseline = _proc_kib(server.pid, "VmRSS")
        cpu_at_start = _cpu_seconds(server.pid)
        generator = _spawn(
            [
                HERE,
                "--generate",
                "--port",
                str(port),
                "--stations",
                str(stations),
                "--seconds",
                str(seconds),
                "--connecting",
                str(connecting),
                "--paced-rate",
                str(rate),
            ],
            cpu=1 if pin else None,
        )
        generated = _lines(generator)
        booted = next(generated)
        boot_cpu = _cpu_seconds(server.pid) - cpu_at_start
        after_boot = _proc_kib(server.pid, "VmRSS")
        assert next(generated) == "window start"
        cpu_before = _cpu_seconds(server.pid)
        waited_before = _runqueue_seconds(server.pid)
        assert next(generated) == "window end"
        cpu = _cpu_seconds(server.pid) - cpu_before
        waited_after = _runqueue_seconds(server.pid)
        result = json.loads(next(generated))
        generator.wait(60)
        peak = _proc_kib(server.pid, "VmHWM")
    finally:
        _stop_server(server)
    accepted = result["accepted"]
    result.update(
        server=kind,
        booted_line=booted,
        rss_baseline_mib=baseline / 1024,
        rss_after_boot_mib=after_boot / 1024,
        rss_peak_mib=peak / 1024,
        rss_per_connection_kib=(after_boot - baseline) / accepted if accepted else None,
        server_cpu_ms_per_boot=boot_cpu / accepted * 1e3 if accepted else None,
        server_cpu_us_per_request=(
            cpu / (result["requests_per_s"] * seconds) * 1e6 if result["requests_per_s"] else None
        ),
        # Saturated means busy + waiting for a CPU ≈ 1: the CSMS always had work.
        server_cpu_share=cpu / seconds,
        server_runqueue_share=(
            (waited_after - waited_before) / seconds
            if waited_before is not None and waited_after is not None
            else None
        ),
    )
    return result


def _cell(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| CSMS | round | stations | accepted | boot storm (s) | CPU/boot (ms) | requests/s "
        "| CPU/request (µs) | CSMS busy / waiting for a CPU | p50 / p99 saturated (ms) "
        "| p50 / p99 paced (ms) | peak RSS (MiB) | RSS/connection (KiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['server']} | {r['round']} | {r['stations']} | {r['accepted']} "
            f"| {_cell(r['boot_storm_s'], '.2f')} | {_cell(r['server_cpu_ms_per_boot'], '.2f')} "
            f"| {r['requests_per_s']:.0f} | {_cell(r['server_cpu_us_per_request'], '.0f')} "
            f"| {r['server_cpu_share']:.2f} / {_cell(r['server_runqueue_share'], '.2f')} "
            f"| {r['p50_ms']:.0f} / {r['p99_ms']:.0f} "
            f"| {r['paced_p50_ms']:.1f} / {r['paced_p99_ms']:.1f} "
            f"| {r['rss_peak_mib']:.0f} | {_cell(r['rss_per_connection_kib'], '.1f')} |"
        )
    return "\n".join(lines)


# --- where the CPU goes, in process --------------------------------------------------------------


def _cpu_per_call(fn: Any, count: int) -> float:
    """Microseconds of CPU per call of ``fn(i)``, best of three rounds."""
    best = float("inf")
    for round_ in range(3):
        started = time.process_time()
        for i in range(count):
            fn(round_ * count + i)
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def breakdown(count: int = 2000) -> dict[str, float]:
    """CPU per step of a boot and of a heartbeat on our CSMS side, without sockets or an
    event loop: what the WebSocket layer (wsproto, h11), the core and the driver cost."""
    from ocpp_sansio import decode_frame, encode_frame
    from ocpp_sansio.adapters._driver import Driver
    from ocpp_sansio.adapters._ws import ServerPolicy, ServerWebSocket, WsOptions
    from ocpp_sansio.csms import CsmsCore
    from ocpp_sansio.frames import CallResult

    policy = ServerPolicy(versions=(VERSION,), options=WsOptions(ping_interval=0))
    request = (
        b"GET /ocpp/S HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    handler = _OurHandler()
    kept: list[Any] = []

    def handshake(_: int) -> Any:
        ws = ServerWebSocket(policy, 0.0)
        ws.receive_data(request, 0.0)
        ws.data_to_send()
        ws.events()
        return ws

    def answer(driver: Any, ws: Any, frame: bytes, now: float) -> None:
        driver.receive(ws, frame, now)
        for generation, call in driver.take_requests():
            driver.answer(generation, call.message_id, handler.answer(call.request), now)
        driver.flush()
        driver.take_events()
        driver.next_deadline(ws)
        ws.data_to_send()

    def boot(i: int) -> None:
        ws = handshake(i)
        driver = Driver(CsmsCore(VERSION, f"S{i}"))
        driver.attach(ws, 0.0)
        answer(driver, ws, _frame(BOOT), 0.0)
        kept.append(driver)

    ws = handshake(0)
    driver = Driver(CsmsCore(VERSION, "S"))
    driver.attach(ws, 0.0)
    answer(driver, ws, _frame(BOOT), 0.0)
    heartbeats = [_frame(b'[2,"%d","Heartbeat",{}]' % i) for i in range(3 * count)]

    def heartbeat(i: int) -> None:
        answer(driver, ws, heartbeats[i], 1.0 + i * 1e-3)

    def codec(i: int) -> None:
        frame: Any = decode_frame(f'[2,"{i}","Heartbeat",{{}}]', VERSION)
        response = handler.answer(frame.payload)
        encode_frame(CallResult(message_id=frame.message_id, payload=response))

    result = {
        "handshake_us": _cpu_per_call(handshake, count),
        "boot_with_handshake_us": _cpu_per_call(boot, count),
        "heartbeat_us": _cpu_per_call(heartbeat, count),
        "heartbeat_codec_only_us": _cpu_per_call(codec, count),
    }
    kept.clear()
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def ratios(results: list[dict[str, Any]]) -> list[str]:
    """Each CSMS's requests/s over the ``ocpp`` CSMS's of the same round, and per CPU
    second (what the ratio would be had each had a core to itself); medians over rounds."""
    by_kind: dict[str, list[tuple[float, float | None]]] = {}
    for round_ in sorted({r["round"] for r in results}):
        measured = [r for r in results if r["round"] == round_]
        theirs = [r for r in measured if r["server"].partition("@")[0] == "ocpp"]
        if not theirs or not theirs[0]["requests_per_s"]:
            continue
        base = theirs[0]
        for r in measured:
            if r is base:
                continue
            ratio = r["requests_per_s"] / base["requests_per_s"]
            per_cpu = None
            if r["server_cpu_us_per_request"] and base["server_cpu_us_per_request"]:
                per_cpu = base["server_cpu_us_per_request"] / r["server_cpu_us_per_request"]
            r["ratio_to_ocpp"], r["ratio_to_ocpp_per_cpu"] = ratio, per_cpu
            by_kind.setdefault(r["server"], []).append((ratio, per_cpu))
    lines = []
    for kind, pairs in by_kind.items():
        line = f"{kind}: {_median([p[0] for p in pairs]):.2f}x the ocpp package's requests/s"
        per_cpu = [p[1] for p in pairs if p[1] is not None]
        if per_cpu:
            line += f", {_median(per_cpu):.2f}x per CPU second"
        if len(pairs) > 1:
            line += (
                f" (median of {len(pairs)} rounds: " + ", ".join(f"{p[0]:.2f}" for p in pairs) + ")"
            )
        lines.append(line)
    return lines


def _load() -> str:
    with contextlib.suppress(OSError), open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=1000, help="stations per CSMS")
    parser.add_argument(
        "--threads-stations",
        type=int,
        help="stations for the threads adapter (default: at most 1000)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="steady-state window")
    parser.add_argument("--connecting", type=int, default=1000, help="handshakes in flight at once")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=200.0,
        help="requests/s of the paced phase that measures unsaturated latency",
    )
    parser.add_argument(
        "--servers",
        help=f"comma-separated, out of {SERVERS}, each optionally NAME@SOURCE-TREE "
        "(default: demo-asyncio,demo-trio,ocpp)",
    )
    parser.add_argument(
        "--adapter",
        choices=ADAPTERS,
        help="measure the demo CSMS on this adapter only (with the ocpp CSMS)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure every CSMS this often")
    parser.add_argument(
        "--pin", action="store_true", help="the CSMS on CPU 0, the load generator on CPU 1"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="only measure, in process, the CPU of each step of a boot and a heartbeat",
    )
    parser.add_argument("--serve", choices=OWN_SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.breakdown:
        print(json.dumps(breakdown(), indent=1))
        return
    if args.generate:
        generate(args.port, args.stations, args.seconds, args.connecting, args.paced_rate)
        return
    if args.servers and args.adapter:
        parser.error("--servers or --adapter, not both")
    if args.servers:
        kinds = args.servers.split(",")
    elif args.adapter:
        kinds = [f"demo-{args.adapter}", "ocpp"]
    else:
        kinds = ["demo-asyncio", "demo-trio", "ocpp"]
    for kind in kinds:
        if kind.partition("@")[0] not in SERVERS:
            parser.error(f"unknown CSMS {kind!r} (choose from {SERVERS})")
    limit = raise_fd_limit()
    if args.stations + 100 > limit:
        parser.error(f"{args.stations} stations need more than the {limit} files allowed")
    results = []
    loads = [_load()]
    for round_ in range(args.rounds):
        for kind in kinds:
            stations = args.stations
            if kind.partition("@")[0] == "threads":
                stations = args.threads_stations or min(args.stations, 1000)
            print(
                f"round {round_ + 1}: measuring {kind} with {stations} stations "
                f"(load {_load()}) ...",
                file=sys.stderr,
                flush=True,
            )
            result = measure(
                kind, stations, args.seconds, args.connecting, args.paced_rate, args.pin
            )
            result["round"] = round_ + 1
            results.append(result)
    loads.append(_load())
    print(report(results))
    for line in ratios(results):
        print(line)
    print(f"load average before / after: {loads[0]} / {loads[1]}; {os.cpu_count()} CPUs")
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"load": loads, "results": results}, out, indent=1)


if __name__ == "__main__":
    main()
