"""The central-system side, one ``CsmsCore`` per station identity (B01-B03, FR.04, F06).

It records the registration status as we answered the station's BootNotification (and
reports each answer as ``RegistrationChanged``), refuses locally what that status forbids
us to send, answers the station's requests that its status forbids with SecurityError,
correlates our TriggerMessage / GetBaseReport / GetReport with the messages they bring,
and watches heartbeat health.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs

from ._core import CoreBase, WallClock
from .config import CsmsConfig
from .errors import LocalProtocolError, StoreMismatch
from .events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    Event,
    HeartbeatOverdue,
    InvalidResponse,
    RegistrationChanged,
    RegistrationStatus,
    RequestReceived,
    ResponseReceived,
    RetryAnswered,
)
from .messages._codec import structure_fn, unstructure
from .messages._registry import Role
from .rules import (
    ACCEPTED,
    BOOTING,
    SCOPED_ACTIONS,
    TRIGGER_ACTIONS,
    csms_gate,
    csms_refusal,
    is_transaction_message,
    scope_of,
    trigger_scope,
    triggered_action,
)
from .store._api import AnsweredMessage, CsmsCoreStore, dump

#: How long an accepted TriggerMessage keeps exempting its messages.
TRIGGER_WINDOW = 60.0

#: How many answers to transaction messages a core keeps per station, to answer a retry
#: the same way. A station resends at most the one it had in flight (its queue waits
#: behind it), so a few cover every station that keeps to the rules.
REMEMBERED_ANSWERS = 32


@attrs.define(eq=False)
class _Outgoing:
    message_id: str
    action: str
    payload: Any


#: What a 2.x retry under a new message id repeats: transactionId, seqNo, eventType.
RetryKey = tuple[str, int, str]


@attrs.define(eq=False)
class _Answer:
    """Our answer to a transaction message, for a retry of it."""

    message_id: str
    action: str
    key: RetryKey | None
    request: Any
    response: Any


def _retry_key(action: str, request: Any) -> RetryKey | None:
    if action != "TransactionEvent":
        return None
    info = request.transaction_info
    return (info.transaction_id, request.seq_no, request.event_type.value)


class _Answers:
    """The answers to a station's latest transaction messages, oldest first."""

    def __init__(self) -> None:
        self.by_id: OrderedDict[str, _Answer] = OrderedDict()
        self.by_key: dict[RetryKey, str] = {}

    def keep(self, answer: _Answer) -> list[str]:
        """Remember ``answer``; the message ids forgotten to make room."""
        self._drop(self.by_id.pop(answer.message_id, None))
        self.by_id[answer.message_id] = answer
        if answer.key is not None:
            self.by_key[answer.key] = answer.message_id
        forgotten = []
        while len(self.by_id) > REMEMBERED_ANSWERS:
            _, oldest = self.by_id.popitem(last=False)
            self._drop(oldest)
            forgotten.append(oldest.message_id)
        return forgotten

    def _drop(self, answer: _Answer | None) -> None:
        if answer is None or answer.key is None:
            return
        if self.by_key.get(answer.key) == answer.message_id:
            del self.by_key[answer.key]

    def first(self, message_id: str, action: str, request: Any) -> _Answer | None:
        """The answer to the message this one repeats: the same message id with the same
        request (2.x: the same transaction, seqNo and event type, ``offline`` may have
        been set since, E11.FR.07), or in 2.x the same transaction, seqNo and event type
        under another message id."""
        key = _retry_key(action, request)
        answer = self.by_id.get(message_id)
        if (
            answer is not None
            and answer.action == action
            and (answer.key == key if key is not None else answer.request == request)
        ):
            return answer
        first_id = self.by_key.get(key) if key is not None else None
        return self.by_id[first_id] if first_id is not None else None


@attrs.define(eq=False)
class _Expectation:
    """Messages we asked for (by trigger or report request) and may accept unaccepted."""

    message_id: str
    action: str
    targets: set[int | None] | None  # None: any scope
    request_id: int | None
    expires: float | None


@attrs.frozen
class CsmsState:
    """What a core knows of its station beyond one connection, so another process can go
    on where this one stopped (a CSMS cluster moving the station between nodes)."""

    registration: RegistrationStatus | None = None
    heartbeat_interval: float | None = None


class CsmsCore(CoreBase):
    """Our protocol state for one station. ``registration`` starts as the application
    last knew it (None: never answered a boot of this station) and follows every boot we
    answer, each reported as ``RegistrationChanged``."""

    role = Role.CSMS
    log = logging.getLogger("ocpp_sansio.csms")

    def __init__(
        self,
        version: str,
        identity: str,
        *,
        config: CsmsConfig | None = None,
        id_generator: Callable[[], str] | None = None,
        wall_clock: WallClock | None = None,
        registration: RegistrationStatus | None = None,
        heartbeat_interval: float | None = None,
        store: CsmsCoreStore | None = None,
    ) -> None:
        config = config or CsmsConfig()
        super().__init__(
            version,
            call_timeout=config.call_timeout,
            id_generator=id_generator,
            wall_clock=wall_clock,
        )
        self.identity = identity
        self.config = config
        self.registration = registration
        self.heartbeat_interval = heartbeat_interval
        self.last_seen: float | None = None
        self._overdue_reported = False
        #: (a list: an idle deque keeps a 0.5 KiB block per core)
        self._queue: list[_Outgoing] = []
        self._in_flight: _Outgoing | None = None
        self._expected: list[_Expectation] = []
        #: Answers to the latest transaction messages (made at the first one).
        self._answers: _Answers | None = None
        #: The station's registration and our latest answers, across CSMS restarts.
        self.store = store
        if store is not None:
            self._open_store(store)

    def _log_prefix(self) -> str:
        return f"{self.identity}: "

    def reconfigure(self, config: CsmsConfig) -> None:
        """Use ``config`` from now on; what is already scheduled keeps its time."""
        self.config = config
        self._set_call_timeout(config.call_timeout)

    # --- the durable store (docs/store.md) ----------------------------------------------------

    def _open_store(self, store: CsmsCoreStore) -> None:
        if store.identity.casefold() != self.identity.casefold():
            raise StoreMismatch(
                f"the store is station {store.identity!r}'s, not {self.identity!r}'s"
            )
        saved = store.load("registration")
        if saved is not None and self.registration is None:
            # B04: a station resumes without a boot after our restart too.
            self.registration = RegistrationStatus(saved["status"])
            if self.heartbeat_interval is None:
                self.heartbeat_interval = saved["interval"]
        for kept in store.answers():
            spec = self.registry[kept.action]
            assert spec.response is not None
            request = structure_fn(spec.request)(json.loads(kept.request))
            response = structure_fn(spec.response)(json.loads(kept.response))
            self._keep_answer(
                _Answer(
                    kept.message_id,
                    kept.action,
                    _retry_key(kept.action, request),
                    request,
                    response,
                )
            )

    def commit(self) -> None:
        """Make the store's writes durable (``data_to_send`` does it first)."""
        if self.store is not None:
            self.store.commit()

    def data_to_send(self) -> list[str]:
        """Text frames to write, once what they answer is in the store."""
        if self.store is not None:
            self.store.commit()
        return super().data_to_send()

    # --- answers to transaction messages, for their retries -------------------------------------

    def send_response(self, message_id: str, response: Any, now: float) -> None:
        channel = self.channel
        action = channel.unanswered.get(message_id) if channel is not None else None
        request = self._inbound.get(message_id)
        super().send_response(message_id, response, now)
        if action is None or not is_transaction_message(action, request):
            return
        key = _retry_key(action, request)
        forgotten = self._keep_answer(_Answer(message_id, action, key, request, response))
        store = self.store
        if store is not None:
            for old_id in forgotten:
                store.forget(old_id)
            store.remember(
                AnsweredMessage(
                    message_id,
                    action,
                    "/".join(map(str, key)) if key is not None else "",
                    dump(unstructure(request)),
                    dump(unstructure(response)),
                )
            )

    def _keep_answer(self, answer: _Answer) -> list[str]:
        if self._answers is None:
            self._answers = _Answers()
        return self._answers.keep(answer)

    def state(self) -> CsmsState:
        return CsmsState(self.registration, self.heartbeat_interval)

    def restore(self, state: CsmsState) -> None:
        """Start from ``state`` (as ``state()`` gave it elsewhere), before the station's
        connection is made here."""
        if self.connected:
            raise LocalProtocolError("restore a core before its station connects to it")
        self.registration = state.registration
        self.heartbeat_interval = state.heartbeat_interval

    # --- our requests -------------------------------------------------------------------------

    def send_request(self, payload: Any, now: float) -> str:
        """Queue a request to the station; returns its message id. Raises
        LocalProtocolError when the station's registration status forbids it."""
        spec = self._spec_for_request(payload)
        action = spec.name
        self._require_channel(f"send {action}")
        forbidden = csms_gate(self.version, self.registration, action)
        if forbidden is not None:
            raise LocalProtocolError(f"cannot send {action}: {forbidden}")
        if spec.response is None:
            raise LocalProtocolError(f"{action} is sent by the station only")
        if len(self._queue) >= self.config.max_queued_requests:
            raise LocalProtocolError(
                f"{self.config.max_queued_requests} requests are already queued"
            )
        entry = _Outgoing(self._new_id(), action, payload)
        self._queue.append(entry)
        self._pump(now)
        return entry.message_id

    def _pump(self, now: float) -> None:
        channel = self.channel
        while channel is not None and not channel.busy and self._queue:
            entry = self._queue.pop(0)
            # The status may have changed while the request waited in the queue.
            forbidden = csms_gate(self.version, self.registration, entry.action)
            if forbidden is not None:
                self._events.append(
                    CallLost(
                        message_id=entry.message_id,
                        action=entry.action,
                        request=entry.payload,
                        reason=forbidden,
                    )
                )
                continue
            self._in_flight = entry
            channel.call(entry.message_id, entry.action, entry.payload, now)

    # --- connection ---------------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        super().connection_made(now)
        self.last_seen = now
        self._overdue_reported = False

    def connection_lost(self, now: float) -> None:
        for entry in ([self._in_flight] if self._in_flight else []) + list(self._queue):
            self._events.append(
                CallLost(
                    message_id=entry.message_id,
                    action=entry.action,
                    request=entry.payload,
                    reason="connection lost",
                )
            )
        self._in_flight = None
        self._queue.clear()
        self._expected.clear()
        super().connection_lost(now)

    # --- the station's messages ---------------------------------------------------------------

    def receive_text(self, text: str, now: float) -> None:
        self.last_seen = now
        self._overdue_reported = False
        super().receive_text(text, now)

    def _on_event(self, event: Event, now: float) -> None:
        if isinstance(event, RequestReceived):
            self._on_request(event, now)
            return
        if isinstance(event, ResponseReceived | CallErrorReceived | InvalidResponse | CallTimedOut):
            if self._in_flight is not None and event.message_id == self._in_flight.message_id:
                self._in_flight = None
            if isinstance(event, ResponseReceived):
                self._expect(event, now)
        self._events.append(event)

    def _on_request(self, event: RequestReceived, now: float) -> None:
        if event.action == "BootNotification":
            self._events.append(event)
            return
        requested_by = self._match_expectation(event.action, event.request, now)
        if requested_by is not None:
            event = attrs.evolve(event, requested_by=requested_by)
        rule = csms_refusal(
            self.version,
            self.registration,
            requested_by is not None,
            refuse_unaccepted_1_6=self.config.refuse_unaccepted_1_6,
        )
        if rule is not None:
            self._refuse(event, "SecurityError", rule)
            return
        answers = self._answers
        if answers is not None and is_transaction_message(event.action, event.request):
            first = answers.first(event.message_id, event.action, event.request)
            if first is not None:
                # A retry of a message we answered: the same answer, not a second report.
                CoreBase.send_response(self, event.message_id, first.response, now)
                self._events.append(
                    RetryAnswered(
                        message_id=event.message_id,
                        action=event.action,
                        request=event.request,
                        response=first.response,
                        first_message_id=first.message_id,
                    )
                )
                return
        self._events.append(event)

    def _answered(self, action: str, request: Any, response: Any, now: float) -> None:
        if action != "BootNotification":
            return
        previous = self.registration or BOOTING
        self.registration = status = RegistrationStatus(str(response.status))
        interval = float(response.interval)
        if status is ACCEPTED:
            if interval > 0:
                self.heartbeat_interval = interval
            # B01.FR.04: with 0 the station keeps the interval it had.
            interval = self.heartbeat_interval or interval
        self._events.append(
            RegistrationChanged(status=status, previous=previous, interval=interval)
        )
        if self.store is not None:
            self.store.save(
                "registration",
                {"status": self.registration.value, "interval": self.heartbeat_interval},
            )

    # --- what we asked for ----------------------------------------------------------------------

    def _expect(self, event: ResponseReceived, now: float) -> None:
        status = str(getattr(event.response, "status", ""))
        if status != "Accepted":
            return
        request = event.request
        if event.action in TRIGGER_ACTIONS:
            action = triggered_action(event.action, str(request.requested_message))
            if action is None:
                return
            targets: set[int | None] | None = None
            if action in SCOPED_ACTIONS:
                scope = trigger_scope(self.version, request)
                targets = {scope} if scope is not None else None
            self._expected.append(
                _Expectation(event.message_id, action, targets, None, now + TRIGGER_WINDOW)
            )
        elif event.action in ("GetBaseReport", "GetReport"):
            self._expected.append(
                _Expectation(event.message_id, "NotifyReport", None, request.request_id, None)
            )

    def _match_expectation(self, action: str, request: Any, now: float) -> str | None:
        for expectation in self._expected:
            if expectation.action != action:
                continue
            if expectation.expires is not None and expectation.expires < now:
                continue
            if expectation.request_id is not None:
                if request.request_id != expectation.request_id:
                    continue
                if not request.tbc:
                    self._expected.remove(expectation)
                return expectation.message_id
            if expectation.targets is not None:
                scope = scope_of(self.version, action, request)
                if scope not in expectation.targets:
                    continue
                expectation.targets.discard(scope)
                if not expectation.targets:
                    self._expected.remove(expectation)
            return expectation.message_id
        return None

    # --- time -----------------------------------------------------------------------------------

    def _on_timer(self, now: float) -> None:
        self._expected = [e for e in self._expected if e.expires is None or e.expires >= now]
        deadline = self._overdue_at()
        if deadline is not None and now >= deadline and self.last_seen is not None:
            self._overdue_reported = True
            self._events.append(HeartbeatOverdue(last_seen=self.last_seen, now=now))

    def _overdue_at(self) -> float | None:
        if (
            not self.connected
            or self._overdue_reported
            or self.registration is not ACCEPTED
            or self.heartbeat_interval is None
            or self.last_seen is None
        ):
            return None
        return self.last_seen + self.heartbeat_interval * self.config.heartbeat_tolerance

    def _deadlines(self) -> list[float | None]:
        return [self._overdue_at()]
