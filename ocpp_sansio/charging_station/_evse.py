"""The EVSE/connector state machine: cable, authorization, the transaction and the power
path of each EVSE, and when transactions start and end (TxStartPoint / TxStopPoint, E01,
E03, E05, E06, E09, E10)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows.remote import RemoteStopAccepted, UnlockRequested
from ocpp_sansio.flows.transactions import TransactionDeauthorized

from ._persist import activity_key

if TYPE_CHECKING:
    from ._facade import ChargingStation

#: How often the energy a deauthorized transaction draws is read (s; E05.FR.03).
ENERGY_CHECK_SECONDS = 1.0


@attrs.define(eq=False)
class Connector:
    id: int
    plugged: bool = False
    faulted: bool = False


@attrs.define(eq=False)
class Evse:
    """One EVSE (1.6: one connector) and what runs on it."""

    id: int
    connectors: dict[int, Connector]
    transaction: Any = None
    #: The token authorized here (no transaction yet, or the transaction's).
    token: Any = None
    energy: bool = False
    #: 2.x: the idToken went out in a TransactionEvent of the running transaction.
    token_sent: bool = False
    readings: dict[str, float] = attrs.field(factory=dict)
    #: Samples the running transaction's end will carry (E06.FR.11).
    ended_values: list[Any] = attrs.field(factory=list)
    #: The energy register when the transaction started (Wh).
    register_at_start: int = 0
    #: Deauthorized, the energy it may still draw (MaxEnergyOnInvalidId, E05.FR.03).
    energy_budget_wh: float | None = None

    @property
    def plugged(self) -> bool:
        return any(c.plugged for c in self.connectors.values())

    def plugged_connector(self) -> int:
        return next((c.id for c in self.connectors.values() if c.plugged), 1)

    @property
    def faulted(self) -> bool:
        return any(c.faulted for c in self.connectors.values())


class Sessions:
    """Decides, per EVSE, when a transaction starts and ends and when the power flows."""

    def __init__(self, station: ChargingStation, evses: int, connectors_per_evse: int) -> None:
        self.station = station
        self.v16 = station.version == "1.6"
        self.evses = {
            n: Evse(n, {c: Connector(c) for c in range(1, connectors_per_evse + 1)})
            for n in range(1, evses + 1)
        }

    # --- lookups

    def evse(self, evse_id: int) -> Evse:
        evse = self.evses.get(evse_id)
        if evse is None:
            raise LocalProtocolError(f"no EVSE {evse_id}")
        return evse

    def connector(self, evse: Evse, connector_id: int) -> Connector:
        if connector_id not in evse.connectors:
            raise LocalProtocolError(f"EVSE {evse.id} has no connector {connector_id}")
        return evse.connectors[connector_id]

    def evse_with(self, transaction: Any) -> Evse | None:
        return next((e for e in self.evses.values() if e.transaction is transaction), None)

    def evse_with_id(self, transaction_id: Any) -> Evse | None:
        for evse in self.evses.values():
            tx = evse.transaction
            if tx is not None and transaction_id in (tx.transaction_id, activity_key(tx)):
                return evse
        return None

    # --- what the hardware reports

    def plugged(self, evse_id: int, connector_id: int, now: float) -> None:
        evse = self.evse(evse_id)
        self.connector(evse, connector_id).plugged = True
        self.save_plugged()
        self.advance(evse, now, "CablePluggedIn")
        self.station.status.refresh(evse, now)

    def unplugged(self, evse_id: int, connector_id: int, now: float) -> None:
        """StopTxOnEVSideDisconnect ends the transaction (E10), else it is suspended (E09)."""
        station = self.station
        read = station.setting
        evse = self.evse(evse_id)
        self.connector(evse, connector_id).plugged = False
        self.save_plugged()
        tx = evse.transaction
        if tx is not None:
            stop = read.flag(
                "StopTransactionOnEVSideDisconnect"
                if self.v16
                else "TxCtrlr.StopTxOnEVSideDisconnect",
                True,
            )
            if not self.v16 and read.flag("OCPPCommCtrlr.UnlockOnEVSideDisconnect", True):
                # The cable unlocks when the EV side lets go (UnlockOnEVSideDisconnect).
                station.application.unlock(evse_id, connector_id, now)
            if stop or "EVConnected" in read.tx_points("TxStopPoint"):
                self.end(evse, now, trigger="EVCommunicationLost", reason="EVDisconnected")
            else:
                self.energy(evse, False, now)
                if not self.v16:
                    station.transactions.update(
                        tx, trigger_reason="EVCommunicationLost", now=now, charging_state="Idle"
                    )
        station.status.refresh(evse, now)

    def authorized(self, evse_id: int, id_token: Any, now: float) -> None:
        """The same token on a running transaction ends it (StopAuthorized, E06)."""
        evse = self.evse(evse_id)
        held = evse.token
        if (
            evse.transaction is not None
            and held is not None
            and self.station.tokens.same(held, id_token)
        ):
            self.end(evse, now, trigger="StopAuthorized", reason="Local")
            evse.token = None
            self.station.status.refresh(evse, now)
            return
        self.authorize(evse, id_token, now, cause="Authorized")

    def started_by_application(
        self,
        evse_id: int,
        connector_id: int,
        now: float,
        *,
        trigger_reason: str,
        id_token: Any,
        reservation_id: int | None,
    ) -> Any:
        evse = self.evse(evse_id)
        if evse.transaction is not None:
            raise LocalProtocolError(f"EVSE {evse_id} already has a transaction")
        if id_token is not None:
            evse.token = id_token
        self.start(
            evse,
            now,
            trigger_reason,
            connector_id=connector_id,
            reservation_id=reservation_id,
        )
        return evse.transaction

    def finished_by_application(
        self, evse_id: int, now: float, *, reason: str, trigger_reason: str
    ) -> None:
        evse = self.evse(evse_id)
        if evse.transaction is None:
            raise LocalProtocolError(f"EVSE {evse_id} has no transaction")
        self.end(evse, now, trigger=trigger_reason, reason=reason)
        self.station.status.refresh(evse, now)

    def charging_state_changed(
        self, evse_id: int, charging_state: str, now: float, trigger_reason: str
    ) -> None:
        evse = self.evse(evse_id)
        if evse.transaction is not None and not self.v16:
            self.station.transactions.update(
                evse.transaction,
                trigger_reason=trigger_reason,
                now=now,
                charging_state=charging_state,
            )

    def set_faulted(self, evse_id: int, connector_id: int, faulted: bool, now: float) -> None:
        evse = self.evse(evse_id)
        self.connector(evse, connector_id).faulted = faulted
        self.station.status.refresh(evse, now)

    # --- authorization and the start point

    def authorize(self, evse: Evse, token: Any, now: float, *, cause: str) -> None:
        station = self.station
        evse.token = token
        timeout = station.setting.number(
            "ConnectionTimeOut" if self.v16 else "TxCtrlr.EVConnectionTimeOut", 0.0
        )
        station.cancel(f"ev-connection-timeout:{evse.id}")
        if timeout > 0 and not evse.plugged:
            station.schedule(
                timeout,
                now,
                f"ev-connection-timeout:{evse.id}",
                lambda when: self._connection_timeout(evse, when),
            )
        self.advance(evse, now, cause)
        station.status.refresh(evse, now)

    def _connection_timeout(self, evse: Evse, now: float) -> None:
        """E03: no cable within EVConnectionTimeOut of the authorization."""
        if evse.plugged:
            return
        if evse.transaction is not None and not self.v16:
            self.end(evse, now, trigger="EVConnectTimeout", reason="Timeout")
        evse.token = None
        self.station.status.refresh(evse, now)
        self.station.router.settle(now)

    def _start_point_reached(self, evse: Evse) -> bool:
        points = self.station.setting.tx_points("TxStartPoint")
        authorized = evse.token is not None
        plugged = evse.plugged
        return (
            (plugged and bool(points & {"EVConnected", "ParkingBayOccupancy"}))
            or (authorized and bool(points & {"Authorized", "DataSigned"}))
            or (plugged and authorized)
        )

    def advance(self, evse: Evse, now: float, cause: str) -> None:
        """Start the transaction when a start point is reached; close the power path once
        the cable is in and the driver authorized."""
        if not self.station.status.operative(evse, None) or evse.faulted:
            return
        if evse.transaction is None:
            if self._start_point_reached(evse):
                self.start(evse, now, cause)
            return
        if self.v16:
            return
        fields: dict[str, Any] = {}
        if evse.token is not None and not evse.token_sent:
            fields["id_token"] = evse.token
            evse.token_sent = True
        power = evse.plugged and evse.token is not None
        if power and not evse.energy:
            self.energy(evse, True, now)
            fields["charging_state"] = "Charging"
        elif evse.plugged and not power:
            fields.setdefault("charging_state", "EVConnected")
        if fields:
            trigger = (
                cause
                if "id_token" in fields or cause == "CablePluggedIn"
                else "ChargingStateChanged"
            )
            self.station.transactions.update(
                evse.transaction,
                trigger_reason=trigger,
                now=now,
                evse_id=evse.id,
                connector_id=evse.plugged_connector(),
                **fields,
            )

    # --- the transaction

    def start(
        self,
        evse: Evse,
        now: float,
        cause: str,
        *,
        connector_id: int | None = None,
        reservation_id: int | None = None,
    ) -> None:
        station = self.station
        token = evse.token
        if reservation_id is None and token is not None:
            group = station.tokens.group_of(token)
            reservation = station.reservations.use(evse.id, token, now, group)
            reservation_id = reservation.reservation_id if reservation is not None else None
        connector = connector_id or evse.plugged_connector()
        power = evse.plugged and token is not None
        metering = station.metering
        if self.v16:
            if token is None:
                return  # 1.6 transactions start with an idTag
            station.remote.claim_start(evse.id, now)
            tx = station.transactions.start(
                evse.id,
                str(token),
                metering.energy_wh(evse, now),
                now,
                reservation_id=reservation_id,
            )
        else:
            fields: dict[str, Any] = {"trigger_reason": cause}
            fields.update(station.remote.transaction_fields(evse.id, now))
            charging = "Charging" if power else ("EVConnected" if evse.plugged else None)
            tx = station.transactions.start(
                now=now,
                evse_id=evse.id,
                connector_id=connector,
                id_token=token,
                charging_state=charging,
                reservation_id=reservation_id,
                meter_value=[metering.register_value(evse, "Transaction.Begin", now)],
                **fields,
            )
            evse.token_sent = token is not None
        evse.transaction = tx
        evse.register_at_start = metering.energy_wh(evse, now)
        metering.transaction_started(evse, now)
        if power:
            self.energy(evse, True, now)
        station.status.refresh(evse, now)

    def energy(self, evse: Evse, on: bool, now: float) -> None:
        if evse.energy == on:
            return
        evse.energy = on
        connector = evse.plugged_connector()
        if on:
            self.station.application.start_energy(evse.id, connector, now)
            self.station.smart.power_path_closed(evse.id, now)
        else:
            self.station.application.stop_energy(evse.id, connector, now)

    def end(self, evse: Evse, now: float, *, trigger: str, reason: str | None) -> None:
        station = self.station
        tx = evse.transaction
        if tx is None:
            return
        metering = station.metering
        station.cancel(f"energy-budget:{evse.id}")
        evse.energy_budget_wh = None
        evse.transaction = None
        evse.token = None
        evse.token_sent = False
        ended = metering.transaction_ending(evse, now) or None
        if self.v16:
            station.transactions.stop(
                tx, metering.energy_wh(evse, now), now, reason=reason, transaction_data=ended
            )
        else:
            station.transactions.end(
                tx,
                trigger_reason=trigger,
                now=now,
                stopped_reason=reason,
                charging_state="EVConnected" if evse.plugged else "Idle",
                meter_value=ended,
            )
        # Energy off last: the hardware may report the cable leaving from stop_energy.
        self.energy(evse, False, now)
        station.status.refresh(evse, now)

    def deauthorized(self, event: TransactionDeauthorized, now: float) -> None:
        """The CSMS did not accept the transaction's token (E05, C15; 1.6 §3.5.4)."""
        evse = self.evse_with(event.transaction)
        if evse is None:
            return
        if event.stop_transaction:
            points = self.station.setting.tx_points("TxStopPoint")
            if self.v16 or points & {"Authorized", "PowerPathClosed", "EnergyTransfer"}:
                self.end(evse, now, trigger="Deauthorized", reason="DeAuthorized")  # E05.FR.10
            else:  # E05.FR.09: the transaction goes on without energy
                self._suspend(evse, now, trigger="Deauthorized", state="EVConnected")
        else:
            budget = (
                0.0
                if self.v16
                else self.station.setting.number("TxCtrlr.MaxEnergyOnInvalidId", 0.0)
            )
            evse.energy_budget_wh = budget if budget > 0 else None
            self._check_energy_budget(evse, now)
        self.station.status.refresh(evse, now)

    def _check_energy_budget(self, evse: Evse, now: float) -> None:
        """E05.FR.03: energy flows until MaxEnergyOnInvalidId is delivered (read every
        ENERGY_CHECK_SECONDS); then, or at once without it, E05.FR.02."""
        budget = evse.energy_budget_wh
        if evse.transaction is None:
            return
        delivered = self.station.metering.energy_wh(evse, now) - evse.register_at_start
        if budget is not None and delivered < budget:
            self.station.schedule(
                ENERGY_CHECK_SECONDS,
                now,
                f"energy-budget:{evse.id}",
                lambda when: self._check_energy_budget(evse, when),
            )
            return
        evse.energy_budget_wh = None
        self._suspend(evse, now, trigger="ChargingStateChanged", state="SuspendedEVSE")
        self.station.status.refresh(evse, now)

    def _suspend(self, evse: Evse, now: float, *, trigger: str, state: str) -> None:
        """The energy stops, the transaction goes on (2.x: reported with ``state``)."""
        self.energy(evse, False, now)
        if not self.v16 and evse.transaction is not None:
            self.station.transactions.update(
                evse.transaction, trigger_reason=trigger, now=now, charging_state=state
            )

    def remote_stop(self, event: RemoteStopAccepted, now: float) -> None:
        evse = self.evse_with_id(event.transaction_id)
        if evse is not None:
            trigger = event.trigger_reason or "RemoteStop"
            self.end(evse, now, trigger=trigger, reason=event.stopped_reason)

    def unlock(self, event: UnlockRequested, now: float) -> None:
        station = self.station
        evse = self.evses.get(event.evse_id)
        if evse is not None and event.stop_first is not None:
            # 1.6 §5.18: the transaction on the connector stops before it unlocks.
            self.end(evse, now, trigger="UnlockCommand", reason="UnlockCommand")
        unlocked = station.application.unlock(event.evse_id, event.connector_id or 1, now)
        station.remote.unlock_result(event.message_id, unlocked, now)

    def end_all(self, now: float, *, trigger: str, reason: str) -> None:
        for evse in self.evses.values():
            if evse.transaction is not None:
                self.end(evse, now, trigger=trigger, reason=reason)

    # --- the store

    def save_plugged(self) -> None:
        plugged = [
            [e.id, c.id] for e in self.evses.values() for c in e.connectors.values() if c.plugged
        ]
        self.station.store.save("plugged", plugged or None)

    def restore_plugged(self) -> None:
        for evse_id, connector_id in self.station.store.load("plugged") or []:
            evse = self.evses.get(evse_id)
            if evse is not None and connector_id in evse.connectors:
                evse.connectors[connector_id].plugged = True
