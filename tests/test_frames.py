"""Frame-level rules of OCPP-J (2.x part 4, 1.6 OCPP-J) for decode_frame, encode_frame and
FrameError.

Test names carry the requirement IDs of the 2.x specification where one exists (FR.03: an
invalid CALL earns a CALLERROR; FR.06 (2.1): an invalid CALLRESULT earns a CALLRESULTERROR;
FR.07 (2.1): a SEND is never answered) and the version when the rule differs by version.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ocpp_sansio import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    FrameError,
    InvalidPayloadError,
    LocalProtocolError,
    Send,
    decode_frame,
    encode_frame,
)
from ocpp_sansio.frames import MAX_DEPTH
from ocpp_sansio.messages import v16, v21, v201

ALL = ("1.6", "2.0.1", "2.1")
TWO_X = ("2.0.1", "2.1")
#: The code a frame that is not a valid RPC message earns.
RPC_CODE = {"1.6": "FormationViolation", "2.0.1": "RpcFrameworkError", "2.1": "RpcFrameworkError"}
#: The code a payload that is not a JSON object earns.
FORMAT_CODE = {"1.6": "FormationViolation", "2.0.1": "FormatViolation", "2.1": "FormatViolation"}
OCCURRENCE_CODE = {
    "1.6": "OccurenceConstraintViolation",  # sic: the 1.6 spelling
    "2.0.1": "OccurrenceConstraintViolation",
    "2.1": "OccurrenceConstraintViolation",
}
UNKNOWN_PROPERTY_CODE = {
    "1.6": "FormationViolation",
    "2.0.1": "ProtocolError",
    "2.1": "ProtocolError",
}
HEARTBEAT_RESULT = '[3,"r1",{"currentTime":"2024-05-01T12:00:00Z"}]'


def refused(text: str, version: str, **kwargs: Any) -> FrameError:
    with pytest.raises(FrameError) as info:
        decode_frame(text, version, **kwargs)
    error = info.value
    # Whatever the rules say to send back must itself be encodable.
    if error.answer is not None:
        json.loads(encode_frame(error.answer))
    return error


def answer_of(error: FrameError) -> list[Any]:
    assert error.answer is not None, "the rules prescribe an answer"
    decoded: list[Any] = json.loads(encode_frame(error.answer))
    return decoded


# --- valid frames ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_fr02_valid_heartbeat_call_decodes_to_typed_request(version: str) -> None:
    frame = decode_frame('[2,"abc-1","Heartbeat",{}]', version)
    module = {"1.6": v16, "2.0.1": v201, "2.1": v21}[version]
    assert frame == Call(message_id="abc-1", action="Heartbeat", payload=module.HeartbeatRequest())


def test_valid_boot_notification_16_decodes_fields() -> None:
    frame = decode_frame(
        '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M",'
        '"firmwareVersion":"1.2"}]',
        "1.6",
    )
    assert isinstance(frame, Call)
    assert frame.payload == v16.BootNotificationRequest(
        charge_point_vendor="V", charge_point_model="M", firmware_version="1.2"
    )


def test_frame_surrounded_by_whitespace_decodes() -> None:
    assert decode_frame(' \n[2, "1", "Heartbeat", {}]\t', "1.6").message_id == "1"


def test_duplicate_keys_keep_the_last_value() -> None:
    frame = decode_frame(
        '[2,"1","Authorize",{"idTag":"first","idTag":"second"}]',
        "1.6",
    )
    assert frame.payload == v16.AuthorizeRequest(id_tag="second")  # type: ignore[union-attr]


@pytest.mark.parametrize("version", ALL)
def test_unknown_version_is_a_usage_error(version: str) -> None:
    with pytest.raises(ValueError, match="unknown OCPP version"):
        decode_frame('[2,"1","Heartbeat",{}]', version + ".9")


# --- FR.03: a CALL that is not a proper message earns a CALLERROR -----------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "text",
    [
        "",
        "[2,",
        '[2,"1","Heartbeat",{}',
        "not json",
        '[2,"1","Heartbeat",{}] trailing',
        "[2,'1','Heartbeat',{}]",
    ],
)
def test_fr03_not_json_answered_with_unreadable_id(version: str, text: str) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id is None
    assert error.message_type is None
    assert answer_of(error) == [4, "-1", RPC_CODE[version], error.description, {}]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_fr03_nan_and_infinity_literals_are_not_json(version: str, literal: str) -> None:
    error = refused(f'[2,"1","DataTransfer",{{"vendorId":"v","data":{literal}}}]', version)
    assert error.error_code == RPC_CODE[version]
    assert answer_of(error)[1] == "-1"


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 400 + ".0"])
def test_fr03_number_beyond_double_range_refused(version: str, number: str) -> None:
    # Python would read these as inf, which can never be sent on again.
    error = refused(f'[3,"1",{{"x":{number}}}]', version)
    assert error.error_code == RPC_CODE[version]
    assert "out of range" in error.description


@pytest.mark.parametrize("version", ALL)
def test_tiny_number_underflows_to_zero_and_is_accepted(version: str) -> None:
    frame = decode_frame('[3,"1",{"x":1e-400}]', version)
    assert frame.payload == {"x": 0.0}  # type: ignore[union-attr]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("text", ["{}", '{"0":2}', '"[2]"', "2", "null", "true", "[]"])
def test_fr03_not_a_non_empty_array_answered_with_unreadable_id(version: str, text: str) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id is None
    assert answer_of(error)[:3] == [4, "-1", RPC_CODE[version]]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("type_id", ['"2"', "2.0", "true", "null", "[2]", "{}"])
def test_fr03_message_type_not_an_integer(version: str, type_id: str) -> None:
    error = refused(f'[{type_id},"id-7","Heartbeat",{{}}]', version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_type is None
    # The id could be read: the answer repeats it.
    assert error.message_id == "id-7"
    assert answer_of(error)[:3] == [4, "id-7", RPC_CODE[version]]


@pytest.mark.parametrize("version", ALL)
def test_fr03_message_type_not_an_integer_and_no_readable_id(version: str) -> None:
    error = refused('["2"]', version)
    assert answer_of(error)[:2] == [4, "-1"]


# --- unknown message type numbers (2.0.1 part 4 §4.4; 2.1 and 1.6 ignore them) -----------


@pytest.mark.parametrize("type_id", [0, 1, 5, 6, 7, -2, 99, 10**30])
def test_201_unknown_message_type_answered_message_type_not_supported(type_id: int) -> None:
    error = refused(f'[{type_id},"m-1","Heartbeat",{{}}]', "2.0.1")
    assert error.error_code == "MessageTypeNotSupported"
    assert error.message_type == type_id
    assert error.message_id == "m-1"
    assert answer_of(error) == [4, "m-1", "MessageTypeNotSupported", error.description, {}]


def test_201_unknown_message_type_without_readable_id_answered_with_minus_one() -> None:
    error = refused("[9]", "2.0.1")
    assert error.error_code == "MessageTypeNotSupported"
    assert answer_of(error)[:3] == [4, "-1", "MessageTypeNotSupported"]


@pytest.mark.parametrize("type_id", [0, 1, 5, 6, 7, 99])
def test_16_unknown_message_type_is_ignored_not_answered(type_id: int) -> None:
    error = refused(f'[{type_id},"m-1","Heartbeat",{{}}]', "1.6")
    assert error.answer is None
    assert error.message_type == type_id
    assert error.message_id == "m-1"


@pytest.mark.parametrize("type_id", [0, 1, 7, 8, 99])
def test_21_unknown_message_type_is_ignored_not_answered(type_id: int) -> None:
    error = refused(f'[{type_id},"m-1","Heartbeat",{{}}]', "2.1")
    assert error.error_code == "MessageTypeNotSupported"
    assert error.answer is None


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_callresulterror_and_send_types_exist_only_in_21(version: str) -> None:
    for text in ('[5,"1","GenericError","",{}]', '[6,"1","Heartbeat",{}]'):
        error = refused(text, version)
        assert error.error_code == (
            "MessageTypeNotSupported" if version == "2.0.1" else "FormationViolation"
        )


# --- arity ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("text", ['[2,"c1","Heartbeat"]', '[2,"c1","Heartbeat",{},{}]', '[2,"c1"]'])
def test_fr03_call_with_wrong_arity_answered_with_its_id(version: str, text: str) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id == "c1"
    assert error.message_type == 2
    assert answer_of(error)[:3] == [4, "c1", RPC_CODE[version]]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("text", ['[3,"r1"]', '[3,"r1",{},{}]'])
def test_callresult_with_wrong_arity_not_answered_before_21(version: str, text: str) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id == "r1"
    assert error.answer is None


@pytest.mark.parametrize("text", ['[3,"r1"]', '[3,"r1",{},{}]'])
def test_21_fr06_callresult_with_wrong_arity_answered_with_callresulterror(text: str) -> None:
    error = refused(text, "2.1", response_to="Heartbeat")
    assert error.error_code == "RpcFrameworkError"
    assert error.action == "Heartbeat"
    assert answer_of(error) == [5, "r1", "RpcFrameworkError", error.description, {}]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "text", ['[4,"e1","GenericError",""]', '[4,"e1","GenericError","",{},{}]', '[4,"e1"]']
)
def test_callerror_with_wrong_arity_never_answered(version: str, text: str) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_type == 4
    assert error.answer is None


@pytest.mark.parametrize(
    "text", ['[5,"e1","GenericError",""]', '[5,"e1","GenericError","",{},1]', '[5,"e1"]']
)
def test_21_callresulterror_with_wrong_arity_never_answered(text: str) -> None:
    error = refused(text, "2.1")
    assert error.error_code == "RpcFrameworkError"
    assert error.answer is None


@pytest.mark.parametrize(
    "text",
    [
        '[6,"s1","NotifyPeriodicEventStream"]',
        '[6,"s1","NotifyPeriodicEventStream",{},{}]',
        '[6,"s1"]',
    ],
)
def test_21_fr07_send_with_wrong_arity_never_answered(text: str) -> None:
    error = refused(text, "2.1")
    assert error.error_code == "RpcFrameworkError"
    assert error.message_type == 6
    assert error.answer is None


# --- the message id ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("message_id", ["1", "null", "true", "[]", "{}", "1.5"])
def test_fr03_call_id_not_a_string_answered_with_minus_one(version: str, message_id: str) -> None:
    error = refused(f'[2,{message_id},"Heartbeat",{{}}]', version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id is None
    assert error.message_type == 2
    assert answer_of(error)[:3] == [4, "-1", RPC_CODE[version]]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("type_id", [3, 4])
def test_answer_with_id_not_a_string_is_never_answered(version: str, type_id: int) -> None:
    text = '[3,7,{"currentTime":"2024-01-01T00:00:00Z"}]' if type_id == 3 else '[4,7,"X","",{}]'
    error = refused(text, version, response_to="Heartbeat")
    assert error.error_code == RPC_CODE[version]
    assert error.answer is None


@pytest.mark.parametrize("version", ALL)
def test_id_of_36_characters_accepted(version: str) -> None:
    message_id = "a" * 36
    assert decode_frame(f'[2,"{message_id}","Heartbeat",{{}}]', version).message_id == message_id


@pytest.mark.parametrize("version", ALL)
def test_id_length_counts_characters_not_bytes(version: str) -> None:
    message_id = "\u00e9" * 35 + "\U0001f600"  # 36 characters, 74 UTF-8 bytes
    assert decode_frame(f'[2,"{message_id}","Heartbeat",{{}}]', version).message_id == message_id
    escaped = "\\ud83d\\ude00" * 36  # 36 characters written as surrogate-pair escapes
    assert len(decode_frame(f'[2,"{escaped}","Heartbeat",{{}}]', version).message_id) == 36


@pytest.mark.parametrize("version", ALL)
def test_fr03_id_over_36_characters_answered_with_the_id_as_received(version: str) -> None:
    message_id = "b" * 37
    error = refused(f'[2,"{message_id}","Heartbeat",{{}}]', version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id == message_id
    assert answer_of(error)[:3] == [4, message_id, RPC_CODE[version]]


@pytest.mark.parametrize("version", ALL)
def test_answer_with_id_over_36_characters_is_not_answered(version: str) -> None:
    # We never send such ids, so this answers nothing of ours: reported, not answered.
    error = refused(f'[3,"{"c" * 37}",{{}}]', version, response_to="Heartbeat")
    assert error.error_code == RPC_CODE[version]
    assert error.answer is None


@pytest.mark.parametrize("version", ALL)
def test_empty_id_is_a_string_of_at_most_36_characters(version: str) -> None:
    frame = decode_frame('[2,"","Heartbeat",{}]', version)
    assert frame.message_id == ""
    assert encode_frame(frame) == '[2,"","Heartbeat",{}]'
    answer = encode_frame(CallError(message_id="", error_code="GenericError"))
    assert answer == '[4,"","GenericError","",{}]'


# --- the action -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("action", ["1", "null", "{}", '["Heartbeat"]'])
def test_fr03_action_not_a_string(version: str, action: str) -> None:
    error = refused(f'[2,"c1",{action},{{}}]', version)
    assert error.error_code == RPC_CODE[version]
    assert answer_of(error)[:3] == [4, "c1", RPC_CODE[version]]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("action", ["heartbeat", "HeartbeatRequest", "Heartbeat ", "Foo", ""])
def test_fr03_unknown_action_answered_not_implemented(version: str, action: str) -> None:
    error = refused(f'[2,"c1","{action}",{{}}]', version)
    assert error.error_code == "NotImplemented"
    assert error.action == action
    assert answer_of(error)[:3] == [4, "c1", "NotImplemented"]


@pytest.mark.parametrize(
    ("version", "action"),
    [
        ("1.6", "TransactionEvent"),
        ("1.6", "GetVariables"),
        ("2.0.1", "StartTransaction"),
        ("2.0.1", "RemoteStartTransaction"),
        ("2.0.1", "NotifyPeriodicEventStream"),
        ("2.0.1", "BatterySwap"),
        ("2.1", "GetConfiguration"),
    ],
)
def test_fr03_action_of_another_version_answered_not_implemented(version: str, action: str) -> None:
    assert refused(f'[2,"c1","{action}",{{}}]', version).error_code == "NotImplemented"


def test_unknown_action_description_is_cut_to_255() -> None:
    error = refused(f'[2,"c1","{"X" * 1000}",{{}}]', "2.0.1")
    assert len(error.description) == 255
    assert len(answer_of(error)[3]) == 255


# --- the payload ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("payload", ["[]", "null", '"x"', "1", "true", "[{}]"])
def test_fr03_call_payload_not_an_object(version: str, payload: str) -> None:
    error = refused(f'[2,"c1","Heartbeat",{payload}]', version)
    assert error.error_code == FORMAT_CODE[version]
    assert error.action == "Heartbeat"
    assert answer_of(error)[:3] == [4, "c1", FORMAT_CODE[version]]


@pytest.mark.parametrize("version", ALL)
def test_callresult_payload_not_an_object_without_response_to(version: str) -> None:
    error = refused('[3,"r1",[]]', version)
    assert error.error_code == FORMAT_CODE[version]
    assert (error.answer is not None) == (version == "2.1")


AUTHORIZE_16 = '"idTag":"x"'
AUTHORIZE_2X = '"idToken":{"idToken":"x","type":"Central"}'
BOOT_2X = '"chargingStation":{"model":"M","vendorName":"V"}'
SCHEMA_CASES = [
    # (version, action, payload, code, path)
    ("1.6", "Authorize", "{" + AUTHORIZE_16 + ',"extra":1}', "FormationViolation", "$.extra"),
    ("1.6", "Authorize", '{"idTag":5}', "TypeConstraintViolation", "$.idTag"),
    ("1.6", "Authorize", '{"idTag":"' + "x" * 21 + '"}', "PropertyConstraintViolation", "$.idTag"),
    ("1.6", "Authorize", "{}", "OccurenceConstraintViolation", "$.idTag"),
    (
        "1.6",
        "StatusNotification",
        '{"connectorId":1,"errorCode":"NoError","status":"Nope"}',
        "PropertyConstraintViolation",
        "$.status",
    ),
    (
        "1.6",
        "MeterValues",
        '{"connectorId":1,"meterValue":[]}',
        "OccurenceConstraintViolation",
        "$.meterValue",
    ),
]
for _v in TWO_X:
    SCHEMA_CASES += [
        (_v, "Authorize", "{" + AUTHORIZE_2X + ',"extra":1}', "ProtocolError", "$.extra"),
        (
            _v,
            "Authorize",
            '{"idToken":{"idToken":5,"type":"Central"}}',
            "TypeConstraintViolation",
            "$.idToken.idToken",
        ),
        (_v, "Authorize", "{}", "OccurrenceConstraintViolation", "$.idToken"),
        (
            _v,
            "BootNotification",
            "{" + BOOT_2X + ',"reason":"Nope"}',
            "PropertyConstraintViolation",
            "$.reason",
        ),
        (
            _v,
            "BootNotification",
            '{"reason":"PowerUp"}',
            "OccurrenceConstraintViolation",
            "$.chargingStation",
        ),
        (
            _v,
            "BootNotification",
            "{" + BOOT_2X + ',"reason":"PowerUp","customData":{}}',
            "OccurrenceConstraintViolation",
            "$.customData.vendorId",
        ),
    ]


@pytest.mark.parametrize(("version", "action", "payload", "code", "path"), SCHEMA_CASES)
def test_fr03_schema_violations_earn_the_codes_of_the_version(
    version: str, action: str, payload: str, code: str, path: str
) -> None:
    error = refused(f'[2,"c1","{action}",{payload}]', version)
    assert (error.error_code, error.details["path"]) == (code, path)
    assert error.action == action
    assert path in error.description
    assert answer_of(error) == [4, "c1", code, error.description, error.details]


@pytest.mark.parametrize("version", TWO_X)
def test_2x_custom_data_keeps_vendor_properties(version: str) -> None:
    text = '[2,"c1","Heartbeat",{"customData":{"vendorId":"acme","x":[1],"y":{"z":null}}}]'
    frame = decode_frame(text, version)
    assert json.loads(encode_frame(frame)) == json.loads(text)  # key order aside


# --- 2.1 SEND (FR.07) -------------------------------------------------------------------

STREAM = '{"data":[{"t":1.5,"v":"230.1"}],"id":1,"pending":0,"basetime":"2025-01-01T00:00:00Z"}'


def test_21_send_decodes_to_typed_send() -> None:
    frame = decode_frame(f'[6,"s1","NotifyPeriodicEventStream",{STREAM}]', "2.1")
    assert isinstance(frame, Send)
    assert frame.action == "NotifyPeriodicEventStream"
    assert frame.payload == v21.NotifyPeriodicEventStream(
        data=[v21.StreamDataElement(t=1.5, v="230.1")],
        id=1,
        pending=0,
        basetime=datetime(2025, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('[6,"s1","NotifyPeriodicEventStream",{"id":1}]', "OccurrenceConstraintViolation"),
        ('[6,"s1","NotifyPeriodicEventStream",[]]', "FormatViolation"),
        ('[6,"s1","Unknown",{}]', "NotImplemented"),
        ('[6,"s1",1,{}]', "RpcFrameworkError"),
        ('[6,1,"NotifyPeriodicEventStream",{}]', "RpcFrameworkError"),
        (f'[6,"{"s" * 37}","NotifyPeriodicEventStream",{STREAM}]', "RpcFrameworkError"),
    ],
)
def test_21_fr07_invalid_send_is_never_answered(text: str, code: str) -> None:
    error = refused(text, "2.1")
    assert error.error_code == code
    assert error.answer is None


def test_21_send_of_a_call_action_refused_and_not_answered() -> None:
    error = refused('[6,"s1","Heartbeat",{}]', "2.1")
    assert error.error_code == "RpcFrameworkError"
    assert error.action == "Heartbeat"
    assert error.answer is None


def test_21_n15_call_of_the_send_only_action_answered_with_callerror() -> None:
    error = refused(f'[2,"c1","NotifyPeriodicEventStream",{STREAM}]', "2.1")
    assert error.error_code == "RpcFrameworkError"
    assert answer_of(error)[:3] == [4, "c1", "RpcFrameworkError"]


# --- CALLRESULT -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_callresult_without_response_to_keeps_the_raw_object(version: str) -> None:
    frame = decode_frame('[3,"r1",{"anything":[1,{"x":null}]}]', version)
    assert frame == CallResult(message_id="r1", payload={"anything": [1, {"x": None}]})


@pytest.mark.parametrize("version", ALL)
def test_callresult_with_response_to_is_typed(version: str) -> None:
    frame = decode_frame(HEARTBEAT_RESULT, version, response_to="Heartbeat")
    module = {"1.6": v16, "2.0.1": v201, "2.1": v21}[version]
    assert frame == CallResult(
        message_id="r1",
        payload=module.HeartbeatResponse(current_time=datetime(2024, 5, 1, 12, tzinfo=UTC)),
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_invalid_callresult_is_reported_not_answered_before_21(version: str) -> None:
    error = refused('[3,"r1",{}]', version, response_to="Heartbeat")
    assert error.error_code == OCCURRENCE_CODE[version]
    assert error.message_type == 3
    assert error.action == "Heartbeat"
    assert error.details["path"] == "$.currentTime"
    assert error.answer is None


def test_21_fr06_invalid_callresult_answered_with_callresulterror() -> None:
    error = refused('[3,"r1",{"currentTime":"yesterday"}]', "2.1", response_to="Heartbeat")
    assert error.error_code == "TypeConstraintViolation"
    assert error.details["path"] == "$.currentTime"
    assert answer_of(error) == [
        5,
        "r1",
        "TypeConstraintViolation",
        error.description,
        error.details,
    ]


def test_21_fr06_callresult_with_request_payload_refused() -> None:
    error = refused('[3,"r1",{}]', "2.1", response_to="BootNotification")
    assert error.error_code == "OccurrenceConstraintViolation"
    assert isinstance(error.answer, CallResultError)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("response_to", ["Nope", "heartbeat"])
def test_response_to_an_unknown_action_is_a_usage_error(version: str, response_to: str) -> None:
    with pytest.raises(ValueError, match="not an OCPP"):
        decode_frame(HEARTBEAT_RESULT, version, response_to=response_to)


def test_21_response_to_the_send_only_action_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="with a response"):
        decode_frame('[3,"r1",{}]', "2.1", response_to="NotifyPeriodicEventStream")


# --- CALLERROR and CALLRESULTERROR ------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "code",
    [
        "NotImplemented",
        "GenericError",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "FormationViolation",
        "FormatViolation",
        "MessageTypeNotSupported",
        "SomethingVendorSpecific",
        "",
    ],
)
def test_callerror_accepts_every_code_string_as_sent(version: str, code: str) -> None:
    frame = decode_frame(f'[4,"e1","{code}","went wrong",{{"k":[1]}}]', version)
    assert frame == CallError(
        message_id="e1", error_code=code, description="went wrong", details={"k": [1]}
    )


@pytest.mark.parametrize("version", ALL)
def test_callerror_long_description_accepted_as_received(version: str) -> None:
    frame = decode_frame(f'[4,"e1","GenericError","{"d" * 1000}",{{}}]', version)
    assert len(frame.description) == 1000  # type: ignore[union-attr]


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "text",
    [
        '[4,"e1",1,"",{}]',
        '[4,"e1","GenericError",null,{}]',
        '[4,"e1","GenericError","",null]',
        '[4,"e1","GenericError","",[]]',
        '[4,"e1",null,"",{}]',
    ],
)
def test_malformed_callerror_refused_and_never_answered(version: str, text: str) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]
    assert error.message_id == "e1"
    assert error.message_type == 4
    assert error.answer is None


def test_21_callresulterror_decodes() -> None:
    frame = decode_frame('[5,"r1","FormatViolation","bad",{}]', "2.1")
    assert frame == CallResultError(
        message_id="r1", error_code="FormatViolation", description="bad", details={}
    )


def test_21_malformed_callresulterror_never_answered() -> None:
    error = refused('[5,"r1","FormatViolation","bad",[]]', "2.1")
    assert error.answer is None


# --- nesting ----------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A DataTransfer whose frame nests ``depth`` levels (the frame array is level 1)."""
    inner = depth - 2  # the frame array and the payload object
    return '[2,"d1","DataTransfer",{"vendorId":"v","data":' + "[" * inner + "]" * inner + "}]"


@pytest.mark.parametrize("version", TWO_X)
def test_nesting_up_to_max_depth_decodes_and_reencodes(version: str) -> None:
    frame = decode_frame(nested(MAX_DEPTH), version)
    assert json.loads(encode_frame(frame)) == json.loads(nested(MAX_DEPTH))


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_nesting_beyond_max_depth_refused(version: str, depth: int) -> None:
    error = refused(nested(depth), version)
    assert error.error_code == RPC_CODE[version]
    assert error.answer is not None


@pytest.mark.parametrize("version", ALL)
def test_many_brackets_inside_strings_do_not_count_as_nesting(version: str) -> None:
    text = '[3,"r1",{"s":"' + "[" * 500 + '","t":[[1],[2],{"u":{}}]}]'
    assert decode_frame(text, version).payload["s"] == "[" * 500  # type: ignore[union-attr]


# --- regressions in the payload codec ---------------------------------------------------


@pytest.mark.parametrize("version", TWO_X)
def test_2x_data_transfer_with_untyped_data_round_trips(version: str) -> None:
    text = '[2,"d1","DataTransfer",{"vendorId":"v","data":{"a":[1,"b",null,true,2.5]}}]'
    frame = decode_frame(text, version)
    assert frame.payload.data == {"a": [1, "b", None, True, 2.5]}  # type: ignore[union-attr]
    assert encode_frame(frame) == text


def test_16_integer_beyond_float_range_under_multiple_of_refused() -> None:
    limit = "1" + "0" * 400
    text = (
        '[2,"c1","SetChargingProfile",{"connectorId":1,"csChargingProfiles":{'
        '"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxProfile",'
        '"chargingProfileKind":"Absolute","chargingSchedule":{"chargingRateUnit":"A",'
        f'"chargingSchedulePeriod":[{{"startPeriod":0,"limit":{limit}}}]}}}}}}]'
    )
    error = refused(text, "1.6")
    assert error.error_code == "PropertyConstraintViolation"
    assert (
        error.details["path"]
        == "$.csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit"
    )
    assert decode_frame(text.replace(limit, "16.1"), "1.6").message_id == "c1"


# --- datetimes in -----------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.5Z", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T12:00:00.52Z", datetime(2024, 5, 1, 12, 0, 0, 520000, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123Z", datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T07:30:00-04:30", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00+00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T13:00:00.250+01:00", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_datetime_in_accepts_z_offsets_and_fractions(
    version: str, text: str, expected: datetime
) -> None:
    frame = decode_frame(f'[3,"r1",{{"currentTime":"{text}"}}]', version, response_to="Heartbeat")
    got = frame.payload.current_time  # type: ignore[union-attr]
    assert got == expected
    assert got.utcoffset() is not None


@pytest.mark.parametrize("version", ALL)
def test_datetime_in_keeps_the_offset_it_was_given(version: str) -> None:
    text = '[3,"r1",{"currentTime":"2024-05-01T14:00:00+02:00"}]'
    got = decode_frame(text, version, response_to="Heartbeat").payload.current_time  # type: ignore[union-attr]
    assert got.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00",  # no offset
        "2024-05-01",
        "2024-05-01 12:00:00Z",
        "2024-13-01T12:00:00Z",
        "2024-02-30T12:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00+25:00",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00Z ",
        "20240501T120000Z",
        "\u0662\u0660\u0662\u0664-05-01T12:00:00Z",  # Arabic-Indic digits
        "",
    ],
)
def test_datetime_in_refuses_what_is_not_rfc3339(version: str, text: str) -> None:
    error = refused(f'[3,"r1",{{"currentTime":"{text}"}}]', version, response_to="Heartbeat")
    assert error.error_code == "TypeConstraintViolation"
    assert error.details["path"] == "$.currentTime"


# --- encoding ---------------------------------------------------------------------------


def test_encode_is_compact_json() -> None:
    call = Call(message_id="1", action="Heartbeat", payload=v16.HeartbeatRequest())
    assert encode_frame(call) == '[2,"1","Heartbeat",{}]'
    result = CallResult(
        message_id="1",
        payload=v16.BootNotificationResponse(
            status=v16.RegistrationStatus.ACCEPTED,
            current_time=datetime(2024, 5, 1, 12, tzinfo=UTC),
            interval=300,
        ),
    )
    assert (
        encode_frame(result)
        == '[3,"1",{"status":"Accepted","currentTime":"2024-05-01T12:00:00Z","interval":300}]'
    )


def test_encode_omits_none_fields() -> None:
    call = Call(
        message_id="1",
        action="BootNotification",
        payload=v16.BootNotificationRequest(charge_point_vendor="V", charge_point_model="M"),
    )
    assert encode_frame(call) == (
        '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
    )


def test_21_encode_send() -> None:
    text = f'[6,"s1","NotifyPeriodicEventStream",{STREAM}]'
    assert encode_frame(decode_frame(text, "2.1")) == text


@pytest.mark.parametrize("cls", [CallError, CallResultError])
def test_encode_cuts_error_description_to_255(cls: type[CallError] | type[CallResultError]) -> None:
    text = encode_frame(cls(message_id="1", error_code="GenericError", description="x" * 300))
    code = 4 if cls is CallError else 5
    assert json.loads(text) == [code, "1", "GenericError", "x" * 255, {}]
    assert (
        len(json.loads(encode_frame(cls(message_id="1", error_code="E", description="y" * 255)))[3])
        == 255
    )


def test_encode_error_with_details() -> None:
    text = encode_frame(
        CallError(message_id="1", error_code="X", description="d", details={"path": "$.a"})
    )
    assert text == '[4,"1","X","d",{"path":"$.a"}]'


def test_encode_invalid_payload_raises_with_the_path() -> None:
    call = Call(
        message_id="1",
        action="BootNotification",
        payload=v16.BootNotificationRequest(charge_point_vendor="V" * 21, charge_point_model="M"),
    )
    with pytest.raises(InvalidPayloadError) as info:
        encode_frame(call)
    assert info.value.path == "$.chargePointVendor"
    assert isinstance(info.value, LocalProtocolError)


def test_encode_invalid_nested_payload_raises_with_the_path() -> None:
    request = v16.MeterValuesRequest(
        connector_id=1,
        meter_value=[
            v16.MeterValue(
                timestamp=datetime(2024, 1, 1, tzinfo=UTC),
                sampled_value=[v16.SampledValue(value="1")],
            ),
            v16.MeterValue(
                timestamp=datetime(2024, 1, 1, tzinfo=UTC),
                sampled_value=[v16.SampledValue(value="1"), v16.SampledValue(value=2)],  # type: ignore[arg-type]
            ),
        ],
    )
    with pytest.raises(InvalidPayloadError) as info:
        encode_frame(Call(message_id="1", action="MeterValues", payload=request))
    assert info.value.path == "$.meterValue[1].sampledValue[1].value"


def test_encode_refuses_naive_datetime() -> None:
    response = v16.HeartbeatResponse(current_time=datetime(2024, 1, 1))
    with pytest.raises(InvalidPayloadError) as info:
        encode_frame(CallResult(message_id="1", payload=response))
    assert info.value.path == "$.currentTime"
    assert "naive" in info.value.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 5, 1, 12, tzinfo=UTC), "2024-05-01T12:00:00Z"),
        (datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T12:00:00Z"),
        (datetime(2024, 5, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2024-04-30T23:30:00Z"),
        (datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), "2024-05-01T12:00:00.123Z"),
        (datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC), "2024-05-01T12:00:00.500Z"),
        (datetime(2024, 5, 1, 12, 0, 0, 999, tzinfo=UTC), "2024-05-01T12:00:00Z"),
    ],
)
def test_encode_datetime_in_utc_with_z_to_the_millisecond(value: datetime, expected: str) -> None:
    text = encode_frame(
        CallResult(message_id="1", payload=v201.HeartbeatResponse(current_time=value))
    )
    assert json.loads(text)[2] == {"currentTime": expected}


def test_encode_refuses_payload_of_another_action() -> None:
    call = Call(
        message_id="1",
        action="Heartbeat",
        payload=v16.BootNotificationRequest(charge_point_vendor="V", charge_point_model="M"),
    )
    with pytest.raises(InvalidPayloadError, match="BootNotification"):
        encode_frame(call)


def test_encode_refuses_response_in_a_call_and_request_in_a_result() -> None:
    with pytest.raises(InvalidPayloadError, match="response"):
        encode_frame(
            Call(
                message_id="1",
                action="Heartbeat",
                payload=v16.HeartbeatResponse(current_time=datetime(2024, 1, 1, tzinfo=UTC)),
            )
        )
    with pytest.raises(InvalidPayloadError, match="request"):
        encode_frame(CallResult(message_id="1", payload=v16.HeartbeatRequest()))


def test_encode_refuses_a_nested_type_as_payload() -> None:
    with pytest.raises(InvalidPayloadError):
        encode_frame(CallResult(message_id="1", payload=v16.SampledValue(value="1")))
    with pytest.raises(InvalidPayloadError):
        encode_frame(CallResult(message_id="1", payload=object()))


def test_21_encode_refuses_send_payload_in_a_call_and_call_payload_in_a_send() -> None:
    frame = decode_frame(f'[6,"s1","NotifyPeriodicEventStream",{STREAM}]', "2.1")
    with pytest.raises(InvalidPayloadError, match="send"):
        encode_frame(Call(message_id="1", action=frame.action, payload=frame.payload))  # type: ignore[union-attr]
    with pytest.raises(InvalidPayloadError, match="request"):
        encode_frame(Send(message_id="1", action="Heartbeat", payload=v21.HeartbeatRequest()))


def test_encode_raw_dict_payload_passes_through() -> None:
    assert encode_frame(Call(message_id="1", action="Foo", payload={"a": 1})) == (
        '[2,"1","Foo",{"a":1}]'
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1, 2}, object(), b"x"])
def test_encode_refuses_what_json_cannot_hold(bad: Any) -> None:
    with pytest.raises(InvalidPayloadError):
        encode_frame(CallResult(message_id="1", payload={"a": bad}))
    with pytest.raises(InvalidPayloadError):
        encode_frame(CallError(message_id="1", error_code="X", details={"a": bad}))


@pytest.mark.parametrize("message_id", ["x" * 37, None, 1])
def test_encode_call_and_send_ids_have_at_most_36_characters(message_id: Any) -> None:
    for cls in (Call, Send):
        with pytest.raises(LocalProtocolError, match="message id"):
            encode_frame(cls(message_id=message_id, action="Foo", payload={}))


def test_encode_answers_repeat_any_string_id() -> None:
    long_id = "x" * 37
    assert json.loads(encode_frame(CallResult(message_id=long_id, payload={})))[1] == long_id
    assert json.loads(encode_frame(CallError(message_id=long_id, error_code="E")))[1] == long_id
    with pytest.raises(LocalProtocolError):
        encode_frame(CallError(message_id=None, error_code="E"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "frame",
    [
        CallError(message_id="1", error_code=None, description=""),  # type: ignore[arg-type]
        CallError(message_id="1", error_code="E", description=None),  # type: ignore[arg-type]
        CallError(message_id="1", error_code="E", details=[]),  # type: ignore[arg-type]
        Call(message_id="1", action=None, payload={}),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_malformed_frames(frame: Any) -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(frame)


def test_encode_refuses_what_is_not_a_frame() -> None:
    with pytest.raises(TypeError):
        encode_frame([2, "1", "Heartbeat", {}])  # type: ignore[arg-type]


def test_encode_escapes_lone_surrogates_to_ascii() -> None:
    error = CallError(
        message_id="\ud800", error_code="E", description="\udfff", details={"\ud83d": 1}
    )
    text = encode_frame(error)
    text.encode("utf-8")  # a lone surrogate would make this raise
    assert text == '[4,"\\ud800","E","\\udfff",{"\\ud83d":1}]'


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize(
    "text",
    [
        '[2,"1","Heartbeat",{}]',
        '[3,"1",{"a":[1,2.5,"x",null,false,{}],"b":"\\u00e9\\ud83d\\ude00"}]',
        '[4,"1","GenericError","text",{"k":"v"}]',
    ],
)
def test_decode_encode_round_trip_is_exact(version: str, text: str) -> None:
    assert encode_frame(decode_frame(text, version)) == text


# --- the generated codecs, as seen through the frame API --------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ('"Nope"', "PropertyConstraintViolation"),
        ('"accepted"', "PropertyConstraintViolation"),
        ("5", "TypeConstraintViolation"),
        ("null", "TypeConstraintViolation"),
        ('["Accepted"]', "TypeConstraintViolation"),  # unhashable
        ('{"Accepted":1}', "TypeConstraintViolation"),
    ],
)
def test_enum_values_refused_with_the_right_code(status: str, code: str) -> None:
    text = f'[3,"r1",{{"status":{status},"currentTime":"2024-01-01T00:00:00Z","interval":1}}]'
    error = refused(text, "1.6", response_to="BootNotification")
    assert (error.error_code, error.details["path"]) == (code, "$.status")


@pytest.mark.parametrize("version", ALL)
def test_null_in_place_of_an_optional_field_is_refused(version: str) -> None:
    # OCPP-J, Part 4: an empty optional field is omitted; null is not "absent".
    text = (
        '[2,"1","DataTransfer",{"vendorId":"v","messageId":null}]'
        if version == "1.6"
        else '[2,"1","Heartbeat",{"customData":null}]'
    )
    error = refused(text, version)
    assert error.error_code == "TypeConstraintViolation"


def test_encode_refuses_nested_object_of_the_wrong_class() -> None:
    request = v16.MeterValuesRequest(
        connector_id=1,
        meter_value=[v16.SampledValue(value="1")],  # type: ignore[list-item]
    )
    with pytest.raises(InvalidPayloadError) as info:
        encode_frame(Call(message_id="1", action="MeterValues", payload=request))
    assert info.value.path == "$.meterValue[0]"
    assert "MeterValue" in info.value.reason


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_encode_refuses_non_finite_numbers_in_typed_fields(bad: float) -> None:
    stream = decode_frame(f'[6,"s1","NotifyPeriodicEventStream",{STREAM}]', "2.1").payload  # type: ignore[union-attr]
    broken = v21.NotifyPeriodicEventStream(
        data=[v21.StreamDataElement(t=bad, v="1")],
        id=stream.id,
        pending=stream.pending,
        basetime=stream.basetime,
    )
    with pytest.raises(InvalidPayloadError) as info:
        encode_frame(Send(message_id="1", action="NotifyPeriodicEventStream", payload=broken))
    assert info.value.path == "$.data[0].t"


def test_encode_refuses_circular_and_oversized_values_in_hand_built_dicts() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with pytest.raises(InvalidPayloadError):
        encode_frame(CallResult(message_id="1", payload=circular))
    with pytest.raises(InvalidPayloadError):
        encode_frame(CallResult(message_id="1", payload={"n": 10**5000}))


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("text", [b'[2,"1","Heartbeat",{}]', None, 5])
def test_decode_of_what_is_not_text_is_a_frame_error(version: str, text: Any) -> None:
    error = refused(text, version)
    assert error.error_code == RPC_CODE[version]


def test_codec_keeps_init_for_classes_whose_init_does_more_than_set_slots() -> None:
    import attrs

    from ocpp_sansio.messages._codec import structure_fn
    from ocpp_sansio.messages._model import message

    seen: list[str] = []

    @message
    class Hooked:
        name: str

        def __attrs_post_init__(self) -> None:
            seen.append(self.name)

    @message
    class Checked:
        size: int = attrs.field(validator=attrs.validators.ge(0))

    attrs.resolve_types(Hooked)  # this module's annotations are strings
    attrs.resolve_types(Checked)
    assert structure_fn(Hooked)({"name": "x"}) == Hooked(name="x")
    assert seen == ["x", "x"]  # the decode ran the hook, then the comparison's instance
    with pytest.raises(ValueError):
        structure_fn(Checked)({"size": -1})
