"""A station core and a CSMS core wired to each other in memory, with a virtual clock.

Use it to test your own handlers without sockets: every frame crosses in order (or is
dropped or delayed when you say so), timers fire as the clock advances, and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..csms import CsmsCore
from ..events import Event
from ..station import StationCore

Handler = Callable[[Any, Event, float], None]

TO_CSMS = "station->csms"
TO_STATION = "csms->station"


@attrs.frozen
class Sent:
    """One frame in the transcript."""

    time: float
    direction: str
    text: str
    delivered: bool


@attrs.define
class VirtualClock:
    now: float = 0.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go back")
        self.now += seconds


def _ignore(core: Any, event: Event, now: float) -> None:
    """Default handler: keep the event (in ``*_events``) and do nothing."""


class InMemoryPair:
    """``station`` and ``csms`` connected through memory.

    ``on_station_event(station, event, now)`` and ``on_csms_event(csms, event, now)`` play
    the applications: they may answer requests and send their own. Every event also lands
    in ``station_events`` / ``csms_events``; every frame in ``transcript``.
    """

    def __init__(
        self,
        station: StationCore,
        csms: CsmsCore,
        *,
        clock: VirtualClock | None = None,
        on_station_event: Handler = _ignore,
        on_csms_event: Handler = _ignore,
    ) -> None:
        self.station = station
        self.csms = csms
        self.clock = clock or VirtualClock()
        self.on_station_event = on_station_event
        self.on_csms_event = on_csms_event
        self.transcript: list[Sent] = []
        self.station_events: list[Event] = []
        self.csms_events: list[Event] = []
        #: Return True to drop a frame: ``drop(direction, text)``.
        self.drop: Callable[[str, str], bool] = lambda direction, text: False
        self.connected = False

    @property
    def now(self) -> float:
        return self.clock.now

    def connect(self) -> None:
        self.csms.connection_made(self.now)
        self.station.connection_made(self.now)
        self.connected = True
        self.flush()

    def disconnect(self) -> None:
        self.connected = False
        self.station.connection_lost(self.now)
        self.csms.connection_lost(self.now)
        self.flush()

    def flush(self, max_rounds: int = 10_000) -> None:
        """Deliver frames and run handlers until both sides are quiet."""
        for _ in range(max_rounds):
            moved = self._dispatch_events()
            if self.connected:
                moved |= self._carry(self.station, self.csms, TO_CSMS)
                moved |= self._carry(self.csms, self.station, TO_STATION)
            if not moved:
                return
        raise RuntimeError("the pair kept talking for too long")

    def _carry(self, sender: Any, receiver: Any, direction: str) -> bool:
        frames = sender.data_to_send()
        for text in frames:
            dropped = self.drop(direction, text)
            self.transcript.append(Sent(self.now, direction, text, not dropped))
            if not dropped:
                receiver.receive_text(text, self.now)
        return bool(frames)

    def _dispatch_events(self) -> bool:
        moved = False
        for core, sink, handler in (
            (self.station, self.station_events, self.on_station_event),
            (self.csms, self.csms_events, self.on_csms_event),
        ):
            while (event := core.next_event()) is not None:
                moved = True
                sink.append(event)
                handler(core, event, self.now)
        return moved

    def next_deadline(self) -> float | None:
        deadlines = [
            d for d in (self.station.next_deadline(), self.csms.next_deadline()) if d is not None
        ]
        return min(deadlines) if deadlines else None

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``, firing every timer on the way."""
        self.run_until(self.now + seconds)

    def run_until(self, when: float, max_steps: int = 100_000) -> None:
        for _ in range(max_steps):
            self.flush()
            deadline = self.next_deadline()
            if deadline is None or deadline > when:
                break
            self.clock.now = max(self.now, deadline)
            self.station.handle_timer(self.now)
            self.csms.handle_timer(self.now)
        else:
            raise RuntimeError("too many timer steps")
        self.clock.now = max(self.now, when)
        self.station.handle_timer(self.now)
        self.csms.handle_timer(self.now)
        self.flush()

    def frames(self, direction: str | None = None) -> list[str]:
        """Texts of the delivered frames, optionally in one direction."""
        return [s.text for s in self.transcript if s.delivered and direction in (None, s.direction)]
