"""A charging station process for the SIGKILL test: OCPP 2.0.1 on the asyncio adapter,
its state in a SQLite store, driving ``TRANSACTIONS`` transactions of ``UPDATES``
meter updates each, as fast as the link allows.

Run: ``python _store_station.py URL DATABASE TRANSACTIONS UPDATES``. Killed at any moment
and started again with the same database, it goes on where its store says: transactions
the kill interrupted end with PowerLoss, held events go out with their message ids, and
seqNo continues. Each event's meter value is its seqNo, so the CSMS can check content. It
prints DONE and exits once every transaction is made and delivered.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime
from typing import Any

from ocpp_sansio.adapters import Backoff, StationOptions
from ocpp_sansio.adapters.asyncio import connect
from ocpp_sansio.config import StationConfig
from ocpp_sansio.flows import TransactionEvents, uuid_transaction_ids
from ocpp_sansio.messages import v201
from ocpp_sansio.station import StationCore
from ocpp_sansio.store import open_station_store
from ocpp_sansio.store.keeper import StationKeeper


def wall_clock(now: float) -> datetime:
    return datetime.now(UTC)


def sample(value: int) -> list[Any]:
    reading = v201.SampledValue(value=float(value))
    return [v201.MeterValue(timestamp=wall_clock(0), sampled_value=[reading])]


async def main(url: str, database: str, transactions: int, updates: int) -> None:
    loop = asyncio.get_running_loop()
    store = open_station_store(database, "CS1", "2.0.1")
    boot = v201.BootNotificationRequest(
        charging_station=v201.ChargingStation(model="Crash", vendor_name="Test"),
        reason=v201.BootReasonEnum.POWER_UP,
    )
    core = StationCore(
        "2.0.1",
        boot,
        config=StationConfig(
            call_timeout=2.0,
            transaction_message_attempts=10_000,
            transaction_message_retry_interval=0.2,
        ),
        store=store,
    )
    keeper = StationKeeper(store, clock=wall_clock)
    flow = TransactionEvents(
        core, transaction_ids=uuid_transaction_ids(random.Random()), clock=wall_clock
    )
    # The script's own progress, committed with the events it made.
    progress = store.load("script") or {"done": 0}
    store.before_commit(lambda: store.save("script", progress))

    def end(tx: Any, now: float, interrupted: bool) -> None:
        flow.end(
            tx,
            trigger_reason="AbnormalCondition" if interrupted else "StopAuthorized",
            stopped_reason="PowerLoss" if interrupted else "Local",
            now=now,
            meter_value=sample(tx.next_seq_no),
        )
        progress["done"] += 1

    for tx in keeper.keep_transactions(flow, loop.time()):
        end(tx, loop.time(), interrupted=True)

    def step(now: float) -> None:
        tx = flow.transaction_on(1)
        if tx is None:
            flow.start(trigger_reason="Authorized", now=now, evse_id=1, meter_value=sample(0))
        elif tx.next_seq_no <= updates:
            flow.update(
                tx,
                trigger_reason="MeterValuePeriodic",
                now=now,
                meter_value=sample(tx.next_seq_no),
            )
        else:
            end(tx, now, interrupted=False)

    async with connect(
        url,
        core=core,
        options=StationOptions(
            flows=lambda _core: [flow],
            backoff=Backoff(minimum=0.05, random_range=0.05, repeat_times=1),
        ),
    ) as station:
        while progress["done"] < transactions:
            station.act(step)
            await asyncio.sleep(0.002)
        while core.held_requests:
            await asyncio.sleep(0.01)
    print("DONE", flush=True)


if __name__ == "__main__":
    url, database, transactions, updates = sys.argv[1:5]
    asyncio.run(main(url, database, int(transactions), int(updates)))
