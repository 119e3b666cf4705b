"""A station and a CSMS in memory, each with its store, that can be killed at any point
between two inputs and restarted from what their stores committed.

The wire is explicit: frames wait on it until a step delivers them, so a kill can fall
between a send and its arrival, or between an answer and its arrival at the station. The
hardware (meters, the source of transaction ids) survives a kill; the cores and flows do
not. The CSMS answers transaction messages, refuses them (CALLERROR) or withholds the
answer after handling them, as ``mode`` says.

``created`` is every transaction message the station handed its core, in order (each was
committed before the next step: the steps end by taking the frames); ``reported`` is every
one the CSMS application handled as new, in order. Nothing lost, nothing duplicated, order
kept: after ``settle()`` the two lists are the same messages.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from _corekit import MODULES, boot_request, boot_response

from ocpp_sansio import registry
from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import Event, RequestReceived, RetryAnswered
from ocpp_sansio.flows import (
    CsmsTransactionEvents,
    CsmsTransactions16,
    TransactionAnomaly,
    TransactionCompleted,
    TransactionEvents,
    TransactionReport,
    Transactions16,
)
from ocpp_sansio.flows._base import build
from ocpp_sansio.rules import is_transaction_message
from ocpp_sansio.station import StationCore
from ocpp_sansio.store import MemoryCsmsStore, MemoryStationStore
from ocpp_sansio.store.keeper import CsmsKeeper, StationKeeper
from ocpp_sansio.testing.builders import minimal

EPOCH = datetime(2025, 6, 1, tzinfo=UTC)
CALL_TIMEOUT = 5.0
RETRY_INTERVAL = 1.0
CONNECTORS = 2
ANSWER, REFUSE, WITHHOLD = "answer", "refuse", "withhold"


def clock(now: float) -> datetime:
    return EPOCH + timedelta(seconds=now)


class RecordingCore(StationCore):
    """A station core that writes down every transaction message it is given."""

    created: list[tuple[str, Any]]

    def send_request(self, payload: Any, now: float) -> str:
        message_id = super().send_request(payload, now)
        if is_transaction_message(self.registry.for_payload(payload).name, payload):
            self.created.append((message_id, payload))
        return message_id


class StationProcess:
    """One power-up of the station: its core, keeper and transaction flow."""

    def __init__(self, rig: CrashRig, store: MemoryStationStore) -> None:
        self.rig = rig
        version = rig.version
        self.core = RecordingCore(
            version,
            boot_request(version),
            config=StationConfig(
                connectors=CONNECTORS,
                call_timeout=CALL_TIMEOUT,
                transaction_message_attempts=1000,
                transaction_message_retry_interval=RETRY_INTERVAL,
            ),
            rng=random.Random(0),
            store=store,
        )
        self.core.created = rig.created
        self.keeper = StationKeeper(store, clock=clock)
        self.flow: Any
        if version == "1.6":
            self.flow = Transactions16(self.core, clock=clock)
        else:
            self.flow = TransactionEvents(
                self.core, transaction_ids=lambda: f"T{next(rig.transaction_numbers)}", clock=clock
            )
        now = rig.now
        for tx in self.keeper.keep_transactions(self.flow, now):
            self.end(tx, "PowerLoss")

    def running(self, connector: int) -> Any:
        return self.flow.transaction_on(connector)

    def sample(self, connector: int, kind: str) -> list[Any]:
        """One energy reading, as the version's meterValue."""
        rig, m = self.rig, MODULES[self.rig.version]
        reading = rig.read_meter(connector, kind)
        value = str(reading) if rig.version == "1.6" else float(reading)
        return [m.MeterValue(timestamp=clock(rig.now), sampled_value=[m.SampledValue(value=value)])]

    def start(self, connector: int) -> None:
        rig, now = self.rig, self.rig.now
        if rig.version == "1.6":
            meter = rig.read_meter(connector, "start")
            self.flow.start(connector, f"TAG{connector}", meter, now)
            return
        m = MODULES[rig.version]
        token = build(m.IdToken, id_token=f"TAG{connector}", type="ISO14443")
        self.flow.start(
            trigger_reason="Authorized",
            now=now,
            evse_id=connector,
            id_token=token,
            meter_value=self.sample(connector, "start"),
        )

    def update(self, connector: int) -> None:
        rig, tx = self.rig, self.running(connector)
        sample = self.sample(connector, "update")
        if rig.version == "1.6":
            self.flow.meter_values(tx, sample, rig.now)
        else:
            self.flow.update(
                tx, trigger_reason="MeterValuePeriodic", now=rig.now, meter_value=sample
            )

    def end(self, tx: Any, reason: str) -> None:
        rig = self.rig
        if rig.version == "1.6":
            meter = rig.read_meter(tx.connector_id, "end")
            self.flow.stop(tx, meter, rig.now, reason=reason)
            return
        trigger = "AbnormalCondition" if reason == "PowerLoss" else "StopAuthorized"
        self.flow.end(
            tx,
            trigger_reason=trigger,
            now=rig.now,
            stopped_reason=reason,
            meter_value=self.sample(tx.evse_id, "end"),
        )

    def handle(self, event: Event) -> None:
        self.flow.handle_event(event, self.rig.now)
        self.flow.events()


class CsmsProcess:
    """One run of the CSMS for this station: its core, keeper and transaction flow."""

    def __init__(self, rig: CrashRig, store: MemoryCsmsStore) -> None:
        self.rig = rig
        version = rig.version
        station_store = store.station("CS1")
        self.core = CsmsCore(
            version, "CS1", config=CsmsConfig(call_timeout=CALL_TIMEOUT), store=station_store
        )
        self.keeper = CsmsKeeper(station_store)
        self.flow: Any
        if version == "1.6":
            self.flow = CsmsTransactions16(self.core, transaction_ids=self.keeper.transaction_ids())
        else:
            self.flow = CsmsTransactionEvents(self.core)
        self.keeper.keep_transactions(self.flow)

    def handle(self, event: Event) -> None:
        rig, now = self.rig, self.rig.now
        if isinstance(event, RetryAnswered):
            rig.retries += 1
            if rig.mode == WITHHOLD:
                rig.withheld.add(event.message_id)
            return
        if not isinstance(event, RequestReceived):
            return
        if not is_transaction_message(event.action, event.request):
            if event.action == "BootNotification":
                answer = boot_response(rig.version, "Accepted", 300)
            else:
                answer = minimal(registry(rig.version)[event.action].response)
            self.core.send_response(event.message_id, answer, now)
            return
        if rig.mode == REFUSE:
            self.core.send_error(event.message_id, "InternalError", "not now")
            return
        rig.reported.append((event.message_id, event.request))
        self.flow.handle_event(event, now)
        for flow_event in self.flow.events():
            if isinstance(flow_event, TransactionAnomaly):
                rig.anomalies.append(flow_event)
            if isinstance(flow_event, TransactionReport) and flow_event.duplicate:
                rig.anomalies.append(flow_event)
            if isinstance(flow_event, TransactionCompleted) and flow_event.missing:
                rig.anomalies.append(flow_event)
        if rig.mode == WITHHOLD:
            rig.withheld.add(event.message_id)


class Wire:
    """The link between a rig's station and CSMS, frame by frame: what both crash rigs
    share. A rig gives ``pump()`` (both sides handle their events and put their frames on
    the wire), ``_waiting()`` (messages still held inside a flow) and ``SETTLE_STEP``."""

    #: The shortest tick ``settle`` waits for the station's next deadline.
    SETTLE_STEP = 0.0
    version: str
    now: float
    mode: str
    connected: bool
    to_csms: list[str]
    to_station: list[str]
    station: Any
    csms: Any

    def pump(self) -> None:
        raise NotImplementedError

    def _waiting(self) -> bool:
        raise NotImplementedError

    def connect(self) -> None:
        if self.connected:
            return
        self.connected = True
        self.csms.core.connection_made(self.now)
        self.station.core.connection_made(self.now)
        self.pump()

    def deliver_to_csms(self) -> None:
        if self.connected and self.to_csms:
            self.csms.core.receive_text(self.to_csms.pop(0), self.now)
            self.pump()

    def deliver_to_station(self) -> None:
        if self.connected and self.to_station:
            self.station.core.receive_text(self.to_station.pop(0), self.now)
            self.pump()

    def flush(self) -> None:
        """Connect if the link is down, and deliver both ways until the wire is empty (the
        usual case between two kills)."""
        self.connect()
        for _ in range(1000):
            if self.to_csms:
                self.deliver_to_csms()
            elif self.to_station:
                self.deliver_to_station()
            else:
                return

    def tick(self, seconds: float) -> None:
        """Time passes: both sides' timers run, connected or not."""
        self.now += seconds
        self.station.core.handle_timer(self.now)
        self.csms.core.handle_timer(self.now)
        self.pump()

    def settle(self) -> None:
        """The CSMS answers again and the link stays up until every held message is
        through (1.6: and no message waits inside the flow for its transactionId)."""
        self.mode = ANSWER
        self.connect()
        for _ in range(2_000):
            if self.to_csms or self.to_station:
                self.flush()
            elif self.station.core.held_requests or self._waiting():
                deadline = self.station.core.next_deadline()
                self.tick(max(self.SETTLE_STEP, (deadline or self.now + 1.0) - self.now))
            else:
                return
        raise RuntimeError("the held messages never got through")


@attrs.define
class CrashRig(Wire):
    version: str
    now: float = 0.0
    mode: str = ANSWER
    connected: bool = False
    created: list[tuple[str, Any]] = attrs.field(factory=list)
    #: What the station's driver asked for: (connector, start | update | end, meter).
    intents: list[tuple[int, str, int]] = attrs.field(factory=list)
    reported: list[tuple[str, Any]] = attrs.field(factory=list)
    anomalies: list[Any] = attrs.field(factory=list)
    retries: int = 0
    #: Ids of the messages a station restart took back from the store, not yet handled.
    restored: set[str] = attrs.field(factory=set)
    crashes: int = 0
    withheld: set[str] = attrs.field(factory=set)
    to_csms: list[str] = attrs.field(factory=list)
    to_station: list[str] = attrs.field(factory=list)
    meters: dict[int, int] = attrs.field(factory=lambda: dict.fromkeys(range(1, 1 + CONNECTORS), 0))
    transaction_numbers: Any = attrs.field(factory=lambda: itertools.count(1))
    station_store: Any = None
    csms_store: Any = None
    station: Any = None
    csms: Any = None

    def __attrs_post_init__(self) -> None:
        self.station_store = MemoryStationStore("CS1", self.version)
        self.csms_store = MemoryCsmsStore()
        self.station = StationProcess(self, self.station_store)
        self.csms = CsmsProcess(self, self.csms_store)

    # --- the hardware

    def read_meter(self, connector: int, kind: str) -> int:
        """A meter that only grows (so no two 1.6 Starts are alike); the reading is
        written down with what it was read for."""
        self.meters[connector] += 7
        self.intents.append((connector, kind, self.meters[connector]))
        return self.meters[connector]

    # --- moving things along

    def pump(self) -> None:
        """Let both sides handle their events, and put their frames on the wire (a core
        commits its store when its frames are taken, connected or not)."""
        for _ in range(1000):
            moved = False
            for event in self.station.core.events():
                moved = True
                self.station.handle(event)
            for event in self.csms.core.events():
                moved = True
                self.csms.handle(event)
            frames = self.station.core.data_to_send()
            if self.connected:
                self.to_csms += frames
            for text in self.csms.core.data_to_send():
                frame = json.loads(text)
                if frame[1] in self.withheld and frame[0] == 3:
                    self.withheld.discard(frame[1])
                    continue  # handled, answered, and the answer never leaves
                if self.connected:
                    self.to_station.append(text)
            if not moved:
                return
        raise RuntimeError("the rig kept talking")

    def disconnect(self) -> None:
        if not self.connected:
            return
        self.connected = False
        self.to_csms.clear()
        self.to_station.clear()
        self.station.core.connection_lost(self.now)
        self.csms.core.connection_lost(self.now)
        self.pump()

    # --- what the station's driver does

    def act(self, kind: str, connector: int) -> None:
        station = self.station
        tx = station.running(connector)
        if kind == "start" and tx is None:
            station.start(connector)
        elif kind == "update" and tx is not None:
            station.update(connector)
        elif kind == "end" and tx is not None:
            station.end(tx, "Local")
        self.pump()

    # --- kills

    def kill_station(self, frames_arrive: bool) -> None:
        """The station dies; the frames it had on the wire arrive or not."""
        self.crashes += 1
        if self.connected and frames_arrive:
            while self.to_csms:
                self.csms.core.receive_text(self.to_csms.pop(0), self.now)
                self.pump()
        self._cut()
        self.station_store = self.station_store.reopen()
        held = {m.message_id for m in self.station_store.held_messages()}
        self.restored |= held - {message_id for message_id, _ in self.reported}
        self.station = StationProcess(self, self.station_store)
        self.pump()

    def kill_csms(self) -> None:
        self.crashes += 1
        self._cut()
        self.csms_store = self.csms_store.reopen()
        self.csms = CsmsProcess(self, self.csms_store)
        self.pump()

    def _cut(self) -> None:
        """The connection dies with the process: the survivor notices, the wire empties."""
        if self.connected:
            self.connected = False
            self.to_csms.clear()
            self.to_station.clear()
            self.withheld.clear()
            self.station.core.connection_lost(self.now)
            self.csms.core.connection_lost(self.now)

    # --- the end

    def readings(self) -> list[tuple[int, str, int]]:
        """(connector, start | update | end, meter) of every transaction message the CSMS
        handled, from their content: what ``intents`` must match."""
        out = []
        connector_of: dict[Any, int] = {}
        for _, request in self.reported:
            name = type(request).__name__
            if name == "StartTransactionRequest":
                out.append((request.connector_id, "start", request.meter_start))
            elif name == "MeterValuesRequest":
                value = int(request.meter_value[0].sampled_value[0].value)
                out.append((request.connector_id, "update", value))
            elif name == "StopTransactionRequest":
                out.append((self._connector_16(request.transaction_id), "end", request.meter_stop))
            else:
                tx_id = request.transaction_info.transaction_id
                if request.evse is not None:
                    connector_of[tx_id] = request.evse.id
                kind = {"Started": "start", "Updated": "update", "Ended": "end"}
                value = int(request.meter_value[0].sampled_value[0].value)
                out.append((connector_of[tx_id], kind[str(request.event_type)], value))
        return out

    def _connector_16(self, transaction_id: int) -> int:
        """The connector of a 1.6 transaction: the CSMS numbers new Starts 1, 2, 3 …"""
        starts = [r for _, r in self.reported if type(r).__name__ == "StartTransactionRequest"]
        return int(starts[transaction_id - 1].connector_id)

    def _waiting(self) -> bool:
        """1.6 messages still waiting inside the flow for their transactionId."""
        if self.version != "1.6":
            return False
        snapshot = self.station.flow.snapshot()
        return any(tx.waiting for tx in snapshot.transactions)
