"""Meter values (J01, J02; E06, E11, E12): readings from the application, periodic and
clock-aligned samples that go with their transaction (held while offline), the samples a
transaction's end carries (TxEndedMeasurands), and triggered MeterValues /
TransactionEvent."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import RegistrationStatus
from ocpp_sansio.flows import MeterSampleDue
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows.metering import next_clock_boundary
from ocpp_sansio.messages._codec import structure_fn, unstructure

from ._evse import Evse

if TYPE_CHECKING:
    from ._facade import ChargingStation

ENERGY = "Energy.Active.Import.Register"
#: What the end of a transaction carries (E06.FR.11; 1.6 StopTransaction transactionData):
#: version -> (sampled measurands, their interval, aligned measurands, their interval).
_ENDED = {
    "1.6": (
        "StopTxnSampledData",
        "MeterValueSampleInterval",
        "StopTxnAlignedData",
        "ClockAlignedDataInterval",
    ),
    "2.x": (
        "SampledDataCtrlr.TxEndedMeasurands",
        "SampledDataCtrlr.TxEndedInterval",
        "AlignedDataCtrlr.TxEndedMeasurands",
        "AlignedDataCtrlr.TxEndedInterval",
    ),
}
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

    # --- what the end of a transaction carries

    def _ended_settings(self) -> tuple[tuple[str, ...], float, tuple[str, ...], float]:
        sampled, sampled_every, aligned, aligned_every = _ENDED["1.6" if self.v16 else "2.x"]
        read = self.station.setting
        return (
            tuple(read.members(sampled)),
            max(0.0, read.number(sampled_every, 0.0)),
            tuple(read.members(aligned)),
            max(0.0, read.number(aligned_every, 0.0)),
        )

    def transaction_started(self, evse: Evse, now: float) -> None:
        """Begin the samples its end will carry: the sampled measurands now and every
        interval from the start, the aligned ones at every clock-aligned boundary (E06.FR.11;
        1.6 StopTxnSampledData, StopTxnAlignedData)."""
        sampled, sampled_every, aligned, aligned_every = self._ended_settings()
        evse.ended_values = []
        if sampled:
            evse.ended_values.append(self.meter_value(evse, sampled, "Transaction.Begin", now))
            if sampled_every > 0:
                self._sample_every(evse, sampled, sampled_every, now, now + sampled_every)
        if aligned and aligned_every > 0:
            at = next_clock_boundary(now, aligned_every, self.station.clock)
            self._sample_aligned(evse, aligned, aligned_every, now, at)

    def _sample_every(
        self, evse: Evse, measurands: tuple[str, ...], every: float, now: float, at: float
    ) -> None:
        def sample(when: float) -> None:
            evse.ended_values.append(self.meter_value(evse, measurands, "Sample.Periodic", when))
            self._sample_every(evse, measurands, every, when, when + every)

        self.station.schedule(at - now, now, _tag(evse, "sampled"), sample)

    def _sample_aligned(
        self, evse: Evse, measurands: tuple[str, ...], every: float, now: float, at: float
    ) -> None:
        def sample(when: float) -> None:
            evse.ended_values.append(self.meter_value(evse, measurands, "Sample.Clock", when))
            after = next_clock_boundary(when, every, self.station.clock)
            self._sample_aligned(evse, measurands, every, when, after)

        self.station.schedule(at - now, now, _tag(evse, "aligned"), sample)

    def transaction_ending(self, evse: Evse, now: float) -> list[Any]:
        """What the end of the EVSE's transaction carries, the sampled measurands taken
        now included (context Transaction.End)."""
        for kind in ("sampled", "aligned"):
            self.station.cancel(_tag(evse, kind))
        sampled = self._ended_settings()[0]
        values, evse.ended_values = evse.ended_values, []
        if sampled:
            values.append(self.meter_value(evse, sampled, "Transaction.End", now))
        if self.v16:  # StopTransaction's transactionData has its own MeterValue type
            as_stop_data = structure_fn(self.station.m.StopTransactionRequestMeterValue)
            values = [as_stop_data(unstructure(value)) for value in values]
        return values

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


def _tag(evse: Evse, kind: str) -> str:
    return f"tx-ended-{kind}:{evse.id}"
