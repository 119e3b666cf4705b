"""Issue 16, findings 1 and 9, against each adapter's real server (a process of its own,
tests/_attack_target.py): hostile upgrade heads and hostile WebSocket messages cost the
server little CPU and never stall a healthy station (its Heartbeats stay under 100 ms).

The in-memory tests of the same limits, with the figures before the fixes, are in
tests/test_adapters_upgrade.py and tests/test_adapters_ws_limits.py.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from _attackkit import ADAPTERS, HealthyStation, Peer, deflate_bomb, frame, target

#: The server's CPU for the whole attack, the healthy station's boot and Heartbeats
#: included. Before the fixes: 0.87 s per whitespace head (5+ s for six), 3.1-3.4 s for one
#: deflate bomb, 3.8 s for the empty continuation frames.
CPU_BOUND = 0.5
DEFLATE_OFFER = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"


def heartbeats_go_on(healthy: HealthyStation, count: int = 10) -> None:
    """Let the healthy station time ``count`` more Heartbeats after the attack."""
    wanted = len(healthy.latencies) + count
    deadline = time.monotonic() + 10
    while len(healthy.latencies) < wanted and time.monotonic() < deadline:
        time.sleep(0.02)


def send_head(port: int, identity: str, extra: bytes) -> str:
    """Send an upgrade request with ``extra`` header lines; the server's status line, or
    "closed" when it hung up without one."""
    peer = Peer(port, identity)
    try:
        return peer.open(extra=extra) or "closed"
    except OSError:  # refused before it read everything: the connection is reset
        return "closed"
    finally:
        peer.close()


def send_all(peer: Peer, data: bytes) -> None:
    """Send what the server may stop reading part-way through (it closes on a limit)."""
    with contextlib.suppress(OSError):
        peer.sock.sendall(data)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_finding_1_whitespace_heads_cost_little_and_stall_nobody(adapter: str) -> None:
    """Six heads with a header value of 'a', 16,000 spaces, 'b', then a 60 KB one."""
    with target(adapter) as csms:
        before = csms.stats()["cpu"]  # (stats() collects garbage: not while timing)
        healthy = HealthyStation(csms.port)
        answers = [
            send_head(csms.port, f"PAD{n}", b"X-Pad: a" + b" " * 16_000 + b"b\r\n")
            for n in range(6)
        ]
        answers.append(send_head(csms.port, "PAD60", b"X-Pad: a" + b" " * 60_000 + b"b\r\n"))
        heartbeats_go_on(healthy)
        healthy.stop()
        cpu = csms.stats()["cpu"] - before
    assert all(a.startswith("HTTP/1.1 4") or a == "closed" for a in answers), answers
    assert cpu < CPU_BOUND, f"{cpu:.2f} s of CPU"


def bombed(adapter: str, payload: bytes) -> tuple[float, bool]:
    """Open a deflate connection, send ``payload`` (frames); the server's CPU for it and
    whether the server ended the connection within 10 s."""
    with target(adapter) as csms:
        peer = Peer(csms.port, "BOMBER")
        status = peer.open(extra=DEFLATE_OFFER)
        assert status.startswith("HTTP/1.1 101"), status
        before = csms.stats()["cpu"]  # (stats() collects garbage: not while timing)
        healthy = HealthyStation(csms.port)
        send_all(peer, payload)
        try:
            closed = peer.closed_within(10)
        except OSError:
            closed = True
        heartbeats_go_on(healthy)
        healthy.stop()
        cpu = csms.stats()["cpu"] - before
        peer.close()
    return cpu, closed


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_finding_9_a_1_mb_message_inflating_to_1_gib(adapter: str) -> None:
    bomb = deflate_bomb(1024)
    assert len(bomb) > 1_000_000
    cpu, closed = bombed(adapter, frame(bomb, opcode=0x1 | 0x40))  # RSV1: compressed
    assert closed
    assert cpu < CPU_BOUND, f"{cpu:.2f} s of CPU"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_finding_9_400k_empty_continuation_frames(adapter: str) -> None:
    """A text message that never ends: its first frame without FIN, then empty
    continuations. The frames-per-message limit closes it (1009) long before 400k."""
    first = bytes((0x01, 0x80 | 1)) + b"\0\0\0\0" + b"["
    empty_continuation = bytes((0x00, 0x80)) + b"\0\0\0\0"
    cpu, closed = bombed(adapter, first + empty_continuation * 400_000)
    assert closed
    assert cpu < CPU_BOUND, f"{cpu:.2f} s of CPU"
