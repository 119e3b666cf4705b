"""What the hardware reports: libocpp's ``on_*`` handlers, each handed to the part of
the station it concerns, then settled (the events it caused run through the flows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows._base import Outbox, WallClock, build
from ocpp_sansio.smart_charging import ChargingSchedule, RateUnit

if TYPE_CHECKING:
    from ocpp_sansio.flows.availability import Availability

    from ._dispatch import Router
    from ._evse import Sessions
    from ._maintenance import Maintenance
    from ._runtime import FacadeCore
    from ._security import SecurityEvents
    from ._smart import SmartChargingHost
    from ._status import StatusReporter


class HardwareReports:
    """The ``on_*`` members of ``ChargingStation`` (a part of its class)."""

    version: str
    m: Any
    clock: WallClock
    core: FacadeCore
    availability: Availability
    outbox: Outbox
    router: Router
    sessions: Sessions
    status: StatusReporter
    security: SecurityEvents
    maintenance: Maintenance
    smart: SmartChargingHost
    _event_seq: int

    def set_variables(
        self, items: Sequence[tuple[str, str, str]], now: float, *, source: str = "Local"
    ) -> list[str]:
        raise NotImplementedError

    def on_session_started(self, evse_id: int, connector_id: int, now: float) -> None:
        """A cable was plugged in (E02): occupied, and a transaction may start
        (TxStartPoint EVConnected, PowerPathClosed)."""
        self.sessions.plugged(evse_id, connector_id, now)
        self.router.settle(now)

    def on_session_finished(self, evse_id: int, connector_id: int, now: float) -> None:
        """The cable was unplugged: StopTxOnEVSideDisconnect ends the transaction (E09,
        E10), else it is suspended."""
        self.sessions.unplugged(evse_id, connector_id, now)
        self.router.settle(now)

    def on_authorized(
        self, evse_id: int, connector_id: int | None, id_token: Any, now: float
    ) -> None:
        """``id_token`` was accepted for ``evse_id`` (after ``validate_token``): a
        transaction may start (TxStartPoint Authorized, PowerPathClosed); the same token
        on a running transaction ends it (StopAuthorized, E06)."""
        self.sessions.authorized(evse_id, id_token, now)
        self.router.settle(now)

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
        transaction = self.sessions.started_by_application(
            evse_id,
            connector_id,
            now,
            trigger_reason=trigger_reason,
            id_token=id_token,
            reservation_id=reservation_id,
        )
        self.router.settle(now)
        return transaction

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
        self.sessions.finished_by_application(
            evse_id, now, reason=reason, trigger_reason=trigger_reason
        )
        self.router.settle(now)

    def on_meter_value(self, evse_id: int, readings: Mapping[str, float], now: float) -> None:
        """The latest meter reading of EVSE ``evse_id`` (0: the station), measurand ->
        value; samples use it when ``read_meter`` has nothing fresher."""
        if evse_id != 0:
            self.sessions.evse(evse_id).readings.update(readings)

    def on_unavailable(self, evse_id: int, connector_id: int | None, now: float) -> None:
        """The hardware made a connector (or the EVSE) unusable for now."""
        self.sessions.evse(evse_id)  # an unknown EVSE is LocalProtocolError
        self.availability.hold(
            f"hardware:{evse_id}:{connector_id}",
            (evse_id, connector_id) if self.version != "1.6" else (evse_id, None),
        )
        self.router.settle(now)

    def on_enabled(self, evse_id: int, connector_id: int | None, now: float) -> None:
        self.sessions.evse(evse_id)
        self.availability.release(f"hardware:{evse_id}:{connector_id}")
        self.router.settle(now)

    def on_faulted(self, evse_id: int, connector_id: int, now: float) -> None:
        self.sessions.set_faulted(evse_id, connector_id, True, now)
        self.router.settle(now)

    def on_fault_cleared(self, evse_id: int, connector_id: int, now: float) -> None:
        self.sessions.set_faulted(evse_id, connector_id, False, now)
        self.router.settle(now)

    def on_reserved(self, evse_id: int, now: float) -> None:
        """The application reserved the EVSE itself (not through ReserveNow)."""
        self.status.app_reserved(self.sessions.evse(evse_id).id, True, now)
        self.router.settle(now)

    def on_reservation_cleared(self, evse_id: int, now: float) -> None:
        self.status.app_reserved(self.sessions.evse(evse_id).id, False, now)
        self.router.settle(now)

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
        self.router.settle(now)

    def on_charging_state_changed(
        self,
        evse_id: int,
        charging_state: str,
        now: float,
        *,
        trigger_reason: str = "ChargingStateChanged",
    ) -> None:
        """2.x: the EV started or stopped drawing energy (Charging, SuspendedEV, …)."""
        self.sessions.charging_state_changed(evse_id, charging_state, now, trigger_reason)
        self.router.settle(now)

    def on_event(self, event_data: Sequence[Any], now: float) -> None:
        """2.x NotifyEvent with ``event_data`` (EventData objects)."""
        if self.version == "1.6":
            raise LocalProtocolError("1.6 has no NotifyEvent")
        request = self.m.NotifyEventRequest(
            generated_at=self.clock(now), seq_no=self._event_seq, event_data=list(event_data)
        )
        self._event_seq += 1
        self.outbox.submit(request, now)
        self.router.settle(now)

    def on_log_status_notification(self, status: str, request_id: int | None, now: float) -> None:
        """The upload's progress: Uploading, Uploaded, or a failure (UploadFailure,
        BadMessage, PermissionDenied, NotSupportedOperation; 1.6 diagnostics UploadFailed);
        a failure before the last attempt waits for the retry (N01.FR.10)."""
        self.maintenance.upload_status(status, now)
        self.router.settle(now)

    def on_firmware_update_status_notification(
        self, request_id: int | None, status: str, now: float, *, reboot: bool = False
    ) -> None:
        """The firmware's progress, in the 2.x status names (L01): Downloading,
        DownloadPaused, Downloaded, DownloadFailed (one attempt; retries follow),
        SignatureVerified, InvalidSignature, InstallScheduled, Installing,
        InstallRebooting, Installed, InstallationFailed, InstallVerificationFailed."""
        self.maintenance.firmware_status(request_id, status, now, reboot=reboot)
        self.router.settle(now)

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
        self.security.send(
            event_type, now, tech_info=tech_info, critical=critical, timestamp=timestamp
        )
        self.router.settle(now)

    def on_external_limits_changed(
        self,
        limit: float | ChargingSchedule,
        now: float,
        *,
        source: str,
        evse_id: int = 0,
        unit: RateUnit | str | None = None,
        grid_critical: bool | None = None,
    ) -> None:
        """An external system (``source``: EMS, SO, Other; never CSO) limits ``evse_id``
        (0: the grid connection) to ``limit`` (in ``unit``, default the configured unit)
        from now on, or by a ``ChargingSchedule``. It counts as a
        ChargingStationExternalConstraints profile (K11.FR.01, K12.FR.01) and, in 2.x, is
        reported with NotifyChargingLimit when it moved by more than
        LimitChangeSignificance (K11.FR.02, K12.FR.02)."""
        self.smart.external_limit(
            limit, now, source=source, evse_id=evse_id, unit=unit, grid_critical=grid_critical
        )
        self.router.settle(now)

    def on_external_limits_cleared(self, now: float, *, source: str, evse_id: int = 0) -> bool:
        """The external system released its limit on ``evse_id``: it stops counting
        (K13.FR.01) and, in 2.x, ClearedChargingLimit goes out (K13.FR.02). False when
        there was none."""
        cleared = self.smart.external_limit_cleared(now, source=source, evse_id=evse_id)
        self.router.settle(now)
        return cleared

    def on_variable_changed(self, component: str, variable: str, value: str, now: float) -> None:
        """The station changed a setting itself (a local menu): keep it and act on it."""
        self.set_variables([(component, variable, value)], now, source="Internal")

    def on_get_15118_ev_certificate_request(self, request: Any, now: float) -> str:
        """Forward an EV's ISO 15118 certificate request to the CSMS; the answer comes as
        the core's ResponseReceived for the returned message id."""
        return self.core.send_request(request, now)

    # === reading the station
