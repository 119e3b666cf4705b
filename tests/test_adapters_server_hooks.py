"""The event-loop servers' hooks for what sits between a station's handshake and its core
(a cluster node uses both): ``server.admission`` runs before anything the station sends
reaches a core, and ``server.add_observer_flows`` puts flows ahead of the application's
on every new core. On trio, asyncio and in memory."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _adapterkit import KITS, Kit, Script, until

from ocpp_sansio.adapters import Disconnected, memory
from ocpp_sansio.adapters._skeleton import Link
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import Event, RequestReceived

pytestmark = pytest.mark.anyio

ADAPTERS = {
    "trio": KITS["trio"],
    "asyncio": KITS["asyncio"],
    "memory": Kit("memory", memory, "asyncio", blocking=False),
}


@pytest.fixture(params=sorted(ADAPTERS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return ADAPTERS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


def url(server: Any) -> str:
    return f"ws://127.0.0.1:{server.port}/ocpp/CS001"


async def test_admission_runs_before_the_station_reaches_a_core(kit: Kit) -> None:
    script = Script()
    release = anyio.Event()
    admitted: list[tuple[str, bool]] = []
    placed: list[Link] = []

    async def admission(identity: str, link: Link) -> Any:
        admitted.append((identity, link.session is None))
        await release.wait()
        return placed.append

    with anyio.fail_after(10):
        async with kit.serve(script) as server:
            server.admission = admission
            async with kit.connect(url(server), "2.0.1") as station:
                await until(lambda: admitted != [])
                await anyio.sleep(0.2)  # the station's boot is on its way meanwhile
                assert server.sessions == {} and script.actions() == []
                release.set()
                await kit.wait_registered(station)
                assert admitted == [("CS001", True)]
                assert [link.session for link in placed] == [server.sessions["cs001"]]
                assert script.actions() == ["BootNotification"]


async def test_a_station_the_admission_refuses_is_closed_with_1013(kit: Kit) -> None:
    script, station_script = Script(), Script()

    async def admission(identity: str, link: Link) -> Any:
        raise RuntimeError("the cluster is unreachable")

    with anyio.fail_after(10):
        async with kit.serve(script) as server:
            server.admission = admission
            async with kit.connect(url(server), "2.0.1", station_script):
                await until(lambda: "Disconnected" in station_script.event_types())
            closes = [e for _, e in station_script.events if isinstance(e, Disconnected)]
            assert closes[0].code == 1013
            assert server.sessions == {} and script.actions() == []


class Watching:
    """A flow that notes the requests it sees in ``order`` and keeps none."""

    def __init__(self, name: str, order: list[str]) -> None:
        self.name = name
        self.order = order

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, RequestReceived):
            self.order.append(f"{self.name} {event.action}")
        return False


async def test_observer_flows_go_first_on_every_new_core(kit: Kit) -> None:
    script = Script()
    order: list[str] = []
    given: list[tuple[str, list[Any]]] = []

    def observe(core: CsmsCore, flows: Any) -> list[Any]:
        given.append((core.identity, list(flows)))
        return [Watching("observer", order)]

    with anyio.fail_after(10):
        app_flows = lambda core: [Watching("application", order)]  # noqa: E731
        async with kit.serve(script, flows=app_flows) as server:
            server.add_observer_flows(observe)
            async with kit.connect(url(server), "2.0.1") as station:
                await kit.wait_registered(station)
                observer, application = server.sessions["cs001"].flows
                assert (observer.name, application.name) == ("observer", "application")
                assert given == [("CS001", [application])]
                assert order == ["observer BootNotification", "application BootNotification"]
                assert script.actions() == ["BootNotification"]
