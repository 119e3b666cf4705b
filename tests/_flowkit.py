"""A station core and a CSMS core in memory with flows on both sides and one virtual
clock that fires the cores' and the flows' timers alike."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from _corekit import MODULES, boot_request, boot_response

from ocpp_sansio import registry
from ocpp_sansio._core import counter_ids
from ocpp_sansio.config import StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import Event, RequestReceived
from ocpp_sansio.flows._base import build, posix_clock
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.builders import minimal
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION, InMemoryPair

__all__ = ["MODULES", "TO_CSMS", "TO_STATION", "Rig", "wall"]


def wall(now: float) -> datetime:
    """The wall-clock time the flows read for core time ``now`` (the default clock)."""
    return posix_clock(now)


def later(now: float, seconds: float) -> datetime:
    return posix_clock(now) + timedelta(seconds=seconds)


class Rig:
    """``station_flows`` and ``csms_flows`` see every event of their core first (in order;
    the first that returns True keeps it); what none takes is answered minimally (the
    CSMS accepts boots with ``boot_status``)."""

    def __init__(
        self,
        version: str,
        *,
        connectors: int = 1,
        boot_status: str = "Accepted",
        connect: bool = True,
        boot: Any = None,
    ) -> None:
        self.version = version
        self.m = MODULES[version]
        self.boot_status = boot_status
        self.connectors = connectors
        self.station_flows: list[Any] = []
        self.csms_flows: list[Any] = []
        #: Events no station flow took, and requests no CSMS flow took.
        self.station_seen: list[Event] = []
        self.csms_seen: list[Event] = []
        self.pair = InMemoryPair(
            self._new_station(boot),
            CsmsCore(version, "CS1", id_generator=counter_ids("c")),
            on_station_event=self._on_station,
            on_csms_event=self._on_csms,
        )
        if connect:
            self.pair.connect()

    def _new_station(self, boot: Any) -> StationCore:
        self._boots = getattr(self, "_boots", 0) + 1
        return StationCore(
            self.version,
            boot if boot is not None else boot_request(self.version),
            config=StationConfig(connectors=self.connectors),
            id_generator=counter_ids(f"s{self._boots}-"),
            rng=random.Random(1),
        )

    @property
    def station(self) -> StationCore:
        return self.pair.station

    @property
    def csms(self) -> CsmsCore:
        return self.pair.csms

    @property
    def now(self) -> float:
        return self.pair.now

    # --- the two applications

    def _on_station(self, core: StationCore, event: Event, now: float) -> None:
        for flow in self.station_flows:
            if flow.handle_event(event, now):
                return
        self.station_seen.append(event)
        if isinstance(event, RequestReceived):
            answer = minimal(registry(self.version)[event.action].response)
            core.send_response(event.message_id, answer, now)

    def _on_csms(self, core: CsmsCore, event: Event, now: float) -> None:
        for flow in self.csms_flows:
            if flow.handle_event(event, now):
                return
        self.csms_seen.append(event)
        if not isinstance(event, RequestReceived):
            return
        if event.action == "BootNotification":
            answer = boot_response(self.version, self.boot_status, 300)
        else:
            answer = minimal(registry(self.version)[event.action].response)
        core.send_response(event.message_id, answer, now)

    # --- time

    def _timers(self) -> list[Any]:
        return [f for f in (*self.station_flows, *self.csms_flows) if hasattr(f, "next_deadline")]

    def next_deadline(self) -> float | None:
        deadlines = [self.pair.next_deadline(), *(f.next_deadline() for f in self._timers())]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def _fire(self) -> None:
        now = self.now
        self.station.handle_timer(now)
        self.csms.handle_timer(now)
        for flow in self._timers():
            flow.handle_timer(now)
        self.pair.flush()

    def advance(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until(self, when: float) -> None:
        for _ in range(10_000):
            self.pair.flush()
            deadline = self.next_deadline()
            if deadline is None or deadline > when:
                break
            self.pair.clock.now = max(self.now, deadline)
            self._fire()
        else:
            raise RuntimeError("too many timer steps")
        self.pair.clock.now = max(self.now, when)
        self._fire()

    def flush(self) -> None:
        self.pair.flush()

    # --- doing things

    def csms_sends(self, payload: Any) -> str:
        message_id = self.csms.send_request(payload, self.now)
        self.flush()
        return message_id

    def trigger(self, what: str, *, extended: bool = False) -> None:
        action = (
            "ExtendedTriggerMessage" if extended and self.version == "1.6" else "TriggerMessage"
        )
        cls = registry(self.version)[action].request
        self.csms_sends(build(cls, requested_message=what))

    def reboot(self, boot: Any = None, *, held: list[Any] | None = None) -> StationCore:
        """Power-cycle the station: a new core (with ``boot``), reconnected; ``held``
        transaction messages are submitted to it again."""
        self.pair.disconnect()
        self.pair.station = self._new_station(boot)
        for payload in held or []:
            self.pair.station.send_request(payload, self.now)
        self.pair.connect()
        return self.pair.station

    def disconnect(self) -> None:
        self.pair.disconnect()

    def connect(self) -> None:
        self.pair.connect()

    # --- reading the wire

    def calls(self, action: str | None = None, direction: str = TO_CSMS) -> list[dict[str, Any]]:
        """Payloads of delivered CALLs (of ``action``) in ``direction``."""
        out = []
        for text in self.pair.frames(direction):
            frame = json.loads(text)
            if frame[0] == 2 and action in (None, frame[2]):
                out.append(frame[3])
        return out

    def call_actions(self, direction: str = TO_CSMS) -> list[str]:
        return [json.loads(t)[2] for t in self.pair.frames(direction) if json.loads(t)[0] == 2]

    def answers(self, direction: str = TO_CSMS) -> list[Any]:
        """Payloads of delivered CALLRESULTs in ``direction`` (default: the station's)."""
        frames = map(json.loads, self.pair.frames(direction))
        return [f[2] for f in frames if f[0] == 3]

    def errors(self, direction: str = TO_CSMS) -> list[list[Any]]:
        return [f for f in map(json.loads, self.pair.frames(direction)) if f[0] == 4]

    def statuses(self, action: str) -> list[str]:
        return [p["status"] for p in self.calls(action)]
