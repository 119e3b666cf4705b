"""The shortcuts of the codec give exactly what its general paths give, for any input.

``decode_frame`` reads compact CALLs and CALLRESULTs (plain strings before the payload, an
empty payload without any JSON parser) itself and leaves the rest to the general
``_Decoder.decode_any``; ``encode_frame`` writes flat payloads straight to text and leaves
the rest to ``_encode_any``; ``parse_datetime`` and ``format_datetime`` take a shortcut for
the canonical UTC form. Each test here runs both on random and near-miss input and wants
the same frame or text, or the same error down to its code, id, description and details.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ocpp_sansio import FrameError, decode_frame, encode_frame, registry
from ocpp_sansio.errors import SchemaViolation
from ocpp_sansio.frames import Call, CallResult, Frame, _Decoder, _encode_any
from ocpp_sansio.messages._codec import (
    _is_scalar,
    _unwrap_optional,
    format_datetime,
    format_datetime_any,
    parse_datetime,
    parse_datetime_any,
    structure_fn,
    text_fn,
)
from ocpp_sansio.messages._model import LIMITS, Limits, is_message_class
from ocpp_sansio.testing import strategies as ocpp_st
from ocpp_sansio.testing.builders import minimal

VERSIONS = ("1.6", "2.0.1", "2.1")
GENERAL = {version: _Decoder(version) for version in VERSIONS}
ACTIONS = sorted({name for version in VERSIONS for name in registry(version)})
SETTINGS = settings(max_examples=max(400, settings().max_examples), deadline=None)
#: Valid frames are dearer to draw: fewer of them (more under a heavier profile).
VALID_SETTINGS = settings(max_examples=max(150, settings().max_examples), deadline=None)
FRAME_OBJECTS = {version: ocpp_st.frame_objects(version) for version in VERSIONS}

# --- decoding ----------------------------------------------------------------------------


def _decoded(decode: Any) -> tuple[Any, ...]:
    try:
        frame = decode()
    except FrameError as error:
        return (
            "FrameError",
            error.error_code,
            error.message_id,
            error.message_type,
            error.description,
            error.details,
            repr(error.answer),
            error.action,
        )
    except Exception as error:  # e.g. ValueError for a response_to that is no action
        return (type(error), str(error))
    # repr as well: equal aware datetimes may differ in their zone
    return ("frame", type(frame), frame, repr(frame))


def assert_decodes_alike(text: Any, version: str, response_to: str | None) -> None:
    fast = _decoded(lambda: decode_frame(text, version, response_to=response_to))
    general = _decoded(lambda: GENERAL[version].decode_any(text, response_to))
    assert fast == general


ID = "5f1d7a52-3c8e-4b0f-9d61-0a7e4c2b9f13"
odd_strings = st.sampled_from(
    [
        "",
        "1",
        ID,
        "x" * 36,
        "x" * 37,
        'a"b',
        "a\\b",
        "a\\u0041",
        "a\\",
        "\x00",
        "\x1f",
        "\x7f",
        "\x85",
        "é",
        "\u2028",
        "\ud800",
        "\udfff",
        "😀",
        " ",
        ",",
        '","',
        "{}]",
        "]",
    ]
)
ids = st.one_of(odd_strings, st.text(max_size=40))
actions = st.one_of(
    st.sampled_from([*ACTIONS, "heartbeat", "Nope", "Heartbeat ", 'Heart"beat']),
    odd_strings,
    st.text(max_size=12),
)
canonical_times = st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250Z"])
#: Other Unicode digits (Arabic-Indic three, fullwidth three, double-struck one), others.
odd_chars = st.sampled_from(
    [*"0123456789+-:.TtZz ,/", "\u0663", "\uff13", "\U0001d7d9", "\ud800", "\x00", "²", "½"]
)


@st.composite
def datetime_texts(draw: st.DrawFn) -> str:
    """Near misses of the canonical form, and other RFC 3339 and ISO 8601 forms."""
    text = draw(canonical_times)
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text) - 1))
        text = text[:position] + draw(odd_chars) + text[position + 1 :]
    return draw(
        st.one_of(
            st.just(text),
            st.sampled_from(
                [
                    "2024-05-01T12:00:60Z",  # a leap second: refused by the date-time
                    "2016-12-31T23:59:60Z",
                    "2024-13-01T12:00:00Z",
                    "2024-02-30T12:00:00Z",
                    "2024-05-01T24:00:00Z",
                    "0000-05-01T12:00:00Z",
                    "0001-01-01T00:00:00Z",
                    "9999-12-31T23:59:59.999Z",
                    "2024-05-01t12:00:00z",
                    "2024-05-01T12:00:00+02:00",
                    "2024-05-01T12:00:00-00:00",
                    "2024-05-01T12:00:00.1Z",
                    "2024-05-01T12:00:00.123456Z",
                    "2024-05-01T12:00:00.123456789Z",
                    "2024-05-01T12:00:00,250Z",
                    "2024-05-01T12:00:00",
                    "2024-05-01 12:00:00Z",
                    "20240501T120000Z",
                    "2024-W18-3T12:00:00Z",
                    "2024-05-01T12:00Z",
                    "2024-05-01T12:00:00.Z",
                    "2024-05-01T12:00:00.25Z",
                    "2024-05-01T12:00:00.2500Z",
                ]
            ),
            st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
            st.text(max_size=26),
        )
    )


payload_texts = st.one_of(
    st.sampled_from(
        [
            "{}",
            "{ }",
            " {}",
            "{} ",
            "[]",
            "null",
            "1",
            '"x"',
            "{",
            "{}}",
            "NaN",
            '{"a":1}',
            '{"customData":{"vendorId":"v"}}',
            '{"customData":{"vendorId":"v","x":[1,{"y":null}]}}',
            '{"currentTime":"2024-05-01T12:00:00Z","currentTime":1}',
            '{"status":"Accepted","currentTime":"2024-05-01T12:00:00Z","interval":300}',
            "[" * 120 + "]" * 120,
            '{"a":' * 120 + "1" + "}" * 120,
        ]
    ),
    datetime_texts().map(lambda t: json.dumps({"currentTime": t})),
    st.dictionaries(st.text(max_size=12), st.none() | st.integers() | st.text(max_size=8)).map(
        json.dumps
    ),
)
type_ids = st.sampled_from(["2", "3", "4", "5", "6", "7", "0", "-1", "2.0", "02", '"2"', " 2"])
separators = st.sampled_from([",", ",", ",", ", ", " ,", ""])
ends = st.sampled_from(["]", "]", "]", " ]", "] ", ",1]", "]]", "", "]\n", ",{}]", ",{}"])


def _string(value: str, how: str) -> str:
    if how == "raw":
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=how == "ascii")


@st.composite
def near_frames(draw: st.DrawFn) -> str:
    """Frames of roughly the shapes the fast paths take, and near misses of them."""
    how = st.sampled_from(["raw", "raw", "ascii", "unicode"])
    parts = [draw(type_ids), _string(draw(ids), draw(how))]
    if draw(st.booleans()):
        parts.append(_string(draw(actions), draw(how)))
    parts.append(draw(payload_texts))
    sep = draw(separators)
    return "[" + sep.join(parts) + draw(ends)


HEARTBEAT_RESPONSE = '{"currentTime":"2024-05-01T12:00:00Z"}'
LEAP_SECOND = '{"currentTime":"2016-12-31T23:59:60Z"}'
response_tos = st.one_of(st.none(), st.sampled_from(["Heartbeat", "BootNotification", "Nope"]))


@SETTINGS
@given(text=near_frames(), version=st.sampled_from(VERSIONS), response_to=response_tos)
@example(text=f'[2,"{ID}","Heartbeat",{{}}]', version="1.6", response_to=None)
@example(text='[2,"","Heartbeat",{}]', version="2.0.1", response_to=None)
@example(text='[2,"x","BootNotification",{}]', version="1.6", response_to=None)
@example(text='[2,"x","NotifyPeriodicEventStream",{}]', version="2.1", response_to=None)
@example(text='[6,"x","NotifyPeriodicEventStream",{}]', version="2.1", response_to=None)
@example(text='[2,"x\\u0041","Heartbeat",{}]', version="1.6", response_to=None)
@example(text='[2,"\x1f","Heartbeat",{}]', version="1.6", response_to=None)
@example(text='[2,"\ud800","Heartbeat",{}]', version="1.6", response_to=None)
@example(text=f'[2,"{"x" * 37}","Heartbeat",{{}}]', version="2.0.1", response_to=None)
@example(text=f'[3,"x",{HEARTBEAT_RESPONSE}]', version="2.0.1", response_to="Heartbeat")
@example(text=f'[3,"x",{LEAP_SECOND}]', version="2.0.1", response_to="Heartbeat")
@example(text=f'[3,"x",{HEARTBEAT_RESPONSE}]', version="2.0.1", response_to="Nope")
@example(text='[3,"x",{}]', version="2.1", response_to="NotifyPeriodicEventStream")
def test_decoding_near_misses_of_the_fast_shapes_matches_the_general_path(
    text: str, version: str, response_to: str | None
) -> None:
    assert_decodes_alike(text, version, response_to)


@SETTINGS
@given(text=st.text(), version=st.sampled_from(VERSIONS), response_to=response_tos)
@example(text="", version="1.6", response_to=None)
@example(text='[2,"', version="1.6", response_to=None)
@example(text='[3,"x",', version="2.1", response_to="Heartbeat")
def test_decoding_any_text_matches_the_general_path(
    text: str, version: str, response_to: str | None
) -> None:
    assert_decodes_alike(text, version, response_to)


@pytest.mark.parametrize("text", [None, b'[2,"x","Heartbeat",{}]', 2, ["x"]])
def test_decoding_what_is_no_string_matches_the_general_path(text: Any) -> None:
    for version in VERSIONS:
        assert_decodes_alike(text, version, None)


@st.composite
def valid_frames(draw: st.DrawFn) -> tuple[str, str, str | None]:
    version = draw(st.sampled_from(VERSIONS))
    frame = draw(FRAME_OBJECTS[version])
    response_to = None
    if isinstance(frame, CallResult):
        response_to = registry(version).for_payload(frame.payload).name
    return _encode_any(frame), version, response_to


@VALID_SETTINGS
@given(case=valid_frames())
def test_decoding_valid_frames_of_every_action_matches_the_general_path(
    case: tuple[str, str, str | None],
) -> None:
    assert_decodes_alike(*case)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_empty_payload_decodes_alike_for_every_action(version: str) -> None:
    for action in ACTIONS:
        for kind in (2, 3, 6):
            text = json.dumps([kind, ID, action, {}] if kind != 3 else [kind, ID, {}])
            compact = text.replace(", ", ",")
            for response_to in (None, action) if kind == 3 else (None,):
                if response_to is None or response_to in registry(version):
                    assert_decodes_alike(compact, version, response_to)
                    assert_decodes_alike(text, version, response_to)


def test_an_empty_request_is_one_shared_frozen_instance_per_action() -> None:
    first = decode_frame('[2,"a","Heartbeat",{}]', "2.0.1")
    second = decode_frame('[2,"b","Heartbeat",{}]', "2.0.1")
    assert isinstance(first, Call) and isinstance(second, Call)
    assert first.payload is second.payload
    assert first.message_id == "a" and second.message_id == "b"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.payload.custom_data = {}  # type: ignore[misc]


# --- datetimes ---------------------------------------------------------------------------


def _parsed(parse: Any) -> tuple[Any, ...]:
    try:
        value = parse()
    except SchemaViolation as violation:
        return ("violation", violation.kind, violation.reason, violation.path)
    return ("value", value, repr(value))


@SETTINGS
@given(text=datetime_texts())
@example(text="2024-05-01T12:00:00Z")
@example(text="2024-05-01T12:00:00.250Z")
@example(text="2024-05-01T12:00:0\u0663Z")
@example(text="2024-05-01T12:00:00.2\u06630Z")
@example(text="2024-05-01T12:00:00.1+2Z")
def test_parsing_datetimes_matches_the_general_path(text: str) -> None:
    general = _parsed(lambda: parse_datetime_any(text, ".t"))
    assert _parsed(lambda: parse_datetime(text, ".t")) == general
    # the generated structure code inlines the quick case
    from ocpp_sansio.messages import v201

    structure = structure_fn(v201.HeartbeatResponse)
    inlined = _parsed(lambda: structure({"currentTime": text}).current_time)
    assert inlined == _parsed(lambda: parse_datetime_any(text, ".currentTime"))


zones = st.one_of(
    st.just(UTC),
    st.just(timezone(timedelta(0))),  # UTC, but not the UTC instance
    st.none(),
    st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
        lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1)))
    ),
)


@SETTINGS
@given(moment=st.datetimes(timezones=zones))
@example(moment=datetime(999, 12, 31, 23, 59, 59, 999, tzinfo=UTC))
@example(moment=datetime(1000, 1, 1, tzinfo=UTC))
@example(moment=datetime(2024, 5, 1, 12, 0, 0, 999, tzinfo=UTC))
@example(moment=datetime(2024, 5, 1, 12, 0, 0, 1000, tzinfo=UTC))
@example(moment=datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=UTC))
@example(moment=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=2))))
def test_formatting_datetimes_matches_the_general_path(moment: datetime) -> None:
    def formatted(fn: Any) -> tuple[Any, ...]:
        try:
            return ("text", fn(moment, ".t"))
        except SchemaViolation as violation:
            return ("violation", violation.kind, violation.reason, violation.path)

    assert formatted(format_datetime) == formatted(format_datetime_any)


# --- encoding ----------------------------------------------------------------------------


def _encoded(frame: Any, encode: Any) -> tuple[Any, ...]:
    try:
        return ("text", encode(frame))
    except Exception as error:
        return (type(error), str(error), getattr(error, "path", None))


def assert_encodes_alike(frame: Any) -> None:
    assert _encoded(frame, encode_frame) == _encoded(frame, _encode_any)


class _Text(str):
    """A str subclass: the shortcuts leave these to the general path."""


class _Sneaky:
    """Equal to everything: no string, however it compares."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def _flat_classes(version: str) -> list[type]:
    out = []
    for spec in registry(version).values():
        for cls in (spec.request, spec.response):
            if cls is not None and text_fn(cls) is not None:
                out.append(cls)
    return out


FLAT = sorted(
    {cls for version in VERSIONS for cls in _flat_classes(version)},
    key=lambda cls: (cls.__module__, cls.__name__),
)


def test_flat_payloads_have_a_text_function() -> None:
    names = {(cls.__module__.rsplit(".", 1)[1], cls.__name__) for cls in FLAT}
    assert ("v16", "HeartbeatRequest") in names
    assert ("v201", "HeartbeatResponse") in names
    assert ("v16", "BootNotificationRequest") in names
    assert ("v16", "MeterValuesRequest") not in names  # a required list


odd_values = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.integers(0, 600).map(lambda n: "x" * n),  # around every length limit
    st.integers(),
    st.just(10**5000),  # too long for str(): the JSON encoder refuses it
    st.floats(),
    st.booleans(),
    st.datetimes(timezones=zones),
    st.sampled_from([_Text("x"), _Sneaky(), [], {}, (), 1.5, -0.0, float("nan")]),
    st.sampled_from(
        [
            member
            for version in VERSIONS
            for name in ("RegistrationStatus", "ChargePointStatus", "ConnectorStatusEnumType")
            for enum_cls in [getattr(ocpp_st._module(version), name, None)]
            if isinstance(enum_cls, type) and issubclass(enum_cls, enum.Enum)
            for member in enum_cls
        ]
    ),
)


def _boundaries(field: attrs.Attribute[Any]) -> list[Any]:
    """Values at and just past the limits of ``field``."""
    limits = field.metadata.get(LIMITS, Limits())
    values: list[Any] = []
    if limits.max_length is not None:
        values += ["x" * limits.max_length, "x" * (limits.max_length + 1)]
    if limits.uri:
        values += ["https://example.com/a", "not a uri", "https://[::1%eth0]/"]
    for bound in (limits.minimum, limits.maximum):
        if bound is not None:
            values += [bound, bound - 1, bound + 1, int(bound), float(bound) + 0.5]
    if limits.multiple_of is not None:
        values += [limits.multiple_of * 3, limits.multiple_of * 2.5]
    return values


@st.composite
def flat_frames(draw: st.DrawFn) -> Frame:
    """Frames with a flat payload; their envelope, or one field, may hold something odd."""
    cls = draw(st.sampled_from(FLAT))
    payload = draw(ocpp_st.messages(cls))
    fields = attrs.fields(cls)
    if draw(st.integers(0, 3)):  # mostly without nested values, which the shortcut leaves
        nested = {
            f.name.lstrip("_"): None
            for f in fields
            if f.default is not attrs.NOTHING and not _is_scalar(_unwrap_optional(f.type))
        }
        payload = attrs.evolve(payload, **nested)
    if fields and draw(st.booleans()):
        field = draw(st.sampled_from(fields))
        boundaries = _boundaries(field)
        if boundaries and draw(st.booleans()):
            value = draw(st.sampled_from(boundaries))
        else:
            value = draw(odd_values)
        payload = attrs.evolve(payload, **{field.name.lstrip("_"): value})
    module = ocpp_st._module(ocpp_st._version_of(cls))
    spec = module.ACTIONS.for_class(cls)
    odd_envelope = draw(st.integers(0, 3)) == 0
    message_id: Any = ID
    if odd_envelope:
        message_id = draw(st.one_of(ids, st.sampled_from([_Text("x"), 5, None])))
    if cls is spec.response:
        return CallResult(message_id=message_id, payload=payload)
    action: Any = spec.name
    if odd_envelope:
        action = draw(
            st.one_of(st.just(spec.name), st.just(_Text(spec.name)), actions, st.just(_Sneaky()))
        )
    return Call(message_id=message_id, action=action, payload=payload)


@SETTINGS
@given(frame=flat_frames())
def test_encoding_flat_payloads_matches_the_general_path(frame: Frame) -> None:
    assert_encodes_alike(frame)


@VALID_SETTINGS
@given(frame=st.sampled_from(VERSIONS).flatmap(FRAME_OBJECTS.__getitem__))
def test_encoding_valid_frames_of_every_action_matches_the_general_path(frame: Frame) -> None:
    assert_encodes_alike(frame)


@pytest.mark.parametrize(
    "frame",
    [
        Call(message_id="x", action="Heartbeat", payload={}),
        CallResult(message_id="x", payload={"currentTime": "2024-05-01T12:00:00Z"}),
        CallResult(message_id="x", payload=None),
        Call(message_id="x", action="Heartbeat", payload=None),
    ],
)
def test_encoding_hand_built_payloads_matches_the_general_path(frame: Frame) -> None:
    assert_encodes_alike(frame)


def test_a_request_in_a_callresult_and_a_response_in_a_call_are_refused_alike() -> None:
    from ocpp_sansio.messages import v16, v201

    assert_encodes_alike(CallResult(message_id="x", payload=v16.HeartbeatRequest()))
    now = datetime(2024, 5, 1, tzinfo=UTC)
    response = v201.HeartbeatResponse(current_time=now)
    assert_encodes_alike(Call(message_id="x", action="Heartbeat", payload=response))
    assert is_message_class(type(response))


FIXED_ODD_VALUES = [
    None,
    "x",
    _Text("x"),
    "",
    1,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    10**5000,
    True,
    False,
    datetime(2024, 5, 1, 12, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))),
    datetime(2024, 5, 1, 12),
    datetime(999, 1, 1, tzinfo=UTC),
]


def _encoding_cases() -> list[tuple[type, str, Any]]:
    return [
        (cls, field.name, value)
        for cls in FLAT
        for field in attrs.fields(cls)
        for value in [*FIXED_ODD_VALUES, *_boundaries(field)]
    ]


def test_encoding_every_flat_field_at_its_limits_matches_the_general_path() -> None:
    for cls, name, value in _encoding_cases():
        payload = attrs.evolve(minimal(cls), **{name.lstrip("_"): value})
        spec = ocpp_st._module(ocpp_st._version_of(cls)).ACTIONS.for_class(cls)
        if cls is spec.response:
            assert_encodes_alike(CallResult(message_id=ID, payload=payload))
        else:
            assert_encodes_alike(Call(message_id=ID, action=spec.name, payload=payload))
