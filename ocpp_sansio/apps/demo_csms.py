"""The demo central system, for every adapter: its policy as flows every station's core
hosts, and the demonstration script.

``DemoCsms`` hands ``serve()`` a core factory (``core``), a flows factory (``flows``) and a
frame observer (``observe``, which logs each frame to the console when one is given): the
transaction flow gives 1.6 transactions their ids and answers 2.x TransactionEvents
(authorizing everyone), the DataTransfer router answers UnknownVendorId (no vendor is
registered), and ``DemoAnswers`` applies the boot policy (``--boot``,
``--heartbeat-interval``), accepts every Authorize and acknowledges the rest. With a
``store`` (``open_csms_store``), each station's core keeps its registration and its answers
to transaction messages there, and its transaction flow the open transactions: a restarted
demo CSMS serves the stations that resume without a boot (B04) and recognises the retries
and the ends of transactions they began before. ``EXERCISE`` is what the ``demo`` command
asks of each station once it is accepted; the adapters' glue (in ``cli``) runs it.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import attrs

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import Event, RequestReceived
from ocpp_sansio.flows import CsmsTransactionEvents, CsmsTransactions16, DataTransferRouter
from ocpp_sansio.flows._base import FlowEvent, WallClock, build, wall_clock_of
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.store import CsmsStore
from ocpp_sansio.store.keeper import CsmsKeeper
from ocpp_sansio.testing.builders import minimal

#: The --boot choices and the registration status each answers with.
BOOT_STATUSES = {"accept": "Accepted", "pending": "Pending", "reject": "Rejected"}
DEMO_ID_TAG = "DEMO-TAG-1"


class FrameSink(Protocol):
    """Where the demo logs each frame as it crosses (the CLI's console)."""

    def frame(self, identity: str, sender: str, text: str) -> None: ...


@attrs.frozen(kw_only=True)
class BootAnswered(FlowEvent):
    """The demo CSMS answered a BootNotification with ``status``."""

    status: str


class DemoAnswers:
    """The demo CSMS's own flow, last in line: what no other flow took. BootNotification
    by the boot policy, Heartbeat with the time, Authorize Accepted, certificate requests
    refused, everything else acknowledged with its smallest valid answer."""

    def __init__(self, core: CsmsCore, demo: DemoCsms) -> None:
        self.core = core
        self.demo = demo
        self._m = messages_for(core.version)
        self._events: list[FlowEvent] = []

    def handle_event(self, event: Event, now: float) -> bool:
        if not isinstance(event, RequestReceived):
            return False
        cls = self.core.registry[event.action].response
        if cls is not None:  # (a 2.1 SEND is never answered)
            self.core.send_response(event.message_id, self._answer(event.action, cls, now), now)
        return True

    def _wall_time(self, now: float) -> datetime:
        """The demo's wall clock, else the core's (the adapters set it)."""
        return wall_clock_of(self.demo.wall_clock, self.core)(now)

    def _answer(self, action: str, cls: type, now: float) -> Any:
        m = self._m
        if action == "BootNotification":
            status = self.demo.boot_status
            self._events.append(BootAnswered(status=status))
            return build(
                cls,
                status=status,
                current_time=self._wall_time(now),
                interval=self.demo.heartbeat_interval,
            )
        if action == "Heartbeat":
            return cls(current_time=self._wall_time(now))
        if action == "Authorize":
            if self.core.version == "1.6":
                return cls(id_tag_info=build(m.IdTagInfo, status="Accepted"))
            return cls(id_token_info=build(m.IdTokenInfo, status="Accepted"))
        if action == "SignCertificate":
            return build(cls, status="Rejected")
        if action in ("Get15118EVCertificate", "GetCertificateStatus", "GetCertificateChainStatus"):
            return minimal(cls, status=attrs.fields(cls).status.type("Failed"))
        return minimal(cls)

    def events(self) -> list[FlowEvent]:
        # A copy, and the list kept (a list swapped in per message would outlive it).
        out = self._events.copy()
        self._events.clear()
        return out


class DemoCsms:
    """The demo CSMS's policy, shared by every station and adapter: pass ``core``,
    ``flows`` and ``observe`` to ``serve()``'s options (``ServerOptions(core_factory=,
    flows=, observer=)``). ``store``: where the stations' registrations, answers and open
    transactions outlive the process (1.6 transactionIds then count per station, from the
    store). ``transaction_ids``: where 1.6 transactionIds come from without a store
    (default: 1, 2, 3 … in this process; a cluster node passes numbers unique across the
    cluster)."""

    def __init__(
        self,
        *,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 300,
        log: FrameSink | None = None,
        wall_clock: WallClock | None = None,
        store: CsmsStore | None = None,
        transaction_ids: Callable[[], int] | None = None,
    ) -> None:
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self.log = log
        self.wall_clock = wall_clock
        self.store = store
        #: 1.6 transaction ids, unique across the stations of this CSMS.
        #: (``next`` on it is atomic in CPython, so threads adapter handlers may share it.)
        self._transaction_ids = transaction_ids or itertools.count(1).__next__
        #: Each station's transaction flow, by identity (case-folded), while its session
        #: keeps it: weakly, so a station the server evicts leaves nothing here.
        self._transactions: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def observe(self, direction: str, identity: str, version: str, text: str, _: datetime) -> None:
        """The frame observer: one line per frame on the console, if there is one."""
        if self.log is not None:
            self.log.frame(identity, "station" if direction == "received" else "csms", text)

    def core(self, identity: str, version: str) -> CsmsCore:
        """The core factory: a core with the station's part of ``store``."""
        store = self.store.station(identity) if self.store is not None else None
        return CsmsCore(version, identity, store=store)

    def flows(self, core: CsmsCore) -> list[Any]:
        """The flows factory: the CSMS-side flows in order, the demo's answers last; the
        transaction flow kept in the core's store, if it has one."""
        keeper = CsmsKeeper(core.store) if core.store is not None else None
        if core.version == "1.6":
            ids = keeper.transaction_ids() if keeper is not None else self._new_id
            transactions: Any = CsmsTransactions16(core, transaction_ids=ids)
        else:
            transactions = CsmsTransactionEvents(core)
        if keeper is not None:
            keeper.keep_transactions(transactions)
        self._transactions[core.identity.casefold()] = transactions
        return [transactions, DataTransferRouter(core), DemoAnswers(core, self)]

    def _new_id(self) -> int:
        return self._transaction_ids()

    def running_transaction(self, identity: str) -> Any:
        """The id of the station's latest transaction still running, or None."""
        flow = self._transactions.get(identity.casefold())
        if flow is None:
            return None
        running = [
            number
            for number, tx in list(flow.transactions.items())
            if getattr(tx, "stopped", None) is None and getattr(tx, "ended_seq_no", None) is None
        ]
        return running[-1] if running else None


# --- the demonstration script --------------------------------------------------------------------

Step = Callable[[DemoCsms, str, str], Any]
"""``step(csms, identity, version)``: the request to send, or None to skip this step."""


def _read_heartbeat(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return m.GetConfigurationRequest(key=["HeartbeatInterval", "NumberOfConnectors"])
    return m.GetVariablesRequest(
        get_variable_data=[
            m.GetVariableData(
                component=m.Component(name="OCPPCommCtrlr"),
                variable=m.Variable(name="HeartbeatInterval"),
            )
        ]
    )


def _trigger_status(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return build(
            m.TriggerMessageRequest, requested_message="StatusNotification", connector_id=1
        )
    return build(
        m.TriggerMessageRequest,
        requested_message="StatusNotification",
        evse=m.EVSE(id=1, connector_id=1),
    )


def _remote_start(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return m.RemoteStartTransactionRequest(id_tag=DEMO_ID_TAG, connector_id=1)
    return m.RequestStartTransactionRequest(
        id_token=build(m.IdToken, id_token=DEMO_ID_TAG, type="Central"),
        remote_start_id=1,
        evse_id=1,
    )


def _trigger_meter_values(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return build(m.TriggerMessageRequest, requested_message="MeterValues", connector_id=1)
    return build(m.TriggerMessageRequest, requested_message="MeterValues", evse=m.EVSE(id=1))


def _remote_stop(csms: DemoCsms, identity: str, version: str) -> Any:
    transaction_id = csms.running_transaction(identity)
    if transaction_id is None:
        return None
    m = messages_for(version)
    if version == "1.6":
        return m.RemoteStopTransactionRequest(transaction_id=transaction_id)
    return m.RequestStopTransactionRequest(transaction_id=transaction_id)


def _unknown_vendor(csms: DemoCsms, identity: str, version: str) -> Any:
    return messages_for(version).DataTransferRequest(
        vendor_id="com.example.unknown", message_id="Ping"
    )


#: What the demo CSMS asks of each accepted station, in order, with a pause between.
EXERCISE: tuple[Step, ...] = (
    _read_heartbeat,
    _trigger_status,
    _remote_start,
    _trigger_meter_values,
    _remote_stop,
    _unknown_vendor,
)
