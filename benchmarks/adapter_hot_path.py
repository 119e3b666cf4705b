"""CPU per heartbeat through an adapter's whole server path, steadier than a loopback load
test: a CSMS (trio or asyncio adapter) and one raw WebSocket client in one process, the
client sending a 1.6 Heartbeat and waiting for the answer, N times, over loopback. The
figure is the whole process's CPU time per heartbeat (the client's share is the same for
every version of the adapters), best of three rounds.

Run: python benchmarks/adapter_hot_path.py trio|asyncio [--heartbeats N]
"""

from __future__ import annotations

import argparse
import socket
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from ocpp_sansio.adapters import ServerOptions, WsOptions
from ocpp_sansio.messages import v16

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HANDSHAKE = (
    b"GET /ocpp/S HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
)


class Csms:
    async def on_request(self, session: Any, request: Any) -> Any:
        if isinstance(request, v16.BootNotificationRequest):
            accepted = v16.RegistrationStatus.ACCEPTED
            return v16.BootNotificationResponse(status=accepted, current_time=NOW, interval=300)
        return v16.HeartbeatResponse(current_time=NOW)


def frame(text: str) -> bytes:
    """A masked text frame (zero mask) of a short message."""
    payload = text.encode()
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def client(port: int, heartbeats: int) -> float:
    """CPU seconds per heartbeat, best of three rounds."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(HANDSHAKE)
        sock.recv(4096)
        boot = '[2,"b","BootNotification",{"chargePointVendor":"v","chargePointModel":"m"}]'
        sock.sendall(frame(boot))
        sock.recv(4096)
        best = float("inf")
        for round_ in range(3):
            started = time.process_time()
            for number in range(heartbeats):
                sock.sendall(frame(f'[2,"{round_}-{number}","Heartbeat",{{}}]'))
                sock.recv(4096)
            best = min(best, time.process_time() - started)
    return best / heartbeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapter", choices=("trio", "asyncio"))
    parser.add_argument("--heartbeats", type=int, default=20000)
    args = parser.parse_args()
    module = __import__(f"ocpp_sansio.adapters.{args.adapter}", fromlist=["serve"])
    options = ServerOptions(ws_options=WsOptions(ping_interval=0, compression=False))
    result: list[float] = []

    async def run() -> None:
        async with module.serve(Csms(), versions=["1.6"], options=options) as server:
            result.append(await anyio.to_thread.run_sync(client, server.port, args.heartbeats))

    anyio.run(run, backend=args.adapter)
    print(f"{args.adapter}: {result[0] * 1e6:.1f} µs of CPU per heartbeat (server and client)")


if __name__ == "__main__":
    main()
