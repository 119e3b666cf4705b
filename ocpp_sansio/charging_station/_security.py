"""Security events (A04; 1.6 security extension A04): SecurityEventNotification, the
critical ones queued through outages and delivered once accepted, kept in the store
across a reboot."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ocpp_sansio.events import Event
from ocpp_sansio.flows._base import Outbox, build
from ocpp_sansio.messages._codec import structure_fn, unstructure

if TYPE_CHECKING:
    from ._facade import ChargingStation

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
#: The events the 1.6 security extension marks critical (its list of security events).
CRITICAL_SECURITY_EVENTS_1_6 = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    }
)

RECORD = "security_events"


class SecurityEvents:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        #: Critical events not yet delivered, in order (A04.FR.02).
        self.outbox = Outbox(station.core)
        self.critical = (
            CRITICAL_SECURITY_EVENTS_1_6 if station.version == "1.6" else CRITICAL_SECURITY_EVENTS
        )

    def send(
        self,
        event_type: str,
        now: float,
        *,
        tech_info: str | None = None,
        critical: bool | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        core = self.station.core
        if critical is None:
            critical = event_type in self.critical
        request = build(
            core.registry["SecurityEventNotification"].request,
            type=event_type,
            timestamp=timestamp or self.station.clock(now),
            tech_info=tech_info,
        )
        if critical:
            self.outbox.submit(request, now)
            self.save()  # A04.FR.02: delivery guaranteed, a power loss included
        elif core.may_send(request) is None:
            core.send_request(request, now)

    def handle_event(self, event: Event, now: float) -> bool:
        """The outbox settles our requests; a delivered one leaves the store."""
        if self.outbox.handle_event(event, now):
            self.save()
            return True
        return False

    def save(self) -> None:
        waiting = [unstructure(p) for p in self.outbox.unsettled]
        self.station.store.save(RECORD, waiting or None)

    def restore(self) -> None:
        cls = self.station.core.registry["SecurityEventNotification"].request
        for data in self.station.store.load(RECORD) or []:
            self.outbox.submit(structure_fn(cls)(data), 0.0)
