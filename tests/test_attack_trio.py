"""Attacks on a trio CSMS (issue 16, findings 2, 3 and 4), each against a server in a process of
its own (``_attackkit``) with a healthy station timing its Heartbeats where the attack runs
for a while. The short forms run always; ``-m slow`` runs the long ones."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests._attackkit import (
    HealthyStation,
    Peer,
    client_hello,
    closed_within,
    heartbeats,
    in_thread,
    pings,
    slow_reader,
    target,
    trickle,
)

#: The handshake deadline the targets run with (WsOptions.handshake_timeout).
HANDSHAKE = 1.0


def _silent(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


# --- finding 3: a handshake deadline from accept ------------------------------------------------


def test_silent_sockets_are_closed_within_the_handshake_deadline() -> None:
    with target("trio", ws={"handshake_timeout": HANDSHAKE, "ping_interval": 0}) as csms:
        socks = _silent(csms.port, 20)
        started = time.monotonic()
        try:
            assert all(closed_within(sock, HANDSHAKE + 2) for sock in socks)
            assert time.monotonic() - started < HANDSHAKE + 2
            assert csms.stats()["links"] == 0
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_byte_every_few_seconds_is_closed_within_the_handshake_deadline(
    tls: bool, tls_files: dict[str, str]
) -> None:
    head = client_hello() if tls else b"GET /ocpp/CS1 HTTP/1.1\r\nHost: x\r\n"
    config = {"tls": tls_files} if tls else {}
    with target("trio", ws={"handshake_timeout": HANDSHAKE, "ping_interval": 0}, **config) as csms:
        socks = _silent(csms.port, 5)
        started = time.monotonic()
        until = started + HANDSHAKE + 4
        results: list[bool] = []
        threads = [
            in_thread(lambda s=sock: results.append(trickle(s, head, 1.5, until))) for sock in socks
        ]
        for thread in threads:
            thread.join(HANDSHAKE + 8)
        for sock in socks:
            sock.close()
        assert results == [True] * len(socks)
        assert time.monotonic() - started < HANDSHAKE + 5


def test_silent_sockets_at_the_descriptor_limit_do_not_lock_out_stations(
    tls_files: dict[str, str],
) -> None:
    """An attacker holds more silent connections than the server has descriptors; each is
    closed at the handshake deadline, so a station trying meanwhile gets in."""
    with target("trio", ws={"handshake_timeout": HANDSHAKE, "ping_interval": 0}, nofile=40) as csms:
        socks = _silent(csms.port, 80)
        try:
            station = Peer(csms.port, "NEWCOMER", timeout=HANDSHAKE + 5)
            started = time.monotonic()
            station.boot()
            assert time.monotonic() - started < HANDSHAKE + 4
            station.close()
        finally:
            for sock in socks:
                sock.close()


# --- finding 4: the accept loop survives running out of descriptors -----------------------------


def test_accepting_resumes_after_running_out_of_descriptors() -> None:
    """Booted stations (no deadline closes them) use up the descriptors; accept() fails
    meanwhile (EMFILE). Once they leave, new stations connect again."""
    with target("trio", nofile=30) as csms:
        crowd: list[Peer] = []
        try:
            for number in range(60):
                peer = Peer(csms.port, f"CROWD{number}", timeout=2)
                try:
                    peer.boot()
                except (AssertionError, OSError):
                    peer.close()
                    break
                crowd.append(peer)
            else:
                pytest.fail("the descriptor limit never ran out")
            assert len(crowd) >= 10
        finally:
            for peer in crowd:
                peer.close()
        time.sleep(1.5)
        for number in range(6):
            peer = Peer(csms.port, f"AFTER{number}", timeout=5)
            peer.boot()
            peer.close()
        assert csms.stats()["tasks"] > 0


# --- finding 2: back-pressure ------------------------------------------------------------------

#: How much the server's resident memory may grow while one peer leaves our frames unread
#: (reading stops at WsOptions.write_high_water, 64 KiB, unsent).
RSS_GROWTH_BOUND_KIB = 4 * 1024


@pytest.mark.parametrize(
    ("stream", "tls"),
    [
        pytest.param(lambda: pings(24), False, id="pings-24MB"),
        pytest.param(lambda: heartbeats(100_000), False, id="heartbeats-100k"),
        pytest.param(lambda: pings(24), True, id="tls-pings-24MB"),
        pytest.param(lambda: pings(40), False, id="pings-40MB", marks=pytest.mark.slow),
        pytest.param(
            lambda: heartbeats(400_000), False, id="heartbeats-400k", marks=pytest.mark.slow
        ),
        pytest.param(lambda: pings(40), True, id="tls-pings-40MB", marks=pytest.mark.slow),
    ],
)
def test_a_peer_that_does_not_read_is_not_read_either(
    stream: Callable[[], bytes], tls: bool, tls_files: dict[str, str]
) -> None:
    """Reading stops at WsOptions.write_high_water unsent (64 KiB): the server's memory
    grows by little more than that, and a healthy station is served throughout."""
    data = stream()
    config = {"tls": tls_files} if tls else {}
    with target("trio", ws={"ping_interval": 0}, **config) as csms:
        # (stats() collects garbage, a pause of its own: read before and after the timing)
        before = csms.stats()["VmRSS"]
        healthy = HealthyStation(csms.port) if not tls else None
        attacker = slow_reader(csms.port, "GREEDY", tls=tls)
        sent = attacker.send_until_stalled(data, stall=3.0)
        try:
            time.sleep(1.0)  # (what the server still had to read)
            if healthy is not None:
                healthy.stop()
        finally:
            attacker.close()
        growth = csms.stats()["VmHWM"] - before
        print(f"sent {sent >> 10} KiB of {len(data) >> 10} KiB; peak RSS +{growth} KiB")
        assert growth < RSS_GROWTH_BOUND_KIB, f"RSS grew by {growth} KiB"


# --- no task per connection or per idle station ----------------------------------------------


def test_connected_stations_cost_no_task_each() -> None:
    """A plain-TCP connection is served by the server's one reactor task, and a session runs
    a task for ``on_event`` only while events wait: 40 booted stations, idle, leave the
    server with as many tasks as one did (issue 16 finding 7, the task part, on trio)."""
    with target("trio") as csms:
        first = Peer(csms.port, "FIRST")
        first.boot()
        time.sleep(0.2)
        tasks = csms.stats()["tasks"]
        peers = [Peer(csms.port, f"IDLE{number}") for number in range(40)]
        for peer in peers:
            peer.boot()
        time.sleep(0.2)
        assert csms.stats()["tasks"] == tasks
        for peer in [first, *peers]:
            peer.close()


def test_a_peer_that_leaves_max_write_buffer_unread_is_closed_with_1008() -> None:
    """What the application itself sends cannot be paused by not reading: past
    max_write_buffer unsent, the connection is closed with 1008 and the call fails."""
    import trio

    from ocpp_sansio import CallFailedError
    from ocpp_sansio.adapters import Disconnected, ServerOptions, WsOptions
    from ocpp_sansio.adapters.trio import serve
    from ocpp_sansio.messages import v16

    gone: list[Disconnected] = []

    class Csms:
        async def on_request(self, session: object, request: object) -> object:
            accepted = v16.RegistrationStatus.ACCEPTED
            now = datetime(2026, 1, 1, tzinfo=UTC)
            return v16.BootNotificationResponse(status=accepted, current_time=now, interval=300)

        async def on_event(self, session: object, event: object) -> None:
            if isinstance(event, Disconnected):
                gone.append(event)

    async def main() -> None:
        limit = 4096
        ws_options = WsOptions(ping_interval=0, write_high_water=limit, max_write_buffer=4 * limit)
        options = ServerOptions(ws_options=ws_options)
        async with serve(Csms(), versions=["1.6"], options=options) as server:
            peer = await trio.to_thread.run_sync(slow_reader, server.port, "GREEDY")
            try:
                session = server.sessions["greedy"]
                with trio.fail_after(10), pytest.raises(CallFailedError):
                    await session.call(v16.DataTransferRequest(vendor_id="V", data="x" * (4 << 20)))
                with trio.fail_after(5):
                    while not gone:
                        await trio.sleep(0.01)
            finally:
                peer.close()
        assert gone[0].code == 1008

    trio.run(main)


def _come_and_go(port: int, count: int) -> None:
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /ocpp/CS HTTP/1.1\r\n")  # a handshake begun: its deadline armed
        sock.close()


def test_connections_that_came_and_went_are_not_kept_by_their_timers() -> None:
    """A connection's timer waits in the reactor's heap until its deadline, even once the
    connection is gone; the heap drops such entries before they outnumber the live ones,
    so connections opened and closed fast are not all held (with their links and cores)
    until their handshake deadline."""
    import gc

    import trio

    from ocpp_sansio.adapters import ServerOptions, WsOptions
    from ocpp_sansio.adapters._trio_reactor import Connection
    from ocpp_sansio.adapters.trio import serve

    def held() -> int:
        gc.collect()
        return sum(isinstance(thing, Connection) for thing in gc.get_objects())

    async def main() -> None:
        ws_options = WsOptions(handshake_timeout=600, ping_interval=0)
        options = ServerOptions(ws_options=ws_options)
        async with serve(object(), versions=["1.6"], options=options) as server:
            await trio.to_thread.run_sync(_come_and_go, server.port, 500)
            with trio.fail_after(10):
                while server.links:
                    await trio.sleep(0.01)
            assert held() <= 100

    trio.run(main)
