"""Boots and reboots (B01, B11, B12, E04): the BootNotification and its reason, resets,
the reboot once the answers and transaction messages before it are out, and what the
store keeps for the next power-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ocpp_sansio.flows._base import build
from ocpp_sansio.flows.availability import ResetAccepted, ResetDue, ResetSnapshot

from ._events import RebootRequested
from ._persist import activity_key

if TYPE_CHECKING:
    from ._facade import ChargingStation

#: Boot reasons (2.x BootReasonEnumType) the facade gives by itself.
POWER_UP = "PowerUp"
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
        #: The reset the previous power-up was carrying out or had scheduled (the keeper's).
        self.previous_reset: ResetSnapshot | None = None

    @property
    def rebooting(self) -> bool:
        """A reboot is on its way and our last frames are out."""
        return self.reason is not None and self._ready

    # --- boot

    def stored_boot_reason(self) -> str:
        """What the previous life left: its reboot's reason, ScheduledReset when it died
        with a station OnIdle reset pending (the reboot did what the reset waited for),
        else PowerUp."""
        stored = self.station.store.load("boot_reason")
        if isinstance(stored, str):
            return stored
        previous = self.previous_reset
        if previous is not None and previous.pending is not None and previous.pending[1] is None:
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
        self.station.store.save("boot_reason", None)
        security = self.station.security
        security.send("StartupOfTheDevice", now)
        if reason in (REMOTE_RESET, SCHEDULED_RESET):
            security.send("ResetOrReboot", now)

    def end_interrupted(self, interrupted: list[Any], now: float) -> None:
        """The transactions the previous power-up left running were interrupted: they end
        now, after the messages it held, seqNo continuing. 2.x: triggerReason
        AbnormalCondition, stoppedReason PowerLoss (E17.FR.20/21; 2.0.1 has no
        resumption); 1.6: reason PowerLoss, or HardReset after a Hard reset (1.6 §5.14:
        its StopTransaction goes after the reboot). They go once the station is accepted."""
        station = self.station
        v16 = station.version == "1.6"
        previous = self.previous_reset
        hard = v16 and previous is not None and previous.rebooting == "Hard"
        reason = "HardReset" if hard else "PowerLoss"
        for tx in interrupted:
            evse = station.evses.get(tx.connector_id if v16 else tx.evse_id)
            if evse is not None and evse.transaction is None:
                evse.transaction = tx
                station.sessions.end(evse, now, trigger="AbnormalCondition", reason=reason)
            elif v16:  # (an EVSE the station no longer has: its meter is gone with it)
                station.transactions.stop(tx, 0, now, reason=reason)
            else:
                station.transactions.end(
                    tx, trigger_reason="AbnormalCondition", stopped_reason=reason, now=now
                )

    # --- resets

    def reset_accepted(self, event: ResetAccepted, now: float) -> None:
        """Transactions the reset stops end now; those of a 1.6 Hard reset run on until
        the reboot, and the next power-up stops them (``end_interrupted``)."""
        station = self.station
        if event.status == "Scheduled" and event.evse_id is None:
            self._scheduled_reset = True
        for evse in station.evses.values():
            tx = evse.transaction
            if tx is not None and activity_key(tx) in event.stop:
                station.sessions.end(
                    evse,
                    now,
                    trigger=event.trigger_reason or "ResetCommand",
                    reason=event.stop_reason or "Other",
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
        self.station.store.save("boot_reason", reason)
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
        station.router.emit(RebootRequested(reason=self.reason))
