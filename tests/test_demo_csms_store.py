"""The demo CSMS with a store: restarted, it serves a station that resumes without a boot
(B04; without the store a 2.x CSMS answers SecurityError and a 1.6 one refuses what a
station not accepted sends), answers a retried transaction message again without handing
it on twice, and knows the transactions begun before the restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _stationkit import Hardware, wall

from ocpp_sansio._core import counter_ids
from ocpp_sansio.apps.demo_csms import DemoCsms
from ocpp_sansio.charging_station import ChargingStation, NetworkProfile, StationInfo
from ocpp_sansio.events import CallErrorReceived, RetryAnswered
from ocpp_sansio.flows import FlowHost, TransactionAnomaly, TransactionCompleted
from ocpp_sansio.store import MemoryCsmsStore, MemoryStationStore
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION, InMemoryPair

VERSIONS = ("1.6", "2.0.1", "2.1")
TRANSACTION_ACTIONS = ("StartTransaction", "StopTransaction", "TransactionEvent")


class Demo:
    """A facade station against the demo CSMS, whose process can restart."""

    def __init__(self, version: str, store: Any) -> None:
        self.version = version
        self.csms_store = store
        self.station = ChargingStation(
            version,
            application=Hardware(),
            info=StationInfo(vendor="ocpp-sansio", model="Demo"),
            store=MemoryStationStore("CS1", version),
            network_profiles={1: NetworkProfile(ocpp_csms_url="ws://127.0.0.1/")},
            wall_clock=wall,
            id_generator=counter_ids("s-"),
        )
        self.events: list[Any] = []
        self._start_csms()
        self.pair = InMemoryPair(self.station.core, self.csms, on_csms_event=self._route)
        self.pair.on_station_event = lambda core, event, now: self.events.append(event)
        self.station.start(0.0, connect=False)
        self.pair.connect()
        self.pair.advance(1)

    def _start_csms(self) -> None:
        self.demo = DemoCsms(store=self.csms_store, wall_clock=wall)
        self.csms = self.demo.core("CS1", self.version)
        self.flows = FlowHost(self.csms, self.demo.flows(self.csms))

    def _route(self, core: Any, event: Any, now: float) -> None:
        self.events.append(event)
        self.flows.route(event, now)
        self.events += self.flows.events()

    def restart_csms(self) -> None:
        """The CSMS process ends; a new one starts on what its store committed. The
        station sees its connection drop and reconnects without booting."""
        self.pair.disconnect()
        if self.csms_store is not None:
            self.csms_store = self.csms_store.reopen()
        self._start_csms()
        self.pair.csms = self.csms
        self.pair.connect()
        self.pair.advance(1)

    def calls(self, action: str) -> int:
        """How many CALLs of ``action`` the station delivered."""
        frames = (json.loads(text) for text in self.pair.frames(TO_CSMS))
        return sum(1 for frame in frames if frame[0] == 2 and frame[2] == action)

    def charge(self) -> None:
        self.station.on_session_started(1, 1, self.pair.now)
        token = (
            "TAG1"
            if self.version == "1.6"
            else self.station.m.IdToken(id_token="TAG1", type="ISO14443")
        )
        self.station.on_authorized(1, 1, token, self.pair.now)
        self.pair.advance(1)

    def stop(self) -> None:
        self.station.on_session_finished(1, 1, self.pair.now)
        self.pair.advance(1)


@pytest.mark.parametrize("version", VERSIONS)
def test_B04_a_restarted_demo_csms_with_a_store_serves_a_station_that_resumes(version: str) -> None:
    demo = Demo(version, MemoryCsmsStore())
    demo.charge()
    running = demo.demo.running_transaction("CS1")
    boots = demo.calls("BootNotification")
    demo.restart_csms()
    assert demo.demo.running_transaction("CS1") == running is not None  # kept
    demo.stop()
    assert demo.calls("BootNotification") == boots  # resumed, no boot
    assert not [e for e in demo.events if isinstance(e, CallErrorReceived)]
    assert demo.station.held_messages == []
    assert demo.demo.running_transaction("CS1") is None
    assert not [e for e in demo.events if isinstance(e, TransactionAnomaly)]
    if version != "1.6":
        completed = [e for e in demo.events if isinstance(e, TransactionCompleted)]
        assert len(completed) == 1 and not completed[0].missing


def test_B04_without_a_store_the_restarted_demo_csms_refuses_the_resumed_session() -> None:
    """What the store is for (issue 16, finding 11)."""
    demo = Demo("2.0.1", None)
    demo.charge()
    demo.restart_csms()
    demo.stop()
    refused = [e for e in demo.events if isinstance(e, CallErrorReceived)]
    assert refused and str(refused[0].error_code) == "SecurityError"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_restarted_demo_csms_answers_a_retry_again_without_handing_it_on(version: str) -> None:
    demo = Demo(version, MemoryCsmsStore())
    transaction_calls: set[str] = set()

    def lose_transaction_answers(direction: str, text: str) -> bool:
        frame = json.loads(text)
        if direction == TO_CSMS and frame[0] == 2 and frame[2] in TRANSACTION_ACTIONS:
            transaction_calls.add(frame[1])
        return direction == TO_STATION and frame[0] == 3 and frame[1] in transaction_calls

    demo.pair.drop = lose_transaction_answers
    demo.charge()  # handled, its answer lost on the way
    demo.pair.drop = lambda direction, text: False
    demo.restart_csms()
    assert any(isinstance(e, RetryAnswered) for e in demo.events)
    assert demo.station.held_messages == []
