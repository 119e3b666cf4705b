"""The RPC channel: one object per WebSocket, for one role and one version.

It matches answers to our outstanding CALL by id, keeps at most one CALL outstanding
(FR.01), times CALLs out, tracks the peer's CALLs until we answer them, and answers what
cannot be accepted with the error frame the version prescribes. It knows nothing about
registration: the station and CSMS cores decide what may be sent when.
"""

from __future__ import annotations

from typing import Any

import attrs

from .errors import FrameError, LocalProtocolError
from .events import (
    CallErrorReceived,
    CallTimedOut,
    Event,
    InvalidResponse,
    MessageReceived,
    ProtocolViolation,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    UnmatchedResponse,
)
from .frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Send,
    decode_frame,
    encode_frame,
    error_codes,
    registry,
)
from .messages._registry import Role


@attrs.define
class Outstanding:
    """Our CALL waiting for its answer."""

    message_id: str
    action: str
    request: Any
    deadline: float


class RpcChannel:
    """OCPP-J RPC over one connection. Frames to send accumulate in ``outbox``."""

    def __init__(self, version: str, role: Role, *, call_timeout: float) -> None:
        if role is Role.EITHER:
            raise ValueError("a channel plays the station or the CSMS, not either")
        self.version = version
        self.role = role
        self.call_timeout = call_timeout
        self.registry = registry(version)
        self.codes = error_codes(version)
        self.outbox: list[str] = []
        self._peer = _peer(role)
        self.outstanding: Outstanding | None = None
        #: The peer's CALLs we have not answered yet: message id -> action.
        self.unanswered: dict[str, str] = {}

    # --- sending ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.outstanding is not None

    def call(self, message_id: str, action: str, request: Any, now: float) -> None:
        """Put our CALL on the wire; the caller made sure the channel is free."""
        if self.outstanding is not None:
            raise LocalProtocolError(
                f"cannot send {action}: {self.outstanding.action} "
                f"({self.outstanding.message_id}) is still outstanding (FR.01)"
            )
        text = encode_frame(Call(message_id=message_id, action=action, payload=request))
        self.outbox.append(text)
        self.outstanding = Outstanding(message_id, action, request, now + self.call_timeout)

    def send(self, message_id: str, action: str, payload: Any) -> None:
        """2.1 SEND: one way, may go out while a CALL is outstanding (FR.07)."""
        self.outbox.append(
            encode_frame(Send(message_id=message_id, action=action, payload=payload))
        )

    def answer(self, message_id: str, response: Any) -> str:
        """Answer the peer's CALL ``message_id``; returns its action."""
        action = self._take_unanswered(message_id)
        spec = self.registry[action]
        if type(response) is not spec.response:
            self.unanswered[message_id] = action
            expected = spec.response.__name__ if spec.response else "nothing"
            raise LocalProtocolError(
                f"{action} ({message_id}) is answered with {expected}, "
                f"not {type(response).__name__}"
            )
        try:
            text = encode_frame(CallResult(message_id=message_id, payload=response))
        except Exception:
            self.unanswered[message_id] = action
            raise
        self.outbox.append(text)
        return action

    def answer_error(
        self,
        message_id: str,
        error_code: str,
        description: str = "",
        details: dict[str, Any] | None = None,
    ) -> str:
        action = self._take_unanswered(message_id)
        self._error(message_id, error_code, description, details)
        return action

    def _take_unanswered(self, message_id: str) -> str:
        action = self.unanswered.pop(message_id, None)
        if action is None:
            raise LocalProtocolError(f"no request {message_id!r} from the peer awaits an answer")
        return action

    def _error(
        self,
        message_id: str,
        error_code: str,
        description: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        frame = CallError(
            message_id=message_id,
            error_code=error_code,
            description=description,
            details=details or {},
        )
        self.outbox.append(encode_frame(frame))

    def refuse(self, event: RequestReceived, error_code: str | None, rule: str) -> RequestRefused:
        """Answer a well-formed CALL with ``error_code`` (None: stay silent) by a rule."""
        self.unanswered.pop(event.message_id, None)
        if error_code is not None:
            self._error(event.message_id, error_code, rule)
        return RequestRefused(
            message_id=event.message_id,
            action=event.action,
            request=event.request,
            error_code=error_code,
            rule=rule,
        )

    # --- receiving ----------------------------------------------------------------------

    def receive(self, text: str) -> list[Event]:
        """Events for one incoming text message."""
        pending = self.outstanding
        response_to = pending.action if pending is not None else None
        try:
            frame = decode_frame(text, self.version, response_to=response_to)
        except FrameError as error:
            return self._violation(error, text, pending)
        return self._dispatch(frame, text, pending)

    def _violation(self, error: FrameError, text: str, pending: Outstanding | None) -> list[Event]:
        if (
            error.message_type == 3
            and pending is not None
            and error.message_id == pending.message_id
            and error.action is not None
        ):
            # A CALLRESULT for our CALL whose payload breaks its schema.
            self.outstanding = None
            if error.answer is not None:
                self.outbox.append(encode_frame(error.answer))
            return [
                InvalidResponse(
                    message_id=pending.message_id,
                    action=pending.action,
                    request=pending.request,
                    error=error,
                    raw=text,
                )
            ]
        if error.message_type == 3 and (pending is None or error.message_id != pending.message_id):
            # Broken, and not an answer to anything of ours.
            return [UnmatchedResponse(message_id=error.message_id or "", raw=text)]
        answered = error.answer is not None
        if answered:
            self.outbox.append(encode_frame(error.answer))
        return [ProtocolViolation(error=error, raw=text, answered=answered)]

    def _dispatch(self, frame: Frame, text: str, pending: Outstanding | None) -> list[Event]:
        cls = frame.__class__
        if cls is Call:
            return self._incoming_call(frame, text)  # type: ignore[arg-type]
        if cls is Send:
            return self._incoming_send(frame)  # type: ignore[arg-type]
        if pending is None or frame.message_id != pending.message_id:
            return [UnmatchedResponse(message_id=frame.message_id, raw=text)]
        self.outstanding = None
        if cls is CallResult:
            return [
                ResponseReceived(
                    message_id=pending.message_id,
                    action=pending.action,
                    request=pending.request,
                    response=frame.payload,  # type: ignore[union-attr]
                )
            ]
        if cls is CallResultError:
            # Only ever answers a CALLRESULT; our CALL's id reused makes no sense.
            self.outstanding = pending
            return [UnmatchedResponse(message_id=frame.message_id, raw=text)]
        error: CallError = frame  # type: ignore[assignment]
        return [
            CallErrorReceived(
                message_id=pending.message_id,
                action=pending.action,
                request=pending.request,
                error_code=error.error_code,
                description=error.description,
                details=error.details,
            )
        ]

    def _incoming_call(self, call: Call, text: str) -> list[Event]:
        event = RequestReceived(
            message_id=call.message_id, action=call.action, request=call.payload
        )
        if call.message_id in self.unanswered:
            code = self.codes.out_of_turn
            self._error(
                call.message_id, code, "a request with this message id is still being handled"
            )
            error = FrameError(
                code,
                "duplicate message id",
                message_id=call.message_id,
                message_type=2,
                action=call.action,
            )
            return [ProtocolViolation(error=error, raw=text, answered=True)]
        spec = self.registry[call.action]
        if not spec.sender.may_send(self._peer):
            self.unanswered[call.message_id] = call.action
            return [
                self.refuse(
                    event,
                    self.codes.not_supported,
                    f"{call.action} is never sent to the {self.role.value}",
                )
            ]
        self.unanswered[call.message_id] = call.action
        return [event]

    def _incoming_send(self, send: Send) -> list[Event]:
        spec = self.registry[send.action]
        if not spec.sender.may_send(self._peer):
            error = FrameError(
                self.codes.not_supported,
                f"{send.action} is never sent to the {self.role.value}",
                message_id=send.message_id,
                message_type=6,
                action=send.action,
            )
            return [ProtocolViolation(error=error, raw="", answered=False)]
        return [
            MessageReceived(message_id=send.message_id, action=send.action, payload=send.payload)
        ]

    # --- time ---------------------------------------------------------------------------

    def deadline(self) -> float | None:
        return self.outstanding.deadline if self.outstanding is not None else None

    def expire(self, now: float) -> CallTimedOut | None:
        """Free the channel if the outstanding CALL has timed out."""
        pending = self.outstanding
        if pending is None or now < pending.deadline:
            return None
        self.outstanding = None
        return CallTimedOut(
            message_id=pending.message_id, action=pending.action, request=pending.request
        )


def _peer(role: Role) -> Role:
    return Role.CSMS if role is Role.STATION else Role.STATION
