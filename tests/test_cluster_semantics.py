"""The semantics of docs/cluster.md, each against both engines: the in-memory one and NATS
JetStream on a real nats-server (127.0.0.1, a free port, a temporary store). CSMS nodes are
asyncio ``serve()`` servers in this process; stations are real clients over loopback.

Every test is bounded by a timeout; waits poll state, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _adapterkit import request, until
from _clusterkit import (
    ACK_WAIT,
    HEARTBEAT_INTERVAL,
    LEASE,
    Engines,
    StationLog,
    availability,
    csms_node,
    station,
)

from ocpp_sansio.adapters.cluster import (
    CONNECTED,
    DISCONNECTED,
    MESSAGE,
    ClusterClient,
    ClusterUnavailable,
    Deduplicator,
    Fenced,
    LeaseLost,
    MemoryCluster,
    OwnerLost,
    RoutedCallFailed,
    StationEvent,
    StationNotConnected,
    call_from_json,
    station_key,
)
from ocpp_sansio.adapters.cluster.ids import ClusterSequence
from ocpp_sansio.events import RegistrationStatus

pytestmark = pytest.mark.anyio
TIMEOUT = 15


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "nats"])
async def engines(request: pytest.FixtureRequest, nats_url: str) -> AsyncIterator[Engines]:
    kit = Engines(request.param, nats_url)
    try:
        yield kit
    finally:
        await kit.close()


async def _noop_call(_routed: Any) -> dict[str, Any]:
    return {}


# --- one owner at a time ------------------------------------------------------------------------


async def test_one_owner_at_a_time_a_newer_claim_wins_and_fences_the_older(
    engines: Engines,
) -> None:
    async with asyncio.timeout(TIMEOUT):
        a, b, caller = await engines.engine("A"), await engines.engine("B"), await engines.engine()
        fenced_a: list[Any] = []
        await a.join(_noop_call, fenced_a.append)
        await b.join(_noop_call, lambda claim: None)

        first = await a.claim("CS-1")
        assert first.replaced is None
        assert (await caller.owner("cs-1")) == first.claim  # identities compare case-folded

        second = await b.claim("cs-1")
        assert second.claim.epoch > first.claim.epoch
        assert second.replaced == first.claim
        assert (await caller.owner("CS-1")) == second.claim
        await until(lambda: fenced_a == [first.claim])

        with pytest.raises(Fenced):
            await a.save_state(first.claim, {"written": "by the old owner"})
        await a.release(first.claim, {"written": "by the old owner"})  # ignored: not current
        assert (await caller.owner("CS-1")) == second.claim

        await b.save_state(second.claim, {"written": "by the owner"})
        third = await a.claim("CS-1")  # the state moves with the claim
        assert third.state == {"written": "by the owner"}
        assert third.claim.epoch == second.claim.epoch + 1


async def test_a_dead_nodes_claims_expire_and_it_learns_its_lease_is_lost(
    engines: Engines,
) -> None:
    async with asyncio.timeout(TIMEOUT):
        a, caller = await engines.engine("A"), await engines.engine()
        await a.join(_noop_call, lambda claim: None)
        held = await a.claim("CS-2")
        assert (await caller.owner("CS-2")) == held.claim
        await asyncio.sleep(LEASE + 1.2)  # no renewal: the lease runs out
        assert (await caller.owner("CS-2")) is None
        with pytest.raises(LeaseLost):
            await a.renew()


async def test_a_released_station_has_no_owner(engines: Engines) -> None:
    async with asyncio.timeout(TIMEOUT):
        a, caller = await engines.engine("A"), await engines.engine()
        await a.join(_noop_call, lambda claim: None)
        held = await a.claim("CS-3")
        await a.release(held.claim, {"registration": None})
        assert (await caller.owner("CS-3")) is None
        again = await a.claim("CS-3")
        assert again.replaced is None and again.state == {"registration": None}


async def test_a_node_that_fails_on_a_routed_call_says_so_and_the_engine_carries_it(
    engines: Engines,
) -> None:
    async def failing(_routed: Any) -> dict[str, Any]:
        raise RuntimeError("a bug on the node")

    async with asyncio.timeout(TIMEOUT):
        a, caller = await engines.engine("A"), await engines.engine()
        await a.join(failing, lambda claim: None)
        await a.claim("CS-4")
        with pytest.raises(RoutedCallFailed) as raised:
            await caller.call("CS-4", "2.0.1", "Reset", {"type": "Immediate"}, 5)
        assert raised.value.kind == "node_error" and "a bug on the node" in str(raised.value)


# --- a newer connection wins on any node ---------------------------------------------------------


async def test_a_newer_connection_on_another_node_wins_and_the_old_one_is_closed(
    engines: Engines,
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, _),
        csms_node(engines, "B") as (server_b, _),
    ):
        old_log, new_log = StationLog(), StationLog()
        async with (
            station(server_a, "CS010", old_log) as old,
            station(server_b, "CS010", new_log),
        ):
            await until(lambda: bool(old_log.closes))
            assert "fenced" in old_log.closes[0].reason
            assert not old.connected
            caller = ClusterClient(await engines.engine())
            owner = await caller.engine.owner("CS010")
            assert owner is not None and owner.node == "B"
            await caller.call("CS010", availability("2.0.1"), version="2.0.1")
            assert len(new_log.requests) == 1 and old_log.requests == []


# --- calls from any process -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_call_from_any_process_reaches_the_owner_and_its_answer_comes_back(
    engines: Engines, version: str
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, _),
        csms_node(engines, "B") as (server_b, _),
    ):
        log_a, log_b = StationLog(), StationLog()
        async with (
            station(server_a, "CS020", log_a, version),
            station(server_b, "CS021", log_b, version),
        ):
            caller = ClusterClient(await engines.engine())
            for identity, log in (("CS020", log_a), ("cs021", log_b)):
                answer = await caller.call(identity, availability(version), version=version)
                assert str(answer.status) == "Accepted"
                assert len(log.requests) == 1

            # The station's CALLERROR comes back as it was.
            with pytest.raises(RoutedCallFailed) as raised:
                await caller.call_json("CS020", "Reset", {"type": "Immediate"}, version="2.0.1")
            if version == "1.6":
                assert raised.value.kind == "bad_request"  # 2.0.1's Reset is not 1.6's
            else:
                assert raised.value.kind == "call_error"
                assert raised.value.error_code == "NotSupported"

            # JSON in, JSON out, in whatever version the station speaks.
            payload = (
                {"connectorId": 1, "type": "Operative"}
                if version == "1.6"
                else {"operationalStatus": "Operative"}
            )
            answer_json = await caller.call_json("CS021", "ChangeAvailability", payload)
            assert answer_json == {"status": "Accepted"}
            with pytest.raises(RoutedCallFailed) as bad:
                await caller.call_json("CS021", "ChangeAvailability", {"nonsense": 1})
            assert bad.value.kind == "bad_request"


async def test_call_from_json_returns_json_text_through_a_cluster_url(nats_url: str) -> None:
    kit = Engines("nats", nats_url)
    async with asyncio.timeout(TIMEOUT), csms_node(kit, "A") as (server_a, _):
        log = StationLog()
        async with station(server_a, "CS030", log):
            text = await call_from_json(
                nats_url,
                "CS030",
                "ChangeAvailability",
                '{"operationalStatus": "Operative"}',
                prefix=kit.prefix,
            )
            assert text == '{"status": "Accepted"}'
            with pytest.raises(ValueError, match="JSON object"):
                await call_from_json(nats_url, "CS030", "ChangeAvailability", "[1]")
            with pytest.raises(StationNotConnected, match="NOBODY"):
                await call_from_json(
                    nats_url, "NOBODY", "ChangeAvailability", "{}", prefix=kit.prefix
                )
    await kit.close()


# --- not connected: fails at once ----------------------------------------------------------


async def test_a_call_to_a_station_that_is_not_connected_fails_at_once(engines: Engines) -> None:
    async with asyncio.timeout(TIMEOUT), csms_node(engines, "A") as (server_a, _):
        caller = ClusterClient(await engines.engine(), timeout=30)
        started = time.monotonic()
        with pytest.raises(StationNotConnected, match="NEVER-SEEN"):
            await caller.call("NEVER-SEEN", availability("2.0.1"), version="2.0.1")
        assert time.monotonic() - started < 1.0

        log = StationLog()
        async with station(server_a, "CS040", log):
            await caller.call("CS040", availability("2.0.1"), version="2.0.1")
        await until(
            lambda: "cs040" not in server_a.sessions or not server_a.sessions["cs040"].connected
        )
        await until_released(caller, "CS040")
        started = time.monotonic()
        with pytest.raises(StationNotConnected):
            await caller.call("CS040", availability("2.0.1"), version="2.0.1")
        assert time.monotonic() - started < 1.0


async def until_released(caller: ClusterClient, identity: str) -> None:
    async with asyncio.timeout(5):
        while await caller.engine.owner(identity) is not None:
            await asyncio.sleep(0.02)


# --- the owner dies mid-call -----------------------------------------------------------------


async def test_a_call_whose_owner_dies_before_answering_fails_and_is_never_sent_again(
    engines: Engines,
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "B") as (server_b, _),
    ):
        log = StationLog()
        caller = ClusterClient(await engines.engine(), timeout=30)
        async with (
            csms_node(engines, "A") as (server_a, _),
            station(server_a, "CS050", log) as first,
        ):
            log.hold = True
            call = asyncio.ensure_future(
                caller.call("CS050", availability("2.0.1"), version="2.0.1")
            )
            await log.arrived.wait()  # the station has it and is slow to answer
            started = time.monotonic()
            await engines.kill("A")
            with pytest.raises(OwnerLost):
                await call
            assert time.monotonic() - started < 2.0
            log.release.set()
            core = first.core
        # Node A is gone; the station comes back on B, which sends nothing of its own.
        log.hold = False
        async with station(server_b, "CS050", log, core=core):
            await asyncio.sleep(0.3)
            assert len(log.requests) == 1
            await caller.call("CS050", availability("2.0.1"), version="2.0.1")
            assert len(log.requests) == 2


# --- events: at least once, with a de-duplication key -------------------------------------------


async def test_station_messages_reach_the_application_at_least_once_with_a_dedup_key(
    engines: Engines,
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, _),
    ):
        log = StationLog()
        async with station(server_a, "CS060", log) as connected:
            await connected.call(request("2.0.1", "Heartbeat"))
            await connected.call(request("2.0.1", "StatusNotification", evse_id=1, connector_id=1))
        owner_epoch = 1
        reader = await engines.engine()
        wanted = {"BootNotification", "Heartbeat", "StatusNotification"}

        # First delivery: not acknowledged, so every event comes again with the same key.
        # The connection's start and end come as events too.
        first = await fetch_until(reader, "app", lambda got: len(got) >= 5)
        assert {d.event.action for d in first} == wanted | {""}
        assert sorted(d.event.kind for d in first) == [
            CONNECTED,
            DISCONNECTED,
            MESSAGE,
            MESSAGE,
            MESSAGE,
        ]
        ends = [d.event for d in first if d.event.kind != MESSAGE]
        assert {tuple(e.payload.items()) for e in ends} == {
            (("version", "2.0.1"),),
            (("reason", "closed"),),
        }
        keys = [d.event.dedup_key for d in first]
        assert len(set(keys)) == len(keys) == 5
        assert all(key[0] == "cs060" and key[1] == owner_epoch for key in keys)
        again = await fetch_until(reader, "app", lambda got: len(got) >= 5, wait=ACK_WAIT * 6)
        assert sorted(d.event.dedup_key for d in again) == sorted(keys)
        seen = Deduplicator()
        assert [seen.first(d.event) for d in first + again] == [True] * 5 + [False] * 5
        for delivery in again:
            await delivery.ack()
        assert await reader.fetch("app", 10, ACK_WAIT * 3) == []

        # Publishing one event twice (a lost confirmation) stores it once.
        event = StationEvent("CS060", 9, "dup-1", "Heartbeat", {}, "A")
        await reader.publish(event)
        await reader.publish(event)
        copies = await fetch_until(reader, "app", lambda got: len(got) >= 1)
        assert [d.event for d in copies] == [event]
        for delivery in copies:
            await delivery.ack()

        # ClusterClient.consume: each event once, acknowledged when its handler returned.
        later = StationEvent("CS060", 9, "dup-2", "Heartbeat", {}, "A")
        await reader.publish(later)
        handled: list[StationEvent] = []

        async def handle(event: StationEvent) -> None:
            handled.append(event)
            if len(handled) == 1:
                raise RuntimeError("the application failed on it")

        client = ClusterClient(reader)
        with pytest.raises(RuntimeError):
            await client.consume("app", handle, wait=0.2)
        consuming = asyncio.ensure_future(client.consume("app", handle, wait=0.2))
        await until(lambda: len(handled) == 2, timeout=ACK_WAIT * 8)
        consuming.cancel()
        assert handled == [later, later]  # not acknowledged after the failure: again
        assert await reader.fetch("app", 10, ACK_WAIT * 3) == []


async def fetch_until(reader: Any, consumer: str, done: Any, wait: float = 3.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + wait
    while not done(got) and time.monotonic() < deadline:
        got += await reader.fetch(consumer, 50, 0.2)
    assert done(got), [d.event for d in got]
    return got


async def test_a_lost_publish_confirmation_is_published_again_and_stored_once() -> None:
    from _clusterkit import Engines as Kit

    kit = Kit("memory", None)
    async with asyncio.timeout(TIMEOUT), csms_node(kit, "A") as (server_a, _):
        kit.memory.lose_confirms(2)
        log = StationLog()
        async with station(server_a, "CS070", log):
            pass
        reader = await kit.engine()
        got = await fetch_until(reader, "app", lambda got: len(got) >= 3, wait=2)
        await asyncio.sleep(0.3)  # the node's retries have landed by now
        got += await reader.fetch("app", 10, 0.1)
        assert sorted((d.event.kind, d.event.action) for d in got) == [
            (CONNECTED, ""),
            (DISCONNECTED, ""),
            (MESSAGE, "BootNotification"),
        ]


# --- state moves with the station -------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_stations_state_moves_with_it_to_another_node(
    engines: Engines, version: str
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, _),
        csms_node(engines, "B") as (server_b, _),
    ):
        log = StationLog()
        async with station(server_a, "CS080", log, version) as first:
            start = (
                request(version, "StartTransaction", connector_id=1, meter_start=10)
                if version == "1.6"
                else request(version, "TransactionEvent", seq_no=0, event_type="Started")
            )
            started = await first.call(start)
            core = first.core
        session_a = server_a.sessions["cs080"]
        transactions_a = session_a.flows[1].open_transactions()
        assert len(transactions_a) == 1
        caller = ClusterClient(await engines.engine())
        await until_released(caller, "CS080")

        # The station comes back on B without booting again (B04): B knows it.
        async with station(server_b, "CS080", log, core=core) as second:
            session_b = server_b.sessions["cs080"]
            assert session_b.registration is RegistrationStatus.ACCEPTED
            assert session_b.core.heartbeat_interval == HEARTBEAT_INTERVAL
            (moved,) = session_b.flows[1].open_transactions()
            assert moved.transaction_id == transactions_a[0].transaction_id
            # B accepts the station's requests at once (a core that did not know the
            # registration would refuse them: B01.FR.10 / B02.FR.09).
            await second.call(request(version, "Heartbeat"))
            if version == "1.6":
                stop = request(
                    version,
                    "StopTransaction",
                    transaction_id=started.transaction_id,
                    meter_stop=20,
                )
                await second.call(stop)
                assert session_b.flows[1].open_transactions() == []
            else:
                ended = request(
                    version,
                    "TransactionEvent",
                    seq_no=1,
                    event_type="Ended",
                    transaction_info=start.transaction_info,
                )
                await second.call(ended)
                assert session_b.flows[1].open_transactions() == []


async def test_state_stored_after_a_reconnect_to_the_same_node_moves_on_too(
    engines: Engines,
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, _),
        csms_node(engines, "B") as (server_b, _),
    ):
        log = StationLog()
        caller = ClusterClient(await engines.engine())
        async with station(server_a, "CS090", log) as first:
            core = first.core
        await until_released(caller, "CS090")
        async with station(server_a, "CS090", log, core=core) as again:  # A keeps its core
            start = request("2.0.1", "TransactionEvent", seq_no=0, event_type="Started")
            await again.call(start)
        await until_released(caller, "CS090")
        async with station(server_b, "CS090", log, core=core):
            (moved,) = server_b.sessions["cs090"].flows[1].open_transactions()
            assert moved.transaction_id == start.transaction_info.transaction_id


# --- a node that loses the engine, a node that leaves ------------------------------------------


async def test_a_node_that_cannot_renew_its_lease_closes_its_stations(engines: Engines) -> None:
    async with asyncio.timeout(TIMEOUT), csms_node(engines, "A") as (server_a, _):
        log = StationLog()
        async with station(server_a, "CS100", log):
            await engines.kill("A")  # A runs on, but can reach the engine no more
            await until(lambda: bool(log.closes), timeout=LEASE * 3)
            assert log.closes[0].code == 1013
            assert "lease" in log.closes[0].reason


async def test_a_node_that_leaves_releases_its_stations_and_closes_them(
    engines: Engines,
) -> None:
    async with asyncio.timeout(TIMEOUT), csms_node(engines, "A") as (server_a, node_a):
        log = StationLog()
        caller = ClusterClient(await engines.engine())
        async with station(server_a, "CS110", log):
            assert (await caller.engine.owner("CS110")) is not None
            await node_a.stop()
            await until(lambda: bool(log.closes))
            assert log.closes[0].code == 1001
            assert (await caller.engine.owner("CS110")) is None
        # Its last events were published before it left.
        got = await fetch_until(
            caller.engine, "app", lambda got: any(d.event.kind == DISCONNECTED for d in got)
        )
        assert [d.event.payload for d in got if d.event.kind == DISCONNECTED] == [
            {"reason": "the node left"}
        ]


async def test_a_caller_that_stops_waiting_gets_a_timeout_and_the_call_still_arrives_once(
    engines: Engines,
) -> None:
    async with asyncio.timeout(TIMEOUT), csms_node(engines, "A") as (server_a, _):
        log = StationLog()
        async with station(server_a, "CS120", log):
            log.hold = True  # the station is slow to answer
            caller = ClusterClient(await engines.engine())
            with pytest.raises(RoutedCallFailed) as raised:
                await caller.call("CS120", availability("2.0.1"), version="2.0.1", timeout=0.3)
            assert raised.value.kind == "timeout"
            await until(lambda: len(log.requests) == 1)
            log.release.set()
            log.hold = False
            await caller.call("CS120", availability("2.0.1"), version="2.0.1")
            assert len(log.requests) == 2


async def test_a_delayed_node_answers_late_and_a_caller_that_stopped_waiting_is_told() -> None:
    kit = Engines("memory", None)
    async with asyncio.timeout(TIMEOUT), csms_node(kit, "A") as (server_a, _):
        log = StationLog()
        async with station(server_a, "CS130", log):
            kit.memory.delay("A", 0.5)
            caller = ClusterClient(await kit.engine())
            with pytest.raises(RoutedCallFailed, match="did not answer"):
                await caller.call("CS130", availability("2.0.1"), version="2.0.1", timeout=0.2)
            assert log.requests == []  # still on its way
            await until(lambda: len(log.requests) == 1)
            started = time.monotonic()
            await caller.call("CS130", availability("2.0.1"), version="2.0.1")
            assert time.monotonic() - started >= 0.5
            assert len(log.requests) == 2


async def test_a_call_lost_on_the_way_times_out_and_is_not_sent_again() -> None:
    kit = Engines("memory", None)
    async with asyncio.timeout(TIMEOUT), csms_node(kit, "A") as (server_a, _):
        log = StationLog()
        async with station(server_a, "CS140", log):
            kit.memory.drop("A")
            caller = ClusterClient(await kit.engine())
            with pytest.raises(RoutedCallFailed) as raised:
                await caller.call("CS140", availability("2.0.1"), version="2.0.1", timeout=0.3)
            assert raised.value.kind == "timeout"
            await caller.call("CS140", availability("2.0.1"), version="2.0.1")
            assert len(log.requests) == 1


@pytest.mark.parametrize(
    ("one", "other"), [("CS001", "cs001"), ("\uff23\uff33\uff10\uff10\uff11", "cs001")]
)
def test_two_spellings_of_one_station_are_one_cluster_key(one: str, other: str) -> None:
    """The cluster keys stations as the server's sessions are keyed (``identity_key``), so
    a full-width spelling cannot claim the station apart from its session."""
    assert station_key(one) == station_key(other) == "cs001"


# --- fencing: a fenced owner cannot send -------------------------------------------------------


async def test_once_a_newer_connection_is_admitted_the_fenced_owner_no_longer_sends(
    engines: Engines,
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, node_a),
        csms_node(engines, "B") as (server_b, _),
    ):
        if engines.kind == "memory":
            engines.memory.delay_fences("A", 0.5)  # a slow notice: the takeover waits for it
        old_log, new_log = StationLog(), StationLog()
        caller = ClusterClient(await engines.engine())
        async with station(server_a, "CS015", old_log):
            await caller.call("CS015", availability("2.0.1"), version="2.0.1")  # routed to A
            async with station(server_b, "CS015", new_log):
                # B admitted the new connection: A had taken its fence notice before that.
                assert station_key("CS015") not in node_a.held
                await caller.call("CS015", availability("2.0.1"), version="2.0.1")
                assert (len(old_log.requests), len(new_log.requests)) == (1, 1)
                await until(lambda: bool(old_log.closes))
                assert "fenced" in old_log.closes[0].reason


# --- connections are events too ----------------------------------------------------------------


async def test_connections_are_events_and_the_next_owner_ends_a_dead_nodes_connection(
    engines: Engines,
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        csms_node(engines, "A") as (server_a, _),
        csms_node(engines, "B") as (server_b, _),
    ):
        reader = await engines.engine()
        old_log, new_log = StationLog(), StationLog()

        def connections(got: list[Any]) -> list[tuple[str, int, str, str]]:
            return sorted(
                (d.event.kind, d.event.epoch, d.event.node, str(d.event.payload))
                for d in got
                if d.event.kind != MESSAGE
            )

        got: list[Any] = []
        async with station(server_a, "CS080", old_log):
            got += await fetch_until(reader, "app", lambda more: len(connections(more)) == 1)
            await engines.kill("A")  # A dies holding the station's connection
            async with station(server_b, "CS080", new_log):
                got += await fetch_until(
                    reader, "app", lambda more: len(connections(got + more)) == 3
                )
        assert connections(got) == [
            (CONNECTED, 1, "A", "{'version': '2.0.1'}"),
            (CONNECTED, 2, "B", "{'version': '2.0.1'}"),
            (DISCONNECTED, 1, "A", "{'reason': 'its node went away'}"),
        ]


# --- numbers unique across the cluster (1.6 transaction ids) -----------------------------------


async def test_a_cluster_sequence_never_gives_one_number_twice_across_processes(
    engines: Engines,
) -> None:
    async def take(sequence: ClusterSequence) -> int:
        while True:
            try:
                return sequence.next_id()
            except ClusterUnavailable:
                await asyncio.sleep(0.005)  # its next block is being reserved

    async with asyncio.timeout(TIMEOUT):
        a, b = await engines.engine("A"), await engines.engine("B")
        on_a, on_b = ClusterSequence(a, "tx", block=3), ClusterSequence(b, "tx", block=3)
        await asyncio.gather(on_a.start(), on_b.start())
        numbers = [await take(sequence) for _ in range(20) for sequence in (on_a, on_b)]
        # A process that starts again (a restarted node) goes on after every reservation.
        again = ClusterSequence(a, "tx", block=3)
        await again.start()
        numbers += [await take(again) for _ in range(7)]
        assert len(set(numbers)) == len(numbers) == 47
        assert min(numbers) >= 1
        for sequence in (on_a, on_b, again):
            await sequence.close()


async def test_a_cluster_sequence_used_up_faster_than_the_engine_answers_says_so() -> None:
    cluster = MemoryCluster()
    sequence = ClusterSequence(cluster.engine("A"), "tx", block=1)
    await sequence.start()
    assert [sequence.next_id(), sequence.next_id()] == [1, 2]
    with pytest.raises(ClusterUnavailable, match="no number reserved"):
        sequence.next_id()
    await until(lambda: bool(sequence._ranges))
    assert sequence.next_id() == 3
    await sequence.close()
