"""Flows hosted by the adapters, and the cores an application supplies, over real loopback
sockets on each adapter (trio, asyncio, threads). Every test is bounded by a timeout.

A flow sees every event of its core before the application: a request it answers never
reaches the handler, its timers run on the adapter's clock, its own events reach
``on_event``. ``connect(core=)`` drives the application's StationCore; ``serve(core_factory=)``
makes each station's CsmsCore, kept across the station's reconnects.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import pytest
from _adapterkit import KITS, Kit, Script, boot, request, transaction_message, until

from ocpp_sansio.adapters import Backoff, Disconnected
from ocpp_sansio.config import CsmsConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RegistrationStatus, ResponseReceived
from ocpp_sansio.flows import CsmsTransactionEvents, CsmsTransactions16, DataTransferRouter
from ocpp_sansio.flows._base import FlowEvent
from ocpp_sansio.station import StationCore

pytestmark = pytest.mark.anyio
TIMEOUT = 10


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


def url(server: Any, identity: str = "CS001") -> str:
    return f"ws://127.0.0.1:{server.port}/ocpp/{identity}"


def csms_flows(core: Any) -> list[Any]:
    transactions = CsmsTransactions16 if core.version == "1.6" else CsmsTransactionEvents
    return [DataTransferRouter(core), transactions(core)]


def flow_events(script: Script) -> list[str]:
    return [type(e).__name__ for _, e in script.events if isinstance(e, FlowEvent)]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_flows_answer_before_the_handler_on_both_sides(kit: Kit, version: str) -> None:
    csms = Script()
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms, flows=csms_flows) as server,
            kit.connect(
                url(server), version, station_app, flows=lambda core: [DataTransferRouter(core)]
            ) as station,
        ):
            await kit.wait_registered(station)
            unknown = request(version, "DataTransfer", vendor_id="com.example.nobody")
            assert str((await kit.call(station, unknown)).status) == "UnknownVendorId"
            answer = await kit.call(station, transaction_message(version, 0))
            if version == "1.6":
                assert answer.transaction_id == 1  # the CSMS flow's first id
            session = server.sessions["cs001"]
            assert str((await kit.call(session, unknown)).status) == "UnknownVendorId"
            assert len(session.flows) == 2 and len(station.flows) == 1
            await until(lambda: "TransactionReport" in flow_events(csms))
    # Only what no flow took reached the handlers.
    assert csms.actions() == ["BootNotification"]
    assert station_app.actions() == []


class Ticked(FlowEvent):
    pass


class Ticker:
    """A flow with a timer: 0.2 s after the boot was accepted it sends a Heartbeat."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.due: float | None = None
        self.sent: str | None = None
        self._events: list[Any] = []

    def handle_event(self, event: Any, now: float) -> bool:
        if type(event).__name__ == "RegistrationChanged" and self.sent is None:
            self.due = now + 0.2
        return isinstance(event, ResponseReceived) and event.message_id == self.sent

    def next_deadline(self) -> float | None:
        return self.due

    def handle_timer(self, now: float) -> None:
        self.due = None
        self.sent = self.core.send_request(request(self.core.version, "Heartbeat"), now)
        self._events.append(Ticked())

    def events(self) -> list[Any]:
        out, self._events = self._events, []
        return out


async def test_flow_timers_run_on_the_adapters_clock_and_their_events_reach_on_event(
    kit: Kit,
) -> None:
    csms = Script()
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server), "2.0.1", station_app, flows=lambda core: [Ticker(core)]),
        ):
            await until(lambda: "Heartbeat" in csms.actions())
            await until(lambda: "Ticked" in flow_events(station_app))
            await anyio.sleep(0.1)  # (room for a stray ResponseReceived to arrive)
    # The flow kept the answer to its own Heartbeat: only the boot's answer came through.
    answers = [e for _, e in station_app.events if isinstance(e, ResponseReceived)]
    assert [type(e.response).__name__ for e in answers] == ["BootNotificationResponse"]


async def test_session_act_runs_a_flow_and_sends_what_it_produced(kit: Kit) -> None:
    csms = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms, flows=lambda core: [DataTransferRouter(core)]) as server,
            kit.connect(url(server), "2.0.1", Script()) as station,
        ):
            await kit.wait_registered(station)
            session = server.sessions["cs001"]
            router = session.flows[0]
            message_id = await kit.act(session, lambda now: router.send("com.example", now))
            await until(lambda: "ResponseReceived" in csms.event_types())
    (answer,) = [e for _, e in csms.events if isinstance(e, ResponseReceived)]
    assert answer.message_id == message_id


async def test_b04_connect_drives_the_applications_core_across_station_objects(
    kit: Kit,
) -> None:
    """An application that keeps its StationCore (held messages, registration) hands it to
    the next connect(): the station resumes without a new BootNotification."""
    version = "1.6"
    csms = Script()
    core = StationCore(version, boot(version))
    with anyio.fail_after(TIMEOUT):
        async with kit.serve(csms) as server:
            async with kit.connect(url(server), version, core=core) as first:
                assert first.core is core
                await kit.wait_registered(first)
            assert not core.connected
            async with kit.connect(url(server), version, core=core) as second:
                await kit.wait_connected(second)
                assert second.registration is RegistrationStatus.ACCEPTED
                await kit.call(second, request(version, "Heartbeat"))
    assert csms.actions() == ["BootNotification", "Heartbeat"]


async def test_core_factory_makes_one_core_per_station_kept_across_reconnects(kit: Kit) -> None:
    made: list[tuple[str, str]] = []

    def factory(identity: str, version: str) -> CsmsCore:
        made.append((identity, version))
        return CsmsCore(version, identity, config=CsmsConfig(call_timeout=9))

    with anyio.fail_after(TIMEOUT):
        async with kit.serve(Script(), core_factory=factory) as server:
            for _ in range(2):
                async with kit.connect(url(server), "2.0.1", Script()) as station:
                    await kit.wait_registered(station)
            session = server.sessions["cs001"]
            assert session.core.config.call_timeout == 9
    assert made == [("CS001", "2.0.1")]


async def test_a_core_factory_mismatch_closes_the_connection_with_1011(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    station_app = Script()
    with anyio.fail_after(TIMEOUT), caplog.at_level(logging.ERROR, "ocpp_sansio.adapters"):
        async with (
            kit.serve(Script(), core_factory=lambda i, v: CsmsCore("1.6", i)) as server,
            kit.connect(url(server), "2.0.1", station_app, backoff=Backoff(minimum=60)),
        ):
            await until(lambda: "Disconnected" in station_app.event_types())
            assert server.sessions == {}
    (closed,) = [e for _, e in station_app.events if isinstance(e, Disconnected)]
    assert closed.code == 1011
    assert "CoreMismatch" in caplog.text and "negotiated 2.0.1" in caplog.text


class OfflineMeter:
    """A flow with a timer every 0.05 s that records a transaction message each time."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.due: float | None = 0.0
        self.samples = 0
        self._events: list[Any] = []

    def handle_event(self, event: Any, now: float) -> bool:
        return False

    def next_deadline(self) -> float | None:
        return self.due

    def handle_timer(self, now: float) -> None:
        self.due = now + 0.05
        self.samples += 1
        self.core.send_request(transaction_message(self.core.version, self.samples), now)
        self._events.append(Ticked())

    def events(self) -> list[Any]:
        out, self._events = self._events, []
        return out


async def test_flow_timers_run_between_connections_and_what_they_send_is_held(kit: Kit) -> None:
    with socket.socket() as closed:  # a port where nothing listens: every attempt fails
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    station_app = Script()
    meters: list[OfflineMeter] = []

    def flows(core: Any) -> list[Any]:
        meters.append(OfflineMeter(core))
        return meters

    with anyio.fail_after(TIMEOUT):
        async with kit.connect(
            f"ws://127.0.0.1:{port}/ocpp/CS1",
            "2.0.1",
            station_app,
            flows=flows,
            backoff=Backoff(minimum=30, random_range=0),
        ) as station:
            await until(lambda: flow_events(station_app).count("Ticked") >= 3)
            assert not station.connected
            assert len(station.core.held_requests) >= 3
    assert meters[0].samples >= 3
