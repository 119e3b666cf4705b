"""OCPP-J frames: the typed frame classes, ``decode_frame`` and ``encode_frame``.

Decoding reads one WebSocket text message into a typed frame, validating the payload as
strictly as the official schema, or raises ``FrameError`` carrying the error code of the
version and the answer (if any) that the version's rules prescribe. See docs/errors.md for
the table of which failure earns which code.
"""

from __future__ import annotations

import importlib
import json
import json.encoder as json_encoder
import re
import sys
from collections.abc import Callable
from typing import Any, Final

import attrs
import cattrs

from .errors import FrameError, InvalidPayloadError, LocalProtocolError, SchemaViolation
from .messages._codec import slot_setters, structure_fn, text_fn, unstructure_fn
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
_BY_TYPE: Final = -1


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


def _frame_setters(cls: type) -> list[Callable[[Any, Any], None]]:
    """The slot setters of frame class ``cls``. Setting the slots of an ``object.__new__``
    instance builds a frame for a quarter of what attrs' frozen __init__ costs, which for
    these classes (no validators, converters or hooks) does nothing more."""
    setters = slot_setters(cls)
    assert setters is not None, cls
    return setters


def _frame_builder(cls: type) -> Any:
    """A function building ``cls`` from its fields in order (see _frame_setters)."""
    setters = _frame_setters(cls)
    new = object.__new__
    if len(setters) == 3:
        first, second, third = setters

        def build3(a: Any, b: Any, c: Any) -> Any:
            frame: Any = new(cls)
            first(frame, a)
            second(frame, b)
            third(frame, c)
            return frame

        return build3
    first, second = setters

    def build2(a: Any, b: Any) -> Any:
        frame: Any = new(cls)
        first(frame, a)
        second(frame, b)
        return frame

    return build2


#: (message_id, action, payload) -> Call, and the like, for the decoder.
_new_call = _frame_builder(Call)
_new_send = _frame_builder(Send)
#: (message_id, payload) -> CallResult
_new_call_result = _frame_builder(CallResult)


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
    #: A CALL while the peer's previous ones are still being handled (OCPP-J 4.1.1
    #: "Synchronicity"): 2.x breaks the RPC framework; 1.6 has no code for it.
    out_of_turn: str = "GenericError"

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
    out_of_turn="RpcFrameworkError",
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


#: How deeply arrays and objects may nest in one frame. No schema comes near it (the
#: deepest payloads nest about ten levels); it keeps the limit independent of how deep the
#: caller's stack happens to be, so whatever decodes can also be encoded again.
MAX_DEPTH: Final = 100


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value:  # inf - inf is nan: a literal beyond the range of a double
        raise ValueError(f"number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_scan: Any = _decoder.scan_once  # type: ignore[attr-defined]
_space = re.compile(r"[ \t\n\r]*")


def _loads(text: str) -> Any:
    """``json.loads`` with our number rules, minus two layers of calls."""
    start = _space.match(text, 0).end()  # type: ignore[union-attr]  # always matches
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None
    end = _space.match(text, end).end()  # type: ignore[union-attr]
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


#: One C encoder for every frame: compact, ASCII-only (lone surrogates leave escaped), no
#: NaN or infinities. It skips the circular-reference bookkeeping: a circular object (only
#: possible in a hand-built dict) ends in RecursionError, which encode_frame reports.
_encode: Any
_make_encoder: Any = getattr(json_encoder, "c_make_encoder", None)  # untyped in typeshed
if _make_encoder is not None:
    _encode = _make_encoder(
        None, _not_json, json_encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )
else:  # pragma: no cover - Pythons without the C accelerator
    _fallback = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    _encode = lambda data, _level: (_fallback.encode(data),)  # noqa: E731


def _too_deep(text: str, value: Any) -> bool:
    """Whether ``value`` (decoded from ``text``) nests deeper than MAX_DEPTH."""
    if len(text) <= 2 * MAX_DEPTH or text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # too few brackets to nest that deep: the common, cheap case
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for child in node.values() if node.__class__ is dict else node:
            if child.__class__ is list or child.__class__ is dict:
                stack.append((child, depth + 1))
    return False


class _Decoder:
    """Decoding of one frame under one version's rules."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.codes = error_codes(version)
        self.registry = registry(version)
        self.specs = dict(self.registry)  # a plain dict: Mapping.get is slow
        #: Action of a CALL -> its request decoded from an empty object, for the requests
        #: all of whose fields are optional: one frozen instance, shared.
        self.empty_requests: dict[str, Any] = {
            name: spec.request()
            for name, spec in self.specs.items()
            if spec.response is not None and _all_optional(spec.request)
        }
        #: Action -> the structure function of its response class, as actions are met.
        self.response_structures: dict[str, Any] = {}
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
        answer_as: int | None = _BY_TYPE,
    ) -> FrameError:
        """A FrameError with the answer the version prescribes.

        ``answer_as`` is the message type whose answering rules apply (None: no answer); by
        default that of ``message_type``. A frame whose type could not be read is answered
        like a CALL: the peer ignores an error whose id it does not know, while silence
        would look like a lost message.
        """
        if answer_as == _BY_TYPE:
            answer_as = CALL if message_type is None else message_type
        description = description[:MAX_DESCRIPTION_LENGTH]
        answer: CallError | CallResultError | None = None
        if answer_as == CALL:
            answer = CallError(
                message_id=message_id if message_id is not None else UNREADABLE_ID,
                error_code=code,
                description=description,
                details=details or {},
            )
        elif (
            answer_as == CALLRESULT
            and self.version == "2.1"
            and message_id is not None
            # We never send a longer id, so such a CALLRESULT answers nothing of ours, and
            # unmatched answers are reported, not answered.
            and len(message_id) <= MAX_MESSAGE_ID_LENGTH
        ):
            answer = CallResultError(
                message_id=message_id,
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

    def decode_compact(
        self, text: str, start: int, message_id: str, action: str | None, response_to: str | None
    ) -> Frame | None:
        """A CALL (``action`` given) or CALLRESULT whose payload starts at ``start``, the
        strings before it being plain (see _CALL_HEAD): only the payload goes through the JSON
        parser. None for anything else (which ``decode_any`` then decodes, or refuses)."""
        try:
            payload, end = _scan(text, start)
        except (StopIteration, ValueError, RecursionError, TypeError):
            return None
        if end != len(text) - 1 or text[end] != "]":
            return None
        # From here on exactly what decode_any does with the same list.
        if action is not None:
            msg = [CALL, message_id, action, payload]
            if len(text) > 2 * MAX_DEPTH and _too_deep(text, msg):
                return None
            return self.call(msg, CALL, message_id)
        if len(text) > 2 * MAX_DEPTH and _too_deep(text, [CALLRESULT, message_id, payload]):
            return None
        if payload.__class__ is dict and response_to is not None:
            structure = self.response_structures.get(response_to)
            if structure is None:
                structure = self.learn_response_structure(response_to)
            if structure is not None:
                try:
                    response = structure(payload)
                except SchemaViolation:
                    pass  # call_result reports it
                else:
                    frame = _new(CallResult)
                    _set_result_id(frame, message_id)
                    _set_result_payload(frame, response)
                    return frame
        return self.call_result([CALLRESULT, message_id, payload], message_id, response_to)

    def learn_response_structure(self, action: str) -> Any:
        spec = self.specs.get(action)
        if spec is None or spec.response is None:
            return None  # call_result raises
        structure = self.response_structures[action] = structure_fn(spec.response)
        return structure

    def decode_any(self, text: str, response_to: str | None) -> Frame:
        """Decoding of any text: the reference for what the fast paths do."""
        try:
            msg = _loads(text)
        except (ValueError, RecursionError, TypeError) as exc:
            raise self.fail(self.codes.rpc, f"not valid JSON: {exc}", None, None) from None
        if msg.__class__ is not list or not msg:
            raise self.fail(self.codes.rpc, "a frame must be a non-empty JSON array", None, None)
        type_id = msg[0]
        message_id = msg[1] if len(msg) > 1 and msg[1].__class__ is str else None
        if type_id.__class__ is not int:
            raise self.fail(self.codes.rpc, "the message type must be an integer", message_id, None)
        if type_id not in self.types:
            return self.unknown_type(type_id, message_id)
        if message_id is None:
            raise self.fail(self.codes.rpc, "the message id must be a string", None, type_id)
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            # Answered with the id as received: "-1" would match nothing at the peer.
            raise self.fail(
                self.codes.rpc,
                f"message id longer than {MAX_MESSAGE_ID_LENGTH} characters",
                message_id,
                type_id,
            )
        if _too_deep(text, msg):
            raise self.fail(
                self.codes.rpc, f"nested deeper than {MAX_DEPTH} levels", message_id, type_id
            )
        if type_id in (CALL, SEND):
            return self.call(msg, type_id, message_id)
        if type_id == CALLRESULT:
            return self.call_result(msg, message_id, response_to)
        return self.call_error(msg, type_id, message_id)

    def unknown_type(self, type_id: int, message_id: str | None) -> Frame:
        """2.0.1 answers MessageTypeNotSupported; 1.6 and 2.1 ignore the message."""
        description = f"message type {type_id} is not supported"
        if self.version == "2.0.1":
            raise self.fail(
                "MessageTypeNotSupported", description, message_id, type_id, answer_as=CALL
            )
        code = "MessageTypeNotSupported" if self.version == "2.1" else self.codes.rpc
        raise self.fail(code, description, message_id, type_id, answer_as=None)

    def call(self, msg: list[Any], type_id: int, message_id: str) -> Call | Send:
        if len(msg) != 4:
            raise self.fail(
                self.codes.rpc,
                f"a {'CALL' if type_id == CALL else 'SEND'} has 4 elements, not {len(msg)}",
                message_id,
                type_id,
            )
        action = msg[2]
        if action.__class__ is not str:
            raise self.fail(self.codes.rpc, "the action must be a string", message_id, type_id)
        spec = self.specs.get(action)
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
            return _new_send(message_id, action, payload)  # type: ignore[no-any-return]
        return _new_call(message_id, action, payload)  # type: ignore[no-any-return]

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
                action=response_to,
            )
        if response_to is None:
            if msg[2].__class__ is not dict:
                raise self.fail(
                    self.codes.format, "the payload must be a JSON object", message_id, CALLRESULT
                )
            return _new_call_result(message_id, msg[2])  # type: ignore[no-any-return]
        spec = self.specs.get(response_to)
        if spec is None or spec.response is None:
            raise ValueError(
                f"{response_to!r} is not an OCPP {self.version} action with a response"
            )
        payload = self.payload(msg[2], spec.response, message_id, CALLRESULT, response_to)
        return _new_call_result(message_id, payload)  # type: ignore[no-any-return]

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


def _all_optional(cls: type) -> bool:
    """Whether every field of ``cls`` is optional, so that an empty object decodes to
    ``cls()``, with every field None. Not for open classes: their ``extra`` dict would be
    shared."""
    return not getattr(cls, "__ocpp_open__", False) and all(
        f.default is None for f in attrs.fields(cls)
    )


_decoders: dict[str, _Decoder] = {}


#: The start of a compact CALL or CALLRESULT whose strings hold nothing JSON would escape
#: (anything but a quote, a backslash and U+0000 to U+001F), so that each string's text is
#: its value: ``[2,"<id>","<action>",`` or ``[3,"<id>",``; and a whole compact CALL with an
#: empty object as payload. (A positive class with possessive repeats is the quickest form
#: for the regular expression engine, and two expressions are quicker than one.)
_PLAIN = r"[ !#-\[\]-\U0010ffff]"
_PLAIN_ID = f"{_PLAIN}{{0,{MAX_MESSAGE_ID_LENGTH}}}+"
_CALL_HEAD = re.compile(rf'\[2,"({_PLAIN_ID})","({_PLAIN}*+)",').match
_RESULT_HEAD = re.compile(rf'\[3,"({_PLAIN_ID})",').match
_EMPTY_CALL = re.compile(rf'\[2,"({_PLAIN_ID})","({_PLAIN}*+)",\{{\}}\]').fullmatch
_set_call_id, _set_call_action, _set_call_payload = _frame_setters(Call)
_set_result_id, _set_result_payload = _frame_setters(CallResult)
_new = object.__new__


def decode_frame(text: str, version: str, *, response_to: str | None = None) -> Frame:
    """Decode one OCPP-J message of ``version``.

    ``response_to`` names the action of the CALL a CALLRESULT answers, so its payload can be
    typed; without it a CALLRESULT's payload stays the raw dict. Raises ``FrameError``.
    """
    try:
        decoder = _decoders[version]
    except KeyError:
        decoder = _decoders[_check_version(version)] = _Decoder(version)
    try:
        match = _EMPTY_CALL(text)
    except TypeError:  # not a string: decode_any says what it is
        return decoder.decode_any(text, response_to)
    if match is not None:
        # Maybe the commonest frame of all (Heartbeat, and every request with only optional
        # fields), and no JSON parser needed.
        message_id, action = match.groups()
        try:
            request = decoder.empty_requests[action]
        except KeyError:  # an unknown action, or one with required fields
            pass
        else:
            frame = _new(Call)
            _set_call_id(frame, message_id)
            _set_call_action(frame, action)
            _set_call_payload(frame, request)
            return frame
        compact = decoder.decode_compact(text, match.end(2) + 2, message_id, action, response_to)
        if compact is not None:
            return compact
        return decoder.decode_any(text, response_to)
    match = _RESULT_HEAD(text)
    if match is not None:
        compact = decoder.decode_compact(text, match.end(), match[1], None, response_to)
        if compact is not None:
            return compact
    else:
        match = _CALL_HEAD(text)
        if match is not None:
            message_id, action = match.groups()
            compact = decoder.decode_compact(text, match.end(), message_id, action, response_to)
            if compact is not None:
                return compact
    return decoder.decode_any(text, response_to)


#: For each message class: the action it belongs to, and whether it is the request of a
#: CALL ("request"), the payload of a SEND ("send") or a response ("response").
_ROLES: dict[type, tuple[str, str] | None] = {}


def _role_of(cls: type) -> tuple[str, str] | None:
    try:
        return _ROLES[cls]
    except KeyError:
        pass
    role: tuple[str, str] | None = None
    actions = getattr(sys.modules.get(cls.__module__), "ACTIONS", None)
    if is_message_class(cls) and isinstance(actions, Registry):
        try:
            spec = actions.for_class(cls)
        except KeyError:  # a type nested in messages, not a message itself
            pass
        else:
            if cls is spec.response:
                role = (spec.name, "response")
            else:
                role = (spec.name, "request" if spec.response is not None else "send")
    _ROLES[cls] = role
    return role


def _payload_out(payload: Any, action: str | None, kind: str) -> Any:
    """The JSON object of ``payload``, after checking it is the ``kind`` of ``action``
    (any action for a response: a CALLRESULT does not name its action)."""
    cls = payload.__class__
    if cls is dict:
        return payload  # built by hand, sent as it is
    role = _role_of(cls)
    if role is None or role[1] != kind or (action is not None and role[0] != action):
        expected = f"the {kind} of {action or 'an action'}"
        what = f"the {role[1]} of {role[0]}" if role is not None else "no action's payload"
        raise InvalidPayloadError(f"{cls.__name__} is {what}, not {expected}", "$")
    try:
        return unstructure_fn(cls)(payload)
    except SchemaViolation as violation:
        raise InvalidPayloadError(violation.reason, violation.path) from None


def _check_new_id(message_id: Any) -> None:
    """The id of a CALL or SEND: a string of at most 36 characters (as decoding accepts)."""
    if not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise LocalProtocolError(
            f"a message id must be a string of at most {MAX_MESSAGE_ID_LENGTH} characters, "
            f"not {message_id!r}"
        )


def _check_str(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a string, not {type(value).__name__}")


#: Payload class -> (action, ``,"<action>",``, its text function) for the requests of
#: CALLs whose class has a text function (see ``text_fn``), else None.
_CALL_TEXTS: dict[type, tuple[str, str, Any] | None] = {}
#: Payload class -> its text function, for responses whose class has one, else None.
_RESULT_TEXTS: dict[type, Any] = {}
_quote = json_encoder.encode_basestring_ascii


def _learn_call_text(cls: type) -> tuple[str, str, Any] | None:
    role = _role_of(cls)
    fn = text_fn(cls) if role is not None and role[1] == "request" else None
    shortcut = None if fn is None or role is None else (role[0], f",{_quote(role[0])},", fn)
    _CALL_TEXTS[cls] = shortcut
    return shortcut


def _learn_result_text(cls: type) -> Any:
    role = _role_of(cls)
    fn = _RESULT_TEXTS[cls] = text_fn(cls) if role is not None and role[1] == "response" else None
    return fn


def _written(write: Any, payload: Any) -> str | None:
    """A payload's own text, or None to go the general way (which gives the same text or
    reports the error, e.g. an int too long for str())."""
    try:
        return write(payload)  # type: ignore[no-any-return]
    except ValueError:
        return None


def encode_frame(frame: Frame) -> str:
    """Compact JSON text of ``frame``.

    Raises InvalidPayloadError (with the JSON path) for a payload that breaks its schema or
    does not belong to the frame's action, LocalProtocolError for a malformed frame. An
    answer repeats the id it answers whatever its length; a CALL or SEND id must have at
    most 36 characters. Error descriptions are cut to 255 characters.
    """
    # The shortcut: a CALL or CALLRESULT whose payload class writes its own text (flat
    # payloads such as Heartbeat's). Whatever it is not sure of goes the general way,
    # which gives the same text or reports the error.
    cls = frame.__class__
    if cls is Call:
        payload = frame.payload  # type: ignore[union-attr]
        try:
            call_text = _CALL_TEXTS[payload.__class__]
        except KeyError:
            call_text = _learn_call_text(payload.__class__)
        if call_text is not None:
            action, action_text, write = call_text
            message_id = frame.message_id
            given = frame.action  # type: ignore[union-attr]
            if (
                message_id.__class__ is str
                and len(message_id) <= MAX_MESSAGE_ID_LENGTH
                and (given is action or (given.__class__ is str and given == action))
            ):
                body = _written(write, payload)
                if body is not None:
                    return "[2," + _quote(message_id) + action_text + body + "]"
    elif cls is CallResult:
        payload = frame.payload  # type: ignore[union-attr]
        try:
            write = _RESULT_TEXTS[payload.__class__]
        except KeyError:
            write = _learn_result_text(payload.__class__)
        if write is not None and frame.message_id.__class__ is str:
            body = _written(write, payload)
            if body is not None:
                return "[3," + _quote(frame.message_id) + "," + body + "]"
    return _encode_any(frame)


def _encode_any(frame: Frame) -> str:
    """Encoding of any frame: the reference for what encode_frame's shortcut does."""
    cls = frame.__class__
    data: list[Any]
    if cls is Call or cls is Send:
        _check_new_id(frame.message_id)
        action = frame.action  # type: ignore[union-attr]
        _check_str(action, "the action")
        kind = "request" if cls is Call else "send"
        data = [
            CALL if cls is Call else SEND,
            frame.message_id,
            action,
            _payload_out(frame.payload, action, kind),  # type: ignore[union-attr]
        ]
    elif cls is CallResult:
        _check_str(frame.message_id, "the message id")
        data = [CALLRESULT, frame.message_id, _payload_out(frame.payload, None, "response")]  # type: ignore[union-attr]
    elif cls is CallError or cls is CallResultError:
        _check_str(frame.message_id, "the message id")
        _check_str(frame.error_code, "the error code")  # type: ignore[union-attr]
        _check_str(frame.description, "the error description")  # type: ignore[union-attr]
        if not isinstance(frame.details, dict):  # type: ignore[union-attr]
            raise LocalProtocolError("the error details must be a dict")
        data = [
            CALLERROR if cls is CallError else CALLRESULTERROR,
            frame.message_id,
            frame.error_code,  # type: ignore[union-attr]
            frame.description[:MAX_DESCRIPTION_LENGTH],  # type: ignore[union-attr]
            frame.details,  # type: ignore[union-attr]
        ]
    else:
        raise TypeError(f"not an OCPP frame: {frame!r}")
    try:
        return "".join(_encode(data, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        # Only hand-built dicts and untyped (Any) values get here: NaN, sets, objects...
        raise InvalidPayloadError(f"not representable as JSON: {exc}", "$") from None


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
