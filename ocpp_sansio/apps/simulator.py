"""A simulated charging station: the protocol flows plus pretend hardware, without IO.

``SimulatedStation`` owns a ``StationCore`` subclass that runs the flows inside the core's
own entry points (``receive_text``, ``handle_timer``, ``connection_made`` …), so any
adapter drives it like a plain core and the in-memory pair tests it without sockets. What
no flow takes is answered here with the simplest behaviour a real station would show
(connectors that charge at a fixed power, uploads and downloads that take a second);
anything left is refused with NotSupported. Events the application may care about
(registration, clock, ``RebootRequested`` …) stay in the core for the adapter to hand on.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

import attrs

from ocpp_sansio.config import StationConfig
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import (
    CallErrorReceived,
    CallLost,
    Event,
    Reconnected,
    RegistrationChanged,
    RegistrationStatus,
    RequestReceived,
    ResponseReceived,
    TriggerAccepted,
)
from ocpp_sansio.flows import (
    Authorization,
    AuthorizationDecided,
    Configuration16,
    ConfigurationChanged,
    DataTransferRouter,
    DeviceModel,
    InMemoryCache,
    InMemoryConfiguration,
    InMemoryDeviceModel,
    InMemoryLocalList,
    MeterSampleDue,
    MeterSchedule,
    Reservations,
    TransactionEvents,
    Transactions16,
    standard_variables,
    uuid_transaction_ids,
)
from ocpp_sansio.flows._base import Activity, Emitter, Outbox, WallClock, build, posix_clock
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.flows.authorization import token_key
from ocpp_sansio.flows.availability import (
    Availability,
    AvailabilityChanged,
    AvailabilitySnapshot,
    Reset,
    ResetAccepted,
    ResetDue,
)
from ocpp_sansio.flows.configuration import default_configuration
from ocpp_sansio.flows.device_model import VariableChanged
from ocpp_sansio.flows.firmware import (
    FirmwareDownloadDue,
    FirmwareInstallDue,
    FirmwareSnapshot,
    FirmwareUpdateCanceled,
    FirmwareUpdater,
)
from ocpp_sansio.flows.logs import DiagnosticsUploader, LogUploader, UploadCanceled, UploadDue
from ocpp_sansio.flows.remote import (
    RemoteControl,
    RemoteStartAccepted,
    RemoteStopAccepted,
    UnlockRequested,
)
from ocpp_sansio.flows.reservations import (
    ReservationAccepted,
    ReservationEnded,
    ReservedTargetsChanged,
)
from ocpp_sansio.station import StationCore

#: Simulated charging power (W), and how long uploads, downloads and installs take (s).
POWER_W = 7360.0
TRANSFER_SECONDS = 1.0
#: A reboot waits for the transaction messages before it at most this long (s).
REBOOT_GRACE_SECONDS = 5.0
#: 2.x OCPPCommCtrlr.OfflineThreshold when the device model has none.
DEFAULT_OFFLINE_THRESHOLD = 60.0

VENDOR = "ocpp-sansio"
MODEL = "Simulator"
FIRMWARE = "sim-1.0"

#: TriggerMessage values the simulator can answer with a message (the rest: NotImplemented).
SUPPORTED_TRIGGERS = {
    "1.6": frozenset(
        {
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
            "LogStatusNotification",
        }
    ),
    "2.0.1": frozenset(
        {
            "BootNotification",
            "LogStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
            "TransactionEvent",
        }
    ),
}
SUPPORTED_TRIGGERS["2.1"] = SUPPORTED_TRIGGERS["2.0.1"]

#: Measurands the pretend meter can read, with their units.
_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
}
_VOLTAGE = 230.0


@attrs.frozen(kw_only=True)
class RebootRequested(Event):
    """The simulated station reboots now: close its connection and start
    ``station.rebooted()`` in its place. ``reason`` is the 2.x boot reason that follows."""

    reason: str


FrameObserver = Callable[[str, str, float], None]
"""``observer(direction, text, now)``: ``direction`` is "out" (to the CSMS) or "in"."""


@attrs.define(eq=False)
class _Connector:
    """One connector (1.6) or one EVSE with connector 1 (2.x)."""

    id: int
    transaction: Any = None
    energy_wh: float = 0.0
    charging_since: float | None = None

    def meter(self, now: float) -> float:
        if self.charging_since is None:
            return self.energy_wh
        return self.energy_wh + (now - self.charging_since) * POWER_W / 3600.0


class _HostedCore(StationCore):
    """A StationCore that lets its simulator react after every entry point, before the
    adapter collects frames and events."""

    def __init__(self, host: SimulatedStation, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host = host

    def connection_made(self, now: float) -> None:
        super().connection_made(now)
        if self._host.first_connected_at is None:
            self._host.first_connected_at = now
        self._host._settle(now)

    def connection_lost(self, now: float) -> None:
        super().connection_lost(now)
        self._host._settle(now)

    def receive_text(self, text: str, now: float) -> None:
        self._host._observe("in", text, now)
        super().receive_text(text, now)
        self._host._settle(now)

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        self._host._on_timer(now)
        self._host._settle(now)

    def next_deadline(self) -> float | None:
        own = super().next_deadline()
        host = self._host._next_deadline() if self.connected else None
        if own is None:
            return host
        return own if host is None else min(own, host)

    def data_to_send(self) -> list[str]:
        out = super().data_to_send()
        for text in out:
            self._host._observe("out", text, None)
        return out

    def _pump(self, now: float) -> None:
        super()._pump(now)
        channel = self.channel
        if channel is not None and channel.outstanding is not None:
            self._host._call_sent(channel.outstanding.message_id, now)

    def put_back(self, events: list[Event]) -> None:
        self._events.extendleft(reversed(events))


class SimulatedStation:
    """One simulated charging station: ``core`` goes to an adapter (or the in-memory pair).

    ``connectors`` counts 1.6 connectors 1..N, or 2.x EVSEs 1..N with one connector (id 1)
    each. ``wall_clock(now)`` gives the wall-clock time of core time ``now``;
    ``on_frame(direction, text, now)`` sees every frame (``now`` None when a frame is
    collected for sending). ``boot_reason`` is the 2.x reason of this power-up.
    """

    def __init__(
        self,
        identity: str,
        version: str,
        *,
        connectors: int = 1,
        wall_clock: WallClock = posix_clock,
        rng: random.Random | None = None,
        id_generator: Callable[[], str] | None = None,
        on_frame: FrameObserver | None = None,
        boot_reason: str = "PowerUp",
        firmware_version: str = FIRMWARE,
        carried: _Carried | None = None,
    ) -> None:
        if connectors < 1:
            raise ValueError("a station has at least one connector")
        self.identity = identity
        self.version = version
        self.clock = wall_clock
        self.rng = rng or random.Random()
        self.firmware_version = firmware_version
        self.on_frame = on_frame
        self._id_generator = id_generator
        self.m = messages_for(version)
        self.connectors = {n: _Connector(n) for n in range(1, connectors + 1)}
        #: When each of our CALLs went out, until answered: message id -> core time.
        self._sent_at: dict[str, float] = {}
        #: Round-trip times of our CALLs (s), and when the boot was first accepted.
        self.latencies: list[float] = []
        self.accepted_at: float | None = None
        self.first_connected_at: float | None = None
        self._agenda: list[tuple[float, int, str, Callable[[float], None]]] = []
        self._agenda_order = itertools.count()
        self._reported: dict[int, str] = {}
        self._status_sent: dict[str, int] = {}
        self._reserved: set[int] = set()
        #: Remote starts waiting for their authorization: token key -> connector.
        self._remote_starts: dict[str, int] = {}
        self._reboot_reason: str | None = None
        self._reboot_at: float | None = None
        #: StopTransaction requests to send after the reboot (1.6 Hard reset).
        self._stop_after_reboot: list[Any] = []
        self._settling = False

        carried = carried or _Carried.fresh(version, connectors)
        self._carried = carried
        config = StationConfig(
            connectors=connectors, supported_triggers=SUPPORTED_TRIGGERS[version]
        )
        self.core = _HostedCore(
            self,
            version,
            self._boot_request(boot_reason),
            config=config,
            id_generator=id_generator,
            rng=self.rng,
        )
        core = self.core
        self.activity = Activity()
        self.availability = Availability(core, self.activity, restore=carried.availability)
        self.reset = Reset(core, self.activity, availability=self.availability)
        self.remote = RemoteControl(
            core, self.activity, availability=self.availability, check_start=self._check_start
        )
        if carried.configuration is not None:  # 1.6
            self.settings: Any = Configuration16(core, carried.configuration)
        else:
            assert carried.device_model is not None
            self.settings = DeviceModel(core, carried.device_model, clock=wall_clock)
        self.meter = MeterSchedule(version, settings=self.settings, clock=wall_clock)
        self.transactions: Any
        if version == "1.6":
            self.transactions = Transactions16(
                core,
                settings=self.settings,
                clock=wall_clock,
                activity=self.activity,
                meter_schedule=self.meter,
            )
        else:
            self.transactions = TransactionEvents(
                core,
                transaction_ids=uuid_transaction_ids(self.rng),
                settings=self.settings,
                clock=wall_clock,
                activity=self.activity,
                meter_schedule=self.meter,
            )
        self.authorization = Authorization(
            core,
            settings=self.settings,
            local_list=carried.local_list,
            cache=carried.cache,
            clock=wall_clock,
        )
        self.reservations = Reservations(
            core,
            connectors=connectors
            if version == "1.6"
            else {n: ("cType2",) for n in self.connectors},
            settings=self.settings,
            clock=wall_clock,
        )
        self.firmware = FirmwareUpdater(
            core, activity=self.activity, wall_clock=wall_clock, resume=carried.firmware
        )
        self.logs = LogUploader(core, activity=self.activity)
        self.diagnostics = (
            DiagnosticsUploader(
                core,
                activity=self.activity,
                file_for=lambda request: f"{identity}-diagnostics.log",
            )
            if version == "1.6"
            else None
        )
        self.data_transfer = DataTransferRouter(core)
        self.outbox = Outbox(core)
        # Order matters: Authorization watches answers the transaction flow settles.
        self._timed: tuple[Any, ...] = tuple(
            flow
            for flow in (
                self.firmware,
                self.meter,
                self.reservations,
                self.logs,
                self.diagnostics,
                self.reset,
                self.remote,
            )
            if flow is not None
        )
        self._flows: tuple[Any, ...] = (
            self.reset,  # first: it watches answers that other flows settle
            self.availability,
            self.remote,
            self.outbox,
            self.authorization,
            self.transactions,
            self.firmware,
            self.logs,
            *([self.diagnostics] if self.diagnostics is not None else []),
            self.settings,
            self.reservations,
            self.data_transfer,
            self.meter,
        )
        self._emitters = tuple(flow for flow in self._flows if isinstance(flow, Emitter))

    # --- what the runner uses ----------------------------------------------------------------

    def rebooted(self) -> SimulatedStation:
        """The same station after its reboot: configuration, lists, firmware and the
        transaction messages not yet delivered survive; the connection does not."""
        held = [*self.core.held_requests, *self._stop_after_reboot]
        carried = attrs.evolve(
            self._carried,
            firmware=self.firmware.snapshot(),
            availability=self.availability.snapshot(),
        )
        station = SimulatedStation(
            self.identity,
            self.version,
            connectors=len(self.connectors),
            wall_clock=self.clock,
            rng=self.rng,
            id_generator=self._id_generator,
            on_frame=self.on_frame,
            boot_reason=self._reboot_reason or "PowerUp",
            firmware_version=self.firmware_version,
            carried=carried,
        )
        for request in held:
            station.core.send_request(request, 0.0)
        return station

    def status_of(self, connector_id: int) -> str:
        """The status a StatusNotification reports now for a connector (or 1.6 connector 0)."""
        if connector_id == 0:
            return "Available" if self.availability.is_operative(0) else "Unavailable"
        connector = self.connectors[connector_id]
        if connector.transaction is not None:
            return "Charging" if self.version == "1.6" else "Occupied"
        if not self._operative(connector):
            return "Unavailable"
        if connector_id in self._reserved:
            return "Reserved"
        return "Available"

    # --- the core's entry points call these --------------------------------------------------

    def _observe(self, direction: str, text: str, now: float | None) -> None:
        if self.on_frame is not None:
            self.on_frame(direction, text, now if now is not None else -1.0)

    def _call_sent(self, message_id: str, now: float) -> None:
        if message_id not in self._sent_at:
            self._sent_at[message_id] = now

    def _settle(self, now: float) -> None:
        """Run every pending core and flow event through the flows and the simulator;
        keep the ones nobody took for the application."""
        if self._settling:
            return
        self._settling = True
        kept: list[Event] = []
        try:
            while True:
                events = self.core.events()
                flow_events = [e for flow in self._emitters for e in flow.events()]
                if not events and not flow_events:
                    break
                for event in events:
                    self._timing(event, now)
                    if not self._dispatch(event, now):
                        kept.append(event)
                for flow_event in flow_events:
                    self._on_flow_event(flow_event, now)
        finally:
            self._settling = False
            self.core.put_back(kept)

    def _timing(self, event: Event, now: float) -> None:
        if isinstance(event, ResponseReceived | CallErrorReceived):
            sent = self._sent_at.pop(event.message_id, None)
            if sent is not None:
                self.latencies.append(now - sent)
        elif isinstance(event, CallLost):
            self._sent_at.pop(event.message_id, None)

    def _dispatch(self, event: Event, now: float) -> bool:
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
            self._forget_reported(event.request)
        elif isinstance(event, RegistrationChanged):
            self._on_registration(event, now)
        elif isinstance(event, Reconnected):
            self._on_reconnected(event, now)
        return False

    def _next_deadline(self) -> float | None:
        deadlines = [flow.next_deadline() for flow in self._timed]
        if self._agenda:
            deadlines.append(self._agenda[0][0])
        found = [d for d in deadlines if d is not None]
        return min(found) if found else None

    def _on_timer(self, now: float) -> None:
        for flow in self._timed:
            deadline = flow.next_deadline()
            if deadline is not None and deadline <= now:
                flow.handle_timer(now)
        while self._agenda and self._agenda[0][0] <= now:
            _, _, _, action = heapq.heappop(self._agenda)
            action(now)

    def _later(self, delay: float, now: float, tag: str, action: Callable[[float], None]) -> None:
        heapq.heappush(self._agenda, (now + delay, next(self._agenda_order), tag, action))

    def _cancel(self, tag: str) -> None:
        self._agenda = [entry for entry in self._agenda if entry[2] != tag]
        heapq.heapify(self._agenda)

    # --- registration and status ---------------------------------------------------------------

    def _boot_request(self, reason: str) -> Any:
        m = self.m
        serial = self.identity[:25]
        if self.version == "1.6":
            return m.BootNotificationRequest(
                charge_point_vendor=VENDOR,
                charge_point_model=MODEL,
                charge_point_serial_number=serial,
                firmware_version=self.firmware_version,
            )
        return build(
            m.BootNotificationRequest,
            charging_station=m.ChargingStation(
                model=MODEL,
                vendor_name=VENDOR,
                serial_number=serial,
                firmware_version=self.firmware_version,
            ),
            reason=reason,
        )

    def _on_registration(self, event: RegistrationChanged, now: float) -> None:
        if event.status is not RegistrationStatus.ACCEPTED:
            return
        if self.accepted_at is None:
            self.accepted_at = now
        self.meter.start(now)
        # B01.FR.05: every connector's status after acceptance.
        self._reported.clear()
        self._report_all(now)

    def _on_reconnected(self, event: Reconnected, now: float) -> None:
        if event.offline_for > self._offline_threshold():
            self._reported.clear()  # B04.FR.01: every connector
        self._report_all(now)  # B04.FR.02: otherwise the ones that changed

    def _offline_threshold(self) -> float:
        if self.version == "1.6":
            return 0.0
        value = self.settings.setting("OCPPCommCtrlr.OfflineThreshold")
        try:
            return float(value) if value is not None else DEFAULT_OFFLINE_THRESHOLD
        except ValueError:
            return DEFAULT_OFFLINE_THRESHOLD

    def _targets(self) -> list[int]:
        return ([0] if self.version == "1.6" else []) + list(self.connectors)

    def _report_all(self, now: float) -> None:
        for target in self._targets():
            self._report(target, now)

    def _report(self, target: int, now: float, *, force: bool = False) -> None:
        """Send the target's status if it changed since we last sent it (or ``force``);
        offline or unaccepted, the reconnect or acceptance sends the latest one instead
        (digest §6.2: the current status, not the history)."""
        status = self.status_of(target)
        if not force and self._reported.get(target) == status:
            return
        online = self.core.connected and self.core.registration is RegistrationStatus.ACCEPTED
        if not (online or force):
            return
        request = self._status_request(target, status, now)
        if self.core.may_send(request) is not None:
            return
        self.core.send_request(request, now)
        self._reported[target] = status

    def _status_request(self, target: int, status: str, now: float) -> Any:
        m = self.m
        if self.version == "1.6":
            return build(
                m.StatusNotificationRequest,
                connector_id=target,
                error_code="NoError",
                status=status,
                timestamp=self.clock(now),
            )
        return build(
            m.StatusNotificationRequest,
            timestamp=self.clock(now),
            connector_status=status,
            evse_id=target,
            connector_id=1,
        )

    def _forget_reported(self, request: Any) -> None:
        target = request.connector_id if self.version == "1.6" else request.evse_id
        self._reported.pop(target, None)

    def _sync_reservation_state(self, connector: _Connector, now: float) -> None:
        if connector.transaction is not None:
            state = "Occupied"
        elif not self._operative(connector):
            state = "Unavailable"
        else:
            state = "Available"
        if self.reservations.status.get(connector.id) != state:
            self.reservations.set_status(connector.id, state, now)

    # --- flow events -----------------------------------------------------------------------------

    def _on_flow_event(self, event: Any, now: float) -> None:
        if isinstance(event, FirmwareDownloadDue):
            self._download(now)
        elif isinstance(event, FirmwareInstallDue):
            self._install(now)
        elif isinstance(event, FirmwareUpdateCanceled):
            self._cancel("firmware")
        elif isinstance(event, AvailabilityChanged):
            self._availability_changed(event, now)
        elif isinstance(event, ResetAccepted):
            self._reset_accepted(event, now)
        elif isinstance(event, ResetDue):
            self._reset_due(event, now)
        elif isinstance(event, RemoteStartAccepted):
            self._remote_start(event, now)
        elif isinstance(event, RemoteStopAccepted):
            self._remote_stop(event, now)
        elif isinstance(event, UnlockRequested):
            self._unlock(event, now)
        elif isinstance(event, UploadDue):
            self._upload(event, now)
        elif isinstance(event, UploadCanceled):
            self._cancel(f"upload-{event.kind.value}")
        elif isinstance(event, MeterSampleDue):
            self._sample(event, now)
        elif isinstance(event, AuthorizationDecided):
            self._authorized(event, now)
        elif isinstance(event, ReservationAccepted):
            self._reserved.update(event.newly_reserved)
            self._report_targets(event.newly_reserved, now)
        elif isinstance(event, ReservationEnded):
            self._reserved.difference_update(event.released)
            if event.reservation.target is not None and event.reason != "Used":
                self._reserved.discard(event.reservation.target)
            self._report_targets(event.released, now)
        elif isinstance(event, ReservedTargetsChanged):
            self._reserved.update(event.reserved)
            self._reserved.difference_update(event.released)
            self._report_targets(event.reserved + event.released, now)
        elif isinstance(event, ConfigurationChanged):
            self._setting_changed(event.key, event.value, now)
        elif isinstance(event, VariableChanged):
            self._setting_changed(f"{event.component.name}.{event.variable.name}", event.value, now)

    def _report_targets(self, targets: tuple[int, ...], now: float) -> None:
        for target in targets:
            if target in self.connectors:
                self._report(target, now)

    def _setting_changed(self, name: str, value: str, now: float) -> None:
        if name in ("HeartbeatInterval", "OCPPCommCtrlr.HeartbeatInterval"):
            try:
                interval = float(value)
            except ValueError:
                return
            if interval > 0:
                self.core.set_heartbeat_interval(interval, now)
        self.meter.reconfigure(now)

    # --- firmware (the flow decides; the pretend hardware takes a second per step) --------------

    def _download(self, now: float) -> None:
        self.firmware.download_started(now)

        def done(when: float) -> None:
            self.firmware.downloaded(when)
            update = self.firmware.snapshot()
            if update is not None and update.signed:
                self.firmware.signature_verified(when)

        self._later(TRANSFER_SECONDS, now, "firmware", done)

    def _install(self, now: float) -> None:
        self.firmware.install_started(now)

        def done(when: float) -> None:
            self.firmware.installed(when, reboot=True)
            self.firmware_version = f"{FIRMWARE}+update"
            self._reboot("FirmwareUpdate", when)

        self._later(TRANSFER_SECONDS, now, "firmware", done)

    # --- the CSMS's requests no flow takes ------------------------------------------------------

    def _on_request(self, event: RequestReceived, now: float) -> None:
        handler = self._HANDLERS.get(event.action)
        if handler is None:
            self.core.send_error(
                event.message_id, "NotSupported", f"the simulator does not support {event.action}"
            )
            return
        handler(self, event, now)

    def _answer(self, event: RequestReceived, now: float, **fields: Any) -> None:
        response = self.core.registry[event.action].response
        assert response is not None
        self.core.send_response(event.message_id, build(response, **fields), now)

    # remote start / stop / unlock (the flow answers; the pretend connectors act)

    def _check_start(self, request: Any) -> str | None:
        """A start on a connector reserved for someone else is refused (F01.FR.21/.22)."""
        if self.version == "1.6":
            wanted, token = request.connector_id, request.id_tag
        else:
            wanted, token = request.evse_id, request.id_token
        if wanted is not None and wanted in self.connectors:
            return None if self.reservations.may_charge(wanted, token) else "Rejected"
        return None

    def _remote_start(self, event: RemoteStartAccepted, now: float) -> None:
        connector = self._free_connector(event.evse_id, event.id_token)
        if connector is None:  # nothing free for this token after all
            self.remote.claim_start(event.evse_id or 0, now)
            return
        self._remote_starts[token_key(self.version, event.id_token)] = connector.id
        if self._authorize_remote_starts():
            self.authorization.authorize(event.id_token, now)  # F01.FR.01/.02
        else:
            self._start(connector.id, event.id_token, now)

    def _authorize_remote_starts(self) -> bool:
        name = (
            "AuthorizeRemoteTxRequests"
            if self.version == "1.6"
            else "AuthCtrlr.AuthorizeRemoteStart"
        )
        return (self.settings.setting(name) or "false").strip().lower() == "true"

    def _free_connector(self, wanted: int | None, token: Any) -> _Connector | None:
        candidates = [wanted] if wanted is not None else list(self.connectors)
        waiting = set(self._remote_starts.values())
        for number in candidates:
            connector = self.connectors.get(number)
            if (
                connector is not None
                and self._operative(connector)
                and connector.transaction is None
                and number not in waiting
                and self.reservations.may_charge(number, token)
            ):
                return connector
        return None

    def _authorized(self, event: AuthorizationDecided, now: float) -> None:
        connector_id = self._remote_starts.get(token_key(self.version, event.token))
        if connector_id is None:
            return
        if event.accepted:
            self._start(connector_id, event.token, now)
        else:
            del self._remote_starts[token_key(self.version, event.token)]
            self.remote.claim_start(connector_id, now)  # the start is over

    def _start(self, connector_id: int, token: Any, now: float) -> None:
        self._remote_starts.pop(token_key(self.version, token), None)
        connector = self.connectors[connector_id]
        if connector.transaction is not None or not self._operative(connector):
            return
        reservation = self.reservations.use(connector_id, token, now)
        reservation_id = reservation.reservation_id if reservation is not None else None
        meter_start = round(connector.meter(now))
        if self.version == "1.6":
            self.remote.claim_start(connector_id, now)
            tx = self.transactions.start(
                connector_id, token, meter_start, now, reservation_id=reservation_id
            )
        else:
            # F01.FR.19/.25: the remote start's triggerReason and remoteStartId.
            fields = {
                "trigger_reason": "Authorized",
                **self.remote.transaction_fields(connector_id, now),
            }
            tx = self.transactions.start(
                now=now,
                evse_id=connector_id,
                connector_id=1,
                id_token=token,
                charging_state="Charging",
                reservation_id=reservation_id,
                meter_value=[
                    self._meter_value(
                        connector, ("Energy.Active.Import.Register",), "Transaction.Begin", now
                    )
                ],
                **fields,
            )
        connector.transaction = tx
        connector.charging_since = now
        self._sync_reservation_state(connector, now)
        self._report(connector_id, now)

    def _remote_stop(self, event: RemoteStopAccepted, now: float) -> None:
        connector = self._connector_with(event.transaction_id)
        if connector is not None:
            trigger = event.trigger_reason or "RemoteStop"
            self._stop(connector, now, reason=event.stopped_reason, trigger=trigger)

    def _unlock(self, event: UnlockRequested, now: float) -> None:
        connector = self.connectors.get(event.evse_id)
        if connector is not None and event.stop_first is not None:
            # 1.6 §5.18: the transaction on the connector stops before it unlocks.
            self._stop(connector, now, reason="UnlockCommand", trigger="UnlockCommand")
        self.remote.unlock_result(event.message_id, True, now)

    def _connector_with(self, transaction_id: Any) -> _Connector | None:
        for connector in self.connectors.values():
            tx = connector.transaction
            if tx is not None and transaction_id in (tx.transaction_id, _activity_key(tx)):
                return connector
        return None

    def _stop(self, connector: _Connector, now: float, *, reason: str, trigger: str) -> None:
        tx = connector.transaction
        if tx is None:
            return
        energy = connector.meter(now)
        connector.energy_wh = energy
        connector.charging_since = None
        connector.transaction = None
        if self.version == "1.6":
            self.transactions.stop(tx, round(energy), now, reason=reason)
        else:
            self.transactions.end(
                tx,
                trigger_reason=trigger,
                now=now,
                stopped_reason=reason,
                charging_state="EVConnected",
                meter_value=[
                    self._meter_value(
                        connector, ("Energy.Active.Import.Register",), "Transaction.End", now
                    )
                ],
            )
        self._sync_reservation_state(connector, now)
        self._report(connector.id, now)

    # availability and reset (the flows decide; the simulator stops and reboots)

    def _operative(self, connector: _Connector) -> bool:
        if self.version == "1.6":
            return self.availability.is_operative(connector.id)
        return self.availability.is_operative(connector.id, 1)

    def _availability_changed(self, event: AvailabilityChanged, now: float) -> None:
        for number, _connector in event.changed:
            connector = self.connectors.get(number)
            if connector is not None:
                self._sync_reservation_state(connector, now)
            self._report(number, now)

    def _reset_accepted(self, event: ResetAccepted, now: float) -> None:
        for connector in self.connectors.values():
            tx = connector.transaction
            if tx is None:
                continue
            key = _activity_key(tx)
            if key in event.stop:
                reason = event.stop_reason or "Other"
                self._stop(connector, now, reason=reason, trigger=event.trigger_reason or "")
            elif key in event.after_reboot and tx.transaction_id is not None:
                # 1.6 Hard: the StopTransaction goes out after the reboot, once accepted.
                energy = round(connector.meter(now))
                self._stop_after_reboot.append(
                    build(
                        self.m.StopTransactionRequest,
                        transaction_id=tx.transaction_id,
                        meter_stop=energy,
                        timestamp=self.clock(now),
                        reason=event.stop_reason,
                    )
                )

    def _reset_due(self, event: ResetDue, now: float) -> None:
        if event.evse_id is None:
            self._reboot_reason = "RemoteReset"
            self.core.put_back([RebootRequested(reason="RemoteReset")])

    def _reboot(self, reason: str, now: float) -> None:
        """Reboot once the transaction messages before it are delivered (or after a grace
        period): the runner replaces this station with ``rebooted()``."""
        if self._reboot_at is not None:
            return
        self._reboot_reason = reason
        self._reboot_at = now + REBOOT_GRACE_SECONDS
        self._later(0.1, now, "reboot", self._try_reboot)

    def _try_reboot(self, now: float) -> None:
        assert self._reboot_at is not None and self._reboot_reason is not None
        busy = self.core.held_requests or self.outbox.waiting or self.firmware.outbox.waiting
        if busy and now < self._reboot_at:
            self._later(0.1, now, "reboot", self._try_reboot)
            return
        self.core.put_back([RebootRequested(reason=self._reboot_reason)])

    # --- uploads (the flows decide; the pretend upload takes a second) ------------------------

    def _upload(self, event: UploadDue, now: float) -> None:
        uploader = self.logs if event.kind.value == "log" else self.diagnostics
        assert uploader is not None
        uploader.upload_started(now)
        self._later(TRANSFER_SECONDS, now, f"upload-{event.kind.value}", uploader.uploaded)

    # small answers

    def _transaction_status(self, event: RequestReceived, now: float) -> None:
        wanted = event.request.transaction_id
        ongoing = None if wanted is None else self._connector_with(wanted) is not None
        queued = bool(self.core.held_requests)
        self._answer(event, now, messages_in_queue=queued, ongoing_indicator=ongoing)

    def _set_charging_profile(self, event: RequestReceived, now: float) -> None:
        status = "NotSupported" if self.version == "1.6" else "Rejected"
        self._answer(event, now, status=status)

    def _composite_schedule(self, event: RequestReceived, now: float) -> None:
        self._answer(event, now, status="Rejected")

    def _clear_charging_profile(self, event: RequestReceived, now: float) -> None:
        self._answer(event, now, status="Unknown")

    _HANDLERS: dict[str, Callable[[SimulatedStation, RequestReceived, float], None]] = {
        "GetTransactionStatus": _transaction_status,
        "SetChargingProfile": _set_charging_profile,
        "GetCompositeSchedule": _composite_schedule,
        "ClearChargingProfile": _clear_charging_profile,
    }

    # --- triggers ---------------------------------------------------------------------------------

    def _on_trigger(self, event: TriggerAccepted, now: float) -> None:
        action = event.action
        if action == "StatusNotification":
            for target in sorted(t for t in event.targets if t is not None):
                if target == 0 or target in self.connectors:
                    self._report(target, now, force=True)
        elif action == "MeterValues":
            for target in sorted(t for t in event.targets if t is not None):
                connector = self.connectors.get(target)
                if connector is not None:
                    self._send_meter_values(
                        connector, self._measurands("triggered"), "Trigger", now
                    )
        elif action == "TransactionEvent":
            for target in sorted(t for t in event.targets if t is not None):
                connector = self.connectors.get(target)
                if connector is not None and connector.transaction is not None:
                    self.transactions.update(
                        connector.transaction,
                        trigger_reason="Trigger",  # F06.FR.07
                        now=now,
                        charging_state="Charging",
                        meter_value=[
                            self._meter_value(
                                connector, self._measurands("periodic"), "Trigger", now
                            )
                        ],
                    )

    # --- metering ---------------------------------------------------------------------------------

    def _measurands(self, kind: str) -> tuple[str, ...]:
        names = {
            ("1.6", "periodic"): "MeterValuesSampledData",
            ("1.6", "triggered"): "MeterValuesSampledData",  # digest §4.5
            ("2.x", "periodic"): "SampledDataCtrlr.TxUpdatedMeasurands",
            ("2.x", "triggered"): "AlignedDataCtrlr.Measurands",  # F06.FR.06
        }
        name = names["1.6" if self.version == "1.6" else "2.x", kind]
        value = self.settings.setting(name) or ""
        return tuple(m.strip() for m in value.split(",") if m.strip())

    def _sample(self, event: MeterSampleDue, now: float) -> None:
        if event.transaction is not None:
            connector = self.connectors.get(event.connector_id or 0)
            if connector is None or connector.transaction is not event.transaction:
                return
            mv = self._meter_value(connector, event.measurands, event.context, now)
            if self.version == "1.6":
                self.transactions.meter_values(event.transaction, [mv], now)
            else:
                self.transactions.update(
                    event.transaction,
                    trigger_reason=event.trigger_reason or "MeterValuePeriodic",
                    now=now,
                    meter_value=[mv],
                )
            return
        if not (self.core.connected and self.core.registration is RegistrationStatus.ACCEPTED):
            return
        for connector in self.connectors.values():
            self._send_meter_values(connector, event.measurands, event.context, now)

    def _send_meter_values(
        self, connector: _Connector, measurands: tuple[str, ...], context: str, now: float
    ) -> None:
        mv = self._meter_value(connector, measurands, context, now)
        if self.version == "1.6" and connector.transaction is not None:
            self.transactions.meter_values(connector.transaction, [mv], now)
            return
        if self.version == "1.6":
            request = self.m.MeterValuesRequest(connector_id=connector.id, meter_value=[mv])
        else:
            request = self.m.MeterValuesRequest(evse_id=connector.id, meter_value=[mv])
        # Offline or not accepted: a later sample reports the current value.
        with contextlib.suppress(LocalProtocolError):
            self.core.send_request(request, now)

    def _meter_value(
        self, connector: _Connector, measurands: tuple[str, ...], context: str, now: float
    ) -> Any:
        charging = connector.charging_since is not None
        readings = {
            "Energy.Active.Import.Register": round(connector.meter(now), 1),
            "Power.Active.Import": POWER_W if charging else 0.0,
            "Current.Import": round(POWER_W / _VOLTAGE, 1) if charging else 0.0,
            "Voltage": _VOLTAGE,
        }
        chosen = [m for m in measurands if m in readings] or ["Energy.Active.Import.Register"]
        m = self.m
        values = []
        for measurand in chosen:
            if self.version == "1.6":
                values.append(
                    build(
                        m.SampledValue,
                        value=f"{readings[measurand]:g}",
                        context=context,
                        measurand=measurand,
                        unit=_UNITS[measurand],
                    )
                )
            else:
                values.append(
                    build(
                        m.SampledValue,
                        value=readings[measurand],
                        context=context,
                        measurand=measurand,
                        unit_of_measure=m.UnitOfMeasure(unit=_UNITS[measurand]),
                    )
                )
        return m.MeterValue(timestamp=self.clock(now), sampled_value=values)


@attrs.frozen
class _Carried:
    """What survives a reboot: configuration, authorization lists, a running update."""

    configuration: InMemoryConfiguration | None
    device_model: InMemoryDeviceModel | None
    local_list: InMemoryLocalList
    cache: InMemoryCache
    firmware: FirmwareSnapshot | None = None
    availability: AvailabilitySnapshot | None = None

    @classmethod
    def fresh(cls, version: str, connectors: int) -> _Carried:
        if version == "1.6":
            values = default_configuration(
                connectors=connectors,
                profiles=(
                    "Core",
                    "FirmwareManagement",
                    "LocalAuthListManagement",
                    "Reservation",
                    "RemoteTrigger",
                ),
            )
            return cls(InMemoryConfiguration(values), None, InMemoryLocalList(), InMemoryCache())
        evses = {n: ("cType2",) for n in range(1, connectors + 1)}
        model = InMemoryDeviceModel(standard_variables(evses=evses))
        return cls(None, model, InMemoryLocalList(), InMemoryCache())


def _activity_key(transaction: Any) -> Any:
    """How the shared Activity knows a transaction (1.6: local until the CSMS numbers it)."""
    return getattr(transaction, "activity_key", None) or transaction.transaction_id
