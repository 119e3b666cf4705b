"""``ChargingStation``: the whole station behind one object (after libocpp's
ChargePointInterface), sans-IO.

It owns a ``StationCore`` and every station flow, runs them inside the core's own entry
points (so any adapter drives ``station.core`` like a plain core), keeps each EVSE's
state, decides when transactions start and stop (TxStartPoint / TxStopPoint), obeys the
settings the CSMS changes, plans connections over the network profiles, and keeps what
must survive a reboot in a ``StationStore``. The hardware is the application's, behind
``StationApplication``; what the IO layer must do comes out as events
(``ConnectRequested``, ``DisconnectRequested``, ``RebootRequested``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ocpp_sansio.config import StationConfig
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    ClockReport,
    Event,
    InvalidResponse,
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
    InMemoryConfiguration,
    InMemoryDeviceModel,
    MeterSampleDue,
    MeterSchedule,
    Reservations,
    TransactionEvents,
    Transactions16,
    uuid_transaction_ids,
)
from ocpp_sansio.flows._base import Activity, Emitter, Outbox, WallClock, WallClocked, build
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.flows.availability import (
    STATION,
    Availability,
    AvailabilityChanged,
    AvailabilitySnapshot,
    Reset,
    ResetAccepted,
    ResetDue,
)
from ocpp_sansio.flows.device_model import ComponentKey, VariableChanged, VariableKey
from ocpp_sansio.flows.firmware import (
    FirmwareDownloadDue,
    FirmwareInstallDue,
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
from ocpp_sansio.flows.transactions import TransactionDeauthorized
from ocpp_sansio.messages._codec import structure_fn, unstructure
from ocpp_sansio.station import StationCore

from ._application import FirmwareJob, StationApplication, UploadJob
from ._events import (
    ConnectRequested,
    DataTransferAnswered,
    DisconnectRequested,
    RebootRequested,
    TokenValidated,
)
from ._network import NetworkPlanner, NetworkProfile, RetryBackOff
from ._persist import (
    StoredCache,
    StoredLocalList,
    firmware_from_json,
    firmware_to_json,
    reservation_from_json,
    reservation_to_json,
)
from ._store import InMemoryStationStore, StationStore
from ._variables import station_keys, station_variables

#: Boot reasons (2.x BootReasonEnumType) the facade gives by itself.
POWER_UP = "PowerUp"
TRIGGERED = "Triggered"
REMOTE_RESET = "RemoteReset"
SCHEDULED_RESET = "ScheduledReset"
FIRMWARE_UPDATE = "FirmwareUpdate"

#: The security events the 2.0.1 appendix marks critical: queued while offline and
#: delivered once accepted (A04).
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidCsmsCertificate",
        "InvalidChargingStationCertificate",
        "InvalidTLSVersion",
        "InvalidTLSCipherSuite",
        "MaintenanceLoginAccepted",
        "MaintenanceLoginFailed",
    }
)

#: TriggerMessage values the facade answers itself (``_on_trigger``); its firmware, log and
#: diagnostics flows register theirs, the core sends boots and heartbeats, and anything else
#: is answered NotImplemented (F06.FR.08).
SUPPORTED_TRIGGERS = {
    "1.6": frozenset({"MeterValues", "StatusNotification"}),
    "2.0.1": frozenset({"MeterValues", "StatusNotification", "TransactionEvent"}),
}
SUPPORTED_TRIGGERS["2.1"] = SUPPORTED_TRIGGERS["2.0.1"]

_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
    "SoC": "Percent",
}
#: A reboot waits for the transaction messages before it at most this long (s).
REBOOT_GRACE_SECONDS = 5.0
_DEFAULT_OFFLINE_THRESHOLD = 60.0


@attrs.frozen(kw_only=True)
class StationInfo:
    """What the BootNotification says about the station."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


@attrs.define(eq=False)
class _Connector:
    id: int
    plugged: bool = False
    faulted: bool = False


@attrs.define(eq=False)
class _Evse:
    """One EVSE (1.6: one connector) and what runs on it."""

    id: int
    connectors: dict[int, _Connector]
    transaction: Any = None
    #: The token authorized here (no transaction yet, or the transaction's).
    token: Any = None
    authorized_at: float | None = None
    #: Remote-start fields for the first TransactionEvent (F01.FR.19).
    remote_fields: dict[str, Any] = attrs.field(factory=dict)
    energy: bool = False
    #: 2.x: the idToken went out in a TransactionEvent of the running transaction.
    token_sent: bool = False
    readings: dict[str, float] = attrs.field(factory=dict)
    hardware_holds: set[int | None] = attrs.field(factory=set)

    @property
    def plugged(self) -> bool:
        return any(c.plugged for c in self.connectors.values())

    def plugged_connector(self) -> int:
        return next((c.id for c in self.connectors.values() if c.plugged), 1)


class _FacadeCore(StationCore):
    """A StationCore that lets its facade react after every entry point, before the
    adapter collects frames and events."""

    def __init__(self, facade: ChargingStation, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._facade = facade

    def connection_made(self, now: float) -> None:
        if not self._facade._started:
            self._facade.start(now, connect=False)  # an adapter connected before start()
        if self._facade._resume_delay > 0:
            self.defer_held(now + self._facade._resume_delay)
        super().connection_made(now)
        self._facade._connected(now)
        self._facade._settle(now)

    def connection_lost(self, now: float) -> None:
        super().connection_lost(now)
        self._facade._disconnected(now)
        self._facade._settle(now)

    def receive_text(self, text: str, now: float) -> None:
        self._facade._observe("in", text, now)
        super().receive_text(text, now)
        self._facade._settle(now)

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        self._facade._on_timer(now)
        self._facade._settle(now)

    def next_deadline(self) -> float | None:
        own = super().next_deadline()
        host = self._facade._next_deadline()
        if own is None:
            return host
        return own if host is None else min(own, host)

    def data_to_send(self) -> list[str]:
        out = super().data_to_send()
        for text in out:
            self._facade._observe("out", text, None)
        self._facade._frames_collected()
        return out

    def _pump(self, now: float) -> None:
        super()._pump(now)
        channel = self.channel
        if channel is not None and channel.outstanding is not None:
            self._facade._sent_at.setdefault(channel.outstanding.message_id, now)

    def put_back(self, events: list[Event]) -> None:
        self._events.extendleft(reversed(events))

    def trigger_boot(self, now: float) -> None:
        """Send the BootNotification again now (a 2.x trigger says reason Triggered)."""
        self._boot_at = now


class _OfflineTimers:
    """The facade's timers as a flow, for adapters that run flows' timers between
    connections (meter samples and reservations go on while offline, E11/E12)."""

    def __init__(self, facade: ChargingStation) -> None:
        self._facade = facade

    def handle_event(self, event: Event, now: float) -> bool:
        return False

    def next_deadline(self) -> float | None:
        if self._facade.core.connected:
            return None
        return self._facade._next_deadline()

    def handle_timer(self, now: float) -> None:
        if not self._facade.core.connected:
            self._facade.core.handle_timer(now)


FrameObserver = Callable[[str, str, float], None]


class ChargingStation(WallClocked):
    """One charging station, assembled. See docs/charging_station.md.

    ``evses``: the number of EVSEs (1.6: connectors), ids from 1, each with
    ``connectors_per_evse`` connectors (1.6: one). ``network_profiles``: the slots the
    station was provisioned with (slot -> profile; more come by SetNetworkProfile).
    ``store`` keeps what survives a reboot: power the next ``ChargingStation`` up on the
    same store. ``held_requests``: transaction messages a previous core still held, until
    the core persists them itself.
    """

    def __init__(
        self,
        version: str,
        *,
        application: StationApplication,
        info: StationInfo,
        evses: int = 1,
        connectors_per_evse: int = 1,
        connector_type: str = "cType2",
        max_power_w: float = 22_000.0,
        store: StationStore | None = None,
        network_profiles: Mapping[int, NetworkProfile] | None = None,
        wall_clock: WallClock | None = None,
        rng: random.Random | None = None,
        id_generator: Callable[[], str] | None = None,
        config: StationConfig | None = None,
        held_requests: Iterable[Any] = (),
        on_frame: FrameObserver | None = None,
        boot_reason: str | None = None,
    ) -> None:
        if evses < 1 or connectors_per_evse < 1:
            raise ValueError("a station has at least one EVSE with at least one connector")
        if version == "1.6" and connectors_per_evse != 1:
            raise ValueError("in 1.6 an EVSE is a connector: connectors_per_evse must be 1")
        self.version = version
        self.application = application
        self.info = info
        self._own_clock = wall_clock
        self.rng = rng or random.Random()
        self.store: StationStore = store if store is not None else InMemoryStationStore()
        self.on_frame = on_frame
        self.m = messages_for(version)
        self._id_generator = id_generator
        self.evses = {
            n: _Evse(n, {c: _Connector(c) for c in range(1, connectors_per_evse + 1)})
            for n in range(1, evses + 1)
        }
        self._agenda: list[tuple[float, int, str, Callable[[float], None]]] = []
        self._agenda_order = itertools.count()
        self._reported: dict[tuple[int, int], str] = {}
        self._reserved: set[int] = set()
        #: EVSEs the application reserved itself (on_reserved).
        self._app_reserved: set[int] = set()
        self._settling = False
        self._started = False
        self._boot_reason = boot_reason or self._stored_boot_reason()
        self._reboot_reason: str | None = None
        self._reboot_deadline: float | None = None
        self._reboot_ready = False
        self._scheduled_reset = False
        self._pending_auth: dict[int, tuple[Any, int | None]] = {}
        self._data_transfers: set[str] = set()
        self._station_holds: set[int] = set()
        self.accepted_at: float | None = None
        self.first_connected_at: float | None = None
        self._sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self._event_seq = itertools.count()
        self._now = 0.0
        self._remote_waiting: dict[Any, int] = {}
        self._stop_after_reboot: list[Any] = []

        base = config or StationConfig()
        self.core = _FacadeCore(
            self,
            version,
            self._boot_request(self._boot_reason),
            config=attrs.evolve(
                base, connectors=evses, supported_triggers=SUPPORTED_TRIGGERS[version]
            ),
            id_generator=id_generator,
            rng=self.rng,
            wall_clock=wall_clock,
        )
        core = self.core
        types = {n: (connector_type,) * connectors_per_evse for n in self.evses}
        self._local_list = StoredLocalList(version, self.store)
        self._cache = StoredCache(version, self.store)
        if version == "1.6":
            self._keys = InMemoryConfiguration(station_keys(evses))
            self.settings: Any = Configuration16(core, self._keys, approve=self._approve_key)
        else:
            self._model = InMemoryDeviceModel(
                station_variables(
                    types, vendor=info.vendor, model=info.model, max_power_w=max_power_w
                )
            )
            self.settings = DeviceModel(
                core, self._model, clock=wall_clock, approve=self._approve_variable
            )
        self._restore_settings()
        self.activity = Activity()
        availability = self.store.load("availability")
        self.availability = Availability(
            core,
            self.activity,
            connectors_per_evse=connectors_per_evse,
            restore=_availability_from_json(availability),
        )
        self.reset = Reset(core, self.activity, availability=self.availability, evse_reset=True)
        self.remote = RemoteControl(
            core,
            self.activity,
            availability=self.availability,
            check_start=self._check_start,
            connectors_per_evse=connectors_per_evse,
        )
        self.meter = MeterSchedule(version, settings=self.settings, clock=wall_clock, core=core)
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
            local_list=self._local_list,
            cache=self._cache,
            clock=wall_clock,
        )
        self.reservations = Reservations(
            core,
            connectors=evses if version == "1.6" else types,
            settings=self.settings,
            clock=wall_clock,
        )
        self.firmware = FirmwareUpdater(
            core,
            activity=self.activity,
            check=self._check_firmware,
            wall_clock=wall_clock,
            security_events=False,
            resume=firmware_from_json(version, self.store.load("firmware")),
        )
        self.logs = LogUploader(core, activity=self.activity)
        self.diagnostics = (
            DiagnosticsUploader(
                core,
                activity=self.activity,
                file_for=lambda request: f"{info.serial_number or 'station'}-diagnostics.log",
            )
            if version == "1.6"
            else None
        )
        self.data_transfer_router = DataTransferRouter(core)
        self.outbox = Outbox(core)
        self._security = Outbox(core)
        self.network = NetworkPlanner(self.rng)
        self._restore_network(network_profiles or {})
        self._apply_settings(0.0)
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
            self._security,
            self.authorization,
            self.transactions,
            self.firmware,
            self.logs,
            *([self.diagnostics] if self.diagnostics is not None else []),
            self.settings,
            self.reservations,
            self.data_transfer_router,
            self.meter,
        )
        self._emitters = tuple(flow for flow in self._flows if isinstance(flow, Emitter))
        self._offline_timers = _OfflineTimers(self)
        self._restore_state()
        for request in held_requests:
            core.send_request(request, 0.0)

    # === lifecycle (libocpp: start, stop, connect, disconnect)

    def start(self, now: float, *, boot_reason: str | None = None, connect: bool = True) -> None:
        """Power up: boot with ``boot_reason`` (default: what the previous life left in the
        store — RemoteReset, ScheduledReset, FirmwareUpdate — else PowerUp), queue the
        StartupOfTheDevice security event (and ResetOrReboot after a reset), and, with
        ``connect``, ask for a connection to the first network profile (B10.FR.04)."""
        if self._started:
            raise LocalProtocolError("the station is already started")
        self._started = True
        self.store.save("boot_reason", None)
        self.store.save("pending_reset", None)
        reason = boot_reason or self._boot_reason
        self._boot_reason = reason
        self.core.boot_request = self._boot_request(reason)
        self._auto_security_event("StartupOfTheDevice", now)
        if reason in (REMOTE_RESET, SCHEDULED_RESET):
            self._auto_security_event("ResetOrReboot", now)
        for data in self.store.load("reservations") or []:
            reservation = reservation_from_json(self.version, data, self.clock)
            reservation = attrs.evolve(
                reservation, expires_at=now + reservation.expires_at
            )  # H01: a reservation outlives the reboot until its expiry
            self.reservations.restore(reservation, now)
        self._reserved = self.reservations.reported_reserved()
        for evse in self.evses.values():
            self._sync_reservation_state(evse, now)
        self._resume_upload(now)
        self._end_cut_short(now)
        self.meter.start(now)
        if connect:
            self.connect(now)
        self._settle(now)

    def _stored_boot_reason(self) -> str:
        """What the previous life left: its reboot's reason, ScheduledReset when it died
        with an OnIdle reset pending (the reboot did what the reset waited for), else
        PowerUp."""
        stored = self.store.load("boot_reason")
        if isinstance(stored, str):
            return stored
        if self.store.load("pending_reset") is not None:
            return SCHEDULED_RESET
        return POWER_UP

    @property
    def messages_for_next_life(self) -> list[Any]:
        """What the next power-up must send first: the held transaction messages and (1.6
        Hard reset) the StopTransactions of transactions the reset cut short."""
        return [*self.core.held_requests, *self._stop_after_reboot]

    @property
    def boot_reason(self) -> str:
        return self._boot_reason

    def stop(self, now: float) -> None:
        """Power down: keep what survives in the store and close the connection."""
        self._save_state()
        self._emit(DisconnectRequested(reason="stop"))
        self._started = False

    def connect(self, now: float, network_profile_slot: int | None = None) -> None:
        """Ask the IO layer for a connection to ``network_profile_slot`` (default: the
        next in NetworkConfigurationPriority)."""
        plan = self.network.plan(now, slot=network_profile_slot)
        self._emit(ConnectRequested(slot=plan.slot, profile=plan.profile, at=plan.at))

    def disconnect(self, now: float) -> None:
        self._emit(DisconnectRequested(reason="disconnect"))

    def flows(self, core: Any = None) -> list[Any]:
        """For an adapter's ``flows=``: the facade's timers while no connection is open."""
        return [self._offline_timers]

    def on_connect_failed(self, now: float) -> ConnectRequested:
        """The IO layer's attempt failed: the next one (NetworkProfileConnectionAttempts
        per slot, then the next slot, B10.FR.03; RetryBackOff* waits)."""
        plan = self.network.failed(now)
        return ConnectRequested(slot=plan.slot, profile=plan.profile, at=plan.at)

    def on_network_disconnected(self, now: float) -> None:
        """The network went away under the connection (libocpp's name): the connection is
        lost, and a new attempt is asked for at once."""
        if self.core.connected:
            self.core.connection_lost(now)
        elif self.network.configured:
            plan = self.network.lost(now)
            self._emit(ConnectRequested(slot=plan.slot, profile=plan.profile, at=plan.at))
            self._settle(now)

    def set_message_queue_resume_delay(self, seconds: float) -> None:
        """After a reconnect, wait this long before the held transaction messages go
        again (the CSMS gets the station's status first)."""
        if seconds < 0:
            raise ValueError("the resume delay must be >= 0")
        self._resume_delay = seconds

    _resume_delay = 0.0

    # === network profiles

    def get_network_connection_profile(self, slot: int) -> NetworkProfile | None:
        return self.network.profiles.get(slot)

    def get_priority_from_configuration_slot(self, slot: int) -> int | None:
        """The position (0 = tried first) of ``slot`` in NetworkConfigurationPriority."""
        priority = self.network.priority
        return priority.index(slot) if slot in priority else None

    def get_network_connection_slots(self) -> list[int]:
        """The configured slots in priority order."""
        return list(self.network.priority)

    @property
    def active_network_slot(self) -> int | None:
        return self.network.connected_slot

    # === authorization, data transfer

    def validate_token(
        self,
        id_token: Any,
        now: float,
        *,
        evse_id: int | None = None,
        certificate: str | None = None,
        ocsp_request_data: Any = None,
    ) -> bool | None:
        """Local list, then cache, then the CSMS (C10-C15). Returns the verdict when known
        at once, None when the CSMS was asked: ``TokenValidated`` follows either way.
        ``certificate`` / ``ocsp_request_data`` (ISO 15118 contract certificates) go with
        the Authorize request."""
        token = id_token if self.version != "1.6" else str(id_token)
        if (certificate is not None or ocsp_request_data is not None) and self.version == "1.6":
            raise LocalProtocolError("1.6 Authorize carries no certificate")
        key = self._token_key(token)
        self._pending_auth[key] = (token, evse_id)
        decision = self.authorization.authorize(token, now)
        self._settle(now)
        verdict = decision.verdict.value
        return None if verdict == "AskCsms" else verdict == "Accepted"

    def data_transfer(
        self, vendor_id: str, now: float, *, message_id: str | None = None, data: Any = None
    ) -> str | None:
        """Send a DataTransfer; returns its message id (the answer comes as
        ``DataTransferAnswered``), or None when it cannot go now (offline, not accepted)."""
        request = build(
            self.m.DataTransferRequest, vendor_id=vendor_id, message_id=message_id, data=data
        )
        if self.core.may_send(request) is not None:
            return None
        sent = self.core.send_request(request, now)
        self._data_transfers.add(sent)
        return sent

    # === settings (libocpp: get_variables, set_variables)

    def get_variables(self, items: Sequence[tuple[str, str]], now: float) -> list[str | None]:
        """Read settings by name: 2.x (``"Component"``, ``"Variable[Instance]"``) pairs,
        1.6 (key, "") pairs. None where unknown."""
        out: list[str | None] = []
        for component, name in items:
            out.append(
                self.settings.setting(
                    f"{component}.{name}" if component and name else component or name
                )
            )
        return out

    def set_variables(
        self, items: Sequence[tuple[str, str, str]], now: float, *, source: str = "Local"
    ) -> list[str]:
        """Change settings as the CSMS would, with the same checks (read-only, type,
        limits): 2.x (component, variable[instance], value), 1.6 (key, "", value). Each
        takes effect at once. ``source`` says who changed it (kept for the report).
        Returns one status per item."""
        statuses: list[str] = []
        if self.version == "1.6":
            for key, _, value in items:
                statuses.append(self.settings.change(key, value))
        else:
            m = self.m
            data = []
            for component, name, value in items:
                var_name, _, instance = name.partition("[")
                data.append(
                    m.SetVariableData(
                        attribute_value=value,
                        component=m.Component(name=component),
                        variable=m.Variable(name=var_name, instance=instance.rstrip("]") or None),
                    )
                )
            response = self.settings.set_variables(m.SetVariablesRequest(set_variable_data=data))
            statuses = [str(r.attribute_status) for r in response.set_variable_result]
        self._last_change_source = source
        self._settle(now)
        return statuses

    _last_change_source = "CSMS"

    # === what the hardware reports (libocpp's on_* handlers)

    def on_session_started(self, evse_id: int, connector_id: int, now: float) -> None:
        """A cable was plugged in (E02): occupied, and a transaction may start
        (TxStartPoint EVConnected, PowerPathClosed)."""
        evse = self._evse(evse_id)
        evse.connectors[self._connector(evse, connector_id)].plugged = True
        self._save_plugged()
        if evse.transaction is not None and self.version != "1.6":
            self._advance(evse, now, "CablePluggedIn")
        else:
            self._advance(evse, now, "CablePluggedIn")
        self._refresh(evse, now)
        self._settle(now)

    def on_session_finished(self, evse_id: int, connector_id: int, now: float) -> None:
        """The cable was unplugged: StopTxOnEVSideDisconnect ends the transaction (E09,
        E10), else it is suspended."""
        evse = self._evse(evse_id)
        evse.connectors[self._connector(evse, connector_id)].plugged = False
        self._save_plugged()
        tx = evse.transaction
        if tx is not None:
            stop = self._setting_bool(
                "StopTransactionOnEVSideDisconnect"
                if self.version == "1.6"
                else "TxCtrlr.StopTxOnEVSideDisconnect",
                True,
            )
            if self.version != "1.6" and self._setting_bool(
                "OCPPCommCtrlr.UnlockOnEVSideDisconnect", True
            ):
                # The cable unlocks when the EV side lets go (UnlockOnEVSideDisconnect).
                self.application.unlock(evse_id, connector_id, now)
            if stop or "EVConnected" in self._tx_points("TxStopPoint"):
                self._end(evse, now, trigger="EVCommunicationLost", reason="EVDisconnected")
            else:
                self._energy(evse, False, now)
                if self.version != "1.6":
                    self.transactions.update(
                        tx, trigger_reason="EVCommunicationLost", now=now, charging_state="Idle"
                    )
        self._refresh(evse, now)
        self._settle(now)

    def on_authorized(
        self, evse_id: int, connector_id: int | None, id_token: Any, now: float
    ) -> None:
        """``id_token`` was accepted for ``evse_id`` (after ``validate_token``): a
        transaction may start (TxStartPoint Authorized, PowerPathClosed); the same token
        on a running transaction ends it (StopAuthorized, E06)."""
        evse = self._evse(evse_id)
        tx = evse.transaction
        if tx is not None and evse.token is not None and self._same_token(evse.token, id_token):
            self._end(evse, now, trigger="StopAuthorized", reason="Local")
            evse.token = None
            evse.authorized_at = None
            self._refresh(evse, now)
            self._settle(now)
            return
        self._authorize(evse, id_token, now, cause="Authorized")
        self._settle(now)

    def on_transaction_started(
        self,
        evse_id: int,
        connector_id: int,
        now: float,
        *,
        trigger_reason: str = "Authorized",
        id_token: Any = None,
        reservation_id: int | None = None,
    ) -> Any:
        """Start a transaction now, whatever TxStartPoint says (the application decided)."""
        evse = self._evse(evse_id)
        if evse.transaction is not None:
            raise LocalProtocolError(f"EVSE {evse_id} already has a transaction")
        if id_token is not None:
            evse.token = id_token
            evse.authorized_at = now
        self._start(
            evse, now, trigger_reason, connector_id=connector_id, reservation_id=reservation_id
        )
        self._settle(now)
        return evse.transaction

    def on_transaction_finished(
        self,
        evse_id: int,
        now: float,
        *,
        reason: str = "Local",
        trigger_reason: str = "StopAuthorized",
        id_token: Any = None,
    ) -> None:
        """End the EVSE's transaction now (the application decided)."""
        evse = self._evse(evse_id)
        if evse.transaction is None:
            raise LocalProtocolError(f"EVSE {evse_id} has no transaction")
        self._end(evse, now, trigger=trigger_reason, reason=reason)
        self._refresh(evse, now)
        self._settle(now)

    def on_meter_value(self, evse_id: int, readings: Mapping[str, float], now: float) -> None:
        """The latest meter reading of EVSE ``evse_id`` (0: the station), measurand ->
        value; samples use it when ``read_meter`` has nothing fresher."""
        if evse_id != 0:
            self._evse(evse_id).readings.update(readings)

    def on_unavailable(self, evse_id: int, connector_id: int | None, now: float) -> None:
        """The hardware made a connector (or the EVSE) unusable for now."""
        self._evse(evse_id).hardware_holds.add(connector_id)
        self.availability.hold(
            f"hardware:{evse_id}:{connector_id}",
            (evse_id, connector_id) if self.version != "1.6" else (evse_id, None),
        )
        self._settle(now)

    def on_enabled(self, evse_id: int, connector_id: int | None, now: float) -> None:
        self._evse(evse_id).hardware_holds.discard(connector_id)
        self.availability.release(f"hardware:{evse_id}:{connector_id}")
        self._settle(now)

    def on_faulted(self, evse_id: int, connector_id: int, now: float) -> None:
        evse = self._evse(evse_id)
        evse.connectors[self._connector(evse, connector_id)].faulted = True
        self._refresh(evse, now)
        self._settle(now)

    def on_fault_cleared(self, evse_id: int, connector_id: int, now: float) -> None:
        evse = self._evse(evse_id)
        evse.connectors[self._connector(evse, connector_id)].faulted = False
        self._refresh(evse, now)
        self._settle(now)

    def on_reserved(self, evse_id: int, now: float) -> None:
        """The application reserved the EVSE itself (not through ReserveNow)."""
        self._app_reserved.add(self._evse(evse_id).id)
        self._sync_reserved(now)
        self._settle(now)

    def on_reservation_cleared(self, evse_id: int, now: float) -> None:
        self._app_reserved.discard(self._evse(evse_id).id)
        self._sync_reserved(now)
        self._settle(now)

    def on_reservation_status(self, reservation_id: int, status: str, now: float) -> None:
        """2.x ReservationStatusUpdate (Expired, Removed) the application decided."""
        if self.version == "1.6":
            raise LocalProtocolError("1.6 has no ReservationStatusUpdate")
        self.outbox.submit(
            build(
                self.m.ReservationStatusUpdateRequest,
                reservation_id=reservation_id,
                reservation_update_status=status,
            ),
            now,
        )
        self._settle(now)

    def on_charging_state_changed(
        self,
        evse_id: int,
        charging_state: str,
        now: float,
        *,
        trigger_reason: str = "ChargingStateChanged",
    ) -> None:
        """2.x: the EV started or stopped drawing energy (Charging, SuspendedEV, …)."""
        evse = self._evse(evse_id)
        if evse.transaction is not None and self.version != "1.6":
            self.transactions.update(
                evse.transaction,
                trigger_reason=trigger_reason,
                now=now,
                charging_state=charging_state,
            )
        self._settle(now)

    def on_event(self, event_data: Sequence[Any], now: float) -> None:
        """2.x NotifyEvent with ``event_data`` (EventData objects)."""
        if self.version == "1.6":
            raise LocalProtocolError("1.6 has no NotifyEvent")
        self.outbox.submit(
            self.m.NotifyEventRequest(
                generated_at=self.clock(now),
                seq_no=next(self._event_seq),
                event_data=list(event_data),
            ),
            now,
        )
        self._settle(now)

    def on_log_status_notification(self, status: str, request_id: int | None, now: float) -> None:
        """The upload's progress: Uploading, Uploaded, or a failure (UploadFailure,
        BadMessage, PermissionDenied, NotSupportedOperation; 1.6 diagnostics UploadFailed);
        a failure before the last attempt waits for the retry (N01.FR.10)."""
        uploader: Any = self.logs
        if self.diagnostics is not None and self.diagnostics.running and not self.logs.running:
            uploader = self.diagnostics
        if status == "Uploading":
            uploader.upload_started(now)
        elif status == "Uploaded":
            uploader.uploaded(now)
        elif isinstance(uploader, DiagnosticsUploader):
            uploader.upload_failed(now)
        else:
            uploader.upload_failed(now, status)
        self._save_state()
        self._settle(now)

    def on_firmware_update_status_notification(
        self, request_id: int | None, status: str, now: float, *, reboot: bool = False
    ) -> None:
        """The firmware's progress, in the 2.x status names (L01): Downloading,
        DownloadPaused, Downloaded, DownloadFailed (one attempt; retries follow),
        SignatureVerified, InvalidSignature, InstallScheduled, Installing,
        InstallRebooting, Installed, InstallationFailed, InstallVerificationFailed."""
        updater = self.firmware
        if updater.request_id != request_id and request_id is not None:
            raise LocalProtocolError(f"no firmware update {request_id} is running")
        action: dict[str, Callable[[float], None]] = {
            "Downloading": updater.download_started,
            "DownloadScheduled": updater.download_deferred,
            "DownloadPaused": updater.download_paused,
            "Downloaded": updater.downloaded,
            "DownloadFailed": updater.download_failed,
            "SignatureVerified": updater.signature_verified,
            "InvalidSignature": updater.signature_invalid,
            "InstallScheduled": updater.install_deferred,
            "Installing": updater.install_started,
            "InstallRebooting": updater.install_rebooting,
            "InstallationFailed": updater.install_failed,
            "InstallVerificationFailed": updater.install_verification_failed,
        }
        if status == "Installed":
            # ``reboot``: activating the new firmware takes a reboot (L01.FR.32 b).
            updater.installed(now, reboot=reboot)
            self._auto_security_event("FirmwareUpdated", now)  # L01.FR.31
            if updater.reboot_pending:
                self._reboot(FIRMWARE_UPDATE, now)
        elif status in action:
            action[status](now)
            if status == "InvalidSignature":
                self._auto_security_event("InvalidFirmwareSignature", now)  # L01.FR.03
            elif status == "InstallRebooting":
                self._reboot(FIRMWARE_UPDATE, now)
        else:
            raise LocalProtocolError(f"unknown firmware status {status!r}")
        self._save_state()
        self._settle(now)

    def on_security_event(
        self,
        event_type: str,
        now: float,
        *,
        tech_info: str | None = None,
        critical: bool | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """A security event (A04). Critical ones (the 2.0.1 appendix's list, unless
        ``critical`` says otherwise) wait through outages and go once accepted; others go
        only while online."""
        self.security_event(
            event_type, now, tech_info=tech_info, critical=critical, timestamp=timestamp
        )
        self._settle(now)

    def on_variable_changed(self, component: str, variable: str, value: str, now: float) -> None:
        """The station changed a setting itself (a local menu): keep it and act on it."""
        self.set_variables([(component, variable, value)], now, source="Internal")

    def on_get_15118_ev_certificate_request(self, request: Any, now: float) -> str:
        """Forward an EV's ISO 15118 certificate request to the CSMS; the answer comes as
        the core's ResponseReceived for the returned message id."""
        return self.core.send_request(request, now)

    # === reading the station

    def get_evse_transaction_id(self, evse_id: int) -> str | int | None:
        """The running transaction's id (1.6: the CSMS's number, None until known)."""
        tx = self._evse(evse_id).transaction
        return None if tx is None else tx.transaction_id

    @property
    def held_messages(self) -> list[Any]:
        """Transaction messages the core has not delivered yet, oldest first (E11-E14)."""
        return self.core.held_requests

    def status_of(self, evse_id: int, connector_id: int = 1) -> str:
        """The connector status a StatusNotification reports now (1.6: ``evse_id`` is the
        connector, 0 the charge point)."""
        if self.version == "1.6" and evse_id == 0:
            return "Available" if self.availability.is_operative(0) else "Unavailable"
        evse = self.evses[evse_id]
        connector = evse.connectors[connector_id]
        if connector.faulted:
            return "Faulted"
        if not self._operative(evse, connector_id):
            return "Unavailable"
        if self.version == "1.6":
            if evse.transaction is not None:
                return "Charging" if evse.energy else "SuspendedEVSE"
            if connector.plugged or evse.token is not None:
                return "Preparing"
            if evse.id in self._reserved:
                return "Reserved"
            return "Available"
        if connector.plugged or evse.transaction is not None:
            return "Occupied"
        if evse.id in self._reserved:
            return "Reserved"
        return "Available"

    def _auto_security_event(self, event_type: str, now: float) -> None:
        """The events the station raises by itself (2.x A04; a 1.6 station without the
        security extension has no SecurityEventNotification to send, so 1.6 leaves them
        to ``on_security_event``)."""
        if self.version != "1.6":
            self.security_event(event_type, now)

    def security_event(
        self,
        event_type: str,
        now: float,
        *,
        tech_info: str | None = None,
        critical: bool | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        if critical is None:
            critical = event_type in CRITICAL_SECURITY_EVENTS
        request = build(
            self.core.registry["SecurityEventNotification"].request,
            type=event_type,
            timestamp=timestamp or self.clock(now),
            tech_info=tech_info,
        )
        if critical:
            self._security.submit(request, now)
        elif self.core.may_send(request) is None:
            self.core.send_request(request, now)

    # === the core's entry points call these

    def _observe(self, direction: str, text: str, now: float | None) -> None:
        if self.on_frame is not None:
            self.on_frame(direction, text, now if now is not None else -1.0)

    def _emit(self, event: Event) -> None:
        self.core.put_back([*self.core.events(), event])

    def _connected(self, now: float) -> None:
        if self.first_connected_at is None:
            self.first_connected_at = now
        self.network.connected()

    def _disconnected(self, now: float) -> None:
        if self._reboot_reason is not None and self._reboot_ready:
            return
        if self._started and self.network.configured:
            plan = self.network.lost(now)
            self._emit(ConnectRequested(slot=plan.slot, profile=plan.profile, at=plan.at))

    def _frames_collected(self) -> None:
        """The adapter took our frames: a reboot waiting for its answer may go (a Reset's
        answer is on the wire before the reboot, B11/B12)."""
        if self._reboot_reason is not None and not self._reboot_ready:
            self._reboot_ready = True

    def _settle(self, now: float) -> None:
        """Run every pending core and flow event through the flows and the facade; keep the
        ones nobody took for the application."""
        self._now = now
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
                    if not self._on_flow_event(flow_event, now):
                        kept.append(flow_event)
            self._sync_station_schedule(now)
        finally:
            self._settling = False
            self.core.put_back(kept)

    def _timing(self, event: Event, now: float) -> None:
        """Round-trip times of our CALLs (the load command's figures)."""
        if isinstance(event, ResponseReceived | CallErrorReceived):
            sent = self._sent_at.pop(event.message_id, None)
            if sent is not None:
                self.latencies.append(now - sent)
        elif isinstance(event, CallLost):
            self._sent_at.pop(event.message_id, None)

    def _dispatch(self, event: Event, now: float) -> bool:
        if (
            isinstance(
                event,
                ResponseReceived | CallErrorReceived | CallTimedOut | InvalidResponse | CallLost,
            )
            and event.message_id in self._data_transfers
        ):
            self._data_transfers.discard(event.message_id)
            response = event.response if isinstance(event, ResponseReceived) else None
            self.core.put_back(
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
            self._forget_reported(event.request)
        elif isinstance(event, RegistrationChanged):
            self._on_registration(event, now)
        elif isinstance(event, Reconnected):
            self._on_reconnected(event, now)
        elif isinstance(event, ClockReport):
            pass
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

    def schedule(self, delay: float, now: float, tag: str, action: Callable[[float], None]) -> None:
        """Call ``action(when)`` at core time ``now + delay`` (for applications without a
        scheduler of their own: the facade's ``next_deadline`` includes it)."""
        heapq.heappush(self._agenda, (now + delay, next(self._agenda_order), tag, action))

    def cancel(self, tag: str) -> None:
        self._agenda = [entry for entry in self._agenda if entry[2] != tag]
        heapq.heapify(self._agenda)

    # === registration and status

    def _boot_request(self, reason: str) -> Any:
        m = self.m
        info = self.info
        if self.version == "1.6":
            return build(
                m.BootNotificationRequest,
                charge_point_vendor=info.vendor,
                charge_point_model=info.model,
                charge_point_serial_number=info.serial_number,
                firmware_version=info.firmware_version,
            )
        return build(
            m.BootNotificationRequest,
            charging_station=build(
                m.ChargingStation,
                model=info.model,
                vendor_name=info.vendor,
                serial_number=info.serial_number,
                firmware_version=info.firmware_version,
            ),
            reason=reason,
        )

    def _on_registration(self, event: RegistrationChanged, now: float) -> None:
        if event.status is not RegistrationStatus.ACCEPTED:
            return
        if self.accepted_at is None:
            self.accepted_at = now
        self.meter.start(now)
        self._reported.clear()  # B01.FR.05: every connector's status after acceptance
        self._report_all(now)

    def _on_reconnected(self, event: Reconnected, now: float) -> None:
        if event.offline_for > self._offline_threshold():
            self._reported.clear()  # B04.FR.01: every connector
        self._report_all(now)  # B04.FR.02: otherwise the ones that changed

    def _offline_threshold(self) -> float:
        if self.version == "1.6":
            return 0.0
        return self._setting_float("OCPPCommCtrlr.OfflineThreshold", _DEFAULT_OFFLINE_THRESHOLD)

    def _targets(self) -> list[tuple[int, int]]:
        out = [(0, 0)] if self.version == "1.6" else []
        for evse in self.evses.values():
            out += [(evse.id, c) for c in evse.connectors]
        return out

    def _report_all(self, now: float) -> None:
        for evse_id, connector_id in self._targets():
            self._report(evse_id, connector_id, now)

    def _refresh(self, evse: _Evse, now: float) -> None:
        self._sync_reservation_state(evse, now)
        for connector_id in evse.connectors:
            self._report(evse.id, connector_id, now)

    def _report(self, evse_id: int, connector_id: int, now: float, *, force: bool = False) -> None:
        """Send the connector's status if it changed since we last sent it (or ``force``);
        offline or unaccepted, the reconnect or acceptance sends the latest one instead."""
        status = self.status_of(evse_id, connector_id or 1) if evse_id else self.status_of(0)
        key = (evse_id, connector_id)
        if not force and self._reported.get(key) == status:
            return
        online = self.core.connected and self.core.registration is RegistrationStatus.ACCEPTED
        if not (online or force):
            return
        request = self._status_request(evse_id, connector_id, status, now)
        if self.core.may_send(request) is not None:
            return
        self.core.send_request(request, now)
        self._reported[key] = status

    def _status_request(self, evse_id: int, connector_id: int, status: str, now: float) -> Any:
        m = self.m
        if self.version == "1.6":
            return build(
                m.StatusNotificationRequest,
                connector_id=evse_id,
                error_code="NoError",
                status=status,
                timestamp=self.clock(now),
            )
        return build(
            m.StatusNotificationRequest,
            timestamp=self.clock(now),
            connector_status=status,
            evse_id=evse_id,
            connector_id=connector_id,
        )

    def _forget_reported(self, request: Any) -> None:
        if self.version == "1.6":
            self._reported.pop((request.connector_id, 0), None)
        else:
            self._reported.pop((request.evse_id, request.connector_id), None)

    def _sync_reservation_state(self, evse: _Evse, now: float) -> None:
        if any(c.faulted for c in evse.connectors.values()):
            state = "Faulted"
        elif evse.transaction is not None or evse.plugged:
            state = "Occupied"
        elif not self._operative(evse, None):
            state = "Unavailable"
        else:
            state = "Available"
        if self.reservations.status.get(evse.id) != state:
            self.reservations.set_status(evse.id, state, now)

    def _operative(self, evse: _Evse, connector_id: int | None) -> bool:
        if self.version == "1.6":
            return self.availability.is_operative(evse.id)
        if connector_id is None:
            return self.availability.is_operative(evse.id)
        return self.availability.is_operative(evse.id, connector_id)

    def _sync_station_schedule(self, now: float) -> None:
        """G03/G04: a station-wide Inoperative waiting for transactions makes every EVSE
        without one Unavailable at once; each busy one follows when its transaction ends."""
        waiting = self.availability.scheduled.get(STATION) is False
        for evse in self.evses.values():
            key = f"station-inoperative:{evse.id}"
            hold = waiting and evse.transaction is None
            if hold and evse.id not in self._station_holds:
                self._station_holds.add(evse.id)
                self.availability.hold(key, (evse.id, None))
            elif not hold and evse.id in self._station_holds:
                self._station_holds.discard(evse.id)
                self.availability.release(key)

    # === flow events

    def _on_flow_event(self, event: Any, now: float) -> bool:
        """Act on a flow's event; False keeps it for the application."""
        if isinstance(event, FirmwareDownloadDue):
            self._download(event, now)
        elif isinstance(event, FirmwareInstallDue):
            self.application.install_firmware(self.firmware.request_id, now)
        elif isinstance(event, FirmwareUpdateCanceled):
            return False
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
            return False
        elif isinstance(event, MeterSampleDue):
            self._sample(event, now)
        elif isinstance(event, AuthorizationDecided):
            self._authorization_decided(event, now)
        elif isinstance(event, TransactionDeauthorized):
            self._deauthorized(event, now)
        elif isinstance(event, ReservationAccepted | ReservationEnded | ReservedTargetsChanged):
            self._sync_reserved(now)
            self._save_reservations()
        elif isinstance(event, ConfigurationChanged):
            self._setting_changed(event.key, now)
        elif isinstance(event, VariableChanged):
            name = f"{event.component.name}.{event.variable.name}"
            self._setting_changed(name, now)
        else:
            return False
        return True

    def _sync_reserved(self, now: float) -> None:
        """Show as Reserved what the reservations hold now (H01.FR.20/23/24, H04.FR.03)."""
        reserved = self.reservations.reported_reserved() | self._app_reserved
        changed = reserved ^ self._reserved
        self._reserved = reserved
        self._report_evses(sorted(changed), now)

    def _report_evses(self, targets: Iterable[int], now: float) -> None:
        for target in targets:
            evse = self.evses.get(target)
            if evse is not None:
                for connector_id in evse.connectors:
                    self._report(target, connector_id, now)

    # --- settings that act

    def _setting_changed(self, name: str, now: float) -> None:
        self._save_settings()
        self._apply_settings(now, changed=name)
        security = ("SecurityCtrlr.", "AuthorizationKey", "SecurityProfile", "BasicAuthPassword")
        if any(part in name for part in security):
            self._auto_security_event("ReconfigurationOfSecurityParameters", now)

    def _apply_settings(self, now: float, changed: str | None = None) -> None:
        """Make every setting the station obeys take effect (item 2 of issue 12): the
        core's timeouts and retries, the heartbeat, the network plan, the meter."""
        v16 = self.version == "1.6"
        config = self.core.config
        attempts = self._setting_int(
            "TransactionMessageAttempts"
            if v16
            else "OCPPCommCtrlr.MessageAttempts[TransactionEvent]",
            config.transaction_message_attempts,
        )
        interval = self._setting_float(
            "TransactionMessageRetryInterval"
            if v16
            else "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]",
            config.transaction_message_retry_interval,
        )
        timeout = config.call_timeout
        if not v16:
            timeout = self._setting_float("OCPPCommCtrlr.MessageTimeout[Default]", timeout)
        self.core.reconfigure(
            attrs.evolve(
                config,
                transaction_message_attempts=max(1, attempts),
                transaction_message_retry_interval=max(0.0, interval),
                call_timeout=timeout if timeout > 0 else config.call_timeout,
            )
        )
        heartbeat_name = "HeartbeatInterval" if v16 else "OCPPCommCtrlr.HeartbeatInterval"
        if changed in (heartbeat_name, "OCPPCommCtrlr.HeartbeatInterval"):
            heartbeat = self._setting_float(heartbeat_name, 0.0)
            if heartbeat > 0:
                self.core.set_heartbeat_interval(heartbeat, now)
        if not v16:
            self.network.backoff = RetryBackOff(
                wait_minimum=self._setting_float("OCPPCommCtrlr.RetryBackOffWaitMinimum", 10.0),
                random_range=self._setting_float("OCPPCommCtrlr.RetryBackOffRandomRange", 10.0),
                repeat_times=self._setting_int("OCPPCommCtrlr.RetryBackOffRepeatTimes", 5),
            )
            self.network.attempts_per_slot = max(
                1, self._setting_int("OCPPCommCtrlr.NetworkProfileConnectionAttempts", 3)
            )
            if changed in (None, "OCPPCommCtrlr.NetworkConfigurationPriority"):
                slots = _slots(
                    self.settings.setting("OCPPCommCtrlr.NetworkConfigurationPriority") or ""
                )
                usable = [s for s in slots or () if s in self.network.profiles]
                if usable:
                    self.network.set_priority(usable)
        if changed is not None:
            self.meter.reconfigure(now)

    def _approve_variable(self, component: Any, variable: Any, value: str) -> str | None:
        """Checks the device model cannot make alone (B10.FR.02: every slot of a new
        NetworkConfigurationPriority must hold a valid profile)."""
        if (
            _fold(component.name) == "ocppcommctrlr"
            and _fold(variable.name) == "networkconfigurationpriority"
        ):
            slots = _slots(value)
            if slots is None or not slots or any(s not in self.network.profiles for s in slots):
                return "InvalidValue"
        return None

    def _approve_key(self, key: str, value: str) -> bool:
        return True

    def _setting(self, name: str) -> str | None:
        value = self.settings.setting(name)
        return None if value is None else str(value)

    def _setting_float(self, name: str, default: float) -> float:
        try:
            return float(self._setting(name) or "")
        except ValueError:
            return default

    def _setting_int(self, name: str, default: int) -> int:
        try:
            return int(self._setting(name) or "")
        except ValueError:
            return default

    def _setting_bool(self, name: str, default: bool) -> bool:
        value = (self._setting(name) or "").strip().lower()
        return default if value not in ("true", "false") else value == "true"

    def _tx_points(self, name: str) -> set[str]:
        if self.version == "1.6":
            return {"Authorized", "EVConnected"} if name == "TxStopPoint" else {"PowerPathClosed"}
        value = self._setting(f"TxCtrlr.{name}") or ""
        return {part.strip() for part in value.split(",") if part.strip()}

    # --- transactions

    def _evse(self, evse_id: int) -> _Evse:
        evse = self.evses.get(evse_id)
        if evse is None:
            raise LocalProtocolError(f"no EVSE {evse_id}")
        return evse

    def _connector(self, evse: _Evse, connector_id: int) -> int:
        if connector_id not in evse.connectors:
            raise LocalProtocolError(f"EVSE {evse.id} has no connector {connector_id}")
        return connector_id

    def _authorize(self, evse: _Evse, token: Any, now: float, *, cause: str) -> None:
        evse.token = token
        evse.authorized_at = now
        timeout = self._setting_float(
            "ConnectionTimeOut" if self.version == "1.6" else "TxCtrlr.EVConnectionTimeOut", 0.0
        )
        self.cancel(f"ev-connection-timeout:{evse.id}")
        if timeout > 0 and not evse.plugged:
            self.schedule(
                timeout,
                now,
                f"ev-connection-timeout:{evse.id}",
                lambda when: self._connection_timeout(evse, when),
            )
        self._advance(evse, now, cause)
        self._refresh(evse, now)

    def _connection_timeout(self, evse: _Evse, now: float) -> None:
        """E03: no cable within EVConnectionTimeOut of the authorization."""
        if evse.plugged:
            return
        if evse.transaction is not None and self.version != "1.6":
            self._end(evse, now, trigger="EVConnectTimeout", reason="Timeout")
        evse.token = None
        evse.authorized_at = None
        self._refresh(evse, now)
        self._settle(now)

    def _start_point_reached(self, evse: _Evse) -> bool:
        points = self._tx_points("TxStartPoint")
        authorized = evse.token is not None
        plugged = evse.plugged
        return (
            (plugged and bool(points & {"EVConnected", "ParkingBayOccupancy"}))
            or (authorized and bool(points & {"Authorized", "DataSigned"}))
            or (plugged and authorized)
        )

    def _advance(self, evse: _Evse, now: float, cause: str) -> None:
        """Start the transaction when a start point is reached; close the power path once
        the cable is in and the driver authorized."""
        if not self._operative(evse, None) or any(c.faulted for c in evse.connectors.values()):
            return
        if evse.transaction is None:
            if self._start_point_reached(evse):
                self._start(evse, now, cause)
            return
        if self.version == "1.6":
            return
        fields: dict[str, Any] = {}
        if evse.token is not None and not evse.token_sent:
            fields["id_token"] = evse.token
            evse.token_sent = True
        power = evse.plugged and evse.token is not None
        if power and not evse.energy:
            self._energy(evse, True, now)
            fields["charging_state"] = "Charging"
        elif evse.plugged and not power:
            fields.setdefault("charging_state", "EVConnected")
        if fields:
            trigger = (
                cause
                if "id_token" in fields or cause == "CablePluggedIn"
                else "ChargingStateChanged"
            )
            self.transactions.update(
                evse.transaction,
                trigger_reason=trigger,
                now=now,
                evse_id=evse.id,
                connector_id=evse.plugged_connector(),
                **fields,
            )

    def _start(
        self,
        evse: _Evse,
        now: float,
        cause: str,
        *,
        connector_id: int | None = None,
        reservation_id: int | None = None,
    ) -> None:
        token = evse.token
        if reservation_id is None and token is not None:
            reservation = self.reservations.use(evse.id, token, now)
            reservation_id = reservation.reservation_id if reservation is not None else None
        connector = connector_id or evse.plugged_connector()
        power = evse.plugged and token is not None
        reading = self._reading(evse, now)
        if self.version == "1.6":
            if token is None:
                return  # 1.6 transactions start with an idTag
            self.remote.claim_start(evse.id, now)
            tx = self.transactions.start(
                evse.id,
                str(token),
                round(reading.get("Energy.Active.Import.Register", 0.0)),
                now,
                reservation_id=reservation_id,
            )
        else:
            fields: dict[str, Any] = {"trigger_reason": cause}
            fields.update(self.remote.transaction_fields(evse.id, now))
            charging = "Charging" if power else ("EVConnected" if evse.plugged else None)
            tx = self.transactions.start(
                now=now,
                evse_id=evse.id,
                connector_id=connector,
                id_token=token,
                charging_state=charging,
                reservation_id=reservation_id,
                meter_value=[
                    self._meter_value(
                        evse, ("Energy.Active.Import.Register",), "Transaction.Begin", now
                    )
                ],
                **fields,
            )
            evse.token_sent = token is not None
        evse.transaction = tx
        self._save_transactions()
        if power:
            self._energy(evse, True, now)
        self._refresh(evse, now)

    def _energy(self, evse: _Evse, on: bool, now: float) -> None:
        if evse.energy == on:
            return
        evse.energy = on
        connector = evse.plugged_connector()
        if on:
            self.application.start_energy(evse.id, connector, now)
        else:
            self.application.stop_energy(evse.id, connector, now)

    def _end(self, evse: _Evse, now: float, *, trigger: str, reason: str | None) -> None:
        tx = evse.transaction
        if tx is None:
            return
        reading = dict(self._reading(evse, now))
        evse.transaction = None
        evse.token = None
        evse.authorized_at = None
        evse.token_sent = False
        if self.version == "1.6":
            self.transactions.stop(
                tx, round(reading.get("Energy.Active.Import.Register", 0.0)), now, reason=reason
            )
        else:
            self.transactions.end(
                tx,
                trigger_reason=trigger,
                now=now,
                stopped_reason=reason,
                charging_state="EVConnected" if evse.plugged else "Idle",
                meter_value=[
                    self._meter_value(
                        evse, ("Energy.Active.Import.Register",), "Transaction.End", now
                    )
                ],
            )
        self._save_transactions()
        # Energy off last: the hardware may report the cable leaving from stop_energy.
        self._energy(evse, False, now)
        self._refresh(evse, now)

    def _deauthorized(self, event: TransactionDeauthorized, now: float) -> None:
        """E05 / 1.6 §3.5.4: StopTxOnInvalidId ends it, otherwise only the energy stops."""
        evse = self._evse_with(event.transaction)
        if evse is None:
            return
        if event.stop_transaction:
            self._end(evse, now, trigger="Deauthorized", reason="DeAuthorized")
        else:
            self._energy(evse, False, now)
            if self.version != "1.6" and evse.transaction is not None:
                self.transactions.update(
                    evse.transaction,
                    trigger_reason="Deauthorized",
                    now=now,
                    charging_state="SuspendedEVSE",
                )
        self._refresh(evse, now)

    def _evse_with(self, transaction: Any) -> _Evse | None:
        for evse in self.evses.values():
            if evse.transaction is transaction:
                return evse
        return None

    def _evse_with_id(self, transaction_id: Any) -> _Evse | None:
        for evse in self.evses.values():
            tx = evse.transaction
            if tx is not None and transaction_id in (tx.transaction_id, _activity_key(tx)):
                return evse
        return None

    # --- authorization

    def _token_key(self, token: Any) -> Any:
        return (
            str(token).casefold()
            if self.version == "1.6"
            else (token.id_token.casefold(), str(token.type))
        )

    def _same_token(self, a: Any, b: Any) -> bool:
        return bool(self._token_key(a) == self._token_key(b))

    def _authorization_decided(self, event: AuthorizationDecided, now: float) -> None:
        key = self._token_key(event.token)
        token, evse_id = self._pending_auth.pop(key, (event.token, None))
        group = event.info.group if event.info is not None else None
        master = self._setting("AuthCtrlr.MasterPassGroupId") if self.version != "1.6" else None
        if (
            event.accepted
            and master
            and group is not None
            and group.casefold() == master.casefold()
        ):
            # C16: a master pass stops every transaction and starts none.
            for evse in self.evses.values():
                if evse.transaction is not None:
                    self._end(evse, now, trigger="StopAuthorized", reason="MasterPass")
            return
        remote = self._remote_waiting.pop(key, None)
        if remote is not None:
            evse = self.evses[remote]
            if event.accepted:
                self._authorize(evse, token, now, cause="RemoteStart")
            else:
                self.remote.claim_start(remote, now)
            return
        self.core.put_back(
            [
                *self.core.events(),
                TokenValidated(
                    id_token=token,
                    accepted=event.accepted,
                    source=event.source.value,
                    info=event.info,
                    evse_id=evse_id,
                ),
            ]
        )

    # --- remote control

    def _check_start(self, request: Any) -> str | None:
        """A start on an EVSE reserved for someone else is refused (F01.FR.21/.22)."""
        if self.version == "1.6":
            wanted, token = request.connector_id, request.id_tag
        else:
            wanted, token = request.evse_id, request.id_token
        if wanted is not None and wanted in self.evses:
            return None if self.reservations.may_charge(wanted, token) else "Rejected"
        return None

    def _remote_start(self, event: RemoteStartAccepted, now: float) -> None:
        evse = self._free_evse(event.evse_id, event.id_token)
        if evse is None:
            self.remote.claim_start(event.evse_id or 0, now)
            return
        self.application.remote_start(evse.id, event.id_token, now)
        name = (
            "AuthorizeRemoteTxRequests"
            if self.version == "1.6"
            else "AuthCtrlr.AuthorizeRemoteStart"
        )
        if self._setting_bool(name, False):
            self._remote_waiting[self._token_key(event.id_token)] = evse.id
            self.authorization.authorize(event.id_token, now)  # F01.FR.01/.02
        else:
            self._authorize(evse, event.id_token, now, cause="RemoteStart")

    def _free_evse(self, wanted: int | None, token: Any) -> _Evse | None:
        candidates = [wanted] if wanted is not None else list(self.evses)
        waiting = set(self._remote_waiting.values())
        for number in candidates:
            evse = self.evses.get(number)
            if (
                evse is not None
                and self._operative(evse, None)
                and evse.transaction is None
                and number not in waiting
                and self.reservations.may_charge(number, token)
            ):
                return evse
        return None

    def _remote_stop(self, event: RemoteStopAccepted, now: float) -> None:
        evse = self._evse_with_id(event.transaction_id)
        if evse is not None:
            self._end(
                evse, now, trigger=event.trigger_reason or "RemoteStop", reason=event.stopped_reason
            )

    def _unlock(self, event: UnlockRequested, now: float) -> None:
        evse = self.evses.get(event.evse_id)
        if evse is not None and event.stop_first is not None:
            # 1.6 §5.18: the transaction on the connector stops before it unlocks.
            self._end(evse, now, trigger="UnlockCommand", reason="UnlockCommand")
        unlocked = self.application.unlock(event.evse_id, event.connector_id or 1, now)
        self.remote.unlock_result(event.message_id, unlocked, now)

    # --- availability and reset

    def _availability_changed(self, event: AvailabilityChanged, now: float) -> None:
        if not event.cause.startswith(("station-inoperative:", "hardware:")):
            self._save_state()
        for number, connector in event.changed:
            evse = self.evses.get(number)
            if evse is not None:
                self._sync_reservation_state(evse, now)
                self.application.set_availability(
                    number,
                    connector,
                    self.availability.is_operative(number, connector)
                    if self.version != "1.6"
                    else self.availability.is_operative(number),
                    now,
                )
                for connector_id in evse.connectors:
                    if connector is None or connector == connector_id or self.version == "1.6":
                        self._report(number, connector_id, now)
            elif number == 0:
                self._report(0, 0, now)

    def _reset_accepted(self, event: ResetAccepted, now: float) -> None:
        if event.status == "Scheduled" and event.evse_id is None:
            self._scheduled_reset = True
            self.store.save("pending_reset", {"kind": event.kind})
        for evse in self.evses.values():
            tx = evse.transaction
            if tx is None:
                continue
            key = _activity_key(tx)
            if key in event.stop:
                self._end(
                    evse,
                    now,
                    trigger=event.trigger_reason or "ResetCommand",
                    reason=event.stop_reason or "Other",
                )
            elif key in event.after_reboot and tx.transaction_id is not None:
                # 1.6 Hard: the StopTransaction goes out after the reboot, once accepted.
                reading = self._reading(evse, now)
                self._stop_after_reboot.append(
                    build(
                        self.m.StopTransactionRequest,
                        transaction_id=tx.transaction_id,
                        meter_stop=round(reading.get("Energy.Active.Import.Register", 0.0)),
                        timestamp=self.clock(now),
                        reason=event.stop_reason,
                    )
                )

    def _reset_due(self, event: ResetDue, now: float) -> None:
        self.application.reset(event.evse_id, now)
        if event.evse_id is None:
            reason = SCHEDULED_RESET if self._scheduled_reset else REMOTE_RESET
            self._reboot(reason, now)

    def _reboot(self, reason: str, now: float) -> None:
        """Reboot once our answers are on the wire and the transaction messages before it
        are delivered (or after a grace period): ``RebootRequested`` for the IO layer,
        which powers up a new ``ChargingStation`` on the same store."""
        if self._reboot_reason is not None:
            return
        self._reboot_reason = reason
        self._reboot_ready = False
        self._reboot_deadline = now + REBOOT_GRACE_SECONDS
        self.store.save("boot_reason", reason)
        self.store.save("pending_reset", None)
        self._save_state()
        self.schedule(0.0, now, "reboot", self._try_reboot)

    def _try_reboot(self, now: float) -> None:
        assert self._reboot_reason is not None and self._reboot_deadline is not None
        busy = (
            not self._reboot_ready
            or self.core.held_requests
            or self.outbox.waiting
            or self.firmware.outbox.waiting
        )
        if busy and now < self._reboot_deadline:
            self.schedule(0.1, now, "reboot", self._try_reboot)
            return
        self._save_state()
        self.core.put_back([*self.core.events(), RebootRequested(reason=self._reboot_reason)])

    def rebooted(
        self, now: float = 0.0, *, application: StationApplication | None = None
    ) -> ChargingStation:
        """The same station after its reboot, in this process: a new facade on the same
        store, with the transaction messages this core still held."""
        held = [*self.core.held_requests, *self._stop_after_reboot]
        return ChargingStation(
            self.version,
            application=application or self.application,
            info=self.info,
            evses=len(self.evses),
            connectors_per_evse=len(self.evses[1].connectors),
            store=self.store,
            network_profiles=self.network.profiles,
            wall_clock=self._own_clock or self.core.wall_clock,
            rng=self.rng,
            id_generator=self._id_generator,
            config=self._base_config,
            held_requests=held,
            on_frame=self.on_frame,
        )

    # --- firmware and uploads

    def _check_firmware(self, request: Any) -> str | None:
        firmware = getattr(request, "firmware", None)
        certificate = getattr(firmware, "signing_certificate", None)
        if certificate is None:
            certificate = getattr(request, "signing_certificate", None)
        if certificate is None:
            return None
        verdict = self.application.check_firmware_certificate(certificate, self._now)
        if verdict in ("InvalidCertificate", "RevokedCertificate"):
            self._auto_security_event("InvalidFirmwareSigningCertificate", self._now)  # L01.FR.02
        return verdict

    def _download(self, event: FirmwareDownloadDue, now: float) -> None:
        snapshot = self.firmware.snapshot()
        request = snapshot.request if snapshot is not None else None
        firmware = getattr(request, "firmware", None)
        self.application.download_firmware(
            FirmwareJob(
                request_id=self.firmware.request_id,
                location=event.location,
                attempt=event.attempt,
                attempts=event.attempts,
                signing_certificate=getattr(firmware, "signing_certificate", None),
                signature=getattr(firmware, "signature", None),
            ),
            now,
        )

    def _upload(self, event: UploadDue, now: float) -> None:
        uploader = self.logs if event.kind.value == "log" else self.diagnostics
        assert uploader is not None
        self._save_state()
        self.application.upload_log(
            UploadJob(
                kind=event.kind.value,
                request_id=uploader.request_id,
                location=event.location,
                filename=event.filename,
                attempt=event.attempt,
                attempts=event.attempts,
            ),
            now,
        )

    # --- the CSMS's requests no flow takes

    def _on_request(self, event: RequestReceived, now: float) -> None:
        handler = _HANDLERS.get(event.action)
        if handler is None:
            self.core.send_error(
                event.message_id, "NotSupported", f"this station does not support {event.action}"
            )
            return
        handler(self, event, now)

    def _answer(self, event: RequestReceived, now: float, **fields: Any) -> None:
        response = self.core.registry[event.action].response
        assert response is not None
        self.core.send_response(event.message_id, build(response, **fields), now)

    def _transaction_status(self, event: RequestReceived, now: float) -> None:
        """E14: messagesInQueue counts the held messages of that transaction (or any)."""
        wanted = event.request.transaction_id
        ongoing = None if wanted is None else self._evse_with_id(wanted) is not None
        held = self.core.held_requests
        if wanted is not None:
            held = [
                r for r in held if getattr(r.transaction_info, "transaction_id", None) == wanted
            ]
        self._answer(event, now, messages_in_queue=bool(held), ongoing_indicator=ongoing)

    def _set_network_profile(self, event: RequestReceived, now: float) -> None:
        """B09: store the profile in its slot; Rejected for a slot NetworkConfigurationPriority
        cannot name (B09.FR.05) or a lower security profile (B09.FR.04)."""
        request = event.request
        slot = request.configuration_slot
        profile = NetworkProfile.from_message(request.connection_data)
        current = self._setting_int("SecurityCtrlr.SecurityProfile", 1)
        if not 0 <= slot <= _MAX_SLOT or profile.security_profile < current:
            self._answer(event, now, status="Rejected")
            return
        active = self.network.connected_slot
        if active is not None and slot == active:
            self._answer(event, now, status="Rejected")  # never overwrite the slot in use
            return
        self.network.profiles[slot] = profile
        self._save_network()
        self._answer(event, now, status="Accepted")
        self._auto_security_event("ReconfigurationOfSecurityParameters", now)

    def _set_charging_profile(self, event: RequestReceived, now: float) -> None:
        # Smart charging (issue 14) plugs in here; until then profiles are not stored.
        status = "NotSupported" if self.version == "1.6" else "Rejected"
        self._answer(event, now, status=status)

    def _composite_schedule(self, event: RequestReceived, now: float) -> None:
        # get_composite_schedule (issue 14) will answer here.
        self._answer(event, now, status="Rejected")

    def _clear_charging_profile(self, event: RequestReceived, now: float) -> None:
        self._answer(event, now, status="Unknown")

    # --- triggers

    def _on_trigger(self, event: TriggerAccepted, now: float) -> None:
        action = event.action
        targets = sorted(t for t in event.targets if t is not None)
        if action == "StatusNotification":
            for target in targets:
                if target == 0 and self.version == "1.6":
                    self._report(0, 0, now, force=True)
                elif target in self.evses:
                    for connector_id in self.evses[target].connectors:
                        self._report(target, connector_id, now, force=True)
        elif action == "MeterValues":
            for target in targets:
                evse = self.evses.get(target)
                if evse is not None:
                    self._send_meter_values(evse, self._measurands("triggered"), "Trigger", now)
        elif action == "TransactionEvent":
            for target in targets:
                evse = self.evses.get(target)
                if evse is not None and evse.transaction is not None:
                    self.transactions.update(
                        evse.transaction,
                        trigger_reason="Trigger",  # F06.FR.07
                        now=now,
                        charging_state="Charging" if evse.energy else "EVConnected",
                        meter_value=[
                            self._meter_value(evse, self._measurands("periodic"), "Trigger", now)
                        ],
                    )

    # --- metering

    def _measurands(self, kind: str) -> tuple[str, ...]:
        names = {
            ("1.6", "periodic"): "MeterValuesSampledData",
            ("1.6", "triggered"): "MeterValuesSampledData",
            ("2.x", "periodic"): "SampledDataCtrlr.TxUpdatedMeasurands",
            ("2.x", "triggered"): "AlignedDataCtrlr.Measurands",  # F06.FR.06
        }
        value = self._setting(names["1.6" if self.version == "1.6" else "2.x", kind]) or ""
        return tuple(m.strip() for m in value.split(",") if m.strip())

    def _reading(self, evse: _Evse, now: float) -> dict[str, float]:
        fresh = self.application.read_meter(evse.id, now)
        if fresh is not None:
            evse.readings.update(fresh)
        return evse.readings

    def _sample(self, event: MeterSampleDue, now: float) -> None:
        """Periodic samples go with their transaction, online or not: held while offline
        and delivered later, 2.x marked offline (E11, E12)."""
        if event.transaction is not None:
            evse = self.evses.get(event.connector_id or 0)
            if evse is None or evse.transaction is not event.transaction:
                return
            mv = self._meter_value(evse, event.measurands, event.context, now)
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
        online = self.core.connected and self.core.registration is RegistrationStatus.ACCEPTED
        for evse in self.evses.values():
            if evse.transaction is not None:
                # Clock-aligned values of a running transaction go with it (J01.FR.19;
                # 1.6: MeterValues with its transactionId), held while offline.
                mv = self._meter_value(evse, event.measurands, event.context, now)
                if self.version == "1.6":
                    self.transactions.meter_values(evse.transaction, [mv], now)
                else:
                    self.transactions.update(
                        evse.transaction,
                        trigger_reason=event.trigger_reason or "MeterValueClock",
                        now=now,
                        meter_value=[mv],
                    )
            elif online:
                self._send_meter_values(evse, event.measurands, event.context, now)

    def _send_meter_values(
        self, evse: _Evse, measurands: tuple[str, ...], context: str, now: float
    ) -> None:
        mv = self._meter_value(evse, measurands, context, now)
        if self.version == "1.6" and evse.transaction is not None:
            self.transactions.meter_values(evse.transaction, [mv], now)
            return
        if self.version == "1.6":
            request = self.m.MeterValuesRequest(connector_id=evse.id, meter_value=[mv])
        else:
            request = self.m.MeterValuesRequest(evse_id=evse.id, meter_value=[mv])
        with contextlib.suppress(LocalProtocolError):
            self.core.send_request(request, now)

    def _meter_value(
        self, evse: _Evse, measurands: tuple[str, ...], context: str, now: float
    ) -> Any:
        readings = self._reading(evse, now)
        chosen = [m for m in measurands if m in readings] or ["Energy.Active.Import.Register"]
        m = self.m
        values = []
        for measurand in chosen:
            value = readings.get(measurand, 0.0)
            unit = _UNITS.get(measurand)
            if self.version == "1.6":
                values.append(
                    build(
                        m.SampledValue,
                        value=f"{value:g}",
                        context=context,
                        measurand=measurand,
                        unit=unit,
                    )
                )
            else:
                values.append(
                    build(
                        m.SampledValue,
                        value=value,
                        context=context,
                        measurand=measurand,
                        unit_of_measure=m.UnitOfMeasure(unit=unit) if unit else None,
                    )
                )
        return m.MeterValue(timestamp=self.clock(now), sampled_value=values)

    # --- persistence

    @property
    def _base_config(self) -> StationConfig:
        return self.core.config

    def _save_state(self) -> None:
        store = self.store
        store.save("availability", _availability_to_json(self.availability.snapshot()))
        store.save("firmware", firmware_to_json(self.firmware.snapshot()))
        self._save_reservations()
        self._save_transactions()
        self._save_plugged()
        store.save("security_events", [unstructure(p) for p in self._security.waiting] or None)
        store.save("log_upload", self._upload_to_json())

    def _upload_to_json(self) -> dict[str, Any] | None:
        for uploader in (self.logs, self.diagnostics):
            found = uploader.snapshot() if uploader is not None else None
            if found is not None:
                request, filename, attempts_made = found
                return {
                    "kind": uploader.kind.value,  # type: ignore[union-attr]
                    "request": unstructure(request),
                    "filename": filename,
                    "attempts_made": attempts_made,
                }
        return None

    def _end_cut_short(self, now: float) -> None:
        """2.x: transactions a power loss cut short end after the boot, with the next seqNo
        (E04.FR.04) and stoppedReason PowerLoss; they go once the station is accepted."""
        running = self.store.load("transactions") or []
        self.store.save("transactions", None)
        if self.version == "1.6":
            return
        m = self.m
        for record in running:
            request = build(
                m.TransactionEventRequest,
                event_type="Ended",
                timestamp=self.clock(now),
                trigger_reason="AbnormalCondition",
                seq_no=int(record["next_seq_no"]),
                transaction_info=build(
                    m.Transaction,
                    transaction_id=record["transaction_id"],
                    stopped_reason="PowerLoss",
                ),
                evse=build(m.EVSE, id=int(record["evse"])),
            )
            self.core.send_request(request, now)

    def _resume_upload(self, now: float) -> None:
        """N01: an upload a reboot cut short goes on, its attempts counted."""
        data = self.store.load("log_upload")
        if not data:
            return
        uploader = self.diagnostics if data["kind"] == "diagnostics" else self.logs
        if uploader is None:
            return
        action = "GetDiagnostics" if uploader is self.diagnostics else "GetLog"
        request = structure_fn(self.core.registry[action].request)(data["request"])
        uploader.resume(request, data["filename"], int(data["attempts_made"]), now)

    def _save_plugged(self) -> None:
        plugged = [
            [e.id, c.id] for e in self.evses.values() for c in e.connectors.values() if c.plugged
        ]
        self.store.save("plugged", plugged or None)

    def _save_reservations(self) -> None:
        found = [
            reservation_to_json(self.version, r) for r in self.reservations.reservations.values()
        ]
        self.store.save("reservations", found or None)

    def _save_transactions(self) -> None:
        running = []
        for evse in self.evses.values():
            tx = evse.transaction
            if tx is None or self.version == "1.6":
                continue
            running.append(
                {
                    "evse": evse.id,
                    "transaction_id": tx.transaction_id,
                    "next_seq_no": tx.next_seq_no,
                }
            )
        self.store.save("transactions", running or None)

    def _save_settings(self) -> None:
        if self.version == "1.6":
            values = {key: self._keys.read(key) for key in self._keys.names()}
        else:
            values = {}
            for item in self._model.variables():
                for attribute, held in item.attributes.items():
                    if held.mutability != "ReadOnly" and held.value is not None:
                        values[_variable_name(item.component, item.variable, attribute)] = (
                            held.value
                        )
        self.store.save("settings", values)

    def _save_network(self) -> None:
        self.store.save(
            "network_profiles",
            {str(slot): p.to_json() for slot, p in self.network.profiles.items()},
        )

    def _restore_settings(self) -> None:
        values = self.store.load("settings") or {}
        for name, value in values.items():
            if self.version == "1.6":
                if self._keys.read(name) is not None:
                    self._keys.write(name, value)
                continue
            parsed = _parse_variable_name(name)
            if parsed is None:
                continue
            component, variable, attribute = parsed
            found = self._model.lookup(component, variable)
            if found is not None and attribute in found.attributes:
                self._model.write(component, variable, attribute, value)

    def _restore_network(self, provisioned: Mapping[int, NetworkProfile]) -> None:
        stored = self.store.load("network_profiles") or {}
        profiles = dict(provisioned)
        for slot, data in stored.items():
            profiles[int(slot)] = NetworkProfile.from_json(data)
        self.network.profiles = profiles
        if self.version == "1.6":
            if profiles:
                self.network.priority = sorted(profiles)
            return
        slots = _slots(self._setting("OCPPCommCtrlr.NetworkConfigurationPriority") or "") or []
        usable = [s for s in slots if s in profiles] or sorted(profiles)
        if usable:
            self.network.priority = usable

    def _restore_state(self) -> None:
        for evse_id, connector_id in self.store.load("plugged") or []:
            evse = self.evses.get(evse_id)
            if evse is not None and connector_id in evse.connectors:
                evse.connectors[connector_id].plugged = True
        for data in self.store.load("security_events") or []:
            cls = self.core.registry["SecurityEventNotification"].request
            self._security.submit(structure_fn(cls)(data), 0.0)
        for evse in self.evses.values():
            self._sync_reservation_state(evse, 0.0)


_MAX_SLOT = 9


def _slots(value: str) -> list[int] | None:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        return None


def _fold(text: str | None) -> str:
    return (text or "").casefold()


def _variable_name(component: ComponentKey, variable: VariableKey, attribute: str) -> str:
    parts = [
        component.name,
        component.instance or "",
        "" if component.evse_id is None else str(component.evse_id),
        "" if component.connector_id is None else str(component.connector_id),
        variable.name,
        variable.instance or "",
        attribute,
    ]
    return "|".join(parts)


def _parse_variable_name(name: str) -> tuple[ComponentKey, VariableKey, str] | None:
    parts = name.split("|")
    if len(parts) != 7:
        return None
    comp, comp_instance, evse, connector, var, var_instance, attribute = parts
    return (
        ComponentKey(
            comp,
            comp_instance or None,
            int(evse) if evse else None,
            int(connector) if connector else None,
        ),
        VariableKey(var, var_instance or None),
        attribute,
    )


def _availability_to_json(snapshot: AvailabilitySnapshot) -> list[list[int | None]] | None:
    return sorted(([e, c] for e, c in snapshot.inoperative), key=str) or None


def _availability_from_json(data: Any) -> AvailabilitySnapshot | None:
    if not data:
        return None
    return AvailabilitySnapshot(inoperative=frozenset((e, c) for e, c in data))


def _activity_key(transaction: Any) -> Any:
    """How the shared Activity knows a transaction (1.6: local until the CSMS numbers it)."""
    return getattr(transaction, "activity_key", None) or transaction.transaction_id


_HANDLERS: dict[str, Callable[[ChargingStation, RequestReceived, float], None]] = {
    "GetTransactionStatus": ChargingStation._transaction_status,
    "SetNetworkProfile": ChargingStation._set_network_profile,
    "SetChargingProfile": ChargingStation._set_charging_profile,
    "GetCompositeSchedule": ChargingStation._composite_schedule,
    "ClearChargingProfile": ChargingStation._clear_charging_profile,
}
