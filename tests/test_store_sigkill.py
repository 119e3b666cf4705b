"""A real station process (asyncio adapter, SQLite store) killed with SIGKILL at random
moments and started again on the same database, against a CSMS on 127.0.0.1 (threads
adapter): counted at the CSMS by transaction, seqNo and content, every TransactionEvent
arrives exactly once and in order, and the transactions a kill interrupted end with
PowerLoss. Bounded: a few seconds per run, one minute for the last."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _corekit import boot_response

from ocpp_sansio.adapters import ServerOptions
from ocpp_sansio.adapters.threads import serve
from ocpp_sansio.events import RequestReceived, RetryAnswered
from ocpp_sansio.flows import (
    CsmsTransactionEvents,
    TransactionAnomaly,
    TransactionCompleted,
    TransactionReport,
)
from ocpp_sansio.testing.builders import minimal

SCRIPT = Path(__file__).with_name("_store_station.py")
TRANSACTIONS, UPDATES, KILLS = 10, 25, 5

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


class Csms:
    """Answers what the transaction flow does not take; writes down the flows' reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reports: list[Any] = []
        self.problems: list[Any] = []
        self.retries = 0

    def on_request(self, session: Any, request: Any) -> Any:
        name = type(request).__name__.removesuffix("Request")
        if name == "BootNotification":
            return boot_response("2.0.1", "Accepted", 300)
        return minimal(session.core.registry[name].response)

    def on_event(self, session: Any, event: Any) -> None:
        with self.lock:
            if isinstance(event, TransactionReport):
                self.reports.append(event)
                if event.duplicate:
                    self.problems.append(event)
            elif isinstance(event, TransactionAnomaly) or (
                isinstance(event, TransactionCompleted) and event.missing
            ):
                self.problems.append(event)
            elif isinstance(event, RetryAnswered):
                self.retries += 1


class Slow:
    """A CSMS flow that takes its time over each TransactionEvent (then lets the
    transaction flow answer): the station's queue grows, so kills find messages held."""

    def handle_event(self, event: Any, now: float) -> bool:
        if isinstance(event, RequestReceived) and event.action == "TransactionEvent":
            time.sleep(0.004)
        return False


def station(url: str, database: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), url, str(database), str(TRANSACTIONS), str(UPDATES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_station_killed_with_sigkill_delivers_every_event_once(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    csms = Csms()
    database = tmp_path / "CS1.sqlite3"
    flows = lambda core: [Slow(), CsmsTransactionEvents(core)]  # noqa: E731
    with serve(csms, options=ServerOptions(flows=flows)) as server:
        url = f"ws://127.0.0.1:{server.port}/CS1"
        for _ in range(KILLS):
            process = station(url, database)
            try:
                time.sleep(rng.uniform(0.5, 1.5))
            finally:
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=10)
        process = station(url, database)
        try:
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 0 and out.strip() == "DONE", (seed, err[-2000:])
        time.sleep(0.2)  # the last answers' events reach on_event

    with csms.lock:
        reports, problems = list(csms.reports), list(csms.problems)
    context = f"seed {seed}, {csms.retries} retries answered again"
    assert problems == [], context
    by_tx: dict[str, list[Any]] = {}
    for report in reports:
        by_tx.setdefault(report.transaction_id, []).append(report.request)
    assert len(by_tx) == TRANSACTIONS, context
    interrupted = 0
    for events in by_tx.values():
        # Each seqNo once, in order, none missing; each event's content its own.
        assert [e.seq_no for e in events] == list(range(len(events))), context
        assert all(e.meter_value[0].sampled_value[0].value == e.seq_no for e in events), context
        kinds = [str(e.event_type) for e in events]
        assert kinds == ["Started", *["Updated"] * (len(events) - 2), "Ended"], context
        reason = str(events[-1].transaction_info.stopped_reason)
        if reason == "PowerLoss":
            interrupted += 1
            assert str(events[-1].trigger_reason) == "AbnormalCondition"
        else:
            assert (reason, len(events)) == ("Local", UPDATES + 2), context
    assert interrupted <= KILLS, context
