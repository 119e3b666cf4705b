"""Attacks on a CSMS, from outside: the server runs in a process of its own
(``_attack_target.py``) so its memory, tasks, threads and descriptors can be read while raw
sockets in this process attack it, and a healthy station measures its Heartbeat latency
throughout (OCPP 1.6 over a blocking socket, independent of the adapters under test).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TARGET = Path(__file__).with_name("_attack_target.py")
ADAPTERS = ("trio", "asyncio", "threads")
#: The healthy station's bound on every Heartbeat's round trip during an attack.
LATENCY_BOUND = 0.100
MIB = 1 << 20


def upgrade(identity: str, subprotocol: str = "ocpp1.6", extra: bytes = b"") -> bytes:
    return (
        b"GET /ocpp/" + identity.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: "
        + subprotocol.encode()
        + b"\r\n"
        + extra
        + b"\r\n"
    )


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame with FIN (zero masking key: the payload stays as it is)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


def call(message_id: str, action: str, payload: dict[str, Any]) -> bytes:
    return frame(json.dumps([2, message_id, action, payload]).encode())


def deflate_bomb(inflated_mib: int) -> bytes:
    """A permessage-deflate payload (RFC 7692 §7.2.1) inflating to ``inflated_mib`` MiB of
    'a': one MiB compressed once and repeated (each piece ends byte-aligned, with the empty
    block of a sync flush, so the pieces chain), the last 0x00 0x00 0xff 0xff dropped."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(b"a" * (1 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return (piece * inflated_mib)[:-4]


BOOT_16 = {"chargePointVendor": "V", "chargePointModel": "M"}


def pings(megabytes: int) -> bytes:
    """Ping frames (125-byte payloads, each answered with a pong) making ``megabytes`` MiB."""
    ping = frame(b"p" * 125, 0x9)
    return ping * (megabytes * MIB // len(ping))


def heartbeats(count: int) -> bytes:
    """``count`` pipelined 1.6 Heartbeat calls, ids ``hb0`` …"""
    return b"".join(call(f"hb{number}", "Heartbeat", {}) for number in range(count))


def client_hello() -> bytes:
    """The first flight of a TLS client (its ClientHello), to send byte by byte."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def trickle(sock: socket.socket, data: bytes, period: float, until: float) -> bool:
    """Send ``data`` a byte every ``period`` seconds; True once the server closed (before
    ``until``, a ``time.monotonic()``), False if it was still open then."""
    sock.settimeout(period)
    for byte in data:
        if time.monotonic() >= until:
            return False
        try:
            sock.send(bytes((byte,)))
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server ends the connection within ``seconds`` (reading all)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


class Peer:
    """A raw WebSocket station on a blocking socket: it reads only when asked to.
    ``receive_buffer``: its socket's receive buffer, set before connecting (a small one
    makes what the server sends back up at once); ``tls``: over TLS, unverified."""

    def __init__(
        self,
        port: int,
        identity: str,
        *,
        timeout: float = 10.0,
        receive_buffer: int | None = None,
        tls: bool = False,
    ) -> None:
        sock = socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        self.sock = sock
        self.buffer = b""
        self.identity = identity

    def open(self, subprotocol: str = "ocpp1.6", extra: bytes = b"") -> str:
        """Send the upgrade request; the status line of the answer."""
        self.sock.sendall(upgrade(self.identity, subprotocol, extra))
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head.split(b"\r\n", 1)[0].decode()

    def next_frame(self) -> tuple[int, bytes] | None:
        """(opcode, payload) of the server's next frame; None at end of stream."""
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        size, at = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, at = int.from_bytes(buffer[2:4], "big"), 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, at = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < at + size:
            return None
        self.buffer = buffer[at + size :]
        return buffer[0] & 0x0F, buffer[at : at + size]

    def next_message(self) -> list[Any] | None:
        """The next OCPP message (pings are answered); None once the server closed."""
        while (got := self.next_frame()) is not None:
            opcode, payload = got
            if opcode == 0x1:
                message: list[Any] = json.loads(payload)
                return message
            if opcode == 0x9:
                self.sock.sendall(frame(payload, 0xA))
            if opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                return None
        return None

    def request(self, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
        self.sock.sendall(call(message_id, action, payload))
        answer = self.next_message()
        assert answer is not None and answer[1] == message_id, answer
        return answer

    def boot(self) -> None:
        status = self.open()
        assert status.startswith("HTTP/1.1 101"), status
        assert self.request("boot", "BootNotification", BOOT_16)[2]["status"] == "Accepted"

    def closed_within(self, seconds: float) -> bool:
        """True when the server ends the connection within ``seconds`` (reading all)."""
        return closed_within(self.sock, seconds)

    def send_until_stalled(self, data: bytes, stall: float = 1.0) -> int:
        """Send ``data`` without reading anything; stop once the server stops taking it
        for ``stall`` seconds, or ends the connection. The bytes sent."""
        self.sock.settimeout(stall)
        view, sent = memoryview(data), 0
        try:
            while sent < len(data):
                sent += self.sock.send(view[sent : sent + MIB])
        except OSError:  # (TimeoutError: stalled; a reset: ended)
            pass
        return sent

    def close(self) -> None:
        self.sock.close()


def slow_reader(port: int, identity: str, *, tls: bool = False) -> Peer:
    """A booted station whose socket buffers as little as the kernel allows of what the
    server sends it (a slow or hostile reader: the server's answers back up at once)."""
    peer = Peer(port, identity, receive_buffer=4096, tls=tls)
    peer.boot()
    return peer


class HealthyStation:
    """A booted 1.6 station sending a Heartbeat every ``period`` seconds in a thread and
    timing each answer, until ``stop()``."""

    def __init__(self, port: int, identity: str = "HEALTHY", period: float = 0.02) -> None:
        self.peer = Peer(port, identity)
        self.peer.boot()
        self.latencies: list[float] = []
        self.failure: BaseException | None = None
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        number = 0
        try:
            while not self._stop.wait(self._period):
                number += 1
                started = time.perf_counter()
                self.peer.request(f"hb{number}", "Heartbeat", {})
                self.latencies.append(time.perf_counter() - started)
        except BaseException as error:
            self.failure = error

    def stop(self) -> float:
        """Stop; the worst latency seen (asserting it stayed under LATENCY_BOUND)."""
        self._stop.set()
        self._thread.join(10)
        self.peer.close()
        assert self.failure is None, repr(self.failure)
        assert len(self.latencies) >= 5, self.latencies
        worst = max(self.latencies)
        assert worst < LATENCY_BOUND, f"a Heartbeat took {worst * 1e3:.0f} ms"
        return worst


class Target:
    """The CSMS process under attack."""

    def __init__(self, adapter: str, **config: Any) -> None:
        config.setdefault("server", {})
        config.setdefault("ws", {"ping_interval": 0, "close_timeout": 1})
        if os.environ.get("ATTACK_BEFORE"):  # measuring a tree without the limits
            config["server"] = _known(config["server"], "ServerOptions")
            config["ws"] = _known(config["ws"], "WsOptions")
        self.process = subprocess.Popen(
            [sys.executable, str(TARGET), json.dumps({"adapter": adapter, **config})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("port "), line + self._stderr()
        self.port = int(line.split()[1])
        self.stderr = ""
        #: The last lines the server logged (read all along: a full pipe would block it).
        self._logged: collections.deque[str] = collections.deque(maxlen=200)
        in_thread(self._read_stderr)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._logged.append(line)

    def _command(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, self._stderr()
        result: dict[str, Any] = json.loads(line)
        return result

    def logged(self) -> str:
        """What the server logged so far (its last 200 lines)."""
        return "".join(self._logged)

    def stats(self) -> dict[str, Any]:
        """VmRSS, VmHWM (KiB), tasks, threads, sessions, links, fds, cpu (s)."""
        return self._command("stats")

    def clear_sessions(self) -> None:
        self._command("clear")

    def _stderr(self) -> str:
        self.process.kill()
        self.process.wait(timeout=10)
        if hasattr(self, "_logged"):  # read by its thread
            time.sleep(0.05)
            return "".join(self._logged)
        return self.process.communicate(timeout=10)[1]

    def close(self) -> str:
        """Stop the server; what it logged."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        time.sleep(0.05)  # the reader thread's last lines
        self.stderr = "".join(self._logged)
        return self.stderr


def _known(values: dict[str, Any], cls: str) -> dict[str, Any]:
    import attrs

    from ocpp_sansio import adapters

    names = {field.name for field in attrs.fields(getattr(adapters, cls))}
    return {name: value for name, value in values.items() if name in names}


@contextlib.contextmanager
def target(adapter: str, **config: Any) -> Iterator[Target]:
    running = Target(adapter, **config)
    try:
        yield running
    finally:
        running.close()


def in_thread(function: Any, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=function, args=args, daemon=True)
    thread.start()
    return thread
