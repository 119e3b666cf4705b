"""``ChargingStation``: the whole station behind one object (after libocpp's
ChargePointInterface), sans-IO.

It owns a ``StationCore`` and every station flow and runs them inside the core's own entry
points (so any adapter drives ``station.core`` like a plain core). The work is done by
parts with one job each, which this class assembles and feeds: the EVSE state machine
(``_evse``), connector statuses (``_status``), meter values (``_metering``), tokens and
remote starts (``_authorization``), settings that act (``_settings``), the network
(``_connectivity``), boots and reboots (``_reboot``), security events (``_security``),
firmware and uploads (``_maintenance``), smart charging (``_smart``), and where each event
goes (``_dispatch``); the ``on_*`` members are in ``_reports``. The hardware is the
application's, behind ``StationApplication``; what the IO layer must do comes out as events
(``ConnectRequested``, ``DisconnectRequested``, ``RebootRequested``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ocpp_sansio.config import StationConfig
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows import (
    Authorization,
    Configuration16,
    DataTransferRouter,
    DeviceModel,
    InMemoryConfiguration,
    InMemoryDeviceModel,
    MeterSchedule,
    Reservations,
    TransactionEvents,
    Transactions16,
    uuid_transaction_ids,
)
from ocpp_sansio.flows._base import Activity, Outbox, WallClock, WallClocked, build
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.flows.availability import Availability, Reset
from ocpp_sansio.flows.firmware import FirmwareUpdater
from ocpp_sansio.flows.logs import DiagnosticsUploader, LogUploader
from ocpp_sansio.flows.remote import RemoteControl
from ocpp_sansio.smart_charging import (
    CompositeSchedule,
    RateUnit,
    SmartChargingConfig,
)
from ocpp_sansio.store import open_default_station_store
from ocpp_sansio.store.keeper import StationKeeper

from ._application import StationApplication
from ._authorization import Tokens
from ._connectivity import Connectivity
from ._dispatch import SUPPORTED_TRIGGERS, Router
from ._events import ConnectRequested, DisconnectRequested
from ._evse import Evse, Sessions
from ._maintenance import Maintenance
from ._metering import Metering
from ._network import NetworkPlanner, NetworkProfile
from ._reboot import POWER_UP, Reboots, StationInfo
from ._reports import HardwareReports
from ._runtime import FacadeCore, OfflineTimers
from ._security import SecurityEvents
from ._settings import SettingEffects, SettingReader
from ._smart import SmartChargingHost, default_config, seed_settings
from ._status import StatusReporter
from ._store import StationStore
from ._variables import station_keys, station_variables

__all__ = ["ChargingStation"]


FrameObserver = Callable[[str, str, float], None]


def _connector_type_of(connector_type: str | Mapping[int, str], evse_id: int) -> str:
    if isinstance(connector_type, str):
        return connector_type
    if evse_id not in connector_type:
        raise ValueError(f"connector_type names no type for EVSE {evse_id}")
    return connector_type[evse_id]


class ChargingStation(HardwareReports, WallClocked):
    """One charging station, assembled. See docs/charging_station.md.

    ``evses``: the number of EVSEs (1.6: connectors), ids from 1, each with
    ``connectors_per_evse`` connectors (1.6: one). ``connector_type``: the 2.x
    ConnectorEnumType of every connector, or per EVSE id (what ReserveNow's connectorType
    matches, H01.FR.11). ``network_profiles``: the slots the
    station was provisioned with (slot -> profile; more come by SetNetworkProfile).
    ``identity``: the station's identity (the last part of its URL; 2.x
    SecurityCtrlr.Identity). ``store`` keeps what survives a reboot or a crash (the core's
    held transaction messages, the flows' state, the facade's records, committed together):
    power the next ``ChargingStation`` up on the same store. Without one, the station opens
    its SQLite store in ``ocpp_sansio.store.default_store_folder()``, named after
    ``identity`` (docs/store.md); tests pass ``ocpp_sansio.store.MemoryStationStore``.
    ``smart_charging``: the hardware smart charging works
    with (each EVSE's phases and limits, the grid connection, the nominal voltage) and the
    factory values of its settings (default: every EVSE AC, three phases, up to
    ``max_power_w``); the device model or the 1.6 keys hold the settings from then on.
    ``installs_firmware_during_transactions``: the hardware can install an update while
    transactions run (its activation still waits for them, L01.FR.33).
    """

    application: StationApplication
    firmware: FirmwareUpdater
    reboots: Reboots
    tokens: Tokens
    metering: Metering
    connectivity: Connectivity
    setting_effects: SettingEffects
    smart: SmartChargingHost

    def __init__(
        self,
        version: str,
        *,
        application: StationApplication,
        info: StationInfo,
        evses: int = 1,
        connectors_per_evse: int = 1,
        connector_type: str | Mapping[int, str] = "cType2",
        max_power_w: float = 22_000.0,
        identity: str | None = None,
        store: StationStore | None = None,
        network_profiles: Mapping[int, NetworkProfile] | None = None,
        wall_clock: WallClock | None = None,
        rng: random.Random | None = None,
        id_generator: Callable[[], str] | None = None,
        config: StationConfig | None = None,
        on_frame: FrameObserver | None = None,
        boot_reason: str | None = None,
        smart_charging: SmartChargingConfig | None = None,
        installs_firmware_during_transactions: bool = False,
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
        if store is None:
            if identity is None:
                raise ValueError(
                    "give the station's identity (its default store is a SQLite file named "
                    "after it) or a store"
                )
            store = open_default_station_store(identity, version)
        elif identity is not None and identity != store.identity:
            raise ValueError(f"the store is station {store.identity!r}'s, not {identity!r}'s")
        self.store: StationStore = store
        self.identity = store.identity
        self.on_frame = on_frame
        self.m = messages_for(version)
        self._id_generator = id_generator
        self.started = False
        self.resume_delay = 0.0
        self.accepted_at: float | None = None
        self.first_connected_at: float | None = None
        #: Core time of the entry point being settled (for callbacks without ``now``).
        self.now = 0.0
        self._event_seq = 0

        self.reboots = Reboots(self)
        base = config or StationConfig()
        # The core takes back the transaction messages the store holds: it comes first.
        self.core = FacadeCore(
            self,
            version,
            self.reboots.boot_request(POWER_UP),
            config=attrs.evolve(
                base, connectors=evses, supported_triggers=SUPPORTED_TRIGGERS[version]
            ),
            id_generator=id_generator,
            rng=self.rng,
            wall_clock=wall_clock,
            store=store,
        )
        core = self.core
        #: The flows' state in the store: each flow gets its own back as it is built.
        self.keeper = StationKeeper(store, clock=lambda now: self.clock(now))
        self.reboots.previous_reset = self.keeper.reset()
        self._boot_reason = boot_reason or self.reboots.stored_boot_reason()
        core.boot_request = self.reboots.boot_request(self._boot_reason)
        self.sessions = Sessions(self, evses, connectors_per_evse)
        self.evses: dict[int, Evse] = self.sessions.evses
        types = {
            n: (_connector_type_of(connector_type, n),) * connectors_per_evse for n in self.evses
        }
        self.setting_effects = SettingEffects(self)
        if version == "1.6":
            self.keys = InMemoryConfiguration(station_keys(evses))
            self.settings: Any = Configuration16(core, self.keys)
        else:
            self.model = InMemoryDeviceModel(
                station_variables(
                    types,
                    vendor=info.vendor,
                    model=info.model,
                    max_power_w=max_power_w,
                    identity=self.identity,
                )
            )
            self.settings = DeviceModel(
                core,
                self.model,
                clock=wall_clock,
                approve=self.setting_effects.approve_variable,
            )
        self.setting = SettingReader(self.settings, version)
        given = smart_charging or default_config(evses, max_power_w)
        if set(given.evses) != set(self.evses):
            raise ValueError(f"smart_charging describes EVSEs {sorted(given.evses)}, not 1-{evses}")
        seed_settings(self, given)
        self.setting_effects.restore()
        self.activity = Activity()
        self.status = StatusReporter(self)
        self.metering = Metering(self)
        self.tokens = Tokens(self)
        self.security = SecurityEvents(self)
        self.maintenance = Maintenance(self)
        self.availability = Availability(
            core,
            self.activity,
            connectors_per_evse=connectors_per_evse,
            restore=self.keeper.availability(),
        )
        self.keeper.keep_availability(self.availability)
        self.reset = Reset(core, self.activity, availability=self.availability, evse_reset=True)
        self.keeper.keep_reset(self.reset)
        self.smart = SmartChargingHost(self, given)
        self.smart_charging = self.smart.flow
        self.remote = RemoteControl(
            core,
            self.activity,
            availability=self.availability,
            check_start=self.tokens.check_start,
            connectors_per_evse=connectors_per_evse,
            smart_charging=self.smart.config.enabled,
            profiles=self.smart_charging,
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
            local_list=self.keeper.local_list(),
            cache=self.keeper.cache(0.0),
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
            check=self.maintenance.check_certificate,
            wall_clock=wall_clock,
            security_events=False,
            install_during_transactions=installs_firmware_during_transactions,
            resume=self.keeper.firmware(),
        )
        self.keeper.keep_firmware(self.firmware)
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
        self.network = NetworkPlanner(self.rng)
        self.router = Router(
            self,
            flows=(
                self.reset,  # first: it watches answers that other flows settle
                self.availability,
                self.remote,
                self.smart_charging,
                self.outbox,
                self.security,
                self.authorization,
                self.transactions,
                self.firmware,
                self.logs,
                *([self.diagnostics] if self.diagnostics is not None else []),
                self.settings,
                self.reservations,
                self.data_transfer_router,
                self.meter,
            ),
            timed=[
                flow
                for flow in (
                    self.firmware,
                    self.meter,
                    self.reservations,
                    self.logs,
                    self.diagnostics,
                    self.reset,
                    self.remote,
                    self.smart_charging,
                )
                if flow is not None
            ],
        )
        self.connectivity = Connectivity(self)
        self.connectivity.restore(network_profiles or {})
        self.setting_effects.apply(0.0)
        self._offline_timers = OfflineTimers(self)
        self.sessions.restore_plugged()
        self.security.restore()
        for evse in self.evses.values():
            self.status.sync_reservation_state(evse, 0.0)

    # === lifecycle (libocpp: start, stop, connect, disconnect)

    def start(self, now: float, *, boot_reason: str | None = None, connect: bool = True) -> None:
        """Power up: boot with ``boot_reason`` (default: what the previous life left in the
        store — RemoteReset, ScheduledReset, FirmwareUpdate — else PowerUp), queue the
        StartupOfTheDevice security event (and ResetOrReboot after a reset), and, with
        ``connect``, ask for a connection to the first network profile (B10.FR.04)."""
        if self.started:
            raise LocalProtocolError("the station is already started")
        self.started = True
        reason = boot_reason or self._boot_reason
        self._boot_reason = reason
        self.core.boot_request = self.reboots.boot_request(reason)
        self.reboots.powered_up(reason, now)
        self.status.restore_reservations(now)
        self.maintenance.resume_uploads(now)
        self.reboots.end_interrupted(self.keeper.keep_transactions(self.transactions, now), now)
        self.smart.start(now)
        self.meter.start(now)
        if connect:
            self.connect(now)
        self.router.settle(now)

    @property
    def boot_reason(self) -> str:
        return self._boot_reason

    def stop(self, now: float) -> None:
        """Power down: commit what survives to the store and close the connection."""
        self.core.commit()
        self.router.emit(DisconnectRequested(reason="stop"))
        self.started = False

    def connect(self, now: float, network_profile_slot: int | None = None) -> None:
        """Ask the IO layer for a connection to ``network_profile_slot`` (default: the
        next in NetworkConfigurationPriority)."""
        self.connectivity.connect(now, network_profile_slot)

    def disconnect(self, now: float) -> None:
        self.router.emit(DisconnectRequested(reason="disconnect"))

    def flows(self, core: Any = None) -> list[Any]:
        """For an adapter's ``flows=``: the facade's timers while no connection is open."""
        return [self._offline_timers]

    def on_connect_failed(self, now: float) -> ConnectRequested:
        """The IO layer's attempt failed: the next one (NetworkProfileConnectionAttempts
        per slot, then the next slot, B10.FR.03; RetryBackOff* waits)."""
        return self.connectivity.connect_failed(now)

    def on_network_disconnected(self, now: float) -> None:
        """The network went away under the connection (libocpp's name): the connection is
        lost, and a new attempt is asked for at once."""
        self.connectivity.network_disconnected(now)

    def set_message_queue_resume_delay(self, seconds: float) -> None:
        """After a reconnect, wait this long before the held transaction messages go
        again (the CSMS gets the station's status first)."""
        if seconds < 0:
            raise ValueError("the resume delay must be >= 0")
        self.resume_delay = seconds

    def rebooted(
        self, now: float = 0.0, *, application: StationApplication | None = None
    ) -> ChargingStation:
        """The same station after its reboot, in this process: a new facade on the same
        store (what this one committed, its held transaction messages included)."""
        self.core.commit()
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
            config=self.core.config,
            on_frame=self.on_frame,
        )

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
        verdict = self.tokens.validate(
            id_token,
            now,
            evse_id=evse_id,
            certificate=certificate,
            ocsp_request_data=ocsp_request_data,
        )
        self.router.settle(now)
        return verdict

    def _token_key(self, token: Any) -> Any:
        """How the handles match a ``TokenValidated`` to the token they wait for."""
        return self.tokens.key(token)

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
        self.router.data_transfer_sent(sent)
        return sent

    # === settings (libocpp: get_variables, set_variables)

    def get_variables(self, items: Sequence[tuple[str, str]], now: float) -> list[str | None]:
        """Read settings by name: 2.x (``"Component"``, ``"Variable[Instance]"``) pairs,
        1.6 (key, "") pairs. None where unknown."""
        names = (f"{c}.{n}" if c and n else c or n for c, n in items)
        return [self.settings.setting(name) for name in names]

    def set_variables(
        self, items: Sequence[tuple[str, str, str]], now: float, *, source: str = "Local"
    ) -> list[str]:
        """Change settings as the CSMS would, with the same checks (read-only, type,
        limits): 2.x (component, variable[instance], value), 1.6 (key, "", value). Each
        takes effect at once. ``source`` says who changed it (kept for the report).
        Returns one status per item."""
        if self.version == "1.6":
            statuses = [
                str(
                    self.settings.change_configuration(
                        self.m.ChangeConfigurationRequest(key=key, value=value)
                    ).status
                )
                for key, _, value in items
            ]
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
        self.last_change_source = source
        self.router.settle(now)
        return statuses

    last_change_source = "CSMS"

    # === smart charging (libocpp: get_composite_schedule, get_all_composite_schedules)

    def get_composite_schedule(
        self, evse_id: int, duration: int, unit: RateUnit | str | None, now: float
    ) -> CompositeSchedule:
        """The limits in force on ``evse_id`` (0: the grid connection) from ``now`` for
        ``duration`` seconds, in ``unit`` (A or W; None: the default unit), as
        GetCompositeSchedule answers them (K08). LocalProtocolError for an unknown EVSE, a
        unit the station does not allow or a duration it does not report (K08.FR.05/07)."""
        return self.smart.composite(evse_id, duration, unit, now)

    def get_all_composite_schedules(
        self, duration: int, unit: RateUnit | str | None, now: float
    ) -> dict[int, CompositeSchedule]:
        """``get_composite_schedule`` for EVSE 0 and every EVSE."""
        return self.smart.all_composites(duration, unit, now)

    # === reading the station

    def get_evse_transaction_id(self, evse_id: int) -> str | int | None:
        """The running transaction's id (1.6: the CSMS's number, None until known)."""
        tx = self.sessions.evse(evse_id).transaction
        return None if tx is None else tx.transaction_id

    @property
    def held_messages(self) -> list[Any]:
        """Transaction messages the core has not delivered yet, oldest first (E11-E14)."""
        return self.core.held_requests

    def status_of(self, evse_id: int, connector_id: int = 1) -> str:
        """The connector status a StatusNotification reports now (1.6: ``evse_id`` is the
        connector, 0 the charge point)."""
        return self.status.status_of(evse_id, connector_id)

    @property
    def latencies(self) -> list[float]:
        """Round-trip times of our CALLs (s)."""
        return self.router.latencies

    # === the facade's own timers

    def schedule(self, delay: float, now: float, tag: str, action: Callable[[float], None]) -> None:
        """Call ``action(when)`` at core time ``now + delay`` (for applications without a
        scheduler of their own: the core's ``next_deadline`` includes it)."""
        self.router.schedule(now + delay, tag, action)

    def cancel(self, tag: str) -> None:
        self.router.cancel(tag)

    def observe(self, direction: str, text: str, now: float | None) -> None:
        if self.on_frame is not None:
            self.on_frame(direction, text, now if now is not None else -1.0)
