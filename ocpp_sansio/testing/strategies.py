"""Hypothesis strategies for OCPP messages and frames (install the ``hypothesis`` extra).

Every strategy is derived from the message classes and the limits in their field
metadata, so it follows the generated code and covers every version and action:

- ``messages(cls)``: valid instances of one message class (also ``st.from_type(cls)``);
- ``frames(version)`` / ``frame_objects(version)``: valid frames as text or as objects;
- ``invalid_frames(version, kind)``: ``(text, error_code)`` pairs that ``decode_frame``
  must refuse with that code;
- ``invalid_payloads(cls, kind)``: a payload broken in one place, with the code and the
  JSON path the refusal must name.
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
import math
import sys
import types
import typing
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from ..errors import needs_extra

with needs_extra("hypothesis", needed_by="ocpp_sansio.testing's strategies"):
    from hypothesis import strategies as st

from ..frames import (
    ERROR_CODES,
    MAX_DESCRIPTION_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    VERSIONS,
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Send,
    encode_frame,
    registry,
)
from ..messages._codec import _wire_name, unstructure_fn
from ..messages._model import LIMITS, Limits, is_message_class
from ..messages._registry import ActionSpec, Role

__all__ = [
    "FRAME_KINDS",
    "INVALID_FRAME_KINDS",
    "PAYLOAD_KINDS",
    "PayloadMutation",
    "expected_error_code",
    "frame_objects",
    "frames",
    "invalid_frames",
    "invalid_payloads",
    "json_values",
    "message_ids",
    "messages",
    "mutation_kinds",
    "register_strategies",
]

T = TypeVar("T")

#: Lists hold at most this many items (by nesting depth of the object holding them) unless
#: their schema asks for more. Schemas nest lists of up to 1024 items in lists of objects
#: that each may carry vendor data; drawn at full size, an example runs to megabytes.
LIST_SIZES = (4, 3, 2, 1)

#: Kinds of valid frame; "callresulterror" and "send" exist only in 2.1.
FRAME_KINDS = ("call", "callresult", "callerror", "callresulterror", "send")
#: Ways a payload can break its schema, for ``invalid_payloads``.
PAYLOAD_KINDS = (
    "missing_required",
    "wrong_type",
    "too_long",
    "out_of_range",
    "item_count",
    "extra_property",
)
#: Ways a frame can be invalid, for ``invalid_frames``.
INVALID_FRAME_KINDS = (
    "not_json",
    "not_array",
    "wrong_arity",
    "bad_message_id",
    "wrong_element_type",
    "unknown_action",
    "payload_not_object",
    *PAYLOAD_KINDS,
)

_RPC = {"1.6": "FormationViolation", "2.x": "RpcFrameworkError"}
_CODES: dict[str, dict[str, str]] = {
    "1.6": {
        "payload_not_object": "FormationViolation",
        "unknown_action": "NotImplemented",
        "missing_required": "OccurenceConstraintViolation",
        "item_count": "OccurenceConstraintViolation",
        "wrong_type": "TypeConstraintViolation",
        "too_long": "PropertyConstraintViolation",
        "out_of_range": "PropertyConstraintViolation",
        "extra_property": "FormationViolation",
    },
    "2.x": {
        "payload_not_object": "FormatViolation",
        "unknown_action": "NotImplemented",
        "missing_required": "OccurrenceConstraintViolation",
        "item_count": "OccurrenceConstraintViolation",
        "wrong_type": "TypeConstraintViolation",
        "too_long": "PropertyConstraintViolation",
        "out_of_range": "PropertyConstraintViolation",
        "extra_property": "ProtocolError",
    },
}


def expected_error_code(version: str, kind: str) -> str:
    """The error code ``decode_frame`` gives a frame of ``version`` broken as ``kind``."""
    if version not in VERSIONS:
        raise ValueError(f"unknown OCPP version {version!r}")
    if kind not in INVALID_FRAME_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {INVALID_FRAME_KINDS}")
    family = "1.6" if version == "1.6" else "2.x"
    return _CODES[family].get(kind, _RPC[family])


# --- JSON values and scalars -------------------------------------------------------------

_json_scalars = (
    st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
#: Any JSON value (what ``json.loads`` can return, NaN and infinities excluded).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)
_json_objects = st.dictionaries(st.text(), json_values, max_size=4)
_small_json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | _json_scalars,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(), inner, max_size=2),
    max_leaves=3,
)
_json_not_null = _json_scalars | st.lists(json_values, max_size=4) | _json_objects

#: Message ids as peers send them: UUIDs mostly, any short string sometimes.
message_ids: st.SearchStrategy[str] = st.uuids().map(str) | st.text(
    min_size=1, max_size=MAX_MESSAGE_ID_LENGTH
)

_MAX_OFFSET = 23 * 60 + 59
_timezones = st.just(UTC) | st.integers(-_MAX_OFFSET, _MAX_OFFSET).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# One day of margin at either end, so that every value has a UTC form.
_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30, 23, 59, 59, 999000),
    timezones=_timezones,
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))

# RFC 3986 pieces, for fields with format "uri".
_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
_SUB_DELIMS = "!$&'()*+,;="
_pct_encoded = st.integers(0, 255).map(lambda byte: f"%{byte:02X}")
_pchar = st.sampled_from(_UNRESERVED + _SUB_DELIMS + ":@") | _pct_encoded
_segment = st.lists(_pchar, max_size=8).map("".join)
_schemes = st.sampled_from(["https", "http", "ftp", "ftps", "sftp", "urn"]) | st.from_regex(
    r"[A-Za-z][A-Za-z0-9+.\-]{0,7}", fullmatch=True
)
_hosts = st.lists(
    st.sampled_from(_UNRESERVED + _SUB_DELIMS) | _pct_encoded, min_size=1, max_size=12
).map("".join)


@st.composite
def _uris(draw: st.DrawFn) -> str:
    scheme = draw(_schemes)
    path = "/".join(draw(st.lists(_segment, max_size=4)))
    if draw(st.booleans()):
        port = draw(st.none() | st.integers(0, 65535))
        authority = draw(_hosts) + ("" if port is None else f":{port}")
        text = f"{scheme}://{authority}/{path}"
    else:  # path-rootless: the first segment may not be empty
        text = f"{scheme}:{draw(_pchar)}{path}"
    if draw(st.booleans()):
        text += "?" + draw(st.lists(_pchar | st.sampled_from("/?"), max_size=8).map("".join))
    if draw(st.booleans()):
        text += "#" + draw(st.lists(_pchar | st.sampled_from("/?"), max_size=8).map("".join))
    return text


def _multiples(limits: Limits, *, integral: bool) -> st.SearchStrategy[Any]:
    """Numbers within the limits whose decimal text is an exact multiple of the step."""
    step = Decimal(repr(limits.multiple_of))
    low = -(10**9) if limits.minimum is None else math.ceil(Decimal(repr(limits.minimum)) / step)
    high = 10**9 if limits.maximum is None else math.floor(Decimal(repr(limits.maximum)) / step)
    convert: Callable[[Decimal], Any] = int if integral else float
    return st.integers(low, high).map(lambda k: convert(k * step))


def _scalars(tp: Any, limits: Limits) -> st.SearchStrategy[Any]:
    if tp is str:
        if limits.uri:
            limit = limits.max_length
            if limit is None:
                return _uris()
            return _uris().filter(lambda text: len(text) <= limit)
        return st.text(max_size=limits.max_length)
    if tp is int:
        if limits.multiple_of is not None:
            return _multiples(limits, integral=True)
        return st.integers(
            min_value=None if limits.minimum is None else math.ceil(limits.minimum),
            max_value=None if limits.maximum is None else math.floor(limits.maximum),
        )
    if tp is float:
        if limits.multiple_of is not None:
            return _multiples(limits, integral=False)
        return st.floats(
            min_value=limits.minimum,
            max_value=limits.maximum,
            allow_nan=False,
            allow_infinity=False,
        )
    if tp is bool:
        return st.booleans()
    if tp is datetime:
        return _datetimes
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if tp is Any:
        return _json_not_null
    raise TypeError(f"no strategy for field type {tp!r}")  # pragma: no cover


# --- message instances -------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        (inner,) = (arg for arg in typing.get_args(tp) if arg is not type(None))
        return inner
    return tp


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return {name: _unwrap(tp) for name, tp in typing.get_type_hints(cls).items()}


def _is_open(cls: type) -> bool:
    return bool(getattr(cls, "__ocpp_open__", False))


def _fields(cls: type) -> Iterator[tuple[attrs.Attribute[Any], Any, Limits]]:
    """The wire fields of ``cls``: attribute, unwrapped type, limits (no ``extra``)."""
    hints = _hints(cls)
    for f in attrs.fields(cls):
        if f.name == "extra" and _is_open(cls):
            continue
        yield f, hints[f.name], f.metadata.get(LIMITS, Limits())


def _known_names(cls: type) -> frozenset[str]:
    return frozenset(_wire_name(f) for f, _, _ in _fields(cls))


def _values(
    tp: Any, limits: Limits, site: tuple[str, ...], forced: bool, depth: int, lean: bool
) -> st.SearchStrategy[Any]:
    """Values of a field of an object ``depth`` levels down; ``site`` continues the forced
    path inside it."""
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        min_size = limits.min_items or 0
        if forced:
            min_size = max(min_size, 1)
        level = min(depth + (2 if lean else 0), len(LIST_SIZES) - 1)
        max_size = max(min_size, LIST_SIZES[level])
        if limits.max_items is not None:
            max_size = min(max_size, limits.max_items)
        items = _values(item, limits, site, forced, depth, lean)
        return st.lists(items, min_size=min_size, max_size=max_size)
    if is_message_class(tp):
        return st.deferred(lambda: _instances(tp, site, depth + 1, lean))
    return _scalars(tp, limits)


def _build(cls: type, values: dict[str, Any]) -> Any:
    return cls(**values)


@functools.cache
def _instances(
    cls: type, site: tuple[str, ...] = (), depth: int = 0, lean: bool = False
) -> st.SearchStrategy[Any]:
    """Instances of ``cls`` at ``depth``; the fields named along ``site`` are always
    present (lists on it have at least one item), so a mutation there has something to
    work on. ``lean`` ones leave out optional fields below the top level that are not on
    the site, and keep lists shorter: the background of a mutation stays small."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f, tp, limits in _fields(cls):
        forced = bool(site) and site[0] == f.name
        if forced or f.default is attrs.NOTHING:
            kind = required
        elif lean and depth > 0:
            continue
        else:
            kind = optional
        kind[f.name] = _values(tp, limits, site[1:] if forced else (), forced, depth, lean)
    if _is_open(cls):
        known = _known_names(cls)
        required["extra"] = st.dictionaries(
            st.text().filter(lambda key: key not in known), _small_json_values, max_size=2
        )
    return st.fixed_dictionaries(required, optional=optional).map(functools.partial(_build, cls))


def messages(cls: type[T]) -> st.SearchStrategy[T]:
    """Valid instances of message class ``cls``: strings within their length, numbers
    within range and step, lists within their item counts (and ``LIST_SIZES``), aware
    datetimes in whole milliseconds at any UTC offset, optional fields sometimes None,
    vendor objects (2.x CustomData) with random extra keys."""
    if not is_message_class(cls):
        raise TypeError(f"{cls!r} is not an OCPP message class")
    strategy: st.SearchStrategy[T] = _instances(typing.cast(type, cls))
    return strategy


def _module(version: str) -> types.ModuleType:
    registry(version)  # checks the version
    name = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}[version]
    return importlib.import_module(f"ocpp_sansio.messages.{name}")


def _version_of(cls: type) -> str:
    version = getattr(sys.modules[cls.__module__], "VERSION", None)
    if version not in VERSIONS:
        raise TypeError(f"{cls!r} is not a message class of an OCPP version module")
    return str(version)


def register_strategies() -> None:
    """Register ``messages(cls)`` for every message class, so ``st.from_type`` works."""
    for version in VERSIONS:
        module = _module(version)
        for obj in vars(module).values():
            if is_message_class(obj) and obj.__module__ == module.__name__:
                st.register_type_strategy(obj, messages)


# --- frames ------------------------------------------------------------------------------

_OTHER = {Role.STATION: Role.CSMS, Role.CSMS: Role.STATION}


def _specs(version: str, sent_by: Role | None, actions: Collection[str] | None) -> list[ActionSpec]:
    specs = list(registry(version).values())
    if actions is not None:
        unknown = set(actions) - {spec.name for spec in specs}
        if unknown:
            raise ValueError(f"not OCPP {version} actions: {sorted(unknown)}")
        specs = [spec for spec in specs if spec.name in actions]
    if sent_by is not None and sent_by is not Role.EITHER:
        specs = [spec for spec in specs if spec.sender.may_send(sent_by)]
    return specs


def frame_objects(
    version: str,
    *,
    kinds: Collection[str] | None = None,
    sent_by: Role | None = None,
    actions: Collection[str] | None = None,
) -> st.SearchStrategy[Frame]:
    """Valid frames of ``version`` as objects (``Call``, ``CallResult``, ``CallError``;
    in 2.1 also ``CallResultError`` and ``Send``).

    ``kinds`` picks among ``FRAME_KINDS``; ``sent_by`` keeps what a party in that role may
    send (its requests, answers to the other role's requests, errors); ``actions`` limits
    the actions of CALLs, SENDs and CALLRESULTs. A CALLRESULT's payload is the typed
    response; ``registry(version).for_payload(frame.payload).name`` gives the action to
    pass as ``response_to`` when decoding it.
    """
    allowed = FRAME_KINDS if version == "2.1" else FRAME_KINDS[:3]
    chosen = tuple(allowed if kinds is None else kinds)
    bad = set(chosen) - set(allowed)
    if bad:
        raise ValueError(f"OCPP {version} has no {sorted(bad)} frames")
    mine = _specs(version, sent_by, actions)
    answered = _specs(version, None if sent_by is None else _OTHER.get(sent_by), actions)
    options: list[st.SearchStrategy[Frame]] = []
    for kind in chosen:
        if kind in ("call", "send"):
            specs = [s for s in mine if (s.response is None) == (kind == "send")]
            cls: type = Call if kind == "call" else Send
            options += [
                st.builds(
                    cls,
                    message_id=message_ids,
                    action=st.just(spec.name),
                    payload=messages(spec.request),
                )
                for spec in specs
            ]
        elif kind == "callresult":
            options += [
                st.builds(CallResult, message_id=message_ids, payload=messages(spec.response))
                for spec in answered
                if spec.response is not None
            ]
        else:
            options.append(
                st.builds(
                    CallError if kind == "callerror" else CallResultError,
                    message_id=message_ids,
                    error_code=st.sampled_from(sorted(ERROR_CODES[version])),
                    description=st.text(max_size=MAX_DESCRIPTION_LENGTH),
                    details=_json_objects,
                )
            )
    if not options:
        raise ValueError("no frame matches these filters")
    return st.one_of(options)


def frames(
    version: str,
    *,
    kinds: Collection[str] | None = None,
    sent_by: Role | None = None,
    actions: Collection[str] | None = None,
) -> st.SearchStrategy[str]:
    """Valid frames of ``version`` as the text on the wire; see ``frame_objects``."""
    return frame_objects(version, kinds=kinds, sent_by=sent_by, actions=actions).map(encode_frame)


# --- invalid payloads --------------------------------------------------------------------


@attrs.frozen
class _Site:
    """A place a mutation can hit: the attribute names leading to it from the root."""

    attrs_path: tuple[str, ...]
    tp: Any  # the unwrapped type of the value there
    limits: Limits
    required: bool
    draft: int


def _sites(cls: type, prefix: tuple[str, ...] = (), seen: tuple[type, ...] = ()) -> Iterator[_Site]:
    if cls in seen:  # pragma: no cover - no OCPP schema is recursive
        return
    for f, tp, limits in _fields(cls):
        path = (*prefix, f.name)
        yield _Site(path, tp, limits, f.default is attrs.NOTHING, getattr(cls, "__ocpp_draft__", 6))
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else tp
        if is_message_class(inner):
            yield from _sites(inner, path, (*seen, cls))


def _item_type(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is list else None


def _applies(kind: str, site: _Site) -> bool:
    tp, limits = site.tp, site.limits
    item = _item_type(tp)
    leaf = item if item is not None else tp
    if kind == "missing_required":
        return site.required
    if kind == "wrong_type":
        return tp is not Any
    if kind == "too_long":
        return leaf is str and limits.max_length is not None
    if kind == "out_of_range":
        if isinstance(leaf, type) and issubclass(leaf, enum.Enum):
            return True
        if leaf is str:
            return limits.uri
        return leaf in (int, float) and (
            limits.minimum is not None
            or limits.maximum is not None
            or limits.multiple_of is not None
        )
    if kind == "item_count":
        return item is not None and (bool(limits.min_items) or limits.max_items is not None)
    if kind == "extra_property":
        return is_message_class(leaf) and not _is_open(leaf)
    raise ValueError(f"unknown payload kind {kind!r}; expected one of {PAYLOAD_KINDS}")


@functools.cache
def _sites_for(cls: type, kind: str) -> tuple[_Site | None, ...]:
    """Where ``kind`` can hit ``cls``; None stands for the root object itself."""
    found: list[_Site | None] = [s for s in _sites(cls) if _applies(kind, s)]
    if kind == "extra_property" and not _is_open(cls):
        found.insert(0, None)
    return tuple(found)


def mutation_kinds(cls: type) -> tuple[str, ...]:
    """The ``PAYLOAD_KINDS`` that can break a payload of message class ``cls``."""
    return tuple(kind for kind in PAYLOAD_KINDS if _sites_for(cls, kind))


@attrs.frozen
class PayloadMutation:
    """A payload broken in one place, and how ``decode_frame`` must refuse it."""

    kind: str
    #: The broken JSON object.
    document: dict[str, Any]
    #: The JSON path of the broken value (of the missing or unexpected property).
    path: str
    error_code: str


_finite_floats = st.floats(allow_nan=False, allow_infinity=False)
_small_objects = st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
_small_lists = st.lists(st.integers(), max_size=2)
_not_numbers = st.text() | st.booleans() | st.none() | _small_lists | _small_objects
_bad_datetimes = st.sampled_from(
    [
        "",
        "now",
        "2025-01-01",
        "2025-01-01T00:00:00",  # no offset
        "2025-01-01 00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T00:00:00+24:00",
        "2025-1-1T00:00:00Z",
        "20250101T000000Z",
    ]
)


def _wrong_types(tp: Any, draft: int) -> st.SearchStrategy[Any]:
    """JSON values whose type ``tp`` does not accept."""
    if typing.get_origin(tp) is list:
        return st.text() | st.integers() | st.booleans() | st.none() | _small_objects
    if is_message_class(tp):
        return st.text() | st.integers() | st.booleans() | st.none() | _small_lists
    if tp is str:
        return (
            st.integers()
            | _finite_floats
            | st.booleans()
            | st.none()
            | (_small_lists | _small_objects)
        )
    if tp is int:
        fractions = _finite_floats.filter(lambda x: not x.is_integer())
        strategy = _not_numbers | fractions
        return strategy | st.integers(-(10**6), 10**6).map(float) if draft < 6 else strategy
    if tp is float:
        return _not_numbers
    if tp is bool:
        return st.text() | st.integers() | _finite_floats | st.none() | _small_lists
    if tp is datetime:
        return _bad_datetimes | st.integers() | st.booleans() | st.none() | _small_objects
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.integers() | st.booleans() | st.none() | _small_lists | _small_objects
    raise TypeError(f"no wrong type for {tp!r}")  # pragma: no cover


_not_uris = st.sampled_from(
    [
        "",
        "example.com/firmware.bin",
        "1ftp://example.com/",
        "https://exa mple.com/",
        "https://example.com/%zz",
        "https://[::1/",
        "https://example.com:port/",
        "https://example.com/a#b#c",
        "https://\u00e9xample.com/",
    ]
) | st.text().filter(lambda text: ":" not in text)


def _out_of_range(tp: Any, limits: Limits) -> st.SearchStrategy[Any]:
    """Values of the right JSON type outside the enum, range, step or format."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = set(tp._value2member_map_)
        return st.text().filter(lambda text: text not in values)
    if tp is str:
        return _not_uris
    options: list[st.SearchStrategy[Any]] = []
    low, high = limits.minimum, limits.maximum
    if tp is int:
        if low is not None:
            options.append(st.integers(max_value=math.ceil(low) - 1))
        if high is not None:
            options.append(st.integers(min_value=math.floor(high) + 1))
    else:
        finite: dict[str, Any] = {"allow_nan": False, "allow_infinity": False}
        if low is not None:
            options.append(st.floats(max_value=low, exclude_max=True, **finite))
        if high is not None:
            options.append(st.floats(min_value=high, exclude_min=True, **finite))
    if limits.multiple_of is not None and tp is float:
        # Halfway between two multiples, inside the range where there is one.
        step = Decimal(repr(limits.multiple_of))
        inside = Limits(minimum=low, maximum=None if high is None else high - limits.multiple_of)
        halfway = _multiples(attrs.evolve(inside, multiple_of=limits.multiple_of), integral=False)
        options.append(halfway.map(lambda x: float(Decimal(repr(x)) + step / 2)))
    return st.one_of(options)


def _too_long(limit: int) -> st.SearchStrategy[str]:
    """Strings of ``limit`` + 1 to ``limit`` + 8 characters (built, not drawn one by one:
    some limits are beyond what ``st.text`` draws)."""
    return st.builds(
        lambda char, tail: char * (limit + 1) + tail,
        st.characters(codec="utf-8"),
        st.text(max_size=7),
    )


def _json_path(path: str, wire: str) -> str:
    return f"{path}.{wire}"


def _field_named(cls: type, name: str) -> tuple[str, Any]:
    for f, tp, _ in _fields(cls):
        if f.name == name:
            return _wire_name(f), tp
    raise KeyError(name)  # pragma: no cover


@st.composite
def _mutate(draw: st.DrawFn, cls: type, kind: str, site: _Site | None) -> PayloadMutation:
    target = () if site is None else site.attrs_path
    document = _unstructure(draw(_instances(cls, target, 0, True)))
    container: Any = document
    owner, path = cls, "$"
    # Walk to the object holding the site's last field.
    for name in target[:-1]:
        wire, tp = _field_named(owner, name)
        container, path = container[wire], _json_path(path, wire)
        if typing.get_origin(tp) is list:
            index = draw(st.integers(0, len(container) - 1))
            container, path = container[index], f"{path}[{index}]"
            tp = typing.get_args(tp)[0]
        owner = tp
    code = expected_error_code(_version_of(cls), kind)
    if site is None:  # an unexpected property in the root object
        return _add_property(draw, document, container, owner, path, code)
    wire, tp = _field_named(owner, target[-1])
    field_path = _json_path(path, wire)
    item = _item_type(tp)
    if kind == "missing_required":
        del container[wire]
        return PayloadMutation(kind, document, field_path, code)
    if kind == "item_count":
        items = container[wire]
        limits = site.limits
        too_few = bool(limits.min_items) and (limits.max_items is None or draw(st.booleans()))
        if too_few:
            container[wire] = items[: draw(st.integers(0, limits.min_items - 1))]  # type: ignore[operator]
        else:
            extra = draw(st.integers(1, 3)) + limits.max_items - len(items)  # type: ignore[operator]
            container[wire] = items + [items[i % len(items)] for i in range(extra)]
        return PayloadMutation(kind, document, field_path, code)
    if kind == "extra_property":
        value, path = container[wire], field_path
        if item is not None:
            index = draw(st.integers(0, len(value) - 1))
            value, path = value[index], f"{path}[{index}]"
        return _add_property(draw, document, value, item or tp, path, code)
    # The value itself, or for a list sometimes one of its items.
    holder: Any = container
    key: Any = wire
    leaf_type = tp
    if item is not None and (kind != "wrong_type" or draw(st.booleans())):
        holder, key = container[wire], draw(st.integers(0, len(container[wire]) - 1))
        field_path, leaf_type = f"{field_path}[{key}]", item
    if kind == "wrong_type":
        holder[key] = draw(_wrong_types(leaf_type, site.draft))
    elif kind == "too_long":
        limit = site.limits.max_length
        holder[key] = draw(_too_long(limit))  # type: ignore[arg-type]
    else:
        holder[key] = draw(_out_of_range(leaf_type, site.limits))
    return PayloadMutation(kind, document, field_path, code)


def _add_property(
    draw: st.DrawFn, document: dict[str, Any], obj: dict[str, Any], cls: type, path: str, code: str
) -> PayloadMutation:
    known = _known_names(cls)
    key = draw(st.text(min_size=1).filter(lambda name: name not in known))
    obj[key] = draw(json_values)
    return PayloadMutation("extra_property", document, _json_path(path, key), code)


def _unstructure(obj: Any) -> dict[str, Any]:
    return unstructure_fn(type(obj))(obj)


def invalid_payloads(cls: type, kind: str) -> st.SearchStrategy[PayloadMutation]:
    """Payloads of message class ``cls`` broken in one place, as ``kind`` says (one of
    ``PAYLOAD_KINDS``; ``mutation_kinds(cls)`` lists those that apply)."""
    if kind not in PAYLOAD_KINDS:
        raise ValueError(f"unknown payload kind {kind!r}; expected one of {PAYLOAD_KINDS}")
    sites = _sites_for(cls, kind)
    if not sites:
        raise ValueError(f"{cls.__name__} cannot be broken as {kind!r}")
    return st.sampled_from(sites).flatmap(lambda site: _mutate(cls, kind, site))


# --- invalid frames ----------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _call_specs(version: str) -> list[ActionSpec]:
    return [spec for spec in registry(version).values() if spec.response is not None]


def _frame_type(spec: ActionSpec) -> int:
    return 2 if spec.response is not None else 6


@st.composite
def _broken_frame(draw: st.DrawFn, version: str, kind: str) -> str:
    specs = _call_specs(version)
    spec = draw(st.sampled_from(specs))
    message_id = draw(message_ids)
    payload = _unstructure(draw(messages(spec.request)))
    call = [2, message_id, spec.name, payload]
    if kind == "not_json":
        return draw(
            st.text().filter(lambda text: not _is_json(text))
            | st.just(_dumps(call)[:-1])
            | st.sampled_from(['[2,"1","Heartbeat",NaN]', "[2,'1','Heartbeat',{}]", ""])
        )
    if kind == "not_array":
        return _dumps(draw(_json_scalars | st.none() | _json_objects | st.just([])))
    if kind == "wrong_arity":
        frames_ = [
            call,
            [3, message_id, payload],
            [4, message_id, "GenericError", "", {}],
        ]
        frame = draw(st.sampled_from(frames_))
        if draw(st.booleans()) and len(frame) > 2:
            return _dumps(frame[: draw(st.integers(2, len(frame) - 1))])
        return _dumps(frame + draw(st.lists(json_values, min_size=1, max_size=2)))
    if kind == "bad_message_id":
        too_long = st.text(min_size=MAX_MESSAGE_ID_LENGTH + 1, max_size=MAX_MESSAGE_ID_LENGTH + 20)
        call[1] = draw(too_long | st.integers() | st.none() | st.booleans() | _small_lists)
        return _dumps(call)
    if kind == "wrong_element_type":
        which = draw(st.sampled_from(["type", "action", "error"]))
        if which == "type":
            call[0] = draw(st.sampled_from(["2", 2.0, True, None, [2], {}]))
        elif which == "action":
            call[2] = draw(st.integers() | st.none() | st.booleans() | _small_lists)
        else:
            error: list[Any] = [4, message_id, "GenericError", "", {}]
            position = draw(st.integers(2, 4))
            error[position] = draw(st.integers() | st.none() | st.booleans() | _small_lists)
            return _dumps(error)
        return _dumps(call)
    if kind == "unknown_action":
        names = set(registry(version))
        call[2] = draw(st.text().filter(lambda name: name not in names))
        return _dumps(call)
    if kind == "payload_not_object":
        call[3] = draw(_json_scalars | st.none() | st.lists(json_values, max_size=3))
        return _dumps(call)
    raise ValueError(f"unknown kind {kind!r}")  # pragma: no cover


def _payload_frame(version: str, kind: str) -> st.SearchStrategy[str]:
    specs = [spec for spec in registry(version).values() if _sites_for(spec.request, kind)]

    def frame(spec: ActionSpec) -> st.SearchStrategy[str]:
        return st.tuples(message_ids, invalid_payloads(spec.request, kind)).map(
            lambda pair: _dumps([_frame_type(spec), pair[0], spec.name, pair[1].document])
        )

    return st.sampled_from(specs).flatmap(frame)


def invalid_frames(version: str, kind: str | None = None) -> st.SearchStrategy[tuple[str, str]]:
    """``(text, error_code)``: frames of ``version`` broken as ``kind`` says (one of
    ``INVALID_FRAME_KINDS``, any when None), with the code ``decode_frame`` must refuse
    them with. Payload kinds break the payload of a CALL (or a 2.1 SEND)."""
    if kind is None:
        return st.sampled_from(INVALID_FRAME_KINDS).flatmap(
            lambda chosen: invalid_frames(version, chosen)
        )
    code = expected_error_code(version, kind)
    breaker = _payload_frame if kind in PAYLOAD_KINDS else _broken_frame
    texts = breaker(version, kind)
    return texts.map(lambda text: (text, code))


register_strategies()
