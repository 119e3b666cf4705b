"""What a CSMS keeps of a station between its connections, on every adapter: its session
for ``session_keep`` after it left (so it resumes without a new boot, B04), at most
``max_kept_sessions`` of them, and nothing running for a session that is idle.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import pytest
from _adapterkit import KITS, Kit, Script, until

from ocpp_sansio import RegistrationStatus
from ocpp_sansio.adapters import ServerOptions
from ocpp_sansio.apps.demo_csms import DemoCsms


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


async def visit(kit: Kit, server: Any, identity: str, version: str = "2.0.1") -> None:
    """``identity`` connects, boots and leaves."""
    url = f"ws://127.0.0.1:{server.port}/ocpp/{identity}"
    async with kit.connect(url, version) as station:
        await kit.wait_registered(station)


def test_session_options_are_checked_where_they_are_written() -> None:
    assert ServerOptions().session_keep == 600.0
    assert ServerOptions().max_kept_sessions == 10_000
    with pytest.raises(ValueError, match="session_keep"):
        ServerOptions(session_keep=-1)
    with pytest.raises(ValueError, match="max_kept_sessions"):
        ServerOptions(max_kept_sessions=-1)


@pytest.mark.anyio
async def test_b04_a_station_back_within_session_keep_resumes_its_session(kit: Kit) -> None:
    with anyio.fail_after(10):
        async with kit.serve(Script()) as server:
            await visit(kit, server, "CS001")
            kept = server.sessions["cs001"]
            await until(lambda: not kept.connected)
            assert kept.left_at is not None
            url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
            async with kit.connect(url, "2.0.1") as station:
                await kit.wait_connected(station)
                await until(lambda: kept.connected)
                assert server.sessions["cs001"] is kept and kept.left_at is None
                assert kept.registration is RegistrationStatus.ACCEPTED


@pytest.mark.anyio
async def test_a_session_gone_for_session_keep_is_evicted(kit: Kit) -> None:
    with anyio.fail_after(10):
        async with kit.serve(Script(), session_keep=0) as server:
            await visit(kit, server, "CS001")
            await until(lambda: "cs001" not in server.sessions)
            await visit(kit, server, "CS001")  # a fresh session: it boots again


@pytest.mark.anyio
async def test_past_max_kept_sessions_the_one_gone_longest_is_evicted(kit: Kit) -> None:
    with anyio.fail_after(15):
        async with kit.serve(Script(), max_kept_sessions=2) as server:
            for identity in ("CS001", "CS002", "CS003"):
                await visit(kit, server, identity)
            await until(lambda: sorted(server.sessions) == ["cs002", "cs003"])


@pytest.mark.anyio
async def test_a_connected_station_is_never_evicted(kit: Kit) -> None:
    with anyio.fail_after(10):
        async with kit.serve(Script(), session_keep=0, max_kept_sessions=0) as server:
            url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
            async with kit.connect(url, "2.0.1") as station:
                await kit.wait_registered(station)
                await visit(kit, server, "CS002")
                await until(lambda: "cs002" not in server.sessions)
                assert server.sessions["cs001"].connected


@pytest.mark.anyio
async def test_events_reach_on_event_in_order_across_idle_spells(kit: Kit) -> None:
    """``on_event`` runs only while a session has events; they still arrive in order."""
    script = Script()
    with anyio.fail_after(10):
        async with kit.serve(script) as server:
            for _ in range(3):
                await visit(kit, server, "CS001")
                await anyio.sleep(0.05)
            await until(lambda: script.event_types("cs001").count("Disconnected") == 3)
    kinds = [k for k in script.event_types("cs001") if k in ("Connected", "Disconnected")]
    assert kinds == ["Connected", "Disconnected"] * 3


@pytest.mark.anyio
async def test_the_demo_csms_keeps_nothing_of_an_evicted_station(kit: Kit) -> None:
    """The demo CSMS (no auth: anyone mints identities) holds a station's flows only while
    its session is kept: once evicted, its core is freed (it kept every station's
    transaction flow, and with it the core, for good)."""
    demo = DemoCsms()
    with anyio.fail_after(10):
        async with kit.serve(
            Script(), core_factory=demo.core, flows=demo.flows, session_keep=0
        ) as server:
            url = f"ws://127.0.0.1:{server.port}/ocpp/MINTED"
            async with kit.connect(url, "1.6") as station:
                await kit.wait_registered(station)
                core = weakref.ref(server.sessions["minted"].core)
            await until(lambda: "minted" not in server.sessions)
            # (threads: once its event thread has lingered EVENT_THREAD_LINGER and ended)
            await until(lambda: gc.collect() >= 0 and core() is None)
