"""A station core and a CSMS core wired together in memory, driven by hypothesis.stateful.

Random application actions, random CSMS policies (accept / pending / reject with random
intervals, errors, silence, triggers, remote starts), drops and reconnects, on a virtual
clock. After every step an observer that reads only the wire checks the rules: one outstanding
CALL (FR.01), nothing before the boot (B01.FR.08), Pending (B02.FR.02), Rejected (B03.FR.02,
B03.FR.08), the trigger's answer first (F06.FR.04), transaction messages held and retried
(E04.FR.01, E13.FR.02/03).
"""

from __future__ import annotations

import json
import random
from typing import Any

import attrs
from _corekit import (
    MODULES,
    CsmsApp,
    StationApp,
    boot_request,
    make_pair,
    request,
    status_notification,
    transaction_message,
    transaction_number,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ocpp_sansio import LocalProtocolError
from ocpp_sansio._core import counter_ids
from ocpp_sansio.config import StationConfig
from ocpp_sansio.events import (
    RegistrationStatus,
    ResponseReceived,
    TransactionMessageDiscarded,
)
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION, Sent

CALL_TIMEOUT = 20.0
RETRY_INITIAL = 10.0
TX_ACTIONS = ("StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent")
REMOTE = {
    "1.6": ("RemoteStartTransaction", "RemoteStopTransaction"),
    "2.0.1": ("RequestStartTransaction", "RequestStopTransaction"),
    "2.1": ("RequestStartTransaction", "RequestStopTransaction"),
}


@attrs.define
class WireObserver:
    """Reads the transcript frame by frame and asserts the rules, knowing nothing of the
    cores' insides."""

    version: str
    #: Per direction: the CALL awaiting its answer (message id, action, time sent).
    open_call: dict[str, tuple[str, str, float] | None] = attrs.field(
        factory=lambda: {TO_CSMS: None, TO_STATION: None}
    )
    calls: dict[str, dict[str, str]] = attrs.field(factory=lambda: {TO_CSMS: {}, TO_STATION: {}})
    #: Registration as the station learnt it, and as the CSMS answered it.
    station_view: str = "Booting"
    csms_view: str | None = None
    silent_until: float = 0.0
    #: Actions the station may send while Pending: triggered ones, per accepted trigger.
    triggered: list[str] = attrs.field(factory=list)
    seen: int = 0

    def connection_reset(self) -> None:
        self.open_call = {TO_CSMS: None, TO_STATION: None}
        self.triggered.clear()

    def read(self, transcript: list[Sent]) -> None:
        while self.seen < len(transcript):
            self.seen += 1  # (first: a failed check must not be read again)
            self._frame(transcript[self.seen - 1])

    def _frame(self, sent: Sent) -> None:
        msg = json.loads(sent.text)
        kind, message_id = msg[0], msg[1]
        direction = sent.direction
        back = TO_STATION if direction == TO_CSMS else TO_CSMS
        if kind == 2:
            self._call(sent, msg)
            return
        # An answer: it closes the receiver's view of the other side's CALL.
        action = self.calls[back].get(message_id)
        pending = self.open_call[back]
        if sent.delivered and pending is not None and pending[0] == message_id:
            self.open_call[back] = None
        if (
            direction == TO_CSMS
            and self.station_view == "Rejected"
            and sent.time < self.silent_until
        ):
            # B03.FR.08: a 2.x Rejected station only answers SecurityError; 1.6 nothing.
            assert self.version != "1.6", "a Rejected 1.6 station answered"
            assert kind == 4 and msg[2] == "SecurityError", "Rejected station answered otherwise"
        if kind != 3 or action is None:
            return
        if direction == TO_STATION and action == "BootNotification":
            status, interval = msg[2]["status"], msg[2]["interval"]
            self.csms_view = status
            if sent.delivered:
                self.station_view = status
                wait = interval if interval > 0 else RETRY_INITIAL
                self.silent_until = sent.time + wait if status != "Accepted" else 0.0
                if status == "Rejected":
                    # A new Pending answer keeps what earlier triggers allowed; Rejected ends it.
                    self.triggered.clear()
        is_trigger = action in ("TriggerMessage", "ExtendedTriggerMessage")
        if direction == TO_CSMS and is_trigger and msg[2]["status"] == "Accepted":
            self.triggered.append(self.calls[back].get(message_id + "#requested", ""))

    def _call(self, sent: Sent, msg: list[Any]) -> None:
        direction, message_id, action, payload = sent.direction, msg[1], msg[2], msg[3]
        pending = self.open_call[direction]
        # FR.01: one outstanding CALL per direction, until answered or timed out.
        if pending is not None:
            assert sent.time >= pending[2] + CALL_TIMEOUT, (
                f"{action} sent while {pending[1]} is outstanding"
            )
        self.open_call[direction] = (message_id, action, sent.time)
        self.calls[direction][message_id] = action
        if action in ("TriggerMessage", "ExtendedTriggerMessage"):
            self.calls[direction][message_id + "#requested"] = payload["requestedMessage"]
        if direction == TO_STATION:
            # B03.FR.03 and B02: what the CSMS may not send.
            assert self.csms_view != "Rejected", f"CSMS sent {action} to a Rejected station"
            if self.csms_view == "Pending":
                assert action not in REMOTE[self.version], f"{action} sent to a Pending station"
            return
        view = self.station_view
        if view == "Booting":
            assert action == "BootNotification", (
                f"{action} before the boot was answered (B01.FR.08)"
            )
        elif view == "Rejected":
            assert sent.time >= self.silent_until, "Rejected station spoke before the interval"
            assert action == "BootNotification", f"Rejected station sent {action}"
        elif view == "Pending" and action != "BootNotification":
            requested = {_triggered_action(self.version, t) for t in self.triggered}
            assert action in requested, f"Pending station sent {action} untriggered (B02.FR.02)"


def _triggered_action(version: str, requested: str) -> str:
    return {
        "SignChargePointCertificate": "SignCertificate",
        "SignChargingStationCertificate": "SignCertificate",
    }.get(requested, requested)


class StationCsmsModel(RuleBasedStateMachine):
    @initialize(
        version=st.sampled_from(["1.6", "2.0.1", "2.1"]),
        status=st.sampled_from(["Accepted", "Pending", "Rejected"]),
        interval=st.sampled_from([0, 5, 30, 300]),
    )
    def start(self, version: str, status: str, interval: int) -> None:
        self.version = version
        self.csms_app = CsmsApp(version, boot_status=status, interval=interval)
        self.config = config = StationConfig(
            call_timeout=CALL_TIMEOUT,
            boot_retry_initial=RETRY_INITIAL,
            boot_retry_max=120,
            transaction_message_attempts=3,
            transaction_message_retry_interval=15,
            connectors=2,
        )
        self.pair = make_pair(
            version,
            csms_app=self.csms_app,
            station_app=StationApp(version),
            station_config=config,
            connect=False,
        )
        self.observer = WireObserver(version)
        self.drop_next: set[str] = set()
        self.pair.drop = self._drop
        self.submitted: list[int] = []
        self.next_tx = 1
        self.pair.connect()

    def _drop(self, direction: str, text: str) -> bool:
        if direction in self.drop_next:
            self.drop_next.discard(direction)
            return True
        return False

    # --- the CSMS's policy and requests ----------------------------------------------------

    @rule(
        status=st.sampled_from(["Accepted", "Pending", "Rejected"]),
        interval=st.sampled_from([0, 5, 30, 300]),
    )
    def csms_boot_policy(self, status: str, interval: int) -> None:
        self.csms_app.boot_status = status
        self.csms_app.interval = interval

    @rule(fail=st.booleans(), silent=st.booleans())
    def csms_transaction_policy(self, fail: bool, silent: bool) -> None:
        tx = {a for a in TX_ACTIONS if a in self.pair.station.registry}
        self.csms_app.error_for = tx if fail else set()
        self.csms_app.silent_for = tx if silent else set()

    @rule(
        what=st.sampled_from(
            ["StatusNotification", "Heartbeat", "BootNotification", "MeterValues"]
        ),
        connector=st.sampled_from([None, 1, 2]),
    )
    def csms_triggers(self, what: str, connector: int | None) -> None:
        m = MODULES[self.version]
        if self.version == "1.6":
            payload = m.TriggerMessageRequest(
                requested_message=m.MessageTrigger(what), connector_id=connector
            )
        else:
            evse = None if connector is None else m.EVSE(id=connector, connector_id=1)
            payload = m.TriggerMessageRequest(
                requested_message=m.MessageTriggerEnum(what), evse=evse
            )
        self._csms_send(payload)

    @rule(start=st.booleans())
    def csms_remote_control(self, start: bool) -> None:
        action = REMOTE[self.version][0 if start else 1]
        self._csms_send(request(self.version, action))

    def _csms_send(self, payload: Any) -> None:
        csms = self.pair.csms
        if not csms.connected:
            return
        status = csms.registration
        action = csms.registry.for_payload(payload).name
        try:
            csms.send_request(payload, self.pair.now)
        except LocalProtocolError:
            assert status is RegistrationStatus.REJECTED or (
                status is RegistrationStatus.PENDING and action in REMOTE[self.version]
            )
        else:
            assert status is not RegistrationStatus.REJECTED
        self.pair.flush()

    # --- the station application ------------------------------------------------------------

    @rule(connector=st.sampled_from([1, 2]))
    def station_status(self, connector: int) -> None:
        station = self.pair.station
        try:
            station.send_request(status_notification(self.version, connector), self.pair.now)
        except LocalProtocolError:
            assert not (station.connected and station.registration is RegistrationStatus.ACCEPTED)
        self.pair.flush()

    @rule()
    def station_transaction_message(self) -> None:
        n = self.next_tx
        self.next_tx += 1
        self.pair.station.send_request(transaction_message(self.version, n), self.pair.now)
        self.submitted.append(n)
        self.pair.flush()

    # --- the network and the clock -----------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 4, 11, 25, 61, 130, 400]))
    def time_passes(self, seconds: float) -> None:
        self.pair.advance(seconds)

    @rule(direction=st.sampled_from([TO_CSMS, TO_STATION]))
    def drop_next_frame(self, direction: str) -> None:
        self.drop_next.add(direction)

    @rule()
    def connection_drops_and_returns(self) -> None:
        self.pair.disconnect()
        self.observer.read(self.pair.transcript)
        self.observer.connection_reset()
        self.pair.advance(3)
        self.pair.connect()

    @rule()
    def station_reboots(self) -> None:
        """A new power-up: a new core boots; held transaction messages were persisted."""
        held = self.pair.station.held_requests
        self.pair.disconnect()
        self.observer.read(self.pair.transcript)
        self.observer.connection_reset()
        self.observer.station_view = "Booting"
        self.pair.station = StationCore(
            self.version,
            boot_request(self.version),
            config=self.config,
            id_generator=counter_ids(f"r{len(self.pair.transcript)}-"),
            rng=random.Random(2),
        )
        for payload in held:
            self.pair.station.send_request(payload, self.pair.now)
        self.pair.connect()

    # --- checks ---------------------------------------------------------------------------------

    @invariant()
    def wire_follows_the_rules(self) -> None:
        if hasattr(self, "observer"):
            self.observer.read(self.pair.transcript)

    @invariant()
    def transaction_messages_settle_once_and_in_order(self) -> None:
        if not hasattr(self, "pair"):
            return
        settled = self._settled()
        assert len(settled) == len(set(settled)), f"settled twice: {settled}"
        assert settled == self.submitted[: len(settled)], f"out of order: {settled}"

    def _settled(self) -> list[int]:
        out = []
        for event in self.pair.station_events:
            if (
                isinstance(event, ResponseReceived | TransactionMessageDiscarded)
                and event.action in TX_ACTIONS
            ):
                out.append(transaction_number(self.version, event.request))
        return out

    def teardown(self) -> None:
        if not hasattr(self, "pair"):
            return
        # Heal everything; every transaction message must then settle.
        self.drop_next.clear()
        self.csms_app.boot_status = "Accepted"
        self.csms_app.error_for = set()
        self.csms_app.silent_for = set()
        if not self.pair.connected:
            self.pair.connect()
        self.pair.advance(3000)
        self.observer.read(self.pair.transcript)
        assert self.pair.station.registration is RegistrationStatus.ACCEPTED
        assert self._settled() == self.submitted
        assert self.pair.station.held_requests == []


StationCsmsModel.TestCase.settings = settings(
    max_examples=250, stateful_step_count=40, deadline=None
)
test_station_csms_model = StationCsmsModel.TestCase
