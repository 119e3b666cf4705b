"""OCPP-J frames: the typed frame classes, ``decode_frame`` and ``encode_frame``.

Decoding reads one WebSocket text message into a typed frame, validating the payload as
strictly as the official schema, or raises ``FrameError`` carrying the error code of the
version and the answer (if any) that the version's rules prescribe. See docs/errors.md for
the table of which failure earns which code.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

import attrs
import cattrs

from .errors import FrameError, InvalidPayloadError, SchemaViolation
from .messages._codec import structure_fn, unstructure_fn
from .messages._model import is_message_class
from .messages._registry import Registry

CALL: Final = 2
CALLRESULT: Final = 3
CALLERROR: Final = 4
CALLRESULTERROR: Final = 5
SEND: Final = 6

VERSIONS: Final = ("1.6", "2.0.1", "2.1")
_MODULES = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
MAX_MESSAGE_ID_LENGTH: Final = 36
#: 2.x limits errorDescription to 255 characters; we keep to it in every version.
MAX_DESCRIPTION_LENGTH: Final = 255
#: The id a CALLERROR carries when the CALL's own id could not be read.
UNREADABLE_ID: Final = "-1"


@attrs.frozen(kw_only=True)
class Call:
    message_id: str
    action: str
    #: The request object (a dict only when built by hand to send something raw).
    payload: Any


@attrs.frozen(kw_only=True)
class CallResult:
    message_id: str
    #: The response object; the raw dict when decoded without ``response_to``.
    payload: Any


@attrs.frozen(kw_only=True)
class CallError:
    message_id: str
    error_code: str
    description: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class CallResultError:
    """2.1: the answer to a CALLRESULT that could not be accepted."""

    message_id: str
    error_code: str
    description: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Send:
    """2.1: a one-way message that is never answered."""

    message_id: str
    action: str
    payload: Any


Frame = Call | CallResult | CallError | CallResultError | Send


@attrs.frozen
class ErrorCodes:
    """The error codes one version uses for each kind of failure."""

    rpc: str  # the frame is not a valid RPC message
    format: str  # the payload is not a JSON object
    occurrence: str
    type: str
    property: str
    unknown_property: str
    not_implemented: str = "NotImplemented"
    not_supported: str = "NotSupported"
    security: str = "SecurityError"
    internal: str = "InternalError"
    generic: str = "GenericError"

    def for_violation(self, violation: SchemaViolation) -> str:
        return {
            SchemaViolation.OCCURRENCE: self.occurrence,
            SchemaViolation.TYPE: self.type,
            SchemaViolation.PROPERTY: self.property,
            SchemaViolation.UNKNOWN_PROPERTY: self.unknown_property,
        }[violation.kind]


_CODES_16 = ErrorCodes(
    rpc="FormationViolation",
    format="FormationViolation",
    occurrence="OccurenceConstraintViolation",
    type="TypeConstraintViolation",
    property="PropertyConstraintViolation",
    unknown_property="FormationViolation",
)
_CODES_2X = ErrorCodes(
    rpc="RpcFrameworkError",
    format="FormatViolation",
    occurrence="OccurrenceConstraintViolation",
    type="TypeConstraintViolation",
    property="PropertyConstraintViolation",
    unknown_property="ProtocolError",
)

#: Every error code each version defines (what we may send).
ERROR_CODES: Final = {
    "1.6": frozenset(
        {
            "NotImplemented",
            "NotSupported",
            "InternalError",
            "ProtocolError",
            "SecurityError",
            "FormationViolation",
            "PropertyConstraintViolation",
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "GenericError",
        }
    ),
    "2.0.1": frozenset(
        {
            "FormatViolation",
            "GenericError",
            "InternalError",
            "MessageTypeNotSupported",
            "NotImplemented",
            "NotSupported",
            "OccurrenceConstraintViolation",
            "PropertyConstraintViolation",
            "ProtocolError",
            "RpcFrameworkError",
            "SecurityError",
            "TypeConstraintViolation",
        }
    ),
}
ERROR_CODES["2.1"] = ERROR_CODES["2.0.1"]


def error_codes(version: str) -> ErrorCodes:
    return _CODES_16 if _check_version(version) == "1.6" else _CODES_2X


def registry(version: str) -> Registry:
    """The action registry of ``version`` ("1.6", "2.0.1" or "2.1")."""
    module = importlib.import_module(f"ocpp_sansio.messages.{_MODULES[_check_version(version)]}")
    actions: Registry = module.ACTIONS
    return actions


def _check_version(version: str) -> str:
    if version not in _MODULES:
        raise ValueError(f"unknown OCPP version {version!r}; expected one of {VERSIONS}")
    return version


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def _loads(text: str) -> Any:
    return _decoder.decode(text)


class _Decoder:
    """Decoding of one frame under one version's rules."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.codes = error_codes(version)
        self.registry = registry(version)
        self.types = (CALL, CALLRESULT, CALLERROR) + (
            (CALLRESULTERROR, SEND) if version == "2.1" else ()
        )

    def fail(
        self,
        code: str,
        description: str,
        message_id: str | None,
        message_type: int | None,
        *,
        details: dict[str, Any] | None = None,
        action: str | None = None,
    ) -> FrameError:
        """A FrameError with the answer the version prescribes for this message type."""
        description = description[:MAX_DESCRIPTION_LENGTH]
        answer: CallError | CallResultError | None = None
        answer_id = message_id if message_id is not None else UNREADABLE_ID
        if message_type is None or message_type == CALL:
            answer = CallError(
                message_id=answer_id,
                error_code=code,
                description=description,
                details=details or {},
            )
        elif message_type == CALLRESULT and self.version == "2.1" and message_id is not None:
            answer = CallResultError(
                message_id=answer_id,
                error_code=code,
                description=description,
                details=details or {},
            )
        return FrameError(
            code,
            description,
            message_id=message_id,
            message_type=message_type,
            details=details,
            answer=answer,
            action=action,
        )

    def decode(self, text: str, response_to: str | None) -> Frame:
        try:
            msg = _loads(text)
        except (ValueError, RecursionError, TypeError) as exc:
            raise self.fail(self.codes.rpc, f"not valid JSON: {exc}", None, None) from None
        if msg.__class__ is not list or not msg:
            raise self.fail(self.codes.rpc, "a frame must be a non-empty JSON array", None, None)
        type_id = msg[0]
        if type_id.__class__ is not int:
            raise self.fail(self.codes.rpc, "the message type must be a number", None, None)
        message_id = msg[1] if len(msg) > 1 and msg[1].__class__ is str else None
        if type_id not in self.types:
            return self.unknown_type(type_id, message_id)
        if message_id is None:
            raise self.fail(self.codes.rpc, "the message id must be a string", None, type_id)
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            raise self.fail(
                self.codes.rpc,
                f"message id longer than {MAX_MESSAGE_ID_LENGTH} characters",
                message_id,
                type_id,
            )
        if type_id == CALL or type_id == SEND:
            return self.call(msg, type_id, message_id)
        if type_id == CALLRESULT:
            return self.call_result(msg, message_id, response_to)
        return self.call_error(msg, type_id, message_id)

    def unknown_type(self, type_id: int, message_id: str | None) -> Frame:
        """2.0.1 answers MessageTypeNotSupported; 1.6 and 2.1 ignore the message."""
        description = f"message type {type_id} is not supported"
        if self.version == "2.0.1":
            raise self.fail("MessageTypeNotSupported", description, message_id, None)
        code = "MessageTypeNotSupported" if self.version == "2.1" else self.codes.rpc
        raise FrameError(code, description, message_id=message_id, message_type=type_id)

    def call(self, msg: list[Any], type_id: int, message_id: str) -> Call | Send:
        if len(msg) != 4:
            raise self.fail(
                self.codes.rpc, f"a CALL has 4 elements, not {len(msg)}", message_id, type_id
            )
        action = msg[2]
        if action.__class__ is not str:
            raise self.fail(self.codes.rpc, "the action must be a string", message_id, type_id)
        spec = self.registry.get(action)
        if spec is None:
            raise self.fail(
                self.codes.not_implemented,
                f"unknown action {action!r}",
                message_id,
                type_id,
                action=action,
            )
        is_send = spec.response is None
        if is_send != (type_id == SEND):
            kind = "SEND" if is_send else "CALL"
            raise self.fail(
                self.codes.rpc,
                f"{action} may only be sent as a {kind}",
                message_id,
                type_id,
                action=action,
            )
        payload = self.payload(msg[3], spec.request, message_id, type_id, action)
        if type_id == SEND:
            return Send(message_id=message_id, action=action, payload=payload)
        return Call(message_id=message_id, action=action, payload=payload)

    def payload(
        self, raw: Any, cls: type, message_id: str, type_id: int, action: str | None
    ) -> Any:
        if raw.__class__ is not dict:
            raise self.fail(
                self.codes.format,
                "the payload must be a JSON object",
                message_id,
                type_id,
                action=action,
            )
        try:
            return structure_fn(cls)(raw)
        except SchemaViolation as violation:
            raise self.fail(
                self.codes.for_violation(violation),
                str(violation),
                message_id,
                type_id,
                details={"path": violation.path, "reason": violation.reason},
                action=action,
            ) from None

    def call_result(self, msg: list[Any], message_id: str, response_to: str | None) -> CallResult:
        if len(msg) != 3:
            raise self.fail(
                self.codes.rpc,
                f"a CALLRESULT has 3 elements, not {len(msg)}",
                message_id,
                CALLRESULT,
            )
        if response_to is None:
            if msg[2].__class__ is not dict:
                raise self.fail(
                    self.codes.format, "the payload must be a JSON object", message_id, CALLRESULT
                )
            return CallResult(message_id=message_id, payload=msg[2])
        spec = self.registry.get(response_to)
        if spec is None or spec.response is None:
            raise ValueError(
                f"{response_to!r} is not an OCPP {self.version} action with a response"
            )
        payload = self.payload(msg[2], spec.response, message_id, CALLRESULT, response_to)
        return CallResult(message_id=message_id, payload=payload)

    def call_error(
        self, msg: list[Any], type_id: int, message_id: str
    ) -> CallError | CallResultError:
        if len(msg) != 5:
            raise self.fail(
                self.codes.rpc,
                f"an error frame has 5 elements, not {len(msg)}",
                message_id,
                type_id,
            )
        _, _, code, description, details = msg
        if (
            code.__class__ is not str
            or description.__class__ is not str
            or details.__class__ is not dict
        ):
            raise self.fail(
                self.codes.rpc,
                "an error frame holds a code string, a description string and a details object",
                message_id,
                type_id,
            )
        cls = CallError if type_id == CALLERROR else CallResultError
        return cls(message_id=message_id, error_code=code, description=description, details=details)


_decoders: dict[str, _Decoder] = {}


def decode_frame(text: str, version: str, *, response_to: str | None = None) -> Frame:
    """Decode one OCPP-J message of ``version``.

    ``response_to`` names the action of the CALL a CALLRESULT answers, so its payload can be
    typed; without it a CALLRESULT's payload stays the raw dict. Raises ``FrameError``.
    """
    decoder = _decoders.get(version)
    if decoder is None:
        decoder = _decoders[_check_version(version)] = _Decoder(version)
    return decoder.decode(text, response_to)


def _payload_out(payload: Any) -> Any:
    if payload.__class__ is dict:
        return payload
    if not is_message_class(type(payload)):
        raise InvalidPayloadError(f"expected a message object, got {type(payload).__name__}", "$")
    try:
        return unstructure_fn(type(payload))(payload)
    except SchemaViolation as violation:
        raise InvalidPayloadError(violation.reason, violation.path) from None


def _check_id(message_id: Any) -> None:
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise InvalidPayloadError(
            f"message id must be a string of 1..{MAX_MESSAGE_ID_LENGTH} characters", "$[1]"
        )


def encode_frame(frame: Frame) -> str:
    """Compact JSON text of ``frame``; raises InvalidPayloadError for an invalid payload."""
    cls = frame.__class__
    _check_id(frame.message_id)
    data: list[Any]
    if cls is Call or cls is Send:
        data = [
            CALL if cls is Call else SEND,
            frame.message_id,
            frame.action,
            _payload_out(frame.payload),
        ]  # type: ignore[union-attr]
    elif cls is CallResult:
        data = [CALLRESULT, frame.message_id, _payload_out(frame.payload)]  # type: ignore[union-attr]
    elif cls is CallError or cls is CallResultError:
        data = [
            CALLERROR if cls is CallError else CALLRESULTERROR,
            frame.message_id,
            frame.error_code,  # type: ignore[union-attr]
            frame.description[:MAX_DESCRIPTION_LENGTH],  # type: ignore[union-attr]
            frame.details,  # type: ignore[union-attr]
        ]
    else:
        raise TypeError(f"not an OCPP frame: {frame!r}")
    return json.dumps(data, separators=(",", ":"))


def make_converter(version: str) -> cattrs.Converter:
    """A cattrs converter for the messages of ``version``: camelCase on the wire, RFC 3339
    datetimes, None fields omitted, schema validation on the way in and out."""
    registry(version)  # import the version's module, and check the version
    converter = cattrs.Converter()

    def structure_hook(cls: type) -> Any:
        fn = structure_fn(cls)
        return lambda data, _cls: fn(data)

    def unstructure_hook(cls: type) -> Any:
        return unstructure_fn(cls)

    converter.register_structure_hook_factory(is_message_class, structure_hook)
    converter.register_unstructure_hook_factory(is_message_class, unstructure_hook)
    return converter
