"""Pure in-memory throughput and footprint of the sans-IO cores (no IO at all).

One "exchange" is a full session between a station core and a CSMS core: boot (Accepted),
one StatusNotification, one Heartbeat, and one transaction (1.6 StartTransaction,
MeterValues, StopTransaction; 2.x TransactionEvent Started, Updated, Ended), every frame
encoded, decoded and validated on both sides. Also: bytes held by one idle connected
station-side and CSMS-side object (tracemalloc), so the per-station cost of a CSMS holding
100,000 stations is known.

Run: python benchmarks/core.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from ocpp_sansio import registry
from ocpp_sansio._core import counter_ids
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RegistrationStatus, RequestReceived
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.builders import minimal

NOW = datetime(2025, 6, 1, tzinfo=UTC)
MODULES = {"1.6": v16, "2.0.1": v201, "2.1": v21}


def boot(version: str) -> Any:
    m = MODULES[version]
    if version == "1.6":
        return m.BootNotificationRequest(charge_point_vendor="Acme", charge_point_model="X1")
    station = m.ChargingStation(model="X1", vendor_name="Acme")
    return m.BootNotificationRequest(charging_station=station, reason=m.BootReasonEnum.POWER_UP)


def answers(version: str) -> dict[str, Any]:
    """The CSMS's answer to each station action, built once."""
    actions = registry(version)
    out = {name: minimal(spec.response) for name, spec in actions.items() if spec.response}
    out["BootNotification"] = minimal(
        actions["BootNotification"].response, current_time=NOW, interval=300
    )
    return out


def session_requests(version: str) -> list[Any]:
    m = MODULES[version]
    if version == "1.6":
        sample = [
            m.SampledValue(value=str(i), measurand=m.Measurand.ENERGY_ACTIVE_IMPORT_REGISTER)
            for i in range(4)
        ]
        return [
            m.StatusNotificationRequest(
                connector_id=1,
                error_code=m.ChargePointErrorCode.NO_ERROR,
                status=m.ChargePointStatus.AVAILABLE,
            ),
            m.HeartbeatRequest(),
            m.StartTransactionRequest(connector_id=1, id_tag="TAG1", meter_start=0, timestamp=NOW),
            m.MeterValuesRequest(
                connector_id=1,
                transaction_id=1,
                meter_value=[m.MeterValue(timestamp=NOW, sampled_value=sample)],
            ),
            m.StopTransactionRequest(meter_stop=10, timestamp=NOW, transaction_id=1),
        ]
    status = m.StatusNotificationRequest(
        timestamp=NOW,
        connector_status=m.ConnectorStatusEnum.AVAILABLE,
        evse_id=1,
        connector_id=1,
    )
    info = m.Transaction(transaction_id="tx-1")

    def event(kind: Any, seq: int) -> Any:
        return m.TransactionEventRequest(
            event_type=kind,
            timestamp=NOW,
            trigger_reason=m.TriggerReasonEnum.AUTHORIZED,
            seq_no=seq,
            transaction_info=info,
            evse=m.EVSE(id=1, connector_id=1),
        )

    events = m.TransactionEventEnum
    return [
        status,
        m.HeartbeatRequest(),
        event(events.STARTED, 0),
        event(events.UPDATED, 1),
        event(events.ENDED, 2),
    ]


def one_exchange(
    version: str, boot_request: Any, csms_answers: dict[str, Any], requests: list[Any]
) -> None:
    station = StationCore(version, boot_request, id_generator=counter_ids("s"))
    csms = CsmsCore(version, "CS1", id_generator=counter_ids("c"))
    csms.connection_made(0.0)
    station.connection_made(0.0)
    pending = list(requests)

    def carry() -> bool:
        moved = False
        for text in station.data_to_send():
            moved = True
            csms.receive_text(text, 0.0)
        while (event := csms.next_event()) is not None:
            if isinstance(event, RequestReceived):
                csms.send_response(event.message_id, csms_answers[event.action], 0.0)
        for text in csms.data_to_send():
            moved = True
            station.receive_text(text, 0.0)
        station.events()
        return moved

    while carry() or pending:
        if station.registration is RegistrationStatus.ACCEPTED and pending:
            station.send_request(pending.pop(0), 0.0)


def throughput(version: str, seconds: float) -> tuple[float, float]:
    boot_request, csms_answers, requests = (
        boot(version),
        answers(version),
        session_requests(version),
    )
    one_exchange(version, boot_request, csms_answers, requests)  # warm the generated codecs
    count = 0
    cpu_start = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        one_exchange(version, boot_request, csms_answers, requests)
        count += 1
    cpu = time.process_time() - cpu_start
    return count / seconds, cpu / count * 1e3


def idle_footprint(version: str, n: int = 2000) -> tuple[float, float]:
    """Bytes per idle, connected, accepted object on each side."""
    boot_request = boot(version)

    def make_csms(i: int) -> CsmsCore:
        csms = CsmsCore(
            version, f"CS{i}", registration=RegistrationStatus.ACCEPTED, heartbeat_interval=300
        )
        csms.connection_made(0.0)
        return csms

    def make_station(i: int) -> StationCore:
        station = StationCore(version, boot_request)
        station.connection_made(0.0)
        station.data_to_send()
        station.receive_text(
            '[3,"1",{"status":"Accepted","currentTime":"2025-01-01T00:00:00Z","interval":300}]',
            0.0,
        )
        station.events()
        return station

    sizes = []
    for factory in (make_station, make_csms):
        factory(0)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        objects = [factory(i) for i in range(n)]
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        sizes.append((after - before) / n)
        del objects
    return sizes[0], sizes[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    header = ("version", "exchanges/s", "CPU ms/exchange", "idle station B", "idle CSMS B")
    print("{:8} {:>12} {:>16} {:>15} {:>12}".format(*header))
    for version in ("1.6", "2.0.1", "2.1"):
        rate, cpu_ms = throughput(version, args.seconds)
        station_bytes, csms_bytes = idle_footprint(version)
        print(f"{version:8} {rate:12.0f} {cpu_ms:16.3f} {station_bytes:15.0f} {csms_bytes:12.0f}")
    print("targets: < 1 ms CPU per exchange; idle CSMS-side object < 4096 B")


if __name__ == "__main__":
    main()
