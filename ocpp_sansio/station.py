"""The charging-station side: registration gating, heartbeats, held transaction messages,
retries and TriggerMessage, for one station across all its connections (B01-B04, F06, E04, E11-E13).

One ``StationCore`` lives as long as the station's power-up: it survives reconnects, and
resumes without a new BootNotification (B04). A reboot is a new ``StationCore``.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from ._core import CoreBase, WallClock, counter_ids, status_response
from .config import StationConfig
from .errors import FrameError, LocalProtocolError, StoreError, StoreMismatch
from .events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    ClockReport,
    Event,
    InvalidResponse,
    Reconnected,
    RegistrationChanged,
    RegistrationStatus,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    TransactionMessageDiscarded,
    TriggerAccepted,
)
from .frames import Call, decode_frame, encode_frame
from .messages._registry import Role
from .rules import (
    ACCEPTED,
    BOOTING,
    OFFLINE_RULE,
    PENDING,
    REJECTED,
    SCOPED_ACTIONS,
    TRIGGER_ACTIONS,
    is_transaction_message,
    scope_of,
    station_gate,
    station_refusal,
    triggered_action,
)
from .store._api import HeldMessage, StationCoreStore


@attrs.define(eq=False)
class _Outgoing:
    """A request waiting for, or on, the channel."""

    seq: int
    message_id: str
    action: str
    payload: Any
    text: str
    transactional: bool
    attempts: int = 0
    not_before: float = 0.0
    #: Allowed while Pending: a triggered message, or a requested NotifyReport.
    requested: bool = False


@attrs.define(eq=False)
class _OpenTrigger:
    message_id: str
    action: str
    remaining: set[int | None]
    expires: float


class StationCore(CoreBase):
    """The station's protocol state. Feed it text and time; read events and frames."""

    role = Role.STATION
    log = logging.getLogger("ocpp_sansio.station")

    def __init__(
        self,
        version: str,
        boot: Any,
        *,
        config: StationConfig | None = None,
        id_generator: Callable[[], str] | None = None,
        wall_clock: WallClock | None = None,
        rng: random.Random | None = None,
        store: StationCoreStore | None = None,
    ) -> None:
        config = config or StationConfig()
        super().__init__(
            version,
            call_timeout=config.call_timeout,
            id_generator=id_generator,
            wall_clock=wall_clock,
        )
        if self.registry.for_payload(boot).name != "BootNotification" or type(boot) is not (
            self.registry["BootNotification"].request
        ):
            raise LocalProtocolError("boot must be this version's BootNotification request")
        self.config = config
        self.boot_request = boot
        self._rng = rng or random.Random(0)
        self.registration = BOOTING
        self.heartbeat_interval = config.heartbeat_interval
        self._boot_at = 0.0
        self._boot_failures = 0
        self._heartbeat_at: float | None = None
        self._offline_since: float | None = None
        #: Accepted only by a boot on an earlier connection (resumed without a boot, B04).
        self._resumed = False
        self._seq = 0
        #: Transaction-related messages, in order, kept across connections.
        self._held: deque[_Outgoing] = deque()
        #: Other requests, per connection.
        self._queue: deque[_Outgoing] = deque()
        self._in_flight: _Outgoing | None = None
        self._triggers: list[_OpenTrigger] = []
        self._requested_reports: set[int] = set()
        #: Actions sent when a trigger asks: the core's own, then what flows registered.
        self._served_triggers: set[str] = {"BootNotification", "Heartbeat"}
        #: The next BootNotification answers a TriggerMessage (2.x reason Triggered).
        self._boot_triggered = False
        #: Where held transaction messages are kept across restarts (docs/store.md).
        self.store = store
        if store is not None:
            self._open_store(store, id_generator)

    # --- the application's requests -----------------------------------------------------

    def send_request(self, payload: Any, now: float) -> str:
        """Queue a request; returns its message id. Transaction-related messages are held
        while offline or not accepted; anything else that the registration state forbids
        raises LocalProtocolError at once (``may_send`` says beforehand)."""
        spec = self._spec_for_request(payload)
        action = spec.name
        refusal = self._refusal(action, payload, oneway=spec.response is None)
        if refusal is not None:
            raise LocalProtocolError(refusal)
        if spec.response is None:
            return self._send_oneway(action, payload)
        transactional = is_transaction_message(action, payload)
        requested = self._claim_trigger(action, payload) or self._claim_report(action, payload)
        entry = self._entry(action, payload, transactional, requested)
        if transactional:
            self._held.append(entry)
            if self.store is not None:
                self.store.hold(HeldMessage(entry.message_id, action, entry.text))
        else:
            self._queue.append(entry)
        self._pump(now)
        return entry.message_id

    def may_send(self, payload: Any) -> str | None:
        """Why ``send_request(payload)`` would be refused now, or None when the core would
        take it (send it, queue it, or hold it as a transaction message)."""
        try:
            spec = self._spec_for_request(payload)
        except LocalProtocolError as error:
            return str(error)
        return self._refusal(spec.name, payload, oneway=spec.response is None)

    def _refusal(self, action: str, payload: Any, *, oneway: bool) -> str | None:
        if action == "BootNotification":
            return "the core sends BootNotification itself (at start, on retry, on trigger)"
        state = self.registration
        if oneway or not is_transaction_message(action, payload):
            if not self.connected:
                return f"cannot send {action}: {OFFLINE_RULE}"
            requested = not oneway and self._is_requested(action, payload)
            rule = station_gate(state, requested)
            if rule is not None:
                return f"cannot send {action} in state {state.value}: {rule}"
            if not oneway and len(self._queue) >= self.config.max_queued_requests:
                return f"{self.config.max_queued_requests} requests are already queued"
            return None
        if len(self._held) >= self.config.max_held_messages:
            return f"{self.config.max_held_messages} transaction messages are already held"
        return None

    def _send_oneway(self, action: str, payload: Any) -> str:
        """2.1 SEND: never answered, may cross our outstanding CALL (FR.07)."""
        channel = self._require_channel(f"send {action}")
        message_id = self._new_id()
        channel.send(message_id, action, payload)
        return message_id

    def _entry(self, action: str, payload: Any, transactional: bool, requested: bool) -> _Outgoing:
        message_id = self._new_id()
        text = encode_frame(Call(message_id=message_id, action=action, payload=payload))
        self._seq += 1
        return _Outgoing(
            self._seq, message_id, action, payload, text, transactional, requested=requested
        )

    @property
    def held_calls(self) -> list[tuple[str, Any]]:
        """(message id, request) of the transaction-related messages not yet delivered,
        oldest first: flows restored after a restart follow them by id."""
        items = [(entry.message_id, entry.payload) for entry in self._held]
        if self._in_flight is not None and self._in_flight.transactional:
            items.insert(0, (self._in_flight.message_id, self._in_flight.payload))
        return items

    @property
    def held_requests(self) -> list[Any]:
        """Transaction-related requests not yet delivered, oldest first. With a ``store``
        they survive a restart on their own (docs/store.md); without one, submit them
        again to the next core."""
        items = [entry.payload for entry in self._held]
        if self._in_flight is not None and self._in_flight.transactional:
            items.insert(0, self._in_flight.payload)
        return items

    # --- the durable store (docs/store.md) ------------------------------------------------

    def _open_store(self, store: StationCoreStore, id_generator: Callable[[], str] | None) -> None:
        """A new power-up: count it, and take back the messages an earlier one left."""
        if store.version != self.version:
            raise StoreMismatch(
                f"the store holds OCPP {store.version} state; this core speaks {self.version}"
            )
        power_up = store.begin_power_up()
        if id_generator is None:
            # Ids unique per identity across restarts: the power-up's number, then a count.
            self._id_generator = counter_ids(f"{power_up}-")
        for held in store.held_messages():
            try:
                payload = decode_frame(held.frame, self.version).payload  # type: ignore[union-attr]
            except FrameError as error:
                raise StoreError(
                    f"held message {held.message_id} ({held.action}) cannot be read back: {error}"
                ) from error
            if held.action == "TransactionEvent" and not payload.offline:
                # E11.FR.07: the restart took the station offline with these queued.
                payload = attrs.evolve(payload, offline=True)
            self._seq += 1
            entry = _Outgoing(
                self._seq, held.message_id, held.action, payload, held.frame, True, held.attempts
            )
            self._held.append(entry)

    def commit(self) -> None:
        """Make the store's writes durable (``data_to_send`` does it before it hands out
        frames; call it after feeding the core while nothing is sent, e.g. offline)."""
        if self.store is not None:
            self.store.commit()

    def data_to_send(self) -> list[str]:
        """Text frames to write, once everything they depend on is in the store."""
        if self.store is not None:
            self.store.commit()
        return super().data_to_send()

    def defer_held(self, until: float) -> None:
        """Send no held transaction message before ``until`` (a message-queue resume delay
        after a reconnect); later retry times stay as they are."""
        for entry in self._held:
            entry.not_before = max(entry.not_before, until)

    # --- connection ---------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        super().connection_made(now)
        self._resumed = self.registration is ACCEPTED
        if self.registration is ACCEPTED and self._offline_since is not None:
            self._events.append(Reconnected(offline_for=now - self._offline_since))
        self._offline_since = None
        self._pump(now)

    def connection_lost(self, now: float) -> None:
        entry = self._in_flight
        self._in_flight = None
        if entry is not None:
            if entry.transactional:
                self._held.appendleft(entry)  # being offline is not a failed attempt
            elif entry.action == "BootNotification":
                self._boot_at = now  # unanswered: boot again once reconnected
            elif entry.action != "Heartbeat":
                self._fail(entry, "connection lost before the answer")
        while self._queue:
            self._fail(self._queue.popleft(), "connection lost before it was sent")
        for held in self._held:
            held.requested = False  # a trigger's permission ends with its connection
            if held.action == "TransactionEvent" and not held.payload.offline:
                # E11.FR.07: going offline marks every queued TransactionEvent offline.
                held.payload = attrs.evolve(held.payload, offline=True)
        self._triggers.clear()
        self._requested_reports.clear()
        self._offline_since = now
        super().connection_lost(now)

    def _fail(self, entry: _Outgoing, reason: str) -> None:
        self._events.append(
            CallLost(
                message_id=entry.message_id,
                action=entry.action,
                request=entry.payload,
                reason=reason,
            )
        )

    # --- what goes out next ---------------------------------------------------------------

    def _pump(self, now: float) -> None:
        channel = self.channel
        if channel is None or channel.busy:
            return
        entry = self._next_entry(now)
        if entry is None:
            return
        self._in_flight = entry
        channel.call(entry.message_id, entry.action, entry.payload, now)
        if self.config.heartbeat_on_any_traffic or entry.action == "Heartbeat":
            self._restart_heartbeat(now)

    def _next_entry(self, now: float) -> _Outgoing | None:
        state = self.registration
        if state is not ACCEPTED:
            if now >= self._boot_at:
                return self._boot_entry()
            if state is not PENDING:
                return None
            # Pending: only triggered messages and requested reports (validated on entry).
            if self._queue:
                return self._queue.popleft()
            if self._held and self._held[0].requested and self._held[0].not_before <= now:
                return self._held.popleft()
            return None
        if now >= self._boot_at:  # a 1.6 BootNotification trigger after acceptance
            return self._boot_entry()
        held = self._held[0] if self._held and self._held[0].not_before <= now else None
        queued = self._queue[0] if self._queue else None
        if held is not None and (queued is None or held.seq < queued.seq):
            return self._held.popleft()
        if queued is not None:
            return self._queue.popleft()
        if self._heartbeat_at is not None and now >= self._heartbeat_at:
            return self._heartbeat_entry()
        return None

    def _boot_entry(self) -> _Outgoing:
        self._boot_at = float("inf")  # re-armed by the answer, an error or a timeout
        for trigger in self._triggers:
            if trigger.action == "BootNotification":
                trigger.remaining.clear()
        boot: Any = self.boot_request
        if self._boot_triggered and self.version != "1.6":
            boot = attrs.evolve(boot, reason=type(boot.reason)("Triggered"))
        self._boot_triggered = False
        return self._entry("BootNotification", boot, False, True)

    def _heartbeat_entry(self) -> _Outgoing:
        request = self.registry["Heartbeat"].request()
        return self._entry("Heartbeat", request, False, True)

    def set_heartbeat_interval(self, seconds: float, now: float) -> None:
        """A new HeartbeatInterval from the configuration (1.6 ChangeConfiguration, 2.x
        SetVariables OCPPCommCtrlr.HeartbeatInterval): the next Heartbeat is due that long
        from now. The next boot answer's interval replaces it again (B01.FR.04)."""
        if not seconds > 0:
            raise LocalProtocolError(f"a heartbeat interval must be > 0, got {seconds!r}")
        self.heartbeat_interval = seconds
        self._restart_heartbeat(now)

    def reconfigure(self, config: StationConfig) -> None:
        """Use ``config`` from now on (a CSMS changed TransactionMessageAttempts, say).
        Every later decision follows it; what is already scheduled keeps its time, and
        messages already held stay held even over a lower ``max_held_messages``."""
        self.config = config
        self._set_call_timeout(config.call_timeout)

    @property
    def offline_since(self) -> float | None:
        """When the connection was lost; None while connected or before the first one."""
        return self._offline_since

    @property
    def next_heartbeat(self) -> float | None:
        """When the next Heartbeat is due (None until accepted)."""
        return self._heartbeat_at

    def _restart_heartbeat(self, now: float) -> None:
        if self.registration is ACCEPTED:
            self._heartbeat_at = now + self.heartbeat_interval

    # --- events from the channel ------------------------------------------------------------

    def _on_event(self, event: Event, now: float) -> None:
        if isinstance(event, RequestReceived):
            self._on_request(event, now)
            return
        entry = self._in_flight
        if entry is not None and getattr(event, "message_id", None) == entry.message_id:
            if isinstance(event, ResponseReceived):
                self._in_flight = None
                if entry.transactional and self.store is not None:
                    self.store.release(entry.message_id)
                self._resumed = False  # the CSMS answered: it knows us
                self._events.append(event)
                self._on_response(entry, event.response, now)
                return
            if isinstance(event, CallErrorReceived | InvalidResponse | CallTimedOut):
                self._in_flight = None
                self._events.append(event)
                if self._forgotten_by_csms(entry, event):
                    self._boot_again(entry, now)
                else:
                    self._on_failure(entry, type(event).__name__, now)
                return
        self._events.append(event)

    def _forgotten_by_csms(self, entry: _Outgoing, event: Event) -> bool:
        """A SecurityError to a session resumed without a boot (B04): the CSMS no longer
        knows the station as accepted (it refuses unaccepted stations so: B01.FR.10,
        FR.04), after a restart of its own, say."""
        return (
            self._resumed
            and entry.action != "BootNotification"
            and isinstance(event, CallErrorReceived)
            and event.error_code == "SecurityError"
        )

    def _boot_again(self, entry: _Outgoing, now: float) -> None:
        """Register anew at once; the refused message was not a failed attempt, so a
        transaction message goes back to the head of the queue (E04.FR.01). Only once
        per connection: after this boot, a SecurityError is an ordinary failure."""
        self._resumed = False
        if entry.transactional:
            self._held.appendleft(entry)
        previous = self.registration
        self.registration = BOOTING
        self._heartbeat_at = None
        self._boot_at = now
        self._events.append(RegistrationChanged(status=BOOTING, previous=previous, interval=0.0))

    def _on_response(self, entry: _Outgoing, response: Any, now: float) -> None:
        if entry.action == "BootNotification":
            self._on_boot_answer(response, now)
        elif entry.action == "Heartbeat":
            self._events.append(ClockReport(csms_time=response.current_time, now=now))

    def _on_failure(self, entry: _Outgoing, reason: str, now: float) -> None:
        if entry.action == "BootNotification":
            self._boot_at = now + self._backoff()
            return
        if not entry.transactional:
            return
        entry.attempts += 1
        store = self.store
        if entry.attempts >= self.config.transaction_message_attempts:
            if store is not None:
                store.release(entry.message_id)
            self._events.append(
                TransactionMessageDiscarded(
                    message_id=entry.message_id,
                    action=entry.action,
                    request=entry.payload,
                    attempts=entry.attempts,
                    reason=reason,
                )
            )
            return
        if store is not None:
            store.count_attempt(entry.message_id, entry.attempts)
        # E13.FR.03: wait the interval times the number of transmissions so far.
        entry.not_before = now + self.config.transaction_message_retry_interval * entry.attempts
        self._held.appendleft(entry)

    def _on_boot_answer(self, response: Any, now: float) -> None:
        previous = self.registration
        status = RegistrationStatus(str(response.status))
        interval = float(response.interval)
        self._events.append(ClockReport(csms_time=response.current_time, now=now))
        if status is ACCEPTED:
            self._boot_failures = 0
            if interval > 0:
                self.heartbeat_interval = interval  # B01.FR.04
            self.registration = ACCEPTED
            self._heartbeat_at = now + self.heartbeat_interval
            self._requested_reports.clear()
            reported = self.heartbeat_interval
        else:
            # B02.FR.08 / B03.FR.06: interval is the least wait; 0 means our own back-off.
            wait = interval if interval > 0 else self._backoff()
            self._boot_at = now + wait
            self.registration = status
            self._heartbeat_at = None
            reported = wait
            if status is REJECTED:
                while self._queue:
                    self._fail(self._queue.popleft(), "registration rejected")
                self._triggers.clear()
        self._events.append(
            RegistrationChanged(status=status, previous=previous, interval=reported)
        )

    def _backoff(self) -> float:
        """Bounded, growing, jittered wait of our own (B02.FR.07, B03.FR.05)."""
        config = self.config
        base = min(config.boot_retry_max, config.boot_retry_initial * 2.0**self._boot_failures)
        self._boot_failures = min(self._boot_failures + 1, 32)
        return base * (1 + config.boot_retry_jitter * self._rng.random())

    # --- the CSMS's requests ----------------------------------------------------------------

    def _on_request(self, event: RequestReceived, now: float) -> None:
        action = event.action
        refusal = station_refusal(self.version, self.registration, action)
        if refusal is not None and refusal.status is not None:
            response = status_response(self.registry[action].response, refusal.status)  # type: ignore[arg-type]
            self.send_response(event.message_id, response, now)
            self._events.append(
                RequestRefused(
                    message_id=event.message_id,
                    action=action,
                    request=event.request,
                    error_code=None,
                    response=response,
                    rule=refusal.rule,
                )
            )
        elif refusal is not None:
            self._refuse(event, refusal.error_code, refusal.rule)
        elif action in TRIGGER_ACTIONS:
            self._on_trigger(event, now)
        else:
            self._events.append(event)

    def _answered(self, action: str, request: Any, response: Any, now: float) -> None:
        if action in ("GetBaseReport", "GetReport") and str(response.status) == "Accepted":
            self._requested_reports.add(request.request_id)

    def _is_requested(self, action: str, payload: Any) -> bool:
        """Did the CSMS ask for this message (a trigger still open, a report request)?"""
        if action == "NotifyReport":
            return payload.request_id in self._requested_reports
        return any(t.action == action and self._matches(t, payload) for t in self._triggers)

    def _claim_report(self, action: str, payload: Any) -> bool:
        if action != "NotifyReport" or payload.request_id not in self._requested_reports:
            return False
        if not payload.tbc:
            self._requested_reports.discard(payload.request_id)
        return True

    # --- TriggerMessage (F06; 1.6 §5.17) --------------------------------------------------------

    def serve_triggers(self, *actions: str) -> None:
        """A flow sends these messages when a ``TriggerAccepted`` asks for them: accept
        triggers for them (every other one, unless ``config.supported_triggers`` names
        it, is answered NotImplemented, F06.FR.08)."""
        for action in actions:
            spec = self.registry.get(action)
            if spec is None or not spec.sender.may_send(self.role):
                raise LocalProtocolError(f"{action} is no OCPP {self.version} station message")
        self._served_triggers.update(actions)

    @property
    def served_triggers(self) -> frozenset[str]:
        """The actions this station sends when triggered: the core's own and the flows'."""
        return frozenset(self._served_triggers)

    def _answers_trigger(self, requested: str, action: str) -> bool:
        return action in self._served_triggers or requested in self.config.supported_triggers

    def _on_trigger(self, event: RequestReceived, now: float) -> None:
        request = event.request
        requested = str(request.requested_message)
        action = triggered_action(event.action, requested)
        status, targets = self._judge_trigger(event.action, requested, action, request)
        response = status_response(self.registry[event.action].response, status)  # type: ignore[arg-type]
        # F06.FR.04: the answer is on the wire before the triggered message.
        self.send_response(event.message_id, response, now)
        if status != "Accepted" or action is None:
            return
        if action == "BootNotification":
            self._boot_at = now
            self._boot_triggered = True
            return
        if action == "Heartbeat":
            if not any(e.action == "Heartbeat" for e in self._queue):
                self._queue.append(self._heartbeat_entry())
            return
        trigger = _OpenTrigger(
            event.message_id, action, set(targets), now + self.config.trigger_window
        )
        # A message of that kind already waiting counts as the triggered one (F06.FR.10).
        for entry in (*self._queue, *self._held):
            if entry.action == action and self._satisfy(trigger, entry.payload):
                entry.requested = True
        if trigger.remaining:
            self._triggers.append(trigger)
            self._events.append(
                TriggerAccepted(
                    message_id=event.message_id,
                    requested_message=requested,
                    action=action,
                    targets=frozenset(trigger.remaining),
                )
            )

    def _judge_trigger(
        self, trigger_action: str, requested: str, action: str | None, request: Any
    ) -> tuple[str, set[int | None]]:
        if action is None or not self._answers_trigger(requested, action):
            return "NotImplemented", set()  # F06.FR.08: no one would send it
        if self.version != "1.6" and action == "BootNotification" and self.registration is ACCEPTED:
            return "Rejected", set()  # F06.FR.17
        if self.registration is BOOTING and action != "BootNotification":
            return "Rejected", set()  # nothing but the boot may go out yet (B01.FR.08)
        if action not in SCOPED_ACTIONS:
            return "Accepted", {None}  # an id irrelevant to the message is ignored (F06.FR.03)
        count = self.config.connectors
        if self.version == "1.6":
            connector = request.connector_id
            if connector is not None:
                if not 0 <= connector <= count:
                    return "Rejected", set()
                if (
                    trigger_action == "ExtendedTriggerMessage"
                    and action == "StatusNotification"
                    and connector == 0
                ):
                    return "Rejected", set()
                return "Accepted", {connector}
            first = 0 if action == "StatusNotification" else 1
            return "Accepted", set(range(first, count + 1))  # F06.FR.11: absent means all
        evse = request.evse
        if evse is None or (action == "StatusNotification" and evse.connector_id is None):
            if action == "StatusNotification" and self.config.reject_unscoped_status_trigger:
                return "Rejected", set()  # F06.FR.12
            if evse is None:
                return "Accepted", set(range(1, count + 1))
        if not 0 <= evse.id <= count:
            return "Rejected", set()
        return "Accepted", {evse.id}

    def _claim_trigger(self, action: str, payload: Any) -> bool:
        for trigger in self._triggers:
            if trigger.action == action and self._satisfy(trigger, payload):
                if not trigger.remaining:
                    self._triggers.remove(trigger)
                return True
        return False

    def _matches(self, trigger: _OpenTrigger, payload: Any) -> bool:
        target = scope_of(self.version, trigger.action, payload)
        return target in trigger.remaining or (
            None in trigger.remaining and trigger.action not in SCOPED_ACTIONS
        )

    def _satisfy(self, trigger: _OpenTrigger, payload: Any) -> bool:
        if not self._matches(trigger, payload):
            return False
        target = scope_of(self.version, trigger.action, payload)
        trigger.remaining.discard(target if target in trigger.remaining else None)
        return True

    # --- time -----------------------------------------------------------------------------

    def _on_timer(self, now: float) -> None:
        self._triggers = [t for t in self._triggers if t.expires > now]

    def _deadlines(self) -> list[float | None]:
        if not self.connected:
            return []
        out: list[float | None] = [t.expires for t in self._triggers]
        if self.registration is not ACCEPTED:
            if self._in_flight is None and self._boot_at != float("inf"):
                out.append(self._boot_at)
            return out
        if self._in_flight is None:
            out.append(self._heartbeat_at)
            if self._held and self._held[0].not_before > 0:
                out.append(self._held[0].not_before)
        return out
