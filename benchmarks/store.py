"""What the durable store costs (docs/store.md, docs/performance.md).

1. Store writes per second: a held message written and committed alone (what a station
   does per TransactionEvent), and written 100 to a commit; for the in-memory store and
   SQLite at synchronous NORMAL and FULL.
2. Bytes per queued message: a SQLite file holding 10,000 TransactionEvents, against the
   length of their frames.
3. TransactionEvent throughput, end to end in memory: a station core with
   TransactionEvents and its keeper, a CSMS core with CsmsTransactionEvents, every frame
   encoded, decoded and answered; without a store, with the in-memory one, and with SQLite
   at NORMAL and FULL. Also events made while offline (each held and committed) and then
   delivered.
4. TransactionEvent throughput through the ChargingStation facade: a 2.0.1 station whose
   timer takes a sample (six measurands) every second of core time, each an Updated event
   to a CSMS core with CsmsTransactionEvents, with the in-memory store and SQLite at
   NORMAL and FULL (the facade commits at the end of every entry point). Also samples
   taken offline, each committed by the timer that took it, then delivered.

Times are wall-clock: a commit at FULL waits for the disk, which CPU time would not show.

Run: python benchmarks/store.py [--seconds 2] [--folder DIR] (DIR on the disk to measure;
default: a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp_sansio import Call, encode_frame
from ocpp_sansio.charging_station import ChargingStation, StationInfo
from ocpp_sansio.config import StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RequestReceived
from ocpp_sansio.flows import CsmsTransactionEvents, TransactionEvents
from ocpp_sansio.messages import v201
from ocpp_sansio.station import StationCore
from ocpp_sansio.store import HeldMessage, MemoryCsmsStore, MemoryStationStore
from ocpp_sansio.store.keeper import StationKeeper
from ocpp_sansio.store.sqlite import SqliteCsmsStore, SqliteStationStore
from ocpp_sansio.testing.builders import minimal

NOW = datetime(2025, 6, 1, tzinfo=UTC)
BOOT = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="X1", vendor_name="Acme"),
    reason=v201.BootReasonEnum.POWER_UP,
)
BOOT_ANSWER = v201.BootNotificationResponse(
    current_time=NOW, interval=300, status=v201.RegistrationStatusEnum.ACCEPTED
)


def sample(value: float) -> list[Any]:
    """An Updated event's meter values: six measurands, as a real meter reports them."""
    measurands = [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
        "Voltage",
        "SoC",
        "Frequency",
    ]
    values = [
        v201.SampledValue(value=value + i, measurand=v201.MeasurandEnum(name))
        for i, name in enumerate(measurands)
    ]
    return [v201.MeterValue(timestamp=NOW, sampled_value=values)]


def event_frame(n: int) -> str:
    request = v201.TransactionEventRequest(
        event_type=v201.TransactionEventEnum.UPDATED,
        timestamp=NOW,
        trigger_reason=v201.TriggerReasonEnum.METER_VALUE_PERIODIC,
        seq_no=n,
        transaction_info=v201.Transaction(transaction_id="2f0c6a4e-8e59-4d1a-9b52-5f3ad1c0e7a1"),
        evse=v201.EVSE(id=1, connector_id=1),
        meter_value=sample(1000.0 + n),
    )
    return encode_frame(Call(message_id=f"1-{n}", action="TransactionEvent", payload=request))


# --- stores --------------------------------------------------------------------------------------

StoreMaker = Callable[[], Any]


@contextlib.contextmanager
def stores(folder: Path) -> Iterator[dict[str, StoreMaker]]:
    made: list[Any] = []
    counter = iter(range(1_000_000))

    def sqlite(synchronous: str) -> StoreMaker:
        def make() -> Any:
            path = folder / f"bench-{next(counter)}.sqlite3"
            store = SqliteStationStore(
                path, identity="CS1", version="2.0.1", synchronous=synchronous
            )
            made.append(store)
            return store

        return make

    try:
        yield {
            "memory": lambda: MemoryStationStore("CS1", "2.0.1"),
            "sqlite NORMAL": sqlite("NORMAL"),
            "sqlite FULL": sqlite("FULL"),
        }
    finally:
        for store in made:
            store.close()


def timed(seconds: float, step: Callable[[int], None]) -> float:
    """Operations per second of ``step(i)`` over about ``seconds``."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            step(done)
            done += 1
    return done / elapsed


def store_writes(makers: dict[str, StoreMaker], seconds: float) -> None:
    print("\n1. Store writes per second (wall clock)")
    print(f"{'store':16} {'hold+commit':>12} {'release+commit':>15} {'hold, 100/commit':>17}")
    frame = event_frame(1)
    for name, make in makers.items():
        store = make()

        def hold_one(i: int, store: Any = store) -> None:
            store.hold(HeldMessage(f"m{i}", "TransactionEvent", frame))
            store.commit()

        held = timed(seconds, hold_one)
        ids = [m.message_id for m in store.held_messages()]
        start = time.perf_counter()
        for message_id in ids:  # each a real delete, committed alone
            store.release(message_id)
            store.commit()
        released = len(ids) / (time.perf_counter() - start)
        batch = make()

        def hold_batched(i: int, store: Any = batch) -> None:
            store.hold(HeldMessage(f"b{i}", "TransactionEvent", frame))
            if i % 100 == 99:
                store.commit()

        batched = timed(seconds, hold_batched)
        print(f"{name:16} {held:12,.0f} {released:15,.0f} {batched:17,.0f}")


def bytes_per_message(folder: Path) -> None:
    print("\n2. Bytes per queued message (SQLite, 10,000 TransactionEvents held)")
    count = 10_000
    empty_path = folder / "empty.sqlite3"
    full_path = folder / "held.sqlite3"
    frames = [event_frame(n) for n in range(count)]
    for path, n in ((empty_path, 0), (full_path, count)):
        with SqliteStationStore(path, identity="CS1", version="2.0.1") as store:
            for i in range(n):
                store.hold(HeldMessage(f"1-{i}", "TransactionEvent", frames[i]))
            store.commit()
            store._database.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())

    used = (size(full_path) - size(empty_path)) / count
    frame = sum(len(f.encode()) for f in frames) / count
    print(f"frame {frame:,.0f} B, in the file {used:,.0f} B per message ({used / frame:.2f}x)")


# --- end to end ----------------------------------------------------------------------------------


class Link:
    """A station with TransactionEvents (and its keeper when it has a store) and a CSMS
    with CsmsTransactionEvents, connected in memory and booted."""

    def __init__(self, store: Any, csms_store: Any = None) -> None:
        self.now = 0.0
        self.station = StationCore(
            "2.0.1",
            BOOT,
            config=StationConfig(max_held_messages=1_000_000),
            rng=random.Random(0),
            store=store,
        )
        if store is not None:
            StationKeeper(store)
        ids = iter(range(1_000_000_000))
        self.flow = TransactionEvents(self.station, transaction_ids=lambda: f"tx-{next(ids)}")
        station_store = csms_store.station("CS1") if csms_store is not None else None
        self.csms = CsmsCore("2.0.1", "CS1", store=station_store)
        self.csms_flow = CsmsTransactionEvents(self.csms)
        self.connected = False

    def connect(self) -> None:
        self.connected = True
        self.csms.connection_made(self.now)
        self.station.connection_made(self.now)
        self.pump()

    def pump(self) -> None:
        while True:
            moved = False
            for text in self.station.data_to_send():
                moved = True
                if self.connected:
                    self.csms.receive_text(text, self.now)
            for event in self.csms.events():
                if isinstance(event, RequestReceived):
                    if event.action == "BootNotification":
                        self.csms.send_response(event.message_id, BOOT_ANSWER, self.now)
                    else:
                        self.csms_flow.handle_event(event, self.now)
                        self.csms_flow.events()
            for text in self.csms.data_to_send():
                moved = True
                self.station.receive_text(text, self.now)
            for event in self.station.events():
                self.flow.handle_event(event, self.now)
            self.flow.events()
            if not moved:
                return


def throughput(makers: dict[str, StoreMaker], folder: Path, seconds: float) -> None:
    print("\n3. TransactionEvent throughput, end to end in memory (events per second)")
    print(f"{'station store':16} {'online':>10} {'offline, held':>14} {'then delivered':>15}")
    makers = {"none": lambda: None, **makers}
    for name, make in makers.items():
        link = Link(make())
        link.connect()
        tx = link.flow.start(trigger_reason="Authorized", now=0.0, evse_id=1)

        def online(i: int, link: Link = link, tx: Any = tx) -> None:
            link.flow.update(
                tx, trigger_reason="MeterValuePeriodic", now=0.0, meter_value=sample(i)
            )
            link.pump()

        rate = timed(seconds, online)
        link = Link(make())
        tx = link.flow.start(trigger_reason="Authorized", now=0.0, evse_id=1)

        def offline(i: int, link: Link = link, tx: Any = tx) -> None:
            link.flow.update(
                tx, trigger_reason="MeterValuePeriodic", now=0.0, meter_value=sample(i)
            )
            link.station.commit()

        held_rate = timed(min(seconds, 1.0), offline)
        count = len(link.station.held_requests)
        start = time.perf_counter()
        link.connect()
        delivered = count / (time.perf_counter() - start)
        assert not link.station.held_requests
        print(f"{name:16} {rate:10,.0f} {held_rate:14,.0f} {delivered:15,.0f}")

    csms_stores: dict[str, Callable[[], Any]] = {
        "memory": MemoryCsmsStore,
        "sqlite NORMAL": lambda: SqliteCsmsStore(folder / "csms-n.sqlite3", synchronous="NORMAL"),
        "sqlite FULL": lambda: SqliteCsmsStore(folder / "csms-f.sqlite3", synchronous="FULL"),
    }
    print(f"\n{'CSMS store':16} {'online':>10}   (station without a store)")
    for name, make_csms in csms_stores.items():
        csms_store = make_csms()
        link = Link(None, csms_store)
        link.connect()
        tx = link.flow.start(trigger_reason="Authorized", now=0.0, evse_id=1)

        def answered(i: int, link: Link = link, tx: Any = tx) -> None:
            link.flow.update(
                tx, trigger_reason="MeterValuePeriodic", now=0.0, meter_value=sample(i)
            )
            link.pump()

        print(f"{name:16} {timed(seconds, answered):10,.0f}")
        if hasattr(csms_store, "close"):
            csms_store.close()


# --- through the facade ------------------------------------------------------------------------

MEASURANDS = {
    "Energy.Active.Import.Register": 1000.0,
    "Power.Active.Import": 7360.0,
    "Current.Import": 32.0,
    "Voltage": 230.0,
    "SoC": 50.0,
    "Frequency": 50.0,
}


class BenchHardware:
    """A ``StationApplication`` that does nothing but read a meter of six measurands."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None

    def read_meter(self, evse_id: int, now: float) -> dict[str, float]:
        return {name: value + now for name, value in MEASURANDS.items()}


class FacadeLink:
    """A 2.0.1 ChargingStation charging on EVSE 1 (a sample every second of core time),
    and a CSMS core with CsmsTransactionEvents that answers everything, in memory."""

    def __init__(self, store: Any) -> None:
        self.now = 0.0
        self.station = ChargingStation(
            "2.0.1",
            application=BenchHardware(),  # type: ignore[arg-type]
            info=StationInfo(vendor="Acme", model="X1"),
            store=store,
            wall_clock=lambda now: NOW + timedelta(seconds=now),
            config=StationConfig(max_held_messages=1_000_000),
        )
        self.csms = CsmsCore("2.0.1", store.identity)
        self.csms_flow = CsmsTransactionEvents(self.csms)
        self.events_received = 0
        self.connected = False
        self.station.set_variables(
            [
                ("SampledDataCtrlr", "TxUpdatedInterval", "1"),
                ("SampledDataCtrlr", "TxUpdatedMeasurands", ",".join(MEASURANDS)),
                ("AlignedDataCtrlr", "Interval", "0"),
            ],
            self.now,
        )
        self.station.start(self.now, connect=False)
        self.connect()
        self.station.on_session_started(1, 1, self.now)
        token = v201.IdToken(id_token="TAG1", type=v201.IdTokenEnum.ISO14443)
        self.station.on_authorized(1, 1, token, self.now)
        self.pump()

    def connect(self) -> None:
        self.connected = True
        self.csms.connection_made(self.now)
        self.station.core.connection_made(self.now)
        self.pump()

    def tick(self) -> None:
        """One second of core time: the facade's sample is due."""
        self.now += 1.0
        self.station.core.handle_timer(self.now)
        if self.connected:
            self.pump()

    def pump(self) -> None:
        core = self.station.core
        while True:
            moved = False
            for text in core.data_to_send():
                moved = True
                self.csms.receive_text(text, self.now)
            for event in self.csms.events():
                if not isinstance(event, RequestReceived):
                    continue
                if event.action == "TransactionEvent":
                    self.events_received += 1
                    self.csms_flow.handle_event(event, self.now)
                    self.csms_flow.events()
                elif event.action == "BootNotification":
                    self.csms.send_response(event.message_id, BOOT_ANSWER, self.now)
                else:
                    response = self.csms.registry[event.action].response
                    self.csms.send_response(event.message_id, minimal(response), self.now)
            for text in self.csms.data_to_send():
                moved = True
                core.receive_text(text, self.now)
            core.events()  # (what the facade leaves for the application)
            if not moved:
                return


def facade_throughput(makers: dict[str, StoreMaker], seconds: float) -> None:
    print("\n4. TransactionEvent throughput through the ChargingStation facade (events per second)")
    print(f"{'station store':16} {'online':>10} {'offline, held':>14} {'then delivered':>15}")
    for name, make in makers.items():
        link = FacadeLink(make())
        before, start = link.events_received, time.perf_counter()
        timed(seconds, lambda i, link=link: link.tick())
        rate = (link.events_received - before) / (time.perf_counter() - start)
        link = FacadeLink(make())
        link.connected = False
        link.station.core.connection_lost(link.now)
        link.csms.connection_lost(link.now)
        start = time.perf_counter()
        timed(min(seconds, 1.0), lambda i, link=link: link.tick())
        count = len(link.station.held_messages)
        held_rate = count / (time.perf_counter() - start)
        before, start = link.events_received, time.perf_counter()
        link.connect()
        delivered = (link.events_received - before) / (time.perf_counter() - start)
        assert not link.station.held_messages and link.events_received - before >= count
        print(f"{name:16} {rate:10,.0f} {held_rate:14,.0f} {delivered:15,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        folder = args.folder or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        print(f"store files in {folder} ({os.statvfs(folder).f_bsize} B blocks)")
        makers = stack.enter_context(stores(folder))
        store_writes(makers, args.seconds)
        bytes_per_message(folder)
        throughput(makers, folder, args.seconds)
        facade_throughput(makers, args.seconds)


if __name__ == "__main__":
    main()
