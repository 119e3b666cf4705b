"""What the core hands back to the application: small immutable event classes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .errors import ConnectFailedError, FrameError
from .rules import RegistrationStatus as RegistrationStatus  # re-exported: events carry it


@attrs.frozen(kw_only=True)
class Event:
    """Base class of every event."""


@attrs.frozen(kw_only=True)
class RequestReceived(Event):
    """The peer sent a CALL; answer it with ``send_response`` or ``send_error``."""

    message_id: str
    action: str
    request: Any
    #: CSMS side: the message id of our TriggerMessage (or GetBaseReport/GetReport) that
    #: asked for this message, if any.
    requested_by: str | None = None


@attrs.frozen(kw_only=True)
class MessageReceived(Event):
    """2.1: the peer sent a SEND (never answered)."""

    message_id: str
    action: str
    payload: Any


@attrs.frozen(kw_only=True)
class ResponseReceived(Event):
    """Our CALL was answered with a valid CALLRESULT."""

    message_id: str
    action: str
    request: Any
    response: Any


@attrs.frozen(kw_only=True)
class CallErrorReceived(Event):
    """Our CALL was answered with a CALLERROR."""

    message_id: str
    action: str
    request: Any
    error_code: str
    description: str
    details: dict[str, Any]


@attrs.frozen(kw_only=True)
class InvalidResponse(Event):
    """Our CALL was answered with a CALLRESULT that breaks the schema (2.1: we sent a
    CALLRESULTERROR). ``raw`` is the text as received, so nothing is lost."""

    message_id: str
    action: str
    request: Any
    error: FrameError
    raw: str


@attrs.frozen(kw_only=True)
class CallTimedOut(Event):
    message_id: str
    action: str
    request: Any


@attrs.frozen(kw_only=True)
class CallLost(Event):
    """A CALL we sent will never be answered because the connection was lost."""

    message_id: str
    action: str
    request: Any
    reason: str


@attrs.frozen(kw_only=True)
class TransactionMessageDiscarded(Event):
    """A transaction-related message failed on its last attempt (E13.FR.04)."""

    message_id: str
    action: str
    request: Any
    attempts: int
    reason: str


@attrs.frozen(kw_only=True)
class UnmatchedResponse(Event):
    """A CALLRESULT or CALLERROR whose id matches no outstanding CALL of ours. We send
    nothing back (no rule prescribes an answer); ``raw`` is the text as received."""

    message_id: str
    raw: str


@attrs.frozen(kw_only=True)
class ProtocolViolation(Event):
    """The peer sent something we could not accept. ``answered`` says whether we sent the
    error frame the version prescribes; ``raw`` is the text as received."""

    error: FrameError
    raw: str
    answered: bool


@attrs.frozen(kw_only=True)
class RequestRefused(Event):
    """A well-formed CALL was refused by a protocol rule (wrong role, registration state);
    we answered with ``error_code``, or stayed silent when ``error_code`` is None."""

    message_id: str
    action: str
    request: Any
    error_code: str | None
    rule: str
    #: The CALLRESULT we answered with instead, when the rule prescribes one.
    response: Any = None


@attrs.frozen(kw_only=True)
class RegistrationChanged(Event):
    """A BootNotification was answered: on the station side by the CSMS, on the CSMS side
    by us. Reported for every answer, so a station that boots again while Accepted (it
    rebooted) gives Accepted -> Accepted. ``previous`` is Booting when no boot was
    answered before."""

    status: RegistrationStatus
    previous: RegistrationStatus
    #: Accepted: the heartbeat interval; otherwise the wait before the next boot.
    interval: float


@attrs.frozen(kw_only=True)
class ClockReport(Event):
    """The CSMS told the time (BootNotification or Heartbeat answer). The application
    sets its clock from ``csms_time``; ``now`` is the core time it arrived."""

    csms_time: datetime
    now: float


@attrs.frozen(kw_only=True)
class TriggerAccepted(Event):
    """Station side: we accepted a TriggerMessage for ``action``; send that message now
    (for every target in ``targets``). Messages the core makes itself (BootNotification,
    Heartbeat) are sent without this event."""

    message_id: str
    requested_message: str
    action: str
    #: connector ids (1.6) or EVSE ids (2.x) the trigger covers; None means the station
    #: as a whole or a message without scope.
    targets: frozenset[int | None]


@attrs.frozen(kw_only=True)
class Reconnected(Event):
    """Station side: the connection is back and registration resumed without a boot (B04).
    ``offline_for`` is how long it was down: report every connector's status if that is
    over the offline threshold (B04.FR.01), else only those that changed (B04.FR.02)."""

    offline_for: float


@attrs.frozen(kw_only=True)
class RetryAnswered(Event):
    """CSMS side: the station sent again a transaction message we had already answered
    (same message id, or in 2.x the same transaction and seqNo): its answer was lost, or
    the station restarted before it could count it delivered. We sent the first answer
    again; the request was not handed to the flows or the application a second time."""

    message_id: str
    action: str
    request: Any
    response: Any
    #: The message id the first copy came with (differs only for a 2.x seqNo match).
    first_message_id: str


@attrs.frozen(kw_only=True)
class HeartbeatOverdue(Event):
    """CSMS side: nothing arrived from the station for longer than its heartbeat interval
    allows."""

    last_seen: float
    now: float


# --- the connection (reported by the adapters) ------------------------------------------------


@attrs.frozen(kw_only=True)
class Connected(Event):
    """A WebSocket to the peer is open; ``version`` was negotiated."""

    version: str


@attrs.frozen(kw_only=True)
class Disconnected(Event):
    """The WebSocket closed with ``code``."""

    code: int
    reason: str


@attrs.frozen(kw_only=True)
class VersionChanged(Event):
    """CSMS side: a station came back with another OCPP version than its session had, so
    it is served by a new session with a fresh core (registration None: it boots again).
    ``on_event`` gets this on the new session first; ``previous`` is the old version and
    ``registration`` the old core's registration. (While a connection of the old version
    is open, a server that checks no credentials refuses the new one: HTTP 409.)"""

    previous: str
    version: str
    registration: RegistrationStatus | None


@attrs.frozen(kw_only=True)
class ConnectFailed(Event):
    """Station side: an attempt failed; the next one starts after ``retry_in`` seconds
    (None: no further attempt)."""

    error: ConnectFailedError
    retry_in: float | None
