"""``ocpp-sansio station --store PATH`` killed with SIGKILL at random moments and started again
with the same ``--store`` (issue 13, item 5), against a CSMS on 127.0.0.1 (threads adapter,
the demo CSMS's flows) that sets a sample every second, starts a transaction remotely
whenever none runs and stops each after a few samples. Counted at the CSMS by transaction,
seqNo and content: every TransactionEvent arrives exactly once and in order, seqNo
continuing across kills without a gap, each transaction starts once and ends once (with
PowerLoss when a kill interrupted it, E17.FR.21), and the file holds nothing at the end.

Bounded: each run a few seconds, the last one at most a minute. The short form runs in CI;
``-m slow`` runs a longer one."""

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

from ocpp_sansio.adapters import ServerOptions
from ocpp_sansio.adapters.threads import serve
from ocpp_sansio.apps.demo_csms import DemoCsms
from ocpp_sansio.events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    RegistrationStatus,
    RequestReceived,
    ResponseReceived,
    RetryAnswered,
)
from ocpp_sansio.flows import TransactionAnomaly, TransactionCompleted, TransactionReport
from ocpp_sansio.messages import v201
from ocpp_sansio.store import open_station_store

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

#: Samples each transaction gets before the CSMS stops it.
UPDATES = 3
#: How often the conductor looks whether to act (s).
LOOK_EVERY = 0.2
#: How long the CSMS takes over each TransactionEvent before answering it (s): a kill then
#: often finds one unanswered, which the next process sends again with its message id.
SLOW_ANSWER = 0.25
_ANSWERED = ResponseReceived | CallErrorReceived | CallTimedOut | CallLost


class Record:
    """What the CSMS saw of the station, across its connections (under ``lock``)."""

    def __init__(self, transactions: int) -> None:
        self.lock = threading.Lock()
        self.wanted = transactions
        #: Every TransactionEvent handled as new, in arrival order.
        self.events: list[Any] = []
        self.running: str | None = None
        self.ended = 0
        self.stopping: set[str] = set()
        self.problems: list[Any] = []
        self.retries = 0
        self.remote_starts = 0

    def saw(self, request: Any) -> None:
        self.events.append(request)
        tx_id = request.transaction_info.transaction_id
        kind = str(request.event_type)
        if kind == "Started":
            self.running = tx_id
        elif kind == "Ended":
            self.ended += 1
            if self.running == tx_id:
                self.running = None

    def updates(self, tx_id: str) -> int:
        return sum(1 for e in self.events if e.transaction_info.transaction_id == tx_id) - 1

    @property
    def done(self) -> bool:
        return self.ended >= self.wanted and self.running is None


class Conductor:
    """A CSMS flow, first in line: it writes down each TransactionEvent (then, after
    ``SLOW_ANSWER``, lets the transaction flow answer it) and, once the station is
    accepted, asks one thing at a time: a sample every second, a remote start while fewer
    transactions than wanted have ended and none runs, a remote stop after ``UPDATES``
    samples."""

    def __init__(self, core: Any, record: Record) -> None:
        self.core = core
        self.record = record
        self.configured = False
        self.asked: str | None = None
        self.look_at = 0.0

    def handle_event(self, event: Any, now: float) -> bool:
        record = self.record
        with record.lock:
            if isinstance(event, RequestReceived):
                if event.action == "BootNotification":
                    self.configured = False  # a new process: configure it again
                elif event.action == "TransactionEvent":
                    record.saw(event.request)
            elif isinstance(event, RetryAnswered):
                record.retries += 1
            elif isinstance(event, _ANSWERED) and event.message_id == self.asked:
                self.asked = None
        if isinstance(event, RequestReceived) and event.action == "TransactionEvent":
            time.sleep(SLOW_ANSWER)
        return False

    def next_deadline(self) -> float | None:
        return self.look_at

    def handle_timer(self, now: float) -> None:
        self.look_at = now + LOOK_EVERY
        core, record = self.core, self.record
        if self.asked is not None or core.registration is not RegistrationStatus.ACCEPTED:
            return
        with record.lock:
            request = self._next_request()
        if request is not None:
            self.asked = core.send_request(request, now)

    def _next_request(self) -> Any:
        record = self.record
        if not self.configured:
            self.configured = True
            return v201.SetVariablesRequest(
                set_variable_data=[
                    v201.SetVariableData(
                        attribute_value="1",
                        component=v201.Component(name="SampledDataCtrlr"),
                        variable=v201.Variable(name="TxUpdatedInterval"),
                    )
                ]
            )
        running = record.running
        if running is None and record.ended < record.wanted:
            record.remote_starts += 1
            return v201.RequestStartTransactionRequest(
                id_token=v201.IdToken(id_token="TAG1", type=v201.IdTokenEnum.CENTRAL),
                remote_start_id=record.remote_starts,
                evse_id=1,
            )
        stop = running is not None and running not in record.stopping
        if stop and record.updates(running) >= UPDATES:
            record.stopping.add(running)
            return v201.RequestStopTransactionRequest(transaction_id=running)
        return None


class Handler:
    """What no flow took (nothing should), and the transaction flow's reports."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def on_request(self, session: Any, request: Any) -> Any:
        raise AssertionError(f"no flow answered {request!r}")

    def on_event(self, session: Any, event: Any) -> None:
        problem = (
            (isinstance(event, TransactionReport) and event.duplicate)
            or isinstance(event, TransactionAnomaly)
            or (isinstance(event, TransactionCompleted) and event.missing)
        )
        if problem:
            with self.record.lock:
                self.record.problems.append(event)


def station(url: str, store: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "ocpp_sansio.cli", "station", "--url", url]
    command += ["--version", "2.0.1", "--store", str(store), "--adapter", "asyncio", "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for(condition: Any, record: Record, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with record.lock:
            if condition():
                return True
        time.sleep(0.05)
    return False


def run(tmp_path: Path, kills: int, transactions: int, seed: int) -> Record:
    rng = random.Random(seed)
    record = Record(transactions)
    demo = DemoCsms()
    store = tmp_path / "CS1.sqlite3"

    def flows(core: Any) -> list[Any]:
        return [Conductor(core, record), *demo.flows(core)]

    options = ServerOptions(core_factory=demo.core, flows=flows)
    with serve(Handler(record), options=options) as server:
        url = f"ws://127.0.0.1:{server.port}/CS1"
        for _ in range(kills):
            process = station(url, store)
            try:
                time.sleep(rng.uniform(1.0, 3.0))  # (about 0.7 s of it to start Python)
            finally:
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=10)
        process = station(url, store)
        try:
            finished = wait_for(lambda: record.done, record, 60.0)
            time.sleep(0.3)  # anything the station would still send
        finally:
            process.send_signal(signal.SIGKILL)
            _, err = process.communicate(timeout=10)
        assert finished, (seed, record.ended, len(record.events), err[-2000:])
    with open_station_store(store, "CS1", "2.0.1") as kept:
        assert kept.held_messages() == [], seed  # everything it made was delivered
    return record


def latest_energy(event: Any) -> float:
    """The energy register's latest reading in an event (an Ended also carries the one of
    the start, E06.FR.11)."""
    readings = [
        v.value
        for mv in event.meter_value or ()
        for v in mv.sampled_value
        if str(v.measurand or "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
    ]
    return float(readings[-1])


def check(record: Record, transactions: int, kills: int, seed: int) -> None:
    context = f"seed {seed}, {record.retries} retries answered again"
    assert record.problems == [], context
    by_tx: dict[str, list[Any]] = {}
    for event in record.events:
        by_tx.setdefault(event.transaction_info.transaction_id, []).append(event)
    assert len(by_tx) == transactions == record.ended, context
    interrupted = 0
    for events in by_tx.values():
        # Each seqNo once, in order, none missing, across the kills.
        assert [e.seq_no for e in events] == list(range(len(events))), context
        kinds = [str(e.event_type) for e in events]
        assert kinds == ["Started", *["Updated"] * (len(events) - 2), "Ended"], context
        energy = [latest_energy(e) for e in events]
        assert energy == sorted(energy), context  # the meter only grows, across kills too
        ended = events[-1]
        if str(ended.transaction_info.stopped_reason) == "PowerLoss":
            interrupted += 1
            assert str(ended.trigger_reason) == "AbnormalCondition", context
        else:
            assert str(ended.trigger_reason) == "RemoteStop", context
            assert len(events) >= UPDATES + 2, context
    assert interrupted <= kills, context


def test_the_simulator_killed_with_sigkill_delivers_every_transaction_message_once(
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    record = run(tmp_path, kills=3, transactions=4, seed=seed)
    check(record, transactions=4, kills=3, seed=seed)


@pytest.mark.slow
def test_the_simulator_killed_many_times_delivers_every_transaction_message_once(
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    record = run(tmp_path, kills=12, transactions=12, seed=seed)
    check(record, transactions=12, kills=12, seed=seed)
