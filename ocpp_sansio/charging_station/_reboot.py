"""Boots and reboots (B01, B11, B12, E04): the BootNotification and its reason, resets,
the reboot once the answers and transaction messages before it are out, and what the
store keeps for the next power-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ocpp_sansio.flows._base import build
from ocpp_sansio.flows.availability import ResetAccepted, ResetDue

from ._events import RebootRequested
from ._persist import activity_key, availability_to_json, firmware_to_json

if TYPE_CHECKING:
    from ._facade import ChargingStation

#: Boot reasons (2.x BootReasonEnumType) the facade gives by itself.
POWER_UP = "PowerUp"
TRIGGERED = "Triggered"
REMOTE_RESET = "RemoteReset"
SCHEDULED_RESET = "ScheduledReset"
FIRMWARE_UPDATE = "FirmwareUpdate"

#: A reboot waits for the transaction messages before it at most this long (s).
REBOOT_GRACE_SECONDS = 5.0


@attrs.frozen(kw_only=True)
class StationInfo:
    """What the BootNotification says about the station."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


class Reboots:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        self.reason: str | None = None
        self._ready = False
        self._deadline: float | None = None
        self._scheduled_reset = False
        #: 1.6 Hard reset: StopTransactions the next power-up sends first.
        self.stop_after_reboot: list[Any] = []

    @property
    def rebooting(self) -> bool:
        """A reboot is on its way and our last frames are out."""
        return self.reason is not None and self._ready

    # --- boot

    def stored_boot_reason(self) -> str:
        """What the previous life left: its reboot's reason, ScheduledReset when it died
        with an OnIdle reset pending (the reboot did what the reset waited for), else
        PowerUp."""
        store = self.station.store
        stored = store.load("boot_reason")
        if isinstance(stored, str):
            return stored
        if store.load("pending_reset") is not None:
            return SCHEDULED_RESET
        return POWER_UP

    def boot_request(self, reason: str) -> Any:
        station = self.station
        m = station.m
        info = station.info
        if station.version == "1.6":
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

    def powered_up(self, reason: str, now: float) -> None:
        """The boot reason is used: the store forgets it; the security events of a boot."""
        store = self.station.store
        store.save("boot_reason", None)
        store.save("pending_reset", None)
        security = self.station.security
        security.raise_event("StartupOfTheDevice", now)
        if reason in (REMOTE_RESET, SCHEDULED_RESET):
            security.raise_event("ResetOrReboot", now)

    def end_cut_short(self, now: float) -> None:
        """2.x: transactions a power loss cut short end after the boot, with the next seqNo
        (E04.FR.04) and stoppedReason PowerLoss; they go once the station is accepted."""
        station = self.station
        running = station.store.load("transactions") or []
        station.store.save("transactions", None)
        if station.version == "1.6":
            return
        m = station.m
        for record in running:
            request = build(
                m.TransactionEventRequest,
                event_type="Ended",
                timestamp=station.clock(now),
                trigger_reason="AbnormalCondition",
                seq_no=int(record["next_seq_no"]),
                transaction_info=build(
                    m.Transaction,
                    transaction_id=record["transaction_id"],
                    stopped_reason="PowerLoss",
                ),
                evse=build(m.EVSE, id=int(record["evse"])),
            )
            station.core.send_request(request, now)

    # --- resets

    def reset_accepted(self, event: ResetAccepted, now: float) -> None:
        station = self.station
        if event.status == "Scheduled" and event.evse_id is None:
            self._scheduled_reset = True
            station.store.save("pending_reset", {"kind": event.kind})
        for evse in station.evses.values():
            tx = evse.transaction
            if tx is None:
                continue
            key = activity_key(tx)
            if key in event.stop:
                station.sessions.end(
                    evse,
                    now,
                    trigger=event.trigger_reason or "ResetCommand",
                    reason=event.stop_reason or "Other",
                )
            elif key in event.after_reboot and tx.transaction_id is not None:
                # 1.6 Hard: the StopTransaction goes out after the reboot, once accepted.
                reading = station.metering.reading(evse, now)
                self.stop_after_reboot.append(
                    build(
                        station.m.StopTransactionRequest,
                        transaction_id=tx.transaction_id,
                        meter_stop=round(reading.get("Energy.Active.Import.Register", 0.0)),
                        timestamp=station.clock(now),
                        reason=event.stop_reason,
                    )
                )

    def reset_due(self, event: ResetDue, now: float) -> None:
        self.station.application.reset(event.evse_id, now)
        if event.evse_id is None:
            self.reboot(SCHEDULED_RESET if self._scheduled_reset else REMOTE_RESET, now)

    # --- the reboot

    def reboot(self, reason: str, now: float) -> None:
        """Reboot once our answers are on the wire and the transaction messages before it
        are delivered (or after a grace period): ``RebootRequested`` for the IO layer,
        which powers up a new ``ChargingStation`` on the same store."""
        if self.reason is not None:
            return
        self.reason = reason
        self._ready = False
        self._deadline = now + REBOOT_GRACE_SECONDS
        store = self.station.store
        store.save("boot_reason", reason)
        store.save("pending_reset", None)
        self.save_all()
        self.station.schedule(0.0, now, "reboot", self._try)

    def frames_collected(self) -> None:
        """The adapter took our frames: a reboot waiting for its answer may go (a Reset's
        answer is on the wire before the reboot, B11/B12)."""
        if self.reason is not None and not self._ready:
            self._ready = True

    def _try(self, now: float) -> None:
        assert self.reason is not None and self._deadline is not None
        station = self.station
        busy = (
            not self._ready
            or station.core.held_requests
            or station.outbox.waiting
            or station.firmware.outbox.waiting
        )
        if busy and now < self._deadline:
            station.schedule(0.1, now, "reboot", self._try)
            return
        self.save_all()
        station.router.emit(RebootRequested(reason=self.reason))

    # --- the store

    def save_all(self) -> None:
        """Everything that survives a reboot, as it is now."""
        station = self.station
        store = station.store
        store.save("availability", availability_to_json(station.availability.snapshot()))
        store.save("firmware", firmware_to_json(station.firmware.snapshot()))
        station.status.save_reservations()
        self.save_transactions()
        station.sessions.save_plugged()
        station.security.save()
        station.maintenance.save_upload()
        station.auth_cache.save()

    def save_transactions(self) -> None:
        """2.x: the running transactions and their next seqNo (record ``transactions``)."""
        station = self.station
        running = []
        for evse in station.evses.values():
            tx = evse.transaction
            if tx is None or station.version == "1.6":
                continue
            running.append(
                {
                    "evse": evse.id,
                    "transaction_id": tx.transaction_id,
                    "next_seq_no": tx.next_seq_no,
                }
            )
        station.store.save("transactions", running or None)
