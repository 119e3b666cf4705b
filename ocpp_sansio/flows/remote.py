"""Remote control, both sides: remote start and stop (1.6 RemoteStart/RemoteStopTransaction
§5.11/§5.12; 2.x RequestStart/RequestStopTransaction F01-F03) and UnlockConnector (1.6
§5.18, 2.x F05). TriggerMessage lives in the core.

Station side, ``RemoteControl`` answers the requests by the rules the protocol fixes
(which EVSE, its availability, a transaction already on it, the charging profile's
purpose) and hands accepted ones to the application as events. A 2.x remote start is
tied to the transaction that follows: ``transaction_fields(evse_id)`` gives the next
TransactionEvent on that EVSE its triggerReason RemoteStart and remoteStartId (F01.FR.19,
F01.FR.25, F02.FR.01).

CSMS side, ``RemoteMonitor`` links each accepted remote start to the transaction that
carries its remoteStartId, confirms remote stops, and flags TransactionEvents that break
those rules. It only watches: the transaction flow answers the TransactionEvents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs

from ..csms import CsmsCore
from ..events import Event, RequestReceived, ResponseReceived
from ..station import StationCore
from ._base import Activity, Emitter, FlowAnomaly, FlowEvent, build, status_of
from .availability import Availability

_START = ("RemoteStartTransaction", "RequestStartTransaction")
_STOP = ("RemoteStopTransaction", "RequestStopTransaction")


# --- station side ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RemoteStartAccepted(FlowEvent):
    """Start a transaction for ``id_token`` (1.6 idTag) on ``evse_id`` (1.6 connector;
    None: the station picks, F01.FR.20), authorizing it first if the configuration says
    so (AuthorizeRemoteTxRequests, F01.FR.01/.02). ``charging_profile`` is the one to use
    (None when absent or ignored, F01.FR.12). ``transaction_id``: the EVSE already had
    this unauthorized transaction, now started remotely (F01.FR.13)."""

    message_id: str
    evse_id: int | None
    id_token: Any
    remote_start_id: int | None
    charging_profile: Any
    transaction_id: str | None
    request: Any


@attrs.frozen(kw_only=True)
class RemoteStopAccepted(FlowEvent):
    """Stop ``transaction_id``: 1.6 StopTransaction with reason ``stopped_reason``; 2.x a
    TransactionEvent with triggerReason ``trigger_reason`` (Ended with stoppedReason
    ``stopped_reason`` where the stop point ends it, F03.FR.02/.03)."""

    transaction_id: str | int
    evse_id: int
    trigger_reason: str | None
    stopped_reason: str


@attrs.frozen(kw_only=True)
class UnlockRequested(FlowEvent):
    """Try to unlock the connector, even with no cable in (F05.FR.06), then call
    ``unlock_result``. 1.6: finish ``stop_first`` (reason UnlockCommand) before unlocking
    (1.6 §5.18)."""

    message_id: str
    evse_id: int
    connector_id: int | None
    stop_first: str | int | None


@attrs.frozen(kw_only=True)
class RemoteRequestRefused(FlowEvent):
    """We answered a remote-control request negatively, and why."""

    action: str
    message_id: str
    status: str
    rule: str
    request: Any


class RemoteStartProfiles(Protocol):
    """What takes a remote start's charging profile (the smart-charging flow does, K05)."""

    def remote_start_refusal(self, evse_id: int | None, profile: Any) -> str | None: ...

    def remote_start_accepted(self, event: RemoteStartAccepted, now: float) -> None: ...


@attrs.define(eq=False)
class _PendingStart:
    event: RemoteStartAccepted
    expires: float | None


class RemoteControl(Emitter):
    """Station side of remote start, remote stop and UnlockConnector.

    ``activity`` says which transactions run where; ``availability`` (optional) which
    EVSEs are Inoperative. ``require_evse``: refuse a start that names no EVSE / connector
    (F01.FR.07, 1.6 §5.11 MAY). ``smart_charging``: check the start's charging profile
    (purpose TxProfile, no transactionId: F01.FR.09/.11, 1.6 §5.16.2), else ignore it
    (F01.FR.12). ``check_start(request)`` may return "Rejected" for reasons of the
    application's own (a reservation for another token, F01.FR.21/.22).
    ``start_timeout``: an accepted start no transaction claimed is forgotten after it.
    ``connectors_per_evse`` (2.x) and ``has_lock`` shape UnlockConnector's answers.
    ``profiles`` (the ``SmartCharging`` flow) checks a start's profile, refusing an invalid
    one (K05.FR.05, F01.FR.26), and installs it for the transaction that follows (K05.FR.03).
    """

    def __init__(
        self,
        core: StationCore,
        activity: Activity,
        *,
        availability: Availability | None = None,
        require_evse: bool = False,
        smart_charging: bool = True,
        check_start: Callable[[Any], str | None] | None = None,
        start_timeout: float | None = 120.0,
        connectors_per_evse: int = 1,
        has_lock: bool = True,
        profiles: RemoteStartProfiles | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.profiles = profiles
        self.version = core.version
        self.activity = activity
        self.availability = availability
        self.require_evse = require_evse
        self.smart_charging = smart_charging
        self._check_start = check_start
        self.start_timeout = start_timeout
        self.connectors_per_evse = connectors_per_evse
        self.has_lock = has_lock
        self.evses = core.config.connectors
        #: Accepted starts not yet claimed by a transaction, by EVSE (None: any).
        self._starts: dict[int | None, _PendingStart] = {}
        #: UnlockConnector requests waiting for the application's result.
        self._unlocks: dict[str, str] = {}

    # --- the core's events

    def handle_event(self, event: Event, now: float) -> bool:
        if not isinstance(event, RequestReceived):
            return False
        if event.action in _START:
            self._on_start(event, now)
        elif event.action in _STOP:
            self._on_stop(event, now)
        elif event.action == "UnlockConnector":
            self._on_unlock(event, now)
        else:
            return False
        return True

    def _answer(self, event: RequestReceived, status: str, now: float, **fields: Any) -> None:
        response_cls = self.core.registry[event.action].response
        assert response_cls is not None
        self.core.send_response(event.message_id, build(response_cls, status=status, **fields), now)

    def _refuse(self, event: RequestReceived, status: str, rule: str, now: float) -> None:
        self._answer(event, status, now)
        self._emit(
            RemoteRequestRefused(
                action=event.action,
                message_id=event.message_id,
                status=status,
                rule=rule,
                request=event.request,
            )
        )

    # --- remote start

    def _on_start(self, event: RequestReceived, now: float) -> None:
        request = event.request
        v16 = self.version == "1.6"
        evse = request.connector_id if v16 else request.evse_id
        token = request.id_tag if v16 else request.id_token
        profile = request.charging_profile
        rule = self._refusal(evse, profile, request)
        if rule is not None:
            self._refuse(event, "Rejected", rule, now)
            return
        if profile is not None and not self.smart_charging:
            profile = None  # F01.FR.12, 1.6 §5.11
        waiting = None
        if evse is not None:
            unauthorized = [t for t in self.activity.transactions(evse) if not t.authorized]
            waiting = unauthorized[0].transaction_id if unauthorized and not v16 else None
        accepted = RemoteStartAccepted(
            message_id=event.message_id,
            evse_id=evse,
            id_token=token,
            remote_start_id=None if v16 else request.remote_start_id,
            charging_profile=profile,
            transaction_id=None if waiting is None else str(waiting),
            request=request,
        )
        extra = {} if waiting is None else {"transaction_id": str(waiting)}
        self._answer(event, "Accepted", now, **extra)  # F01.FR.13 names the transaction
        expires = None if self.start_timeout is None else now + self.start_timeout
        self._starts[evse] = _PendingStart(accepted, expires)
        if self.profiles is not None and profile is not None:
            self.profiles.remote_start_accepted(accepted, now)
        self._emit(accepted)

    def _refusal(self, evse: int | None, profile: Any, request: Any) -> str | None:
        """The rule that makes us refuse a start, or None."""
        v16 = self.version == "1.6"
        if evse is None and self.require_evse:
            return "1.6 §5.11" if v16 else "F01.FR.07"
        if evse is not None and not 1 <= evse <= self.evses:
            return "unknown connector" if v16 else "unknown EVSE"
        if profile is not None and self.smart_charging:
            if str(profile.charging_profile_purpose) != "TxProfile":
                return "1.6 §5.16.2" if v16 else "F01.FR.09/F01.FR.26"
            if profile.transaction_id is not None:
                return "1.6 §5.16.2" if v16 else "F01.FR.11/F01.FR.26"
            if self.profiles is not None:
                refusal = self.profiles.remote_start_refusal(evse, profile)
                if refusal is not None:
                    return refusal if v16 else f"K05.FR.05: {refusal}"
        if evse in self._starts:
            return "a remote start for it is already waiting for its transaction"
        if evse is not None:
            if self.availability is not None and not self.availability.is_operative(evse):
                return "1.6 §5.2" if v16 else "F01.FR.23"
            running = self.activity.transactions(evse)
            if running and (v16 or any(t.authorized for t in running)):
                return "1.6 §5.11" if v16 else "F01.FR.24"
        elif not any(self._free(e) for e in range(1, self.evses + 1)):
            return "no connector is free" if v16 else "F01.FR.20: no EVSE is free"
        if self._check_start is not None and self._check_start(request) == "Rejected":
            return "refused by the station's check (reservation, F01.FR.21/.22)"
        return None

    def _free(self, evse: int) -> bool:
        operative = self.availability is None or self.availability.is_operative(evse)
        return operative and not self.activity.transactions(evse) and evse not in self._starts

    def claim_start(self, evse_id: int, now: float) -> RemoteStartAccepted | None:
        """The accepted remote start that the transaction on ``evse_id`` answers (one for
        that EVSE, else one that named none); it is consumed. None when there is none."""
        self._expire(now)
        pending = self._starts.pop(evse_id, None) or self._starts.pop(None, None)
        return pending.event if pending is not None else None

    def transaction_fields(self, evse_id: int, now: float) -> dict[str, Any]:
        """2.x: fields for the next TransactionEvent on ``evse_id``: triggerReason
        RemoteStart and the remoteStartId when a remote start is waiting for it (F01.FR.19,
        F01.FR.25, F02.FR.01, F02.FR.21), else nothing. Pass them to the transaction flow."""
        started = self.claim_start(evse_id, now)
        if started is None or started.remote_start_id is None:
            return {}
        return {"trigger_reason": "RemoteStart", "remote_start_id": started.remote_start_id}

    # --- remote stop

    def _on_stop(self, event: RequestReceived, now: float) -> None:
        transaction_id = event.request.transaction_id
        transaction = self.activity.transaction(transaction_id)
        v16 = self.version == "1.6"
        if transaction is None:
            self._refuse(event, "Rejected", "1.6 §5.12" if v16 else "F03.FR.08", now)
            return
        self._answer(event, "Accepted", now)  # F03.FR.07
        self._emit(
            RemoteStopAccepted(
                transaction_id=transaction_id,
                evse_id=transaction.evse_id,
                trigger_reason=None if v16 else "RemoteStop",
                stopped_reason="Remote",
            )
        )

    # --- unlock

    def _on_unlock(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if self.version == "1.6":
            connector = request.connector_id
            if not self.has_lock or not 1 <= connector <= self.evses:
                self._refuse(event, "NotSupported", "1.6 §7.46", now)
                return
            running = self.activity.transactions(connector)
            stop_first = running[0].transaction_id if running else None
            evse, connector_id = connector, None
        else:
            evse, connector_id = request.evse_id, request.connector_id
            if not (1 <= evse <= self.evses and 1 <= connector_id <= self.connectors_per_evse):
                self._refuse(event, "UnknownConnector", "F05.FR.03", now)
                return
            authorized = [
                t
                for t in self.activity.transactions(evse)
                if t.authorized and t.connector_id in (None, connector_id)
            ]
            if authorized:
                self._refuse(event, "OngoingAuthorizedTransaction", "F05.FR.02", now)
                return
            stop_first = None
        self._unlocks[event.message_id] = event.action
        self._emit(
            UnlockRequested(
                message_id=event.message_id,
                evse_id=evse,
                connector_id=connector_id,
                stop_first=stop_first,
            )
        )

    def unlock_result(self, message_id: str, unlocked: bool, now: float) -> None:
        """Answer the UnlockConnector ``message_id`` with the attempt's outcome
        (F05.FR.04/.05). Raises LocalProtocolError when it can no longer be answered
        (the connection it came on is gone)."""
        self._unlocks.pop(message_id, None)
        response_cls = self.core.registry["UnlockConnector"].response
        assert response_cls is not None
        status = "Unlocked" if unlocked else "UnlockFailed"
        self.core.send_response(message_id, build(response_cls, status=status), now)

    # --- time

    def _expire(self, now: float) -> None:
        for evse, pending in list(self._starts.items()):
            if pending.expires is not None and now >= pending.expires:
                del self._starts[evse]

    def next_deadline(self) -> float | None:
        expiries = [p.expires for p in self._starts.values() if p.expires is not None]
        return min(expiries) if expiries else None

    def handle_timer(self, now: float) -> None:
        self._expire(now)


# --- CSMS side ----------------------------------------------------------------------------------


@attrs.define(eq=False)
class RemoteStartProgress:
    """An accepted remote start as the CSMS follows it."""

    remote_start_id: int | None
    evse_id: int | None
    id_token: Any
    #: The transaction it became (2.x): named by the answer (F01.FR.13) or by the first
    #: TransactionEvent that carried the remoteStartId.
    transaction_id: str | None = None
    #: A TransactionEvent carried the remoteStartId.
    linked: bool = False


@attrs.frozen(kw_only=True)
class RemoteStartLinked(FlowEvent):
    """The station started the transaction a remote start asked for: 2.x by the
    remoteStartId in a TransactionEvent; 1.6 by a StartTransaction for the same idTag
    (``message_id`` is that request's; the CSMS gives the transactionId in its answer)."""

    remote_start_id: int | None
    transaction_id: str | None
    evse_id: int | None
    message_id: str


@attrs.frozen(kw_only=True)
class RemoteStopConfirmed(FlowEvent):
    """The station reported the remotely stopped transaction as stopped."""

    transaction_id: str | int
    message_id: str


class RemoteMonitor(Emitter):
    """CSMS side: follows remote starts and stops through the station's transaction
    messages, which it only observes (``handle_event`` returns False for them). Reports
    ``RemoteStartLinked``, ``RemoteStopConfirmed`` and ``FlowAnomaly`` for a
    TransactionEvent that names an unknown or reused remoteStartId, says RemoteStart
    without a remoteStartId (F01.FR.25, F02.FR.01), or whose remote start carries another
    triggerReason (F01.FR.19, F02.FR.21), and for a remotely stopped transaction that
    ends for another reason (F03.FR.02/.03)."""

    def __init__(self, core: CsmsCore) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        #: 2.x: accepted starts by remoteStartId; 1.6: waiting ones by idTag.
        self.starts: dict[int, RemoteStartProgress] = {}
        self.starts_1_6: dict[str, RemoteStartProgress] = {}
        #: Accepted stops not yet seen through, by transactionId.
        self.stops: set[str | int] = set()

    def handle_event(self, event: Event, now: float) -> bool:
        if isinstance(event, ResponseReceived) and event.action in (*_START, *_STOP):
            if status_of(event.response) == "Accepted":
                self._on_accepted(event)
            return True
        if isinstance(event, RequestReceived):
            if event.action == "TransactionEvent":
                self._on_transaction_event(event)
            elif event.action == "StartTransaction":
                self._on_start_transaction(event)
            elif event.action == "StopTransaction":
                self._on_stop_transaction(event)
        return False

    def _on_accepted(self, event: ResponseReceived) -> None:
        request = event.request
        if event.action in _STOP:
            self.stops.add(request.transaction_id)
        elif event.action == "RemoteStartTransaction":
            self.starts_1_6[request.id_tag] = RemoteStartProgress(
                remote_start_id=None, evse_id=request.connector_id, id_token=request.id_tag
            )
        else:
            self.starts[request.remote_start_id] = RemoteStartProgress(
                remote_start_id=request.remote_start_id,
                evse_id=request.evse_id,
                id_token=request.id_token,
                transaction_id=event.response.transaction_id,
            )

    def _anomaly(self, event: RequestReceived, rule: str, reason: str, status: str) -> None:
        self._emit(
            FlowAnomaly(
                action=event.action,
                message_id=event.message_id,
                request_id=None,
                status=status,
                rule=rule,
                reason=reason,
            )
        )

    def _on_transaction_event(self, event: RequestReceived) -> None:
        request = event.request
        info = request.transaction_info
        transaction_id = info.transaction_id
        trigger = str(request.trigger_reason)
        remote_start_id = info.remote_start_id
        evse = request.evse.id if request.evse is not None else None
        if remote_start_id is None:
            if trigger == "RemoteStart":
                self._anomaly(
                    event,
                    "F01.FR.25/F02.FR.01",
                    "triggerReason RemoteStart without remoteStartId",
                    trigger,
                )
        else:
            self._link(event, remote_start_id, transaction_id, evse, trigger)
        if transaction_id in self.stops:
            if trigger == "RemoteStop":
                self.stops.discard(transaction_id)
                self._emit(
                    RemoteStopConfirmed(transaction_id=transaction_id, message_id=event.message_id)
                )
            elif str(request.event_type) == "Ended":
                self.stops.discard(transaction_id)
                self._anomaly(
                    event,
                    "F03.FR.02/F03.FR.03",
                    f"remotely stopped transaction ended with triggerReason {trigger}",
                    trigger,
                )

    def _link(
        self,
        event: RequestReceived,
        remote_start_id: int,
        transaction_id: str,
        evse: int | None,
        trigger: str,
    ) -> None:
        progress = self.starts.get(remote_start_id)
        if progress is None:
            self._anomaly(
                event,
                "F01.FR.25/F02.FR.01",
                f"remoteStartId {remote_start_id} matches no accepted RequestStartTransaction",
                trigger,
            )
            return
        expected = progress.transaction_id
        if expected is not None and expected != transaction_id:
            self._anomaly(
                event,
                "F01.FR.25/F02.FR.01",
                f"remoteStartId {remote_start_id} belongs to transaction {expected}",
                trigger,
            )
            return
        if progress.linked:
            return  # later events may repeat the id
        if trigger != "RemoteStart":
            self._anomaly(
                event,
                "F01.FR.19/F02.FR.21",
                f"the remote start's first TransactionEvent has triggerReason {trigger}",
                trigger,
            )
        progress.transaction_id = transaction_id
        progress.linked = True
        self._emit(
            RemoteStartLinked(
                remote_start_id=remote_start_id,
                transaction_id=transaction_id,
                evse_id=evse,
                message_id=event.message_id,
            )
        )

    def _on_start_transaction(self, event: RequestReceived) -> None:
        request = event.request
        progress = self.starts_1_6.pop(request.id_tag, None)
        if progress is None:
            return
        self._emit(
            RemoteStartLinked(
                remote_start_id=None,
                transaction_id=None,
                evse_id=request.connector_id,
                message_id=event.message_id,
            )
        )

    def _on_stop_transaction(self, event: RequestReceived) -> None:
        transaction_id = event.request.transaction_id
        if transaction_id in self.stops:
            self.stops.discard(transaction_id)
            self._emit(
                RemoteStopConfirmed(transaction_id=transaction_id, message_id=event.message_id)
            )
