"""Transactions on both sides: 1.6 StartTransaction / StopTransaction / MeterValues with the
CSMS-assigned transactionId, and 2.x TransactionEvent Started / Updated / Ended with the
station-made transactionId (1.6 §3.7, §4.7, §4.8, §4.10; 2.x E01-E13, J02).

The station core holds transaction-related messages while offline and retries them (E13);
these flows add what a transaction needs on top: the order of its messages, the id, seqNo,
the ``offline`` flag, and what to do when the CSMS does not accept the identifier (E05).
"""

from __future__ import annotations

import enum
import itertools
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from ..errors import InvalidPayloadError, LocalProtocolError
from ..events import Event, RequestReceived, ResponseReceived, TransactionMessageDiscarded
from ..frames import Call, encode_frame
from ._base import Activity, Emitter, FlowEvent, WallClock, WallClocked
from ._store import NoSettings, Settings, messages_for, read_bool

ACCEPTED = "Accepted"


class TransactionState(enum.Enum):
    #: 1.6: StartTransaction sent, its answer (and so the transactionId) not yet known.
    STARTING = "Starting"
    RUNNING = "Running"
    #: Stopped by the application; the stop message may still be on its way.
    STOPPED = "Stopped"
    #: 1.6: the StartTransaction was discarded after its last attempt (E13.FR.04).
    LOST = "Lost"


# --- events shared by both versions ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class TransactionDeauthorized(FlowEvent):
    """The CSMS answered a transaction's identifier with a status other than Accepted
    while it runs. ``stop_transaction`` is StopTransactionOnInvalidId /
    TxCtrlr.StopTxOnInvalidId: when true, end it with reason DeAuthorized (1.6 §3.5.4,
    E05.FR.10) or, in 2.x when TxStopPoint has none of Authorized / PowerPathClosed /
    EnergyTransfer, suspend it with triggerReason Deauthorized (E05.FR.09); when false,
    only stop the energy (E05.FR.02/03)."""

    transaction: Any
    status: str
    info: Any
    stop_transaction: bool


# --- 1.6, station side -------------------------------------------------------------------


@attrs.define(eq=False)
class Transaction16:
    """One 1.6 transaction as the station knows it."""

    local_id: int
    connector_id: int
    id_tag: str
    state: TransactionState = TransactionState.STARTING
    #: Given by the CSMS in the StartTransaction answer.
    transaction_id: int | None = None
    id_tag_info: Any = None
    #: Messages waiting for the transactionId: (action, fields), in order.
    waiting: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)

    @property
    def activity_key(self) -> str | int:
        """How ``Activity`` knows it: the transactionId once known."""
        return self.transaction_id if self.transaction_id is not None else f"local-{self.local_id}"


@attrs.frozen(kw_only=True)
class TransactionStarted16(FlowEvent):
    """The CSMS answered StartTransaction: ``transaction.transaction_id`` is known and the
    messages that waited for it went to the core."""

    transaction: Transaction16
    transaction_id: int
    id_tag_info: Any


@attrs.frozen(kw_only=True)
class StartTransactionDiscarded(FlowEvent):
    """StartTransaction failed on its last attempt (E13.FR.04): the transaction has no
    transactionId, so ``dropped`` (the actions that waited for it) are never sent."""

    transaction: Transaction16
    dropped: tuple[str, ...]


@attrs.frozen(kw_only=True)
class TransactionFinished16(FlowEvent):
    """StopTransaction was answered (``delivered``) or discarded after its last attempt."""

    transaction: Transaction16
    delivered: bool
    id_tag_info: Any = None


class Transactions16(Emitter, WallClocked):
    """The station side of 1.6 transactions.

    ``start`` sends StartTransaction; ``meter_values`` and ``stop`` send the transaction's
    MeterValues and StopTransaction, which need the transactionId the CSMS gives in its
    answer: until then they wait here, in order, and go to the core when it comes. Feed
    every core event to ``handle_event``. Pass ``activity`` to keep an ``Activity`` up to
    date, ``meter_schedule`` to have periodic sampling follow the transactions.
    """

    def __init__(
        self,
        core: Any,
        *,
        settings: Settings | None = None,
        clock: WallClock | None = None,
        activity: Activity | None = None,
        meter_schedule: Any = None,
    ) -> None:
        super().__init__()
        if core.version != "1.6":
            raise LocalProtocolError("Transactions16 is for OCPP 1.6; use TransactionEvents")
        self.core = core
        self.settings: Settings = settings or NoSettings()
        self._own_clock = clock
        self.activity = activity
        self.meter_schedule = meter_schedule
        self._m = messages_for("1.6")
        self._numbers = itertools.count(1)
        self._running: dict[int, Transaction16] = {}
        #: Our transaction messages on their way: message id -> (transaction, action).
        self._sent: dict[str, tuple[Transaction16, str]] = {}

    def transaction_on(self, connector_id: int) -> Transaction16 | None:
        """The transaction running (not yet stopped) on ``connector_id``."""
        return self._running.get(connector_id)

    def start(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        now: float,
        *,
        timestamp: datetime | None = None,
        reservation_id: int | None = None,
    ) -> Transaction16:
        """Send StartTransaction (held by the core while offline) and return the
        transaction. One transaction per connector at a time."""
        if connector_id < 1:
            raise LocalProtocolError("a transaction runs on a connector numbered from 1")
        if connector_id in self._running:
            raise LocalProtocolError(f"connector {connector_id} already has a transaction")
        request = self._m.StartTransactionRequest(
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=timestamp or self.clock(now),
            reservation_id=reservation_id,
        )
        message_id = self.core.send_request(request, now)
        tx = Transaction16(next(self._numbers), connector_id, id_tag)
        self._sent[message_id] = (tx, "StartTransaction")
        self._running[connector_id] = tx
        if self.activity is not None:
            self.activity.transaction_started(tx.activity_key, connector_id, now)
        if self.meter_schedule is not None:
            self.meter_schedule.transaction_started(tx, connector_id, now)
        return tx

    def meter_values(self, tx: Transaction16, meter_value: list[Any], now: float) -> None:
        """Send MeterValues for the running transaction (waits for its transactionId)."""
        if tx.state is not TransactionState.STARTING and tx.state is not TransactionState.RUNNING:
            raise LocalProtocolError(f"no meter values for a transaction that is {tx.state.value}")
        self._send(tx, "MeterValues", {"meter_value": meter_value}, now)

    def stop(
        self,
        tx: Transaction16,
        meter_stop: int,
        now: float,
        *,
        timestamp: datetime | None = None,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[Any] | None = None,
    ) -> None:
        """Send StopTransaction (waits for the transactionId). A transaction whose Start
        was discarded cannot be stopped on the wire; it just ends here."""
        if tx.state is TransactionState.STOPPED:
            raise LocalProtocolError("the transaction is already stopped")
        try:
            stop_reason = self._m.Reason(reason) if reason is not None else None
        except ValueError as error:
            raise InvalidPayloadError(str(error), "$.reason") from None
        fields = {
            "meter_stop": meter_stop,
            "timestamp": timestamp or self.clock(now),
            "reason": stop_reason,
            "id_tag": id_tag,
            "transaction_data": transaction_data,
        }
        lost = tx.state is TransactionState.LOST
        tx.state = TransactionState.STOPPED
        self._running.pop(tx.connector_id, None)
        if self.meter_schedule is not None:
            self.meter_schedule.transaction_ended(tx)
        if self.activity is not None:
            self.activity.transaction_ended(tx.activity_key, now)
        if not lost:
            self._send(tx, "StopTransaction", fields, now)

    def _send(self, tx: Transaction16, action: str, fields: dict[str, Any], now: float) -> None:
        if tx.transaction_id is None:
            # Checked now, as the core checks what it is given: it must not fail later.
            encode_frame(
                Call(message_id="-", action=action, payload=self._request(tx, action, fields, 0))
            )
            tx.waiting.append((action, fields))
            return
        self._submit(tx, action, fields, now)

    def _request(
        self, tx: Transaction16, action: str, fields: dict[str, Any], transaction_id: int
    ) -> Any:
        if action == "MeterValues":
            return self._m.MeterValuesRequest(
                connector_id=tx.connector_id, transaction_id=transaction_id, **fields
            )
        return self._m.StopTransactionRequest(transaction_id=transaction_id, **fields)

    def _submit(self, tx: Transaction16, action: str, fields: dict[str, Any], now: float) -> None:
        assert tx.transaction_id is not None
        request = self._request(tx, action, fields, tx.transaction_id)
        self._sent[self.core.send_request(request, now)] = (tx, action)

    def handle_event(self, event: Event, now: float) -> bool:
        """Follow our transaction messages; True when ``event`` settled one of them."""
        if isinstance(event, ResponseReceived) and event.message_id in self._sent:
            tx, action = self._sent.pop(event.message_id)
            if action == "StartTransaction":
                self._started(tx, event.response, now)
            elif action == "StopTransaction":
                info = event.response.id_tag_info
                self._emit(TransactionFinished16(transaction=tx, delivered=True, id_tag_info=info))
            return True
        if isinstance(event, TransactionMessageDiscarded) and event.message_id in self._sent:
            tx, action = self._sent.pop(event.message_id)
            if action == "StartTransaction":
                dropped = tuple(a for a, _ in tx.waiting)
                tx.waiting.clear()
                if tx.state is TransactionState.STARTING:
                    tx.state = TransactionState.LOST
                self._emit(StartTransactionDiscarded(transaction=tx, dropped=dropped))
            elif action == "StopTransaction":
                self._emit(TransactionFinished16(transaction=tx, delivered=False))
            else:
                return False  # a lost MeterValues: the core's event tells the application
            return True
        return False

    def _started(self, tx: Transaction16, response: Any, now: float) -> None:
        old_key = tx.activity_key
        tx.transaction_id = response.transaction_id
        tx.id_tag_info = response.id_tag_info
        if tx.state is TransactionState.STARTING:
            tx.state = TransactionState.RUNNING
            if self.activity is not None:
                # Start under the real id before ending the local one: never idle between.
                self.activity.transaction_started(tx.activity_key, tx.connector_id, now)
                self.activity.transaction_ended(old_key, now)
        waiting, tx.waiting = tx.waiting, []
        for action, fields in waiting:
            self._submit(tx, action, fields, now)
        self._emit(
            TransactionStarted16(
                transaction=tx, transaction_id=tx.transaction_id, id_tag_info=tx.id_tag_info
            )
        )
        status = str(response.id_tag_info.status)
        if status != ACCEPTED and tx.state is TransactionState.RUNNING:
            self._emit(
                TransactionDeauthorized(
                    transaction=tx,
                    status=status,
                    info=response.id_tag_info,
                    stop_transaction=read_bool(self.settings, "StopTransactionOnInvalidId", True),
                )
            )

    # --- across a restart (docs/store.md)

    def snapshot(self) -> Transactions16Snapshot:
        """What a restart must not lose: every transaction not finished on the wire (running,
        or stopped with its Stop or Start not yet answered), with the messages waiting for
        its transactionId, and which held StartTransaction belongs to which."""
        kept = {tx.local_id: tx for tx in self._running.values()}
        kept |= {tx.local_id: tx for tx, _ in self._sent.values()}
        return Transactions16Snapshot(
            transactions=tuple(attrs.evolve(tx, waiting=list(tx.waiting)) for tx in kept.values()),
            starts={
                message_id: tx.local_id
                for message_id, (tx, action) in self._sent.items()
                if action == "StartTransaction"
            },
        )

    def restore(self, snapshot: Transactions16Snapshot, now: float) -> list[Transaction16]:
        """Take back a previous power-up's transactions, before anything else happens, and
        follow the transaction messages the core took back from its store. Returns the
        transactions that were running: they were interrupted, stop them (reason
        PowerLoss, Reboot, or HardReset after a Hard reset, 1.6 §4.10, §5.14); a Stop
        waits for its Start's answer as usual."""
        if self._running or self._sent:
            raise LocalProtocolError("restore a Transactions16 before it starts anything")
        by_local = {tx.local_id: tx for tx in snapshot.transactions}
        by_id = {tx.transaction_id: tx for tx in snapshot.transactions if tx.transaction_id}
        self._numbers = itertools.count(max(by_local, default=0) + 1)
        for tx in snapshot.transactions:
            if tx.state in (TransactionState.STARTING, TransactionState.RUNNING):
                self._running[tx.connector_id] = tx
        for message_id, request in self.core.held_calls:
            action = self.core.registry.for_payload(request).name
            start = action == "StartTransaction"
            found = (
                by_local.get(snapshot.starts.get(message_id, -1))
                if start
                else by_id.get(request.transaction_id)
            )
            tx = found if found is not None else self._adopt(action, request)
            by_local[tx.local_id] = tx
            if tx.transaction_id is not None:
                by_id[tx.transaction_id] = tx
            if action == "StopTransaction":
                tx.state = TransactionState.STOPPED
                if self._running.get(tx.connector_id) is tx:
                    del self._running[tx.connector_id]
            self._sent[message_id] = (tx, action)
        pending_starts = {
            tx.local_id for tx, action in self._sent.values() if action == "StartTransaction"
        }
        for tx in by_local.values():
            if tx.transaction_id is None and tx.local_id not in pending_starts:
                # Its Start is gone without an answer we kept: it never gets an id.
                dropped = tuple(a for a, _ in tx.waiting)
                tx.waiting.clear()
                if tx.state is TransactionState.STARTING:
                    tx.state = TransactionState.LOST
                self._emit(StartTransactionDiscarded(transaction=tx, dropped=dropped))
        interrupted = list(self._running.values())
        for tx in interrupted:
            if self.activity is not None:
                self.activity.transaction_started(tx.activity_key, tx.connector_id, now)
            if self.meter_schedule is not None:
                self.meter_schedule.transaction_started(tx, tx.connector_id, now)
        return interrupted

    def _adopt(self, action: str, request: Any) -> Transaction16:
        """A transaction known only from a held message (kept without the flow's state):
        followed all the same, so its answers are understood."""
        if action == "StartTransaction":
            tx = Transaction16(next(self._numbers), request.connector_id, request.id_tag)
            self._running.setdefault(tx.connector_id, tx)
            return tx
        connector = request.connector_id if action == "MeterValues" else 0
        return Transaction16(
            next(self._numbers), connector, "", TransactionState.RUNNING, request.transaction_id
        )


@attrs.frozen(kw_only=True)
class Transactions16Snapshot:
    """``Transactions16.snapshot()``: pass it to the next power-up's ``restore``."""

    transactions: tuple[Transaction16, ...]
    #: Message id of each StartTransaction not yet answered -> its transaction's local_id.
    starts: Mapping[str, int]


# --- 1.6, CSMS side ----------------------------------------------------------------------


@attrs.define(eq=False)
class CsmsTransaction16:
    transaction_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    started: datetime
    stopped: datetime | None = None
    meter_stop: int | None = None


@attrs.frozen(kw_only=True)
class TransactionReport(FlowEvent):
    """CSMS side: a transaction message arrived and was answered. ``duplicate`` marks a
    message received before (a retry whose answer was lost)."""

    action: str
    transaction_id: int | str
    request: Any
    duplicate: bool = False


@attrs.frozen(kw_only=True)
class TransactionAnomaly(FlowEvent):
    """CSMS side: a transaction message the rules do not expect (unknown transaction,
    after its end, seqNo out of place…). It was answered all the same: a CSMS must
    always answer a transaction message (1.6 §4.7/§4.10, J02.FR.19)."""

    action: str
    transaction_id: int | str | None
    problem: str


def _accept_all(_token: Any) -> str:
    return ACCEPTED


class CsmsTransactions16(Emitter):
    """The CSMS side of 1.6 transactions: answers StartTransaction with a new
    transactionId (the same one again for a retried Start), StopTransaction and
    MeterValues, and flags messages for unknown or finished transactions.

    ``authorize(id_tag)`` returns the AuthorizationStatus for an identifier (default:
    Accepted); ``transaction_ids`` makes new ids (default: 1, 2, 3 …).
    """

    def __init__(
        self,
        core: Any,
        *,
        authorize: Callable[[str], str] = _accept_all,
        transaction_ids: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.authorize = authorize
        self._new_id = transaction_ids or itertools.count(1).__next__
        self._m = messages_for("1.6")
        self.transactions: dict[int, CsmsTransaction16] = {}
        self._by_start: dict[tuple[Any, ...], int] = {}

    def open_transactions(self) -> list[CsmsTransaction16]:
        """The transactions not stopped yet (what another process needs to go on)."""
        return [tx for tx in self.transactions.values() if tx.stopped is None]

    def restore(self, transactions: list[CsmsTransaction16]) -> None:
        """Know ``transactions`` (from ``open_transactions()`` elsewhere): their Stop,
        MeterValues and a retried Start are recognised here."""
        for tx in transactions:
            self.transactions[tx.transaction_id] = tx
            self._by_start[(tx.connector_id, tx.id_tag, tx.meter_start, tx.started)] = (
                tx.transaction_id
            )

    def _info(self, id_tag: str) -> Any:
        return self._m.IdTagInfo(status=self._m.AuthorizationStatus(self.authorize(id_tag)))

    def handle_event(self, event: Event, now: float) -> bool:
        if not isinstance(event, RequestReceived):
            return False
        request = event.request
        m = self._m
        if event.action == "StartTransaction":
            key = (request.connector_id, request.id_tag, request.meter_start, request.timestamp)
            known = self._by_start.get(key)
            # A retried Start repeats its content; one of a stopped transaction cannot be a
            # retry (its Stop only left after the Start's answer), so it starts a new one.
            duplicate = known is not None and self.transactions[known].stopped is None
            if not duplicate:
                number = self._by_start[key] = self._new_id()
                self.transactions[number] = CsmsTransaction16(
                    transaction_id=number,
                    connector_id=request.connector_id,
                    id_tag=request.id_tag,
                    meter_start=request.meter_start,
                    started=request.timestamp,
                )
            number = self._by_start[key]
            response = m.StartTransactionResponse(
                id_tag_info=self._info(request.id_tag), transaction_id=number
            )
            self.core.send_response(event.message_id, response, now)
            self._emit(
                TransactionReport(
                    action=event.action,
                    transaction_id=number,
                    request=request,
                    duplicate=duplicate,
                )
            )
            return True
        if event.action == "StopTransaction":
            info = self._info(request.id_tag) if request.id_tag is not None else None
            self.core.send_response(
                event.message_id, m.StopTransactionResponse(id_tag_info=info), now
            )
            tx = self.transactions.get(request.transaction_id)
            duplicate = False
            if tx is None:
                self._anomaly(event.action, request.transaction_id, "unknown transactionId")
            elif tx.stopped is not None:
                duplicate = (tx.stopped, tx.meter_stop) == (request.timestamp, request.meter_stop)
                if not duplicate:
                    self._anomaly(event.action, request.transaction_id, "already stopped")
            else:
                tx.stopped, tx.meter_stop = request.timestamp, request.meter_stop
            self._emit(
                TransactionReport(
                    action=event.action,
                    transaction_id=request.transaction_id,
                    request=request,
                    duplicate=duplicate,
                )
            )
            return True
        if event.action == "MeterValues" and request.transaction_id is not None:
            self.core.send_response(event.message_id, m.MeterValuesResponse(), now)
            tx = self.transactions.get(request.transaction_id)
            if tx is None:
                self._anomaly(event.action, request.transaction_id, "unknown transactionId")
            elif tx.stopped is not None:
                self._anomaly(event.action, request.transaction_id, "after StopTransaction")
            self._emit(
                TransactionReport(
                    action=event.action, transaction_id=request.transaction_id, request=request
                )
            )
            return True
        return False

    def _anomaly(self, action: str, transaction_id: int | str | None, problem: str) -> None:
        self._emit(
            TransactionAnomaly(action=action, transaction_id=transaction_id, problem=problem)
        )


# --- 2.x, station side -------------------------------------------------------------------


def uuid_transaction_ids(rng: random.Random) -> Callable[[], str]:
    """Transaction ids as version-4 UUIDs from ``rng`` (UUIDs are what E01.FR.08 suggests;
    seed the RNG from a real entropy source so ids stay unique across reboots)."""
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


@attrs.define(eq=False)
class Transaction2:
    """One 2.x transaction as the station knows it."""

    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    state: TransactionState = TransactionState.RUNNING
    #: The seqNo the next TransactionEvent gets.
    next_seq_no: int = 0
    id_token: Any = None


@attrs.frozen(kw_only=True)
class TransactionEventDiscarded(FlowEvent):
    """A TransactionEvent failed on its last attempt and was dropped (E13.FR.04): the CSMS
    will see a gap at ``seq_no``."""

    transaction: Transaction2
    seq_no: int
    event_type: str


@attrs.frozen(kw_only=True)
class TransactionEventAnswered(FlowEvent):
    """The CSMS answered a TransactionEvent (its idTokenInfo, costs, limits …)."""

    transaction: Transaction2
    seq_no: int
    response: Any


class TransactionEvents(Emitter, WallClocked):
    """The station side of 2.x transactions: Started, then Updated ones, then Ended.

    The station makes the transactionId (``transaction_ids``: see
    ``uuid_transaction_ids``). seqNo starts at 0 for every transaction and grows by one per
    TransactionEvent (E04.FR.04; "SHOULD start at 0" in the sequence-number rules: with one
    transaction per EVSE at a time (E01.FR.14) a per-transaction counter is the per-EVSE
    counter reset at each start). An event generated while the station is offline carries
    ``offline`` true (E04.FR.03). Anything that breaks Started → Updated* → Ended raises
    LocalProtocolError.
    """

    def __init__(
        self,
        core: Any,
        *,
        transaction_ids: Callable[[], str],
        settings: Settings | None = None,
        clock: WallClock | None = None,
        activity: Activity | None = None,
        meter_schedule: Any = None,
    ) -> None:
        super().__init__()
        if core.version == "1.6":
            raise LocalProtocolError("TransactionEvents is OCPP 2.0.1 / 2.1; use Transactions16")
        self.core = core
        self._new_id = transaction_ids
        self.settings: Settings = settings or NoSettings()
        self._own_clock = clock
        self.activity = activity
        self.meter_schedule = meter_schedule
        self._m = messages_for(core.version)
        self._info_fields = {f.name for f in attrs.fields(self._m.Transaction)}
        self._running: dict[str, Transaction2] = {}
        self._sent: dict[str, tuple[Transaction2, int, str]] = {}

    @property
    def running(self) -> list[Transaction2]:
        return list(self._running.values())

    def transaction_on(self, evse_id: int) -> Transaction2 | None:
        return next((t for t in self._running.values() if t.evse_id == evse_id), None)

    def start(
        self,
        *,
        trigger_reason: str,
        now: float,
        evse_id: int | None = None,
        connector_id: int | None = None,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> Transaction2:
        """Start a transaction and send TransactionEvent(Started). ``fields`` go to the
        request (id_token, meter_value, reservation_id …) or to its transactionInfo
        (charging_state, remote_start_id …)."""
        self._check_evse(None, evse_id)
        tx = Transaction2(self._new_id(), evse_id, connector_id)
        if tx.transaction_id in self._running:
            raise LocalProtocolError(f"transactionId {tx.transaction_id!r} is in use (E01.FR.08)")
        self._send(tx, "Started", trigger_reason, now, timestamp, fields)
        self._running[tx.transaction_id] = tx
        if self.activity is not None and evse_id is not None:
            self.activity.transaction_started(tx.transaction_id, evse_id, now)
        if self.meter_schedule is not None and evse_id is not None:
            self.meter_schedule.transaction_started(tx, evse_id, now)
        return tx

    def update(
        self,
        tx: Transaction2,
        *,
        trigger_reason: str,
        now: float,
        evse_id: int | None = None,
        connector_id: int | None = None,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Send TransactionEvent(Updated). Give ``evse_id``/``connector_id`` once the EVSE
        becomes known (E01.FR.16)."""
        self._require_running(tx)
        if evse_id is not None and evse_id != tx.evse_id:
            self._check_evse(tx, evse_id)
            first = tx.evse_id is None
            tx.evse_id = evse_id
            if first and self.activity is not None:
                self.activity.transaction_started(tx.transaction_id, evse_id, now)
            if first and self.meter_schedule is not None:
                self.meter_schedule.transaction_started(tx, evse_id, now)
        if connector_id is not None:
            tx.connector_id = connector_id
        self._send(tx, "Updated", trigger_reason, now, timestamp, fields)

    def end(
        self,
        tx: Transaction2,
        *,
        trigger_reason: str,
        now: float,
        stopped_reason: str | None = None,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Send TransactionEvent(Ended); ``stopped_reason`` may be left out only when the
        driver ended it locally (E06.FR.08/09)."""
        self._require_running(tx)
        if stopped_reason is not None:
            fields["stopped_reason"] = stopped_reason
        self._send(tx, "Ended", trigger_reason, now, timestamp, fields)
        tx.state = TransactionState.STOPPED
        del self._running[tx.transaction_id]
        if self.meter_schedule is not None:
            self.meter_schedule.transaction_ended(tx)
        if self.activity is not None and tx.evse_id is not None:
            self.activity.transaction_ended(tx.transaction_id, now)

    def _require_running(self, tx: Transaction2) -> None:
        if self._running.get(tx.transaction_id) is not tx:
            raise LocalProtocolError(
                f"transaction {tx.transaction_id!r} is not running: nothing follows Ended"
            )

    def _check_evse(self, tx: Transaction2 | None, evse_id: int | None) -> None:
        if evse_id is None:
            return
        if evse_id < 1:
            raise LocalProtocolError("a transaction runs on an EVSE numbered from 1")
        other = self.transaction_on(evse_id)
        if other is not None and other is not tx:
            raise LocalProtocolError(
                f"EVSE {evse_id} already has transaction {other.transaction_id!r} (E01.FR.14)"
            )

    def _send(
        self,
        tx: Transaction2,
        event_type: str,
        trigger_reason: str,
        now: float,
        timestamp: datetime | None,
        fields: dict[str, Any],
    ) -> None:
        m = self._m
        info = {k: fields.pop(k) for k in list(fields) if k in self._info_fields}
        try:
            reason = m.TriggerReasonEnum(trigger_reason)
            for name, enum_type in (
                ("charging_state", m.ChargingStateEnum),
                ("stopped_reason", m.ReasonEnum),
            ):
                if isinstance(info.get(name), str):
                    info[name] = enum_type(info[name])
        except ValueError as error:
            raise InvalidPayloadError(str(error), "$") from None
        if "id_token" in fields and fields["id_token"] is not None:
            tx.id_token = fields["id_token"]
        evse = None
        if tx.evse_id is not None:
            evse = m.EVSE(id=tx.evse_id, connector_id=tx.connector_id)
        request = m.TransactionEventRequest(
            event_type=m.TransactionEventEnum(event_type),
            timestamp=timestamp or self.clock(now),
            trigger_reason=reason,
            seq_no=tx.next_seq_no,
            transaction_info=m.Transaction(transaction_id=tx.transaction_id, **info),
            offline=True if not self.core.connected else None,  # E04.FR.03
            evse=evse,
            **fields,
        )
        message_id = self.core.send_request(request, now)
        self._sent[message_id] = (tx, tx.next_seq_no, event_type)
        tx.next_seq_no += 1

    def handle_event(self, event: Event, now: float) -> bool:
        """Follow our TransactionEvents; True when ``event`` settled one of them."""
        if isinstance(event, ResponseReceived) and event.message_id in self._sent:
            tx, seq_no, _ = self._sent.pop(event.message_id)
            self._emit(
                TransactionEventAnswered(transaction=tx, seq_no=seq_no, response=event.response)
            )
            info = event.response.id_token_info
            if (
                info is not None
                and str(info.status) != ACCEPTED
                and self._running.get(tx.transaction_id) is tx
            ):
                self._emit(
                    TransactionDeauthorized(
                        transaction=tx,
                        status=str(info.status),
                        info=info,
                        stop_transaction=read_bool(
                            self.settings, "TxCtrlr.StopTxOnInvalidId", True
                        ),
                    )
                )
            return True
        if isinstance(event, TransactionMessageDiscarded) and event.message_id in self._sent:
            tx, seq_no, event_type = self._sent.pop(event.message_id)
            self._emit(
                TransactionEventDiscarded(transaction=tx, seq_no=seq_no, event_type=event_type)
            )
            return True
        return False

    # --- across a restart (docs/store.md)

    def snapshot(self) -> tuple[Transaction2, ...]:
        """The running transactions, with the seqNo each continues from: what a restart
        must not lose (the held TransactionEvents are the core's)."""
        return tuple(attrs.evolve(tx) for tx in self._running.values())

    def restore(self, transactions: Iterable[Transaction2], now: float) -> list[Transaction2]:
        """Take back a previous power-up's running transactions, before anything else
        happens, and follow the TransactionEvents the core took back from its store (their
        seqNos count: the next one continues after the highest, without a gap or a repeat).
        Returns the running ones: they were interrupted. End them (triggerReason
        AbnormalCondition, stoppedReason PowerLoss, or Reboot after a local fault:
        E17.FR.20-22), or in 2.1 resume them (Updated with triggerReason TxResumed,
        E17.FR.10/14)."""
        if self._running or self._sent:
            raise LocalProtocolError("restore a TransactionEvents before it starts anything")
        known = {tx.transaction_id: tx for tx in transactions}
        self._running = {
            tx_id: tx for tx_id, tx in known.items() if tx.state is TransactionState.RUNNING
        }
        for message_id, request in self.core.held_calls:
            if type(request) is not self._m.TransactionEventRequest:
                continue
            tx_id = request.transaction_info.transaction_id
            tx = known.get(tx_id)
            if tx is None:  # (kept without the flow's state: follow it all the same)
                evse = request.evse
                tx = known[tx_id] = Transaction2(
                    tx_id,
                    evse.id if evse is not None else None,
                    evse.connector_id if evse is not None else None,
                )
                self._running[tx_id] = tx
            kind = str(request.event_type)
            if kind == "Ended":
                tx.state = TransactionState.STOPPED
                self._running.pop(tx_id, None)
            tx.next_seq_no = max(tx.next_seq_no, request.seq_no + 1)
            self._sent[message_id] = (tx, request.seq_no, kind)
        interrupted = list(self._running.values())
        for tx in interrupted:
            if tx.evse_id is None:
                continue
            if self.activity is not None:
                self.activity.transaction_started(tx.transaction_id, tx.evse_id, now)
            if self.meter_schedule is not None:
                self.meter_schedule.transaction_started(tx, tx.evse_id, now)
        return interrupted


# --- 2.x, CSMS side ----------------------------------------------------------------------


@attrs.define(eq=False)
class CsmsTransaction2:
    transaction_id: str
    seq_nos: set[int] = attrs.field(factory=set)
    started_seq_no: int | None = None
    ended_seq_no: int | None = None
    offline_events: int = 0


@attrs.frozen(kw_only=True)
class TransactionCompleted(FlowEvent):
    """CSMS side: the transaction's Ended event arrived; ``missing`` lists the seqNos
    between Started and Ended never received (empty: the CSMS has it all)."""

    transaction_id: str
    missing: tuple[int, ...]


class CsmsTransactionEvents(Emitter):
    """The CSMS side of 2.x transactions: answers every TransactionEvent (with
    idTokenInfo when it carries an idToken, E01.FR.12), follows each transaction's seqNos,
    recognises retries, and says when a transaction is complete.

    ``authorize(id_token)`` returns the AuthorizationStatus (default: Accepted).
    """

    def __init__(self, core: Any, *, authorize: Callable[[Any], str] = _accept_all) -> None:
        super().__init__()
        self.core = core
        self.authorize = authorize
        self._m = messages_for(core.version)
        self.transactions: dict[str, CsmsTransaction2] = {}

    def open_transactions(self) -> list[CsmsTransaction2]:
        """The transactions whose Ended event has not come (what another process needs
        to go on)."""
        return [tx for tx in self.transactions.values() if tx.ended_seq_no is None]

    def restore(self, transactions: list[CsmsTransaction2]) -> None:
        """Know ``transactions`` (from ``open_transactions()`` elsewhere): their seqNos,
        retries and Ended event are followed here."""
        for tx in transactions:
            self.transactions[tx.transaction_id] = tx

    def handle_event(self, event: Event, now: float) -> bool:
        if not (isinstance(event, RequestReceived) and event.action == "TransactionEvent"):
            return False
        m = self._m
        request = event.request
        info = None
        if request.id_token is not None:
            info = m.IdTokenInfo(status=m.AuthorizationStatusEnum(self.authorize(request.id_token)))
        self.core.send_response(
            event.message_id, m.TransactionEventResponse(id_token_info=info), now
        )
        tx_id = request.transaction_info.transaction_id
        kind = str(request.event_type)
        tx = self.transactions.get(tx_id)
        if tx is None:
            tx = self.transactions[tx_id] = CsmsTransaction2(tx_id)
            if kind != "Started":
                self._anomaly(tx_id, f"{kind} before Started")
        duplicate = request.seq_no in tx.seq_nos
        tx.seq_nos.add(request.seq_no)
        if request.offline:
            tx.offline_events += 1
        if not duplicate:
            if kind == "Started":
                if tx.started_seq_no is not None:
                    self._anomaly(tx_id, "a second Started")
                tx.started_seq_no = request.seq_no
            elif tx.ended_seq_no is not None:
                self._anomaly(tx_id, f"{kind} after Ended")
            if kind == "Ended":
                tx.ended_seq_no = request.seq_no
        self._emit(
            TransactionReport(
                action="TransactionEvent",
                transaction_id=tx_id,
                request=request,
                duplicate=duplicate,
            )
        )
        if kind == "Ended" and not duplicate:
            first = tx.started_seq_no if tx.started_seq_no is not None else min(tx.seq_nos)
            missing = tuple(n for n in range(first, request.seq_no) if n not in tx.seq_nos)
            self._emit(TransactionCompleted(transaction_id=tx_id, missing=missing))
        return True

    def _anomaly(self, transaction_id: str, problem: str) -> None:
        self._emit(
            TransactionAnomaly(
                action="TransactionEvent", transaction_id=transaction_id, problem=problem
            )
        )
