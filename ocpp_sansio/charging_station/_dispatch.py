"""Where each event goes: the core's events through the flows, then to the part of the
station that acts on them; the flows' events to their part; the CSMS's requests no flow
takes; the facade's timers. What nobody takes is left for the application."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ocpp_sansio.events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    Event,
    InvalidResponse,
    Reconnected,
    RegistrationChanged,
    RequestReceived,
    ResponseReceived,
    TriggerAccepted,
)
from ocpp_sansio.flows import (
    AuthorizationDecided,
    ConfigurationChanged,
    MeterSampleDue,
)
from ocpp_sansio.flows._base import Emitter, build
from ocpp_sansio.flows.availability import AvailabilityChanged, ResetAccepted, ResetDue
from ocpp_sansio.flows.device_model import VariableChanged
from ocpp_sansio.flows.firmware import FirmwareDownloadDue, FirmwareInstallDue
from ocpp_sansio.flows.logs import UploadDue
from ocpp_sansio.flows.remote import RemoteStartAccepted, RemoteStopAccepted, UnlockRequested
from ocpp_sansio.flows.reservations import (
    ReservationAccepted,
    ReservationEnded,
    ReservedTargetsChanged,
)
from ocpp_sansio.flows.smart_charging import (
    ChargingProfileInstalled,
    ChargingProfilesCleared,
    LimitChanged,
)
from ocpp_sansio.flows.transactions import TransactionDeauthorized

from ._events import DataTransferAnswered
from ._runtime import Agenda

if TYPE_CHECKING:
    from ._facade import ChargingStation

#: TriggerMessage values the facade answers itself; its firmware, log and diagnostics flows
#: register theirs, the core sends boots and heartbeats, and anything else is answered
#: NotImplemented (F06.FR.08).
SUPPORTED_TRIGGERS = {
    "1.6": frozenset({"MeterValues", "StatusNotification"}),
    "2.0.1": frozenset({"MeterValues", "StatusNotification", "TransactionEvent"}),
}
SUPPORTED_TRIGGERS["2.1"] = SUPPORTED_TRIGGERS["2.0.1"]

_ANSWERS = ResponseReceived | CallErrorReceived | CallTimedOut | InvalidResponse | CallLost


class Router:
    """``flows``: every flow, in the order they see the core's events. ``timed``: the
    flows with timers."""

    def __init__(
        self, station: ChargingStation, flows: Sequence[Any], timed: Sequence[Any]
    ) -> None:
        self.station = station
        self._flows = tuple(flows)
        self._emitters = tuple(flow for flow in flows if isinstance(flow, Emitter))
        self._timed = tuple(timed)
        self._agenda = Agenda()
        self._settling = False
        self._data_transfers: set[str] = set()
        #: Core time our CALLs went out, until answered (the load command's figures).
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []

    # --- timers

    def schedule(self, at: float, tag: str, action: Callable[[float], None]) -> None:
        self._agenda.schedule(at, tag, action)

    def cancel(self, tag: str) -> None:
        self._agenda.cancel(tag)

    def next_deadline(self) -> float | None:
        deadlines = [flow.next_deadline() for flow in self._timed]
        deadlines.append(self._agenda.next_deadline())
        found = [d for d in deadlines if d is not None]
        return min(found) if found else None

    def run_timers(self, now: float) -> None:
        for flow in self._timed:
            deadline = flow.next_deadline()
            if deadline is not None and deadline <= now:
                flow.handle_timer(now)
        self._agenda.run_due(now)

    # --- events

    def emit(self, event: Event) -> None:
        """Leave ``event`` for the application, after those already pending."""
        core = self.station.core
        core.put_back([*core.events(), event])

    def data_transfer_sent(self, message_id: str) -> None:
        """Its answer becomes ``DataTransferAnswered``."""
        self._data_transfers.add(message_id)

    def settle(self, now: float) -> None:
        """Run every pending core and flow event through the flows and the parts; keep the
        ones nobody took for the application. Then commit the store: every entry point
        ends here, so what it changed (a meter sample taken offline, a transaction started)
        is durable before anything else happens, whether or not frames are taken."""
        self.station.now = now
        if self._settling:
            return
        self._settling = True
        core = self.station.core
        kept: list[Event] = []
        try:
            while True:
                events = core.events()
                flow_events = [e for flow in self._emitters for e in flow.events()]
                if not events and not flow_events:
                    break
                for event in events:
                    self._timing(event, now)
                    if not self._dispatch(event, now):
                        kept.append(event)
                for flow_event in flow_events:
                    handler = _FLOW_EVENTS.get(type(flow_event))
                    if handler is None:
                        kept.append(flow_event)
                    else:
                        handler(self.station, flow_event, now)
            self.station.status.sync_holds()
        finally:
            self._settling = False
            core.put_back(kept)
        core.commit()

    def _timing(self, event: Event, now: float) -> None:
        if isinstance(event, ResponseReceived | CallErrorReceived):
            sent = self.sent_at.pop(event.message_id, None)
            if sent is not None:
                self.latencies.append(now - sent)
        elif isinstance(event, CallLost):
            self.sent_at.pop(event.message_id, None)

    def _dispatch(self, event: Event, now: float) -> bool:
        station = self.station
        if isinstance(event, _ANSWERS) and event.message_id in self._data_transfers:
            self._data_transfers.discard(event.message_id)
            response = event.response if isinstance(event, ResponseReceived) else None
            station.core.put_back(
                [DataTransferAnswered(message_id=event.message_id, response=response)]
            )
            return True
        for flow in self._flows:
            if flow.handle_event(event, now):
                return True
        if isinstance(event, RequestReceived):
            self._on_request(event, now)
            return True
        if isinstance(event, TriggerAccepted):
            self._on_trigger(event, now)
            return True
        if isinstance(event, CallLost) and event.action == "StatusNotification":
            station.status.lost(event.request)
        elif isinstance(event, RegistrationChanged):
            station.status.registration_changed(event, now)
        elif isinstance(event, Reconnected):
            station.status.reconnected(event, now)
        return False

    # --- the CSMS's requests no flow takes

    def _on_request(self, event: RequestReceived, now: float) -> None:
        handler = _REQUESTS.get(event.action)
        if handler is None:
            self.station.core.send_error(
                event.message_id, "NotSupported", f"this station does not support {event.action}"
            )
            return
        handler(self.station, event, now)

    def answer(self, event: RequestReceived, now: float, **fields: Any) -> None:
        core = self.station.core
        response = core.registry[event.action].response
        assert response is not None
        core.send_response(event.message_id, build(response, **fields), now)

    def _on_trigger(self, event: TriggerAccepted, now: float) -> None:
        station = self.station
        targets = sorted(t for t in event.targets if t is not None)
        if event.action == "StatusNotification":
            station.status.report_evses(targets, now, force=True)
            return
        metering = station.metering
        for target in targets:
            evse = station.evses.get(target)
            if evse is None:
                continue
            if event.action == "MeterValues":
                metering.send(evse, metering.measurands("triggered"), "Trigger", now)
            elif event.action == "TransactionEvent" and evse.transaction is not None:
                metering.triggered_transaction_event(evse, now)


def _transaction_status(station: ChargingStation, event: RequestReceived, now: float) -> None:
    """E14: messagesInQueue counts the held messages of that transaction (or any)."""
    wanted = event.request.transaction_id
    ongoing = None if wanted is None else station.sessions.evse_with_id(wanted) is not None
    held = station.core.held_requests
    if wanted is not None:
        held = [r for r in held if getattr(r.transaction_info, "transaction_id", None) == wanted]
    station.router.answer(event, now, messages_in_queue=bool(held), ongoing_indicator=ongoing)


def _reserved_changed(station: ChargingStation, event: Any, now: float) -> None:
    station.status.sync_reserved(now)


def _setting_changed(
    station: ChargingStation, event: ConfigurationChanged | VariableChanged, now: float
) -> None:
    if isinstance(event, ConfigurationChanged):
        name = event.key
    else:
        name = f"{event.component.name}.{event.variable.name}"
    station.setting_effects.changed(name, now)


_Handler = Callable[["ChargingStation", Any, float], None]

#: Flow events the station acts on; the others are left for the application.
_FLOW_EVENTS: dict[type, _Handler] = {
    FirmwareDownloadDue: lambda s, e, now: s.maintenance.download(e, now),
    FirmwareInstallDue: lambda s, e, now: s.application.install_firmware(
        s.firmware.request_id, now
    ),
    AvailabilityChanged: lambda s, e, now: s.status.availability_changed(e, now),
    ResetAccepted: lambda s, e, now: s.reboots.reset_accepted(e, now),
    ResetDue: lambda s, e, now: s.reboots.reset_due(e, now),
    RemoteStartAccepted: lambda s, e, now: s.tokens.remote_start(e, now),
    RemoteStopAccepted: lambda s, e, now: s.sessions.remote_stop(e, now),
    UnlockRequested: lambda s, e, now: s.sessions.unlock(e, now),
    UploadDue: lambda s, e, now: s.maintenance.upload(e, now),
    MeterSampleDue: lambda s, e, now: s.metering.sample(e, now),
    AuthorizationDecided: lambda s, e, now: s.tokens.decided(e, now),
    TransactionDeauthorized: lambda s, e, now: s.sessions.deauthorized(e, now),
    ReservationAccepted: _reserved_changed,
    ReservationEnded: _reserved_changed,
    ReservedTargetsChanged: _reserved_changed,
    ConfigurationChanged: _setting_changed,
    VariableChanged: _setting_changed,
    LimitChanged: lambda s, e, now: s.smart.limit_changed(e, now),
    ChargingProfileInstalled: lambda s, e, now: s.smart.profiles_changed(e),
    ChargingProfilesCleared: lambda s, e, now: s.smart.profiles_changed(e),
}

#: The CSMS's requests no flow takes.
_REQUESTS: dict[str, _Handler] = {
    "GetTransactionStatus": _transaction_status,
    "SetNetworkProfile": lambda s, e, now: s.connectivity.set_network_profile(e, now),
}
