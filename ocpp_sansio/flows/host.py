"""Running flows next to a core: the one way every adapter, the in-memory harness and the
applications host them (docs/flows.md)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..csms import CsmsCore
from ..errors import LocalProtocolError
from ..events import Event, RequestReceived
from ..station import StationCore

log = logging.getLogger("ocpp_sansio.flows")

#: ``flows(core)``: the ``ocpp_sansio.flows`` objects (or any with ``handle_event(event,
#: now) -> bool``) that see a core's events before the application, in order.
FlowFactory = Callable[[Any], Sequence[Any]]


class FlowHost:
    """A core's flows, run as docs/flows.md says: each core event goes through them in
    order and the first that returns True keeps it; their timers and their own events are
    collected here. Flows may lack ``events``, ``next_deadline`` / ``handle_timer``."""

    def __init__(self, core: StationCore | CsmsCore, flows: Sequence[Any]) -> None:
        for flow in flows:
            if not callable(getattr(flow, "handle_event", None)):
                raise TypeError(f"{type(flow).__name__} is not a flow: it has no handle_event")
        self.core = core
        self.flows = tuple(flows)
        self._emitting = [f for f in self.flows if callable(getattr(f, "events", None))]
        self._timed = [
            f
            for f in self.flows
            if callable(getattr(f, "next_deadline", None))
            and callable(getattr(f, "handle_timer", None))
        ]

    def route(self, event: Event, now: float) -> bool:
        """True when a flow kept ``event``. A flow that raises keeps it: the error is
        logged and a request it was answering gets an InternalError CALLERROR."""
        for flow in self.flows:
            try:
                if flow.handle_event(event, now):
                    return True
            except Exception:
                log.exception("%s failed on %r", type(flow).__name__, event)
                if isinstance(event, RequestReceived):
                    # (unless it answered before it failed)
                    with contextlib.suppress(LocalProtocolError):
                        self.core.send_error(event.message_id, "InternalError", type(flow).__name__)
                return True
        return False

    def events(self) -> list[Any]:
        """The flows' own events, flow by flow."""
        out: list[Any] = []
        for flow in self._emitting:
            out += flow.events()
        return out

    def next_deadline(self) -> float | None:
        earliest = None
        for flow in self._timed:  # (asked after every read: no lists made)
            deadline = flow.next_deadline()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def handle_timer(self, now: float) -> None:
        for flow in self._timed:
            deadline = flow.next_deadline()
            if deadline is not None and deadline <= now:
                flow.handle_timer(now)
