"""A CSMS on asyncio or trio writes what one pass over the ready sockets produced after
the pass (docs/adapters.md, "Concurrency, per adapter"). Nothing may be lost or stuck that
way: answers that meet a full socket go out once the peer reads, and a socket closed in
the same pass closes after what was written before it."""

from __future__ import annotations

import importlib
import os
import struct
from typing import Any

import anyio
import pytest

from ocpp_sansio.adapters import ServerOptions, WsOptions
from ocpp_sansio.apps.demo_csms import DemoCsms
from tests._attackkit import Peer, call, frame, in_thread, slow_reader, target

ADAPTERS = ["asyncio", "trio"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_answers_that_meet_a_full_socket_arrive_once_the_peer_reads(adapter: str) -> None:
    """Every request gets one answer: a CallResult, or (sent without waiting, past
    ``max_calls_in_progress``) a CALLERROR."""
    count = 30_000  # about 1.5 MB of answers: far more than the sockets hold
    with target(adapter, ws={"ping_interval": 0}) as csms:
        peer = slow_reader(csms.port, "LATE")
        requests = b"".join(call(f"h{number}", "Heartbeat", {}) for number in range(count))
        sender = in_thread(peer.sock.sendall, requests)  # blocks while the server waits
        received = []
        for _ in range(count):
            message = peer.next_message()
            assert message is not None, f"the connection ended after {len(received)} answers"
            received.append(message[1])
        sender.join(10)
        assert sorted(received) == sorted(f"h{number}" for number in range(count))
        peer.close()


def _server_fd(link: Any) -> int:
    """The descriptor of the server's side of ``link``'s socket."""
    transport = link.transport
    if hasattr(transport, "fd"):  # the trio reactor's connection
        return int(transport.fd)
    return int(transport.transport.get_extra_info("socket").fileno())  # asyncio's protocol


def _fill(fd: int) -> int:
    """Write to the (non-blocking) socket behind the server's back until it takes no more."""
    written = 0
    for size in (65536, 4096, 256, 16, 1):
        while True:
            try:
                written += os.write(fd, b"\0" * size)
            except BlockingIOError:
                break
    return written


def _answer_read(peer: Peer, message_id: str, within: float) -> bool:
    """Read whatever comes until the answer to ``message_id`` does."""
    peer.sock.settimeout(within)
    wanted = f'[3,"{message_id}"'.encode()
    seen = b""
    while wanted not in seen:
        try:
            data = peer.sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            return False
        seen = seen[-len(wanted) :] + data
    return True


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_answer_written_to_a_socket_already_full_goes_out_once_the_peer_reads(
    adapter: str,
) -> None:
    """The answer of a pass meets a socket the kernel takes nothing more of: it must wait
    for the socket to be writable, not for the next thing written to it. (The demo's flows
    answer inline, in the pass that read the request, as under ``ocpp-sansio csms``.)"""
    module = importlib.import_module(f"ocpp_sansio.adapters.{adapter}")
    demo = DemoCsms()
    options = ServerOptions(
        core_factory=demo.core, flows=demo.flows, ws_options=WsOptions(ping_interval=0)
    )

    async def main() -> None:
        async with module.serve(object(), versions=["1.6"], options=options) as server:
            peer = await anyio.to_thread.run_sync(slow_reader, server.port, "LATE")
            (link,) = server.links
            # No checkpoint from here until the answer is written: the Heartbeat waits
            # to be read, and the socket the answer goes to is full.
            peer.sock.sendall(call("beat", "Heartbeat", {}))
            assert _fill(_server_fd(link)) > 0
            answered = await anyio.to_thread.run_sync(_answer_read, peer, "beat", 5.0)
            peer.close()
            assert answered

    anyio.run(main, backend=adapter)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_answer_to_a_close_goes_out_before_the_socket_closes(adapter: str) -> None:
    """The station closes: our close frame, written in the pass that ends the
    connection, reaches it before the end of the stream."""
    with target(adapter, ws={"ping_interval": 0}) as csms:
        peer = Peer(csms.port, "BYE")
        peer.boot()
        peer.sock.sendall(frame(struct.pack("!H", 1000) + b"bye", 0x8))
        assert peer.next_message() is None  # the server's close frame, then the end
        assert getattr(peer, "close_code", None) == 1000
        assert peer.closed_within(5.0)
        peer.close()
