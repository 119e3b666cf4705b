"""How the facade runs inside the core's own entry points: a ``StationCore`` that lets
the facade react after each of them, the facade's own timers (an agenda), and those timers
as a flow for adapters that run flows between connections."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ocpp_sansio.events import Event
from ocpp_sansio.station import StationCore

if TYPE_CHECKING:
    from ._facade import ChargingStation

Action = Callable[[float], None]


class Agenda:
    """Actions due at a core time, each under a tag that can cancel it."""

    def __init__(self) -> None:
        self._entries: list[tuple[float, int, str, Action]] = []
        self._order = itertools.count()

    def schedule(self, at: float, tag: str, action: Action) -> None:
        heapq.heappush(self._entries, (at, next(self._order), tag, action))

    def cancel(self, tag: str) -> None:
        self._entries = [entry for entry in self._entries if entry[2] != tag]
        heapq.heapify(self._entries)

    def next_deadline(self) -> float | None:
        return self._entries[0][0] if self._entries else None

    def run_due(self, now: float) -> None:
        while self._entries and self._entries[0][0] <= now:
            _, _, _, action = heapq.heappop(self._entries)
            action(now)


class FacadeCore(StationCore):
    """A StationCore that lets its facade react after every entry point, before the
    adapter collects frames and events."""

    def __init__(self, facade: ChargingStation, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._facade = facade

    def connection_made(self, now: float) -> None:
        facade = self._facade
        if not facade.started:
            facade.start(now, connect=False)  # an adapter connected before start()
        if facade.resume_delay > 0:
            self.defer_held(now + facade.resume_delay)
        super().connection_made(now)
        facade.connectivity.connected(now)
        facade.router.settle(now)

    def connection_lost(self, now: float) -> None:
        super().connection_lost(now)
        self._facade.connectivity.disconnected(now)
        self._facade.router.settle(now)

    def receive_text(self, text: str, now: float) -> None:
        self._facade.observe("in", text, now)
        super().receive_text(text, now)
        self._facade.router.settle(now)

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        self._facade.router.run_timers(now)
        self._facade.router.settle(now)

    def next_deadline(self) -> float | None:
        own = super().next_deadline()
        host = self._facade.router.next_deadline()
        if own is None:
            return host
        return own if host is None else min(own, host)

    def data_to_send(self) -> list[str]:
        out = super().data_to_send()
        for text in out:
            self._facade.observe("out", text, None)
        self._facade.reboots.frames_collected()
        return out

    def _pump(self, now: float) -> None:
        super()._pump(now)
        channel = self.channel
        if channel is not None and channel.outstanding is not None:
            self._facade.router.sent_at.setdefault(channel.outstanding.message_id, now)

    def put_back(self, events: list[Event]) -> None:
        self._events[:0] = events


class OfflineTimers:
    """The facade's timers as a flow, for adapters that run flows' timers between
    connections (meter samples and reservations go on while offline, E11/E12)."""

    def __init__(self, facade: ChargingStation) -> None:
        self._facade = facade

    def handle_event(self, event: Event, now: float) -> bool:
        return False

    def next_deadline(self) -> float | None:
        if self._facade.core.connected:
            return None
        return self._facade.router.next_deadline()

    def handle_timer(self, now: float) -> None:
        if not self._facade.core.connected:
            self._facade.core.handle_timer(now)
