"""A station core and a CSMS core wired to each other in memory, with a virtual clock.

Use it to test your own handlers without sockets: every frame crosses in order (or is
dropped or delayed when you say so), timers fire as the clock advances, and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

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


class Timed(Protocol):
    """What runs on a ``VirtualClock``: anything with a deadline (a connection, a sleep)."""

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


#: How often one deadline may come back unchanged from ``handle_timer`` before
#: ``run_for`` calls it a timer that never fires.
_SAME_DEADLINE_LIMIT = 1000


@attrs.define
class VirtualClock:
    """Time that moves only when a test moves it.

    ``advance(seconds)`` only moves it (``InMemoryPair.advance`` runs the pair's timers
    itself). ``await run_for(seconds)`` is for the in-memory adapter
    (``ocpp_sansio.testing.memory``): it moves time from deadline to deadline of every
    connection and sleep on this clock, runs each when due, and lets the tasks this wakes
    finish before going on, so a test sees an hour of heartbeats without waiting.
    ``wall_time(now)`` is the wall-clock time of ``now`` (``wall_start`` at 0): the
    in-memory adapter gives it to its cores as their ``wall_clock``.
    """

    now: float = 0.0
    wall_start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    _timers: list[Timed] = attrs.field(factory=list, init=False, eq=False, repr=False)
    #: Waits until every other task is blocked (set by the adapter that runs tasks).
    _settle: Callable[[], Awaitable[None]] | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go back")
        self.now += seconds

    def wall_time(self, now: float) -> datetime:
        return self.wall_start + timedelta(seconds=now)

    def attach(self, timed: Timed) -> None:
        """Run ``timed``'s timer on this clock from now on."""
        self._timers.append(timed)

    def detach(self, timed: Timed) -> None:
        if timed in self._timers:
            self._timers.remove(timed)

    def use_settle(self, settle: Callable[[], Awaitable[None]]) -> None:
        """How ``run_for`` lets woken tasks finish (the in-memory adapter sets it)."""
        self._settle = settle

    async def run_for(self, seconds: float) -> None:
        """Move time ``seconds`` on, running every timer due on the way, in order."""
        if seconds < 0:
            raise ValueError("time does not go back")
        until = self.now + seconds
        await self._settled()
        last, repeats = None, 0
        while (due := self._next_due(until)) is not None:
            repeats = repeats + 1 if due == last else 0
            if repeats > _SAME_DEADLINE_LIMIT:
                raise RuntimeError(f"a timer keeps its deadline {due} after it ran")
            last = due
            self.now = max(self.now, due)
            for timed in list(self._timers):
                deadline = timed.next_deadline()
                if deadline is not None and deadline <= self.now and timed in self._timers:
                    timed.handle_timer(self.now)
            await self._settled()
        self.now = until
        await self._settled()

    def _next_due(self, until: float) -> float | None:
        deadlines = [d for t in self._timers if (d := t.next_deadline()) is not None]
        due = min(deadlines, default=None)
        return due if due is not None and due <= until else None

    async def _settled(self) -> None:
        if self._settle is not None:
            await self._settle()


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
