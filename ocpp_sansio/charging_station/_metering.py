"""Meter values (J01, J02; E11, E12): readings from the application, periodic and
clock-aligned samples that go with their transaction (held while offline), and triggered
MeterValues / TransactionEvent."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import RegistrationStatus
from ocpp_sansio.flows import MeterSampleDue
from ocpp_sansio.flows._base import build

from ._evse import Evse

if TYPE_CHECKING:
    from ._facade import ChargingStation

ENERGY = "Energy.Active.Import.Register"
UNITS = {
    ENERGY: "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
    "SoC": "Percent",
}


class Metering:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        self.v16 = station.version == "1.6"

    def measurands(self, kind: str) -> tuple[str, ...]:
        """The measurands of ``kind`` samples: periodic, or triggered (F06.FR.06)."""
        names = {
            ("1.6", "periodic"): "MeterValuesSampledData",
            ("1.6", "triggered"): "MeterValuesSampledData",
            ("2.x", "periodic"): "SampledDataCtrlr.TxUpdatedMeasurands",
            ("2.x", "triggered"): "AlignedDataCtrlr.Measurands",
        }
        return tuple(self.station.setting.members(names["1.6" if self.v16 else "2.x", kind]))

    def reading(self, evse: Evse, now: float) -> dict[str, float]:
        fresh = self.station.application.read_meter(evse.id, now)
        if fresh is not None:
            evse.readings.update(fresh)
        return evse.readings

    def energy_wh(self, evse: Evse, now: float) -> int:
        """The energy register in whole Wh (1.6 meterStart / meterStop)."""
        return round(self.reading(evse, now).get(ENERGY, 0.0))

    def register_value(self, evse: Evse, context: str, now: float) -> Any:
        """A MeterValue of the energy register (Transaction.Begin / Transaction.End)."""
        return self.meter_value(evse, (ENERGY,), context, now)

    def sample(self, event: MeterSampleDue, now: float) -> None:
        """Periodic samples go with their transaction, online or not: held while offline
        and delivered later, 2.x marked offline (E11, E12)."""
        station = self.station
        if event.transaction is not None:
            evse = station.evses.get(event.connector_id or 0)
            if evse is None or evse.transaction is not event.transaction:
                return
            mv = self.meter_value(evse, event.measurands, event.context, now)
            self._with_transaction(evse, mv, event.trigger_reason or "MeterValuePeriodic", now)
            return
        core = station.core
        online = core.connected and core.registration is RegistrationStatus.ACCEPTED
        for evse in station.evses.values():
            if evse.transaction is not None:
                # Clock-aligned values of a running transaction go with it (J01.FR.19;
                # 1.6: MeterValues with its transactionId), held while offline.
                mv = self.meter_value(evse, event.measurands, event.context, now)
                self._with_transaction(evse, mv, event.trigger_reason or "MeterValueClock", now)
            elif online:
                self.send(evse, event.measurands, event.context, now)

    def _with_transaction(self, evse: Evse, mv: Any, trigger_reason: str, now: float) -> None:
        """A sample of the running transaction: 1.6 MeterValues with its transactionId,
        2.x TransactionEvent Updated; held while offline like every transaction message."""
        transactions = self.station.transactions
        if self.v16:
            transactions.meter_values(evse.transaction, [mv], now)
        else:
            transactions.update(
                evse.transaction, trigger_reason=trigger_reason, now=now, meter_value=[mv]
            )

    def send(self, evse: Evse, measurands: tuple[str, ...], context: str, now: float) -> None:
        """MeterValues now (1.6 with the transaction's id when one runs)."""
        station = self.station
        mv = self.meter_value(evse, measurands, context, now)
        if self.v16 and evse.transaction is not None:
            station.transactions.meter_values(evse.transaction, [mv], now)
            return
        if self.v16:
            request = station.m.MeterValuesRequest(connector_id=evse.id, meter_value=[mv])
        else:
            request = station.m.MeterValuesRequest(evse_id=evse.id, meter_value=[mv])
        with contextlib.suppress(LocalProtocolError):
            station.core.send_request(request, now)

    def triggered_transaction_event(self, evse: Evse, now: float) -> None:
        """F06.FR.07: TransactionEvent Updated with triggerReason Trigger."""
        self.station.transactions.update(
            evse.transaction,
            trigger_reason="Trigger",
            now=now,
            charging_state="Charging" if evse.energy else "EVConnected",
            meter_value=[self.meter_value(evse, self.measurands("periodic"), "Trigger", now)],
        )

    def meter_value(self, evse: Evse, measurands: tuple[str, ...], context: str, now: float) -> Any:
        readings = self.reading(evse, now)
        chosen = [m for m in measurands if m in readings] or [ENERGY]
        m = self.station.m
        values = []
        for measurand in chosen:
            value = readings.get(measurand, 0.0)
            unit = UNITS.get(measurand)
            if self.v16:
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
        return m.MeterValue(timestamp=self.station.clock(now), sampled_value=values)
