"""What each connector shows (B01.FR.05, B04, G01-G04, H01): its status from the EVSE's
state, availability and reservations, and the StatusNotifications that report it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ocpp_sansio.events import Reconnected, RegistrationChanged, RegistrationStatus
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows.availability import STATION, AvailabilityChanged

from ._evse import Evse

if TYPE_CHECKING:
    from ._facade import ChargingStation

_DEFAULT_OFFLINE_THRESHOLD = 60.0
#: The causes of the availability holds sync_holds keeps (not saved: they end with the wait).
_STATION_INOPERATIVE = "station-inoperative:"
_FIRMWARE_PENDING = "firmware-pending:"


class StatusReporter:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        #: The status last sent per (EVSE, connector); 1.6: (connector, 0).
        self._reported: dict[tuple[int, int], str] = {}
        #: EVSEs shown Reserved: the reservations' own view plus the application's.
        self._reserved: set[int] = set()
        #: EVSEs the application reserved itself (on_reserved).
        self._app_reserved: set[int] = set()
        #: Holds of EVSEs while the station waits for transactions (sync_holds).
        self._holds: set[str] = set()

    def status_of(self, evse_id: int, connector_id: int = 1) -> str:
        station = self.station
        if station.version == "1.6" and evse_id == 0:
            return "Available" if station.availability.is_operative(0) else "Unavailable"
        evse = station.evses[evse_id]
        connector = evse.connectors[connector_id]
        if connector.faulted:
            return "Faulted"
        if not self.operative(evse, connector_id):
            return "Unavailable"
        if station.version == "1.6":
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

    def operative(self, evse: Evse, connector_id: int | None) -> bool:
        availability = self.station.availability
        if self.station.version == "1.6" or connector_id is None:
            return availability.is_operative(evse.id)
        return availability.is_operative(evse.id, connector_id)

    # --- StatusNotification

    def registration_changed(self, event: RegistrationChanged, now: float) -> None:
        station = self.station
        if event.status is not RegistrationStatus.ACCEPTED:
            return
        if station.accepted_at is None:
            station.accepted_at = now
        station.meter.start(now)
        self._reported.clear()  # B01.FR.05: every connector's status after acceptance
        self.report_all(now)

    def reconnected(self, event: Reconnected, now: float) -> None:
        if event.offline_for > self._offline_threshold():
            self._reported.clear()  # B04.FR.01: every connector
        self.report_all(now)  # B04.FR.02: otherwise the ones that changed

    def _offline_threshold(self) -> float:
        if self.station.version == "1.6":
            return 0.0
        return self.station.setting.number(
            "OCPPCommCtrlr.OfflineThreshold", _DEFAULT_OFFLINE_THRESHOLD
        )

    def _targets(self) -> list[tuple[int, int]]:
        out = [(0, 0)] if self.station.version == "1.6" else []
        for evse in self.station.evses.values():
            out += [(evse.id, c) for c in evse.connectors]
        return out

    def report_all(self, now: float) -> None:
        for evse_id, connector_id in self._targets():
            self.report(evse_id, connector_id, now)

    def refresh(self, evse: Evse, now: float) -> None:
        """The EVSE's state changed: tell the reservations, report what changed."""
        self.sync_reservation_state(evse, now)
        self.report_evses((evse.id,), now)

    def report_evses(self, targets: Iterable[int], now: float, *, force: bool = False) -> None:
        for target in targets:
            if target == 0 and self.station.version == "1.6":
                self.report(0, 0, now, force=force)
                continue
            evse = self.station.evses.get(target)
            if evse is not None:
                for connector_id in evse.connectors:
                    self.report(target, connector_id, now, force=force)

    def report(self, evse_id: int, connector_id: int, now: float, *, force: bool = False) -> None:
        """Send the connector's status if it changed since we last sent it (or ``force``);
        offline or unaccepted, the reconnect or acceptance sends the latest one instead."""
        core = self.station.core
        status = self.status_of(evse_id, connector_id or 1) if evse_id else self.status_of(0)
        key = (evse_id, connector_id)
        if not force and self._reported.get(key) == status:
            return
        online = core.connected and core.registration is RegistrationStatus.ACCEPTED
        if not (online or force):
            return
        request = self._request(evse_id, connector_id, status, now)
        if core.may_send(request) is not None:
            return
        core.send_request(request, now)
        self._reported[key] = status

    def _request(self, evse_id: int, connector_id: int, status: str, now: float) -> Any:
        station = self.station
        m = station.m
        if station.version == "1.6":
            return build(
                m.StatusNotificationRequest,
                connector_id=evse_id,
                error_code="NoError",
                status=status,
                timestamp=station.clock(now),
            )
        return build(
            m.StatusNotificationRequest,
            timestamp=station.clock(now),
            connector_status=status,
            evse_id=evse_id,
            connector_id=connector_id,
        )

    def lost(self, request: Any) -> None:
        """A StatusNotification the connection swallowed: send it again when due."""
        if self.station.version == "1.6":
            self._reported.pop((request.connector_id, 0), None)
        else:
            self._reported.pop((request.evse_id, request.connector_id), None)

    # --- availability

    def availability_changed(self, event: AvailabilityChanged, now: float) -> None:
        station = self.station
        for number, connector in event.changed:
            evse = station.evses.get(number)
            if evse is not None:
                self.sync_reservation_state(evse, now)
                station.application.set_availability(
                    number,
                    connector,
                    self.operative(evse, connector),
                    now,
                )
                for connector_id in evse.connectors:
                    if connector is None or connector == connector_id or station.version == "1.6":
                        self.report(number, connector_id, now)
            elif number == 0:
                self.report(0, 0, now)

    def sync_holds(self) -> None:
        """While the station waits for its transactions to end, every EVSE without one is
        Unavailable at once and each busy one follows when its transaction ends: a
        station-wide Inoperative (G03, G04), a firmware update (L01.FR.07, L02.FR.04)."""
        station = self.station
        availability = station.availability
        waiting = {
            _STATION_INOPERATIVE: availability.scheduled.get(STATION) is False,
            _FIRMWARE_PENDING: station.maintenance.holds_new_sessions(),
        }
        for evse in station.evses.values():
            for cause, active in waiting.items():
                key = f"{cause}{evse.id}"
                hold = active and evse.transaction is None
                if hold and key not in self._holds:
                    self._holds.add(key)
                    availability.hold(key, (evse.id, None))
                elif not hold and key in self._holds:
                    self._holds.discard(key)
                    availability.release(key)

    # --- reservations

    def sync_reservation_state(self, evse: Evse, now: float) -> None:
        """Tell the reservations what the EVSE can take (H01: a reservation of an
        Occupied or Unavailable EVSE is refused)."""
        if any(c.faulted for c in evse.connectors.values()):
            state = "Faulted"
        elif evse.transaction is not None or evse.plugged:
            state = "Occupied"
        elif not self.operative(evse, None):
            state = "Unavailable"
        else:
            state = "Available"
        reservations = self.station.reservations
        if reservations.status.get(evse.id) != state:
            reservations.set_status(evse.id, state, now)

    def sync_reserved(self, now: float) -> None:
        """Show as Reserved what the reservations hold now (H01.FR.20/23/24, H04.FR.03)."""
        reserved = self.station.reservations.reported_reserved() | self._app_reserved
        changed = reserved ^ self._reserved
        self._reserved = reserved
        self.report_evses(sorted(changed), now)

    def app_reserved(self, evse_id: int, reserved: bool, now: float) -> None:
        if reserved:
            self._app_reserved.add(evse_id)
        else:
            self._app_reserved.discard(evse_id)
        self.sync_reserved(now)

    def restore_reservations(self, now: float) -> None:
        """H01: a reservation outlives the reboot until its expiry (the keeper gives the
        flow back what the previous power-up kept, and keeps it from now on)."""
        station = self.station
        station.keeper.keep_reservations(station.reservations, now)
        self._reserved = station.reservations.reported_reserved()
        for evse in station.evses.values():
            self.sync_reservation_state(evse, now)
