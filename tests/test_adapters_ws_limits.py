"""What one hostile peer can cost the WebSocket layer (adapters/_ws.py), in memory: deflate
bombs, messages in endless frames, silence. Each test states the figure it must stay under.

CPU is measured with ``time.process_time()`` (this process only, so other work on the
machine counts little); the bounds are several times what the layer needs, and many times
below what the attacks cost before these limits (noted per test).
"""

from __future__ import annotations

import time
import tracemalloc
import zlib
from typing import Any

import pytest
import wsproto
import wsproto.events as wse
import wsproto.extensions
from _attackkit import deflate_bomb

from ocpp_sansio.adapters import _ws as glue
from ocpp_sansio.adapters._ws import (
    ClientWebSocket,
    Closed,
    Endpoint,
    ServerPolicy,
    ServerWebSocket,
    TextReceived,
    WsOptions,
)

QUIET = WsOptions(ping_interval=0)
HEAD = (
    b"GET /ocpp/CS001 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ocpp2.0.1\r\n"
)
DEFLATE_OFFER = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
READ = 65536  # what an adapter reads at a time


def opened_server(options: WsOptions = QUIET, *, deflate: bool = True) -> ServerWebSocket:
    server = ServerWebSocket(ServerPolicy(options=options), 0.0)
    server.receive_data(HEAD + (DEFLATE_OFFER if deflate else b"") + b"\r\n", 0.0)
    answer = server.data_to_send()
    assert answer.startswith(b"HTTP/1.1 101 ") and (b"permessage-deflate" in answer) == deflate
    server.events()
    return server


def opened_client(options: WsOptions = QUIET) -> ClientWebSocket:
    client = ClientWebSocket(
        Endpoint.from_url("ws://x/ocpp/CS001"), versions=["2.0.1"], options=options, now=0.0
    )
    client.start()
    server = ServerWebSocket(ServerPolicy(options=options), 0.0)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    client.events()
    return client


def frame(payload: bytes, *, first: int, masked: bool) -> bytes:
    """One frame; ``first`` is its first byte (FIN, RSV1, opcode). A zero masking key
    leaves the payload as it is, which is valid and spares masking a megabyte here."""
    size = len(payload)
    mask = 0x80 if masked else 0
    if size < 126:
        header = bytes((first, mask | size))
    elif size < 1 << 16:
        header = bytes((first, mask | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, mask | 127)) + size.to_bytes(8, "big")
    return header + (b"\0\0\0\0" if masked else b"") + payload


def feed(ws: Any, data: bytes) -> float:
    """Feed ``data`` in adapter-sized reads; the CPU seconds it took."""
    start = time.process_time()
    for at in range(0, len(data), READ):
        ws.receive_data(data[at : at + READ], 0.0)
    return time.process_time() - start


def closed_code(ws: Any) -> int:
    [closed] = [e for e in ws.events() if isinstance(e, Closed)]
    return int(closed.code)


# --- deflate bombs --------------------------------------------------------------------------------


def test_the_bomb_inflates_as_its_name_says() -> None:
    bomb = deflate_bomb(4)
    assert 3_000 < len(bomb) < 5_000
    assert len(zlib.decompressobj(-15).decompress(bomb + b"\0\0\xff\xff")) == 4 << 20


def test_a_1_mb_message_inflating_to_1_gib_costs_the_csms_under_a_quarter_second() -> None:
    """Before: the layer went on inflating after its 1009 close: 3.1-3.4 s of CPU."""
    bomb = deflate_bomb(1024)
    assert len(bomb) > 1_000_000
    server = opened_server()
    cpu = feed(server, frame(bomb, first=0xC1, masked=True))
    assert closed_code(server) == glue.MESSAGE_TOO_BIG and server.done
    assert cpu < 0.25, f"{cpu:.2f} s"


def test_a_station_is_not_bombed_either() -> None:
    """Before: 4.9-7.6 s of a station's CPU."""
    client = opened_client()
    cpu = feed(client, frame(deflate_bomb(1024), first=0xC1, masked=False))
    assert closed_code(client) == glue.MESSAGE_TOO_BIG and client.done
    assert cpu < 0.25, f"{cpu:.2f} s"


class CountingInflater:
    """A zlib decompressor that adds up what it gives out."""

    def __init__(self, inflater: Any, counts: list[int]) -> None:
        self._inflater, self._counts = inflater, counts

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out: bytes = self._inflater.decompress(data, max_length)
        self._counts.append(len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inflater, name)


def test_inflating_stops_at_the_limit_not_a_slice_later(monkeypatch: pytest.MonkeyPatch) -> None:
    counts: list[int] = []
    real = zlib.decompressobj
    monkeypatch.setattr(
        wsproto.extensions.zlib, "decompressobj", lambda *a: CountingInflater(real(*a), counts)
    )
    limit = 100_000
    server = opened_server(WsOptions(ping_interval=0, max_message_size=limit))
    server.receive_data(frame(deflate_bomb(8), first=0xC1, masked=True), 0.0)
    assert closed_code(server) == glue.MESSAGE_TOO_BIG
    assert 0 < sum(counts) <= limit + 1


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_a_message_inflating_to_exactly_the_limit_passes() -> None:
    limit = 100_000
    server = opened_server(WsOptions(ping_interval=0, max_message_size=limit))
    server.receive_data(frame(deflated(b"a" * limit), first=0xC1, masked=True), 0.0)
    assert server.events() == [TextReceived(text="a" * limit)]
    server.receive_data(frame(deflated(b"a" * (limit + 1)), first=0xC1, masked=True), 0.0)
    assert closed_code(server) == glue.MESSAGE_TOO_BIG


def test_nothing_is_inflated_while_the_csms_waits_for_the_close_answer() -> None:
    server = opened_server()
    server.close(1000, "bye", now=0.0)
    cpu = feed(server, frame(deflate_bomb(1024), first=0xC1, masked=True))
    assert cpu < 0.25, f"{cpu:.2f} s"
    assert not server.done  # still waiting for the close answer, which now arrives:
    server.receive_data(frame(b"\x03\xe8", first=0x88, masked=True), 0.0)
    assert server.events() == [Closed(code=1000, reason="bye", by_peer=False)]


def test_a_binary_bomb_closes_with_1003_and_is_not_inflated() -> None:
    server = opened_server()
    cpu = feed(server, frame(deflate_bomb(1024), first=0xC2, masked=True))
    assert not server.done
    assert cpu < 0.25, f"{cpu:.2f} s"
    client = wsproto.connection.Connection(wsproto.ConnectionType.CLIENT)
    client.receive_data(server.data_to_send())
    [close] = [e for e in client.events() if isinstance(e, wse.CloseConnection)]
    assert close.code == glue.UNSUPPORTED_DATA


# --- frames per message -----------------------------------------------------------------------


def fragments(count: int, text: bytes = b"") -> bytes:
    """A text message in ``count`` frames: '[' then ``count - 1`` continuation frames
    carrying ``text`` (the last with FIN)."""
    return frame(b"[", first=0x01, masked=True) + b"".join(
        frame(text, first=0x80 if n == count - 2 else 0x00, masked=True) for n in range(count - 1)
    )


@pytest.mark.parametrize("deflate", [False, True])
def test_a_message_in_the_most_frames_allowed_passes_one_more_closes_with_1009(
    deflate: bool,
) -> None:
    options = WsOptions(ping_interval=0, max_frames_per_message=5)
    server = opened_server(options, deflate=deflate)
    server.receive_data(fragments(5, b"x"), 0.0)
    assert server.events() == [TextReceived(text="[xxxx")]
    server.receive_data(fragments(6, b"x"), 0.0)
    assert closed_code(server) == glue.MESSAGE_TOO_BIG and server.done


def test_frames_are_counted_not_reads_of_them() -> None:
    """A frame that arrives a byte at a time is still one frame."""
    options = WsOptions(ping_interval=0, max_frames_per_message=3)
    server = opened_server(options, deflate=False)
    data = fragments(3, b"y" * 200)
    for at in range(len(data)):
        server.receive_data(data[at : at + 1], 0.0)
    assert server.events() == [TextReceived(text="[" + "y" * 400)]


def test_400k_empty_continuation_frames_cost_little_and_earn_a_1009() -> None:
    """Before: not counted at all; 400k of them held 3.3 MB and cost 3.8 s of CPU."""
    server = opened_server(deflate=False)
    data = fragments(400_000)
    tracemalloc.start()
    try:
        cpu = feed(server, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert closed_code(server) == glue.MESSAGE_TOO_BIG and server.done
    assert cpu < 0.25, f"{cpu:.2f} s"
    assert peak < 2 * READ + 100_000, f"{peak} bytes"


def test_an_incomplete_message_holds_at_most_the_message_limit() -> None:
    """Fragments are kept until the message ends: never more than the limit of them."""
    limit = 200_000
    server = opened_server(WsOptions(ping_interval=0, max_message_size=limit), deflate=False)
    piece = b"z" * 10_000
    server.receive_data(frame(b"[", first=0x01, masked=True), 0.0)
    for _ in range(limit // len(piece) - 1):
        server.receive_data(frame(piece, first=0x00, masked=True), 0.0)
    assert sum(map(len, server._parts)) <= limit and not server.events()
    more = frame(piece, first=0x00, masked=True) * 100
    tracemalloc.start()
    try:
        feed(server, more)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert closed_code(server) == glue.MESSAGE_TOO_BIG
    assert peak < 3 * READ, f"{peak} bytes"


# --- deadlines ----------------------------------------------------------------------------------


def test_the_handshake_deadline_runs_from_accept_and_trickling_bytes_do_not_move_it() -> None:
    """A head sent a byte every few seconds gets 408 when the handshake time is up."""
    server = ServerWebSocket(ServerPolicy(options=WsOptions(handshake_timeout=10)), 100.0)
    assert server.next_deadline() == 110.0
    for at, byte in enumerate(HEAD[:3]):
        server.receive_data(bytes([byte]), 100.0 + 3 * at)
        assert server.next_deadline() == 110.0
    server.handle_timer(110.0)
    assert server.done and server.data_to_send().startswith(b"HTTP/1.1 408 ")
    assert [e.status for e in server.events()] == [408]


def test_a_connection_that_sends_nothing_is_closed_at_the_handshake_deadline() -> None:
    server = ServerWebSocket(ServerPolicy(options=WsOptions(handshake_timeout=10)), 100.0)
    server.handle_timer(109.9)
    assert not server.done
    server.handle_timer(110.0)
    assert server.done and server.data_to_send() == b""
    assert server.events() == [
        Closed(code=glue.ABNORMAL_CLOSURE, reason="the handshake took too long", by_peer=False)
    ]


def test_idle_timeout_closes_with_1001_when_nothing_at_all_arrives() -> None:
    server = opened_server(WsOptions(ping_interval=0, idle_timeout=30), deflate=False)
    assert server.next_deadline() == 30.0
    server.receive_data(frame(b"[]", first=0x81, masked=True), 20.0)
    assert server.next_deadline() == 50.0
    server.handle_timer(49.0)
    assert not server.done
    server.handle_timer(50.0)
    assert server.done
    assert closed_code(server) == glue.GOING_AWAY
    client = wsproto.connection.Connection(wsproto.ConnectionType.CLIENT)
    client.receive_data(server.data_to_send())
    assert [e.code for e in client.events() if isinstance(e, wse.CloseConnection)] == [1001]


def test_pongs_count_as_heard_and_idle_timeout_0_is_off() -> None:
    server = opened_server(WsOptions(ping_interval=10, idle_timeout=15), deflate=False)
    server.handle_timer(10.0)  # our ping
    server.data_to_send()
    server.receive_data(frame(b"1", first=0x8A, masked=True), 11.0)  # its pong
    assert server.next_deadline() == 20.0  # the next ping; idle would be 26
    server.handle_timer(20.0)
    assert server.next_deadline() == 26.0  # the pong due at 50 comes later
    assert opened_server(QUIET).next_deadline() is None
