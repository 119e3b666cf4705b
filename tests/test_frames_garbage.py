"""Garbage never crashes the decoder.

Any text, for every version, yields a frame or a FrameError: never another exception and
never a hang. Whatever decodes encodes again to text that is valid UTF-8 and decodes again;
whatever answer a FrameError prescribes encodes too.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ocpp_sansio import (
    CallError,
    CallResult,
    CallResultError,
    FrameError,
    decode_frame,
    encode_frame,
    registry,
)
from ocpp_sansio.frames import ERROR_CODES, MAX_DESCRIPTION_LENGTH, UNREADABLE_ID

VERSIONS = ("1.6", "2.0.1", "2.1")
ACTIONS = sorted({name for version in VERSIONS for name in registry(version)})
WITH_RESPONSE = {
    version: sorted(name for name, spec in registry(version).items() if spec.response)
    for version in VERSIONS
}

GARBAGE_SETTINGS = settings(
    # At least 300; more when a heavier hypothesis profile is loaded (conftest runs first).
    max_examples=max(300, settings().max_examples),
    deadline=2000,  # ms per example: a hang or a quadratic path shows up here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(text: str, version: str, response_to: str | None = None) -> Any:
    """Decode ``text``: a frame that re-encodes, or a FrameError that is well formed."""
    try:
        frame = decode_frame(text, version, response_to=response_to)
    except FrameError as error:
        assert error.error_code in ERROR_CODES[version]
        assert len(error.description) <= MAX_DESCRIPTION_LENGTH
        assert error.message_id is None or isinstance(error.message_id, str)
        assert isinstance(error.details, dict)
        answer = error.answer
        if answer is not None:
            assert answer.__class__ in (CallError, CallResultError)
            if error.message_id is None:
                assert answer.message_id == UNREADABLE_ID
            else:
                assert answer.message_id == error.message_id
            reencoded = encode_frame(answer)
            reencoded.encode("utf-8")  # lone surrogates must arrive escaped
            assert json.loads(reencoded)[0] == (4 if answer.__class__ is CallError else 5)
        return error
    out = encode_frame(frame)
    out.encode("utf-8")
    again = decode_frame(out, version, response_to=response_to)
    assert again.__class__ is frame.__class__
    assert again.message_id == frame.message_id
    if frame.__class__ is CallResult and response_to is None:
        assert again == frame  # raw JSON objects survive exactly
    return frame


def check_all(text: str) -> None:
    for version in VERSIONS:
        check(text, version)


# --- strategies -------------------------------------------------------------------------

#: Every code point, lone surrogates included (hypothesis leaves them out by default).
any_char = st.characters(codec=None, exclude_categories=())
any_text = st.text(any_char, max_size=200)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(any_text, inner, max_size=5),
    max_leaves=25,
)
type_ids = st.sampled_from([2, 3, 4, 5, 6]) | st.integers(-3, 9) | json_values
message_ids = (
    st.text(st.characters(codec="ascii"), min_size=1, max_size=36)
    | any_text
    | st.just("x" * 37)
    | json_values
)
actions = st.sampled_from(ACTIONS) | any_text | json_values
payloads = st.dictionaries(any_text, json_values, max_size=4) | json_values


@st.composite
def frame_shaped(draw: st.DrawFn) -> str:
    """An array that looks like a frame, with each element possibly of the wrong kind."""
    items: list[Any] = [draw(type_ids), draw(message_ids)]
    kind = draw(st.sampled_from(["call", "result", "error", "random"]))
    if kind == "call":
        items += [draw(actions), draw(payloads)]
    elif kind == "result":
        items += [draw(payloads)]
    elif kind == "error":
        items += [draw(any_text | json_values), draw(any_text | json_values), draw(payloads)]
    else:
        items += draw(st.lists(json_values, max_size=4))
    items = items[: draw(st.integers(0, len(items)))] if draw(st.booleans()) else items
    ascii_only = draw(st.booleans())
    return json.dumps(items, ensure_ascii=ascii_only)


SEEDS = [
    '[2,"1","Heartbeat",{}]',
    '[3,"1",{"currentTime":"2024-05-01T12:00:00.123+02:00"}]',
    '[4,"1","GenericError","d",{"a":1}]',
    '[5,"1","FormatViolation","",{}]',
    '[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]',
    '[2,"b","BootNotification",{"chargingStation":{"model":"M","vendorName":"V"},'
    '"reason":"PowerUp"}]',
    '[2,"a","Authorize",{"idTag":"ABC"}]',
    '[2,"a","Authorize",{"idToken":{"idToken":"ABC","type":"ISO14443"}}]',
    '[2,"m","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z",'
    '"sampledValue":[{"value":"1.5","measurand":"Energy.Active.Import.Register"}]}]}]',
    '[6,"s","NotifyPeriodicEventStream",{"data":[{"t":1.5,"v":"1"}],"id":1,"pending":0,'
    '"basetime":"2025-01-01T00:00:00Z"}]',
    '[2,"d","DataTransfer",{"vendorId":"v","data":{"k":[1,2.5,null]}}]',
]


@st.composite
def mutated_seed(draw: st.DrawFn) -> str:
    """A valid frame with a few characters inserted, deleted or replaced."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from('[]{}",:0123456789.eE-+ \\nulltruefalse') | any_char)
        if op == "insert":
            text = text[:pos] + char + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + char + text[pos + 1 :]
    return text


garbage = any_text | json_values.map(json.dumps) | frame_shaped() | mutated_seed()


# --- properties -------------------------------------------------------------------------


@GARBAGE_SETTINGS
@given(text=garbage)
@example(text="")
@example(text="\ud800")
@example(text='[2,"\\ud800","Heartbeat",{}]')
@example(text='[2,"1","\\udc00",{}]')
@example(text='[4,"\\udfff","\\ud800","\\ud800",{"\\udc00":"\\ud800"}]')
@example(text='[3,"1",{"\\ud800":"\\udbff"}]')
@example(text='[2,"1","DataTransfer",{"vendorId":"\\ud800","data":"\\udc00"}]')
def test_any_text_decodes_to_a_frame_or_a_frame_error(text: str) -> None:
    check_all(text)


@GARBAGE_SETTINGS
@given(text=garbage | st.sampled_from(SEEDS), data=st.data())
def test_any_text_with_a_response_to_decodes_to_a_frame_or_a_frame_error(
    text: str, data: st.DataObject
) -> None:
    for version in VERSIONS:
        response_to = data.draw(st.sampled_from(WITH_RESPONSE[version]))
        check(text, version, response_to)


def test_the_seeds_are_valid_somewhere() -> None:
    # Guard against the mutation strategy mutating nothing valid.
    for seed in SEEDS:
        frames = []
        for version in VERSIONS:
            with contextlib.suppress(FrameError):
                frames.append(decode_frame(seed, version))
        assert frames, seed


# --- the named monsters -----------------------------------------------------------------


def timed_check_all(text: str, budget: float = 5.0) -> None:
    start = time.perf_counter()
    check_all(text)
    assert time.perf_counter() - start < budget


@pytest.mark.parametrize("opener", ["[", '{"a":', '[2,"1","DataTransfer",{"vendorId":"v","data":['])
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting(opener: str, depth: int) -> None:
    closer = {"[": "]", '{"a":': "}"}.get(opener, "]}]")
    body = opener + "[" * depth + "]" * depth + closer
    timed_check_all(body)
    timed_check_all("[" * depth)  # and never closed


MB = 1_000_000


@pytest.mark.parametrize(
    "text",
    [
        '[2,"' + "i" * MB + '","Heartbeat",{}]',
        '[2,"1","' + "A" * MB + '",{}]',
        '[2,"1","DataTransfer",{"vendorId":"v","data":"' + "d" * MB + '"}]',
        '[2,"1","Authorize",{"idTag":"' + "t" * MB + '"}]',
        '[4,"1","GenericError","' + "e" * MB + '",{}]',
        '[3,"1",{"' + "k" * MB + '":1}]',
        " " * MB + '[2,"1","Heartbeat",{}]',
        '"' + "\\u0000" * (MB // 6) + '"',
        "[" + "1," * (MB // 2) + "1]",
        '[3,"1",{"x":0.' + "1" * MB + "}]",
        '[3,"1",{"x":' + "9" * MB + "}]",
        '"\\ud800' * (MB // 7),
    ],
    ids=[
        "id",
        "action",
        "data",
        "idTag",
        "description",
        "key",
        "whitespace",
        "escapes",
        "long-array",
        "long-fraction",
        "long-integer",
        "unterminated-surrogates",
    ],
)
def test_one_megabyte_inputs(text: str) -> None:
    timed_check_all(text)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "nan", "inf", "1e999"])
@pytest.mark.parametrize(
    "template",
    [
        "{}",
        '[{},"1","Heartbeat",{{}}]',
        '[2,"1","DataTransfer",{{"vendorId":"v","data":{}}}]',
        '[3,"1",{{"x":{}}}]',
        '[4,"1","E","",{{"x":{}}}]',
        '[2,"1","SetChargingProfile",{{"connectorId":1,"csChargingProfiles":{{'
        '"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxProfile",'
        '"chargingProfileKind":"Absolute","chargingSchedule":{{"chargingRateUnit":"A",'
        '"chargingSchedulePeriod":[{{"startPeriod":0,"limit":{}}}]}}}}}}]',
    ],
)
def test_nan_and_infinity_literals(literal: str, template: str) -> None:
    text = template.format(literal)
    check_all(text)
    for version in VERSIONS:
        with pytest.raises(FrameError):
            decode_frame(text, version)


@pytest.mark.parametrize(
    "text",
    [
        '[2,"1","Heartbeat",{},{}]',
        '[2,"1","Authorize",{"idTag":"a","idTag":"b"}]',
        '[2,"1","Authorize",{"idTag":"a","idTag":5}]',
        '[3,"1",{"currentTime":"2024-01-01T00:00:00Z","currentTime":"x"}]',
        '[4,"1","E","",{"a":1,"a":{"b":2,"b":3}}]',
        '[2,"1","DataTransfer",{"vendorId":"v","vendorId":"w","data":{"k":1,"k":2}}]',
    ],
)
def test_duplicate_keys(text: str) -> None:
    check_all(text)
    for version in VERSIONS:
        check(text, version, "Heartbeat")


BIG = "1" + "0" * 5000  # 10**5000: more digits than Python converts by default


@pytest.mark.parametrize(
    "text",
    [
        f'[{BIG},"1","Heartbeat",{{}}]',
        f'[2,"1","DataTransfer",{{"vendorId":"v","data":{BIG}}}]',
        f'[2,"1","MeterValues",{{"connectorId":{BIG},"meterValue":[]}}]',
        f'[3,"1",{{"interval":{BIG}}}]',
        f'[{BIG[:4000]},"1","Heartbeat",{{}}]',  # within the conversion limit
        f'[2,"1","DataTransfer",{{"vendorId":"v","data":{BIG[:4000]}}}]',
        f'[2,"1","DataTransfer",{{"vendorId":"v","data":-{BIG[:4000]}.5e-3}}]',
        f'[3,"1",{{"status":"Accepted","currentTime":"2024-01-01T00:00:00Z",'
        f'"interval":{BIG[:4000]}}}]',
        '[2,"1","SetChargingProfile",{"connectorId":1,"csChargingProfiles":{'
        '"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxProfile",'
        '"chargingProfileKind":"Absolute","chargingSchedule":{"chargingRateUnit":"A",'
        f'"chargingSchedulePeriod":[{{"startPeriod":0,"limit":{BIG[:400]}}}]}}}}}}]',
    ],
)
def test_huge_integers(text: str) -> None:
    check_all(text)
    for version in VERSIONS:
        check(text, version, "BootNotification")


@pytest.mark.parametrize(
    "text",
    [
        '[2,"\\ud800","Heartbeat",{}]',
        '[2,"1","Heartbeat\\udc00",{}]',
        '[2,"1","Authorize",{"idTag":"\\udbff"}]',
        '[2,"1","Authorize",{"idToken":{"idToken":"\\ud800x","type":"Central"}}]',
        '[4,"\\ud800","\\udc00","\\udfff",{"\\ud800":["\\udc00"]}]',
        '[3,"1",{"\\ud83d":"\\ude00"}]',
        '[3,"1",{"a":"\\ud83d\\ude00\\ud83d"}]',
        '[3,"\ud800",{"a":"\udc00"}]',  # raw lone surrogates in the text itself
        '[2,"1","DataTransfer",{"vendorId":"v","data":"\\udc00\\ud800"}]',
    ],
)
def test_lone_surrogates(text: str) -> None:
    check_all(text)
    for version in VERSIONS:
        result = check(text, version)
        if not isinstance(result, FrameError):
            assert encode_frame(result).isascii()
