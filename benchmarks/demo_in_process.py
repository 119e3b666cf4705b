"""The demo CSMS's whole path from bytes to bytes, without sockets or a loop's IO: what a
heartbeat and a boot cost, what each message leaves behind for the cyclic garbage
collector, and what a connection holds in memory. Steadier than a loopback load test on
a shared machine: every figure is CPU time or a count.

The asyncio adapter's server is built as ``ocpp-sansio csms`` builds it (DemoCsms's core
factory and flows, pings off) and each station is a ``Link`` on a transport that keeps
nothing: bytes go in through ``Link.received`` exactly as the protocol hands them over.

* ``boot``: CPU per station for the handshake and the BootNotification;
* ``heartbeat``: CPU per Heartbeat, the stations in turn (one message each per round);
* ``survivors``: collector-tracked objects made while handling one message per station
  that are still alive after the round, per message (the youngest generation after the
  round: each lives until the station's next message, so under a real event loop, whose
  batches of reads trigger collections, the collector promotes it to the oldest
  generation, and enough of those trigger a full collection of every object; this loop
  frees what it makes message by message, so it hardly collects: the count is the figure);
* ``per_connection``: bytes allocated (tracemalloc) per booted station, and what the
  collector tracks per station.

Run: python benchmarks/demo_in_process.py [--stations N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
from typing import Any

from ocpp_sansio.adapters import ServerOptions, WsOptions
from ocpp_sansio.adapters.asyncio import CsmsServer
from ocpp_sansio.apps.demo_csms import DemoCsms


def _frame(text: str) -> bytes:
    """A masked client text frame (zero mask key)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        return bytes((0x81, 0x80 | length)) + b"\0\0\0\0" + payload
    return bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big") + b"\0\0\0\0" + payload


BOOT = _frame('[2,"b","BootNotification",{"chargePointVendor":"v","chargePointModel":"m"}]')


def _handshake(identity: str) -> bytes:
    return (
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    ).encode()


class _Transport:
    """A socket that accepts everything and keeps nothing (the last write, for checks)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = b""

    def write(self, data: Any) -> None:
        self.last = data

    def finish(self) -> None:
        raise AssertionError("the link finished")

    def arm(self, deadline: float | None) -> None:
        pass

    def peer_certificate(self) -> dict[str, Any] | None:
        return None


def _boot(server: CsmsServer, handshake: bytes, now: float) -> tuple[Any, _Transport]:
    """A new connection on ``server``: its handshake, then an accepted BootNotification."""
    transport = _Transport()
    link = server.new_link(transport)
    link.begin()
    link.received(handshake, now)
    link.received(BOOT, now)
    assert b"Accepted" in transport.last, transport.last
    return link, transport


async def _measure(stations: int, rounds: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    demo = DemoCsms()
    options = ServerOptions(
        core_factory=demo.core, flows=demo.flows, ws_options=WsOptions(ping_interval=0)
    )
    server = CsmsServer(object(), ["1.6"], options)
    identities = [f"S{number:05d}" for number in range(stations)]
    handshakes = [_handshake(identity) for identity in identities]
    heartbeats = [
        [_frame(f'[2,"{r}-{n}","Heartbeat",{{}}]') for n in range(stations)]
        for r in range(rounds + 1)
    ]
    gc.collect()
    gc.disable()
    tracked_before = len(gc.get_objects())
    tracemalloc.start()
    allocated_before = tracemalloc.get_traced_memory()[0]
    links = []
    for handshake in handshakes[: stations // 2]:
        links.append(_boot(server, handshake, loop.time()))
    gc.collect()
    allocated = tracemalloc.get_traced_memory()[0] - allocated_before
    tracemalloc.stop()
    tracked = len(gc.get_objects()) - tracked_before
    started = time.process_time()  # (the second half: without tracemalloc's cost)
    for handshake in handshakes[stations // 2 :]:
        links.append(_boot(server, handshake, loop.time()))
    boot_cpu = time.process_time() - started
    # One heartbeat each, then the survivors of a second round.
    for (link, _), frame in zip(links, heartbeats[0], strict=True):
        link.received(frame, loop.time())
    gc.collect()  # everything alive is in the oldest generation now
    for (link, _), frame in zip(links, heartbeats[1], strict=True):
        link.received(frame, loop.time())
    survivors = len(gc.get_objects(generation=0))
    best = float("inf")
    gc.enable()
    for round_ in range(2, rounds + 1):
        started = time.process_time()
        for (link, _), frame in zip(links, heartbeats[round_], strict=True):
            link.received(frame, loop.time())
        best = min(best, time.process_time() - started)
    for _, transport in links:
        assert b"currentTime" in transport.last, transport.last
    return {
        "stations": stations,
        "boot_us": boot_cpu / (stations - stations // 2) * 1e6,
        "heartbeat_us": best / stations * 1e6,
        "survivors_per_message": survivors / stations,
        "allocated_kib_per_connection": allocated / (stations // 2) / 1024,
        "tracked_objects_per_connection": tracked / (stations // 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5, help="heartbeat rounds (best taken)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_measure(args.stations, args.rounds)), indent=1))


if __name__ == "__main__":
    main()
