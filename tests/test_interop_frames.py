"""Frames interoperate with the PyPI ``ocpp`` package (mobilityhouse), both ways.

Their frames are produced exactly as their ``ChargePoint`` does it: a request dataclass
goes through ``serialize_as_dict``, ``snake_to_camel_case`` and ``remove_nones`` into a
``Call`` that is validated against their schemas and packed with ``to_json``; a response
dataclass goes the same way through ``create_call_result``. Those must decode with ours
and re-encode to the same JSON. Our frames must unpack with their ``unpack``, pass their
schema validation and build their dataclasses (as ``ChargePoint.call`` and ``_handle_call``
do) equal to the ones the same message builds from their own frames.

The package is used here only for message shapes. It is no oracle for error codes: it
swaps NotImplemented/NotSupported and sends FormatViolation on 1.6.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp import messages as their_messages
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.v16 import call as call_16
from ocpp.v16 import call_result as result_16
from ocpp.v16 import datatypes as datatypes_16
from ocpp.v16 import enums as enums_16
from ocpp.v21 import call as call_21
from ocpp.v21 import call_result as result_21
from ocpp.v201 import call as call_201
from ocpp.v201 import call_result as result_201
from ocpp.v201 import datatypes as datatypes_201
from ocpp.v201 import enums as enums_201

from ocpp_sansio import (
    Call,
    CallError,
    CallResult,
    FrameError,
    decode_frame,
    encode_frame,
    registry,
)
from ocpp_sansio.messages import v16, v201
from ocpp_sansio.messages._codec import structure_fn

THEIR_CALLS = {"1.6": call_16, "2.0.1": call_201, "2.1": call_21}
THEIR_RESULTS = {"1.6": result_16, "2.0.1": result_201, "2.1": result_21}

T0 = "2024-05-01T12:00:00Z"
T1 = "2024-05-01T12:15:00.250Z"
ID_TAG_INFO = {"status": "Accepted", "expiryDate": "2024-06-01T00:00:00Z", "parentIdTag": "PARENT"}


def schedule_16(periods: int) -> dict[str, Any]:
    return {
        "duration": 86400,
        "startSchedule": T0,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [
            {"startPeriod": i * 3600, "limit": 7400.5 + i, "numberPhases": 3}
            for i in range(periods)
        ],
        "minChargingRate": 1380.0,
    }


def schedule_2x(periods: int) -> dict[str, Any]:
    return {
        "id": 1,
        "startSchedule": T0,
        "duration": 86400,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [
            {"startPeriod": i * 3600, "limit": 11000.0 - i * 100, "numberPhases": 3}
            for i in range(periods)
        ],
        "minChargingRate": 1380.0,
    }


ID_TOKEN = {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
METER_VALUE_2X = {
    "timestamp": T1,
    "sampledValue": [
        {
            "value": 1234.5,
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
        },
        {
            "value": 16.02,
            "measurand": "Current.Import",
            "phase": "L1",
            "unitOfMeasure": {"unit": "A"},
        },
        {"value": 230, "measurand": "Voltage", "phase": "L1-N"},
    ],
}

REQUESTS_16: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "chargePointVendor": "VendorX",
        "chargePointModel": "Model-1",
        "chargePointSerialNumber": "SN-0001",
        "firmwareVersion": "1.0.3",
        "iccid": "8931440000000000000",
        "meterType": "AC-meter",
    },
    "Heartbeat": {},
    "StatusNotification": {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Charging",
        "timestamp": T0,
        "info": "all good",
        "vendorId": "com.acme",
        "vendorErrorCode": "E000",
    },
    "MeterValues": {
        "connectorId": 1,
        "transactionId": 42,
        "meterValue": [
            {
                "timestamp": T1,
                "sampledValue": [
                    {
                        "value": f"{1000 + i}.5",
                        "context": "Sample.Periodic",
                        "format": "Raw",
                        "measurand": "Energy.Active.Import.Register",
                        "location": "Outlet",
                        "unit": "Wh",
                    }
                    for i in range(10)
                ],
            }
        ],
    },
    "Authorize": {"idTag": "04A2B3C4D5E6F7"},
    "StartTransaction": {
        "connectorId": 1,
        "idTag": "04A2B3C4D5E6F7",
        "meterStart": 1000,
        "timestamp": T0,
        "reservationId": 3,
    },
    "StopTransaction": {
        "meterStop": 2000,
        "timestamp": T1,
        "transactionId": 42,
        "reason": "Local",
        "idTag": "04A2B3C4D5E6F7",
        "transactionData": [{"timestamp": T1, "sampledValue": [{"value": "2000", "unit": "Wh"}]}],
    },
    "RemoteStartTransaction": {
        "idTag": "04A2B3C4D5E6F7",
        "connectorId": 1,
        "chargingProfile": {
            "chargingProfileId": 7,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            },
        },
    },
    "GetConfiguration": {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "60"},
    "SetChargingProfile": {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "transactionId": 42,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "validFrom": T0,
            "validTo": "2024-05-02T12:00:00Z",
            "chargingSchedule": schedule_16(24),
        },
    },
    "DataTransfer": {"vendorId": "com.acme", "messageId": "Ping", "data": '{"n": 1}'},
}
RESPONSES_16: dict[str, dict[str, Any]] = {
    "BootNotification": {"status": "Accepted", "currentTime": T0, "interval": 300},
    "Heartbeat": {"currentTime": T1},
    "StatusNotification": {},
    "MeterValues": {},
    "Authorize": {"idTagInfo": ID_TAG_INFO},
    "StartTransaction": {"transactionId": 42, "idTagInfo": {"status": "Accepted"}},
    "StopTransaction": {"idTagInfo": {"status": "Accepted"}},
    "RemoteStartTransaction": {"status": "Accepted"},
    "GetConfiguration": {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        ],
        "unknownKey": ["Foo"],
    },
    "ChangeConfiguration": {"status": "RebootRequired"},
    "SetChargingProfile": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": "pong"},
}

REQUESTS_2X: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "chargingStation": {
            "model": "Model-1",
            "vendorName": "VendorX",
            "serialNumber": "SN-0001",
            "firmwareVersion": "1.0.3",
            "modem": {"iccid": "8931440000000000000", "imsi": "204080000000000"},
        },
        "reason": "PowerUp",
    },
    "Heartbeat": {},
    "StatusNotification": {
        "timestamp": T0,
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
    },
    "MeterValues": {"evseId": 1, "meterValue": [METER_VALUE_2X]},
    "TransactionEvent": {
        "eventType": "Updated",
        "timestamp": T1,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 3,
        "transactionInfo": {
            "transactionId": "0f4a5c3e-7c2b-4a6e-9b1d-2f0e8a1c9d55",
            "chargingState": "Charging",
            "timeSpentCharging": 900,
        },
        "offline": False,
        "numberOfPhasesUsed": 3,
        "evse": {"id": 1, "connectorId": 1},
        "idToken": ID_TOKEN,
        "meterValue": [METER_VALUE_2X],
        "customData": {"vendorId": "com.acme", "sessioncolour": "green"},
    },
    "Authorize": {"idToken": ID_TOKEN},
    "RequestStartTransaction": {
        "idToken": ID_TOKEN,
        "remoteStartId": 12,
        "evseId": 1,
        "chargingProfile": {
            "id": 9,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                }
            ],
        },
    },
    "GetVariables": {
        "getVariableData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "attributeType": "Actual",
            },
            {
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "AvailabilityState"},
            },
        ]
    },
    "SetChargingProfile": {
        "evseId": 0,
        "chargingProfile": {
            "id": 5,
            "stackLevel": 1,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute",
            "validFrom": T0,
            "chargingSchedule": [schedule_2x(24)],
        },
    },
    "DataTransfer": {"vendorId": "com.acme", "messageId": "Ping", "data": {"n": [1, 2.5, "x"]}},
}
RESPONSES_2X: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "currentTime": T0,
        "interval": 300,
        "status": "Pending",
        "statusInfo": {"reasonCode": "Provisioning", "additionalInfo": "try later"},
    },
    "Heartbeat": {"currentTime": T1},
    "StatusNotification": {},
    "MeterValues": {},
    "TransactionEvent": {
        "totalCost": 1.25,
        "chargingPriority": 0,
        "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": T0, "evseId": [1, 2]},
        "updatedPersonalMessage": {"format": "UTF8", "content": "Hello", "language": "en"},
    },
    "Authorize": {
        "idTokenInfo": {
            "status": "Accepted",
            "chargingPriority": 1,
            "groupIdToken": {"idToken": "GROUP-1", "type": "Central"},
            "language1": "en",
        }
    },
    "RequestStartTransaction": {
        "status": "Accepted",
        "transactionId": "0f4a5c3e-7c2b-4a6e-9b1d-2f0e8a1c9d55",
    },
    "GetVariables": {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeType": "Actual",
                "attributeValue": "300",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            },
            {
                "attributeStatus": "UnknownVariable",
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "AvailabilityState"},
                "attributeStatusInfo": {"reasonCode": "NotFound"},
            },
        ]
    },
    "SetChargingProfile": {"status": "Accepted", "statusInfo": {"reasonCode": "OK"}},
    "DataTransfer": {"status": "Accepted", "data": "pong"},
}

REQUESTS = {"1.6": REQUESTS_16, "2.0.1": REQUESTS_2X, "2.1": REQUESTS_2X}
RESPONSES = {"1.6": RESPONSES_16, "2.0.1": RESPONSES_2X, "2.1": RESPONSES_2X}
CASES = [(version, action) for version in REQUESTS for action in REQUESTS[version]]
CASE_IDS = [f"{version}-{action}" for version, action in CASES]


# --- their side, exactly as ChargePoint does it -----------------------------------------


def their_request(version: str, action: str, wire: dict[str, Any]) -> Any:
    """Their request dataclass, built the way _handle_call builds handler arguments."""
    return getattr(THEIR_CALLS[version], action)(**camel_to_snake_case(copy.deepcopy(wire)))


def their_response(version: str, action: str, wire: dict[str, Any]) -> Any:
    """Their response dataclass, built the way ChargePoint.call builds its return value."""
    return getattr(THEIR_RESULTS[version], action)(**camel_to_snake_case(copy.deepcopy(wire)))


def their_call_text(version: str, payload: Any) -> str:
    """ChargePoint.call: dataclass -> dict -> camelCase -> no Nones -> validated -> text."""
    call = their_messages.Call(
        unique_id=str(uuid.uuid4()),
        action=payload.__class__.__name__,
        payload=remove_nones(snake_to_camel_case(serialize_as_dict(payload))),
    )
    their_messages._validate_payload(call, version)
    text: str = their_messages.pack(call)
    return text


def their_result_text(version: str, action: str, payload: Any) -> str:
    """ChargePoint._handle_call: response dataclass -> dict -> no Nones -> camelCase."""
    call = their_messages.Call(str(uuid.uuid4()), action, {})
    result = call.create_call_result(snake_to_camel_case(remove_nones(serialize_as_dict(payload))))
    their_messages._validate_payload(result, version)
    text: str = their_messages.pack(result)
    return text


def their_unpack_request(version: str, text: str) -> Any:
    """What _handle_call does with an incoming CALL, up to the handler's arguments."""
    msg = their_messages.unpack(text)
    assert isinstance(msg, their_messages.Call)
    their_messages._validate_payload(msg, version)
    payload = json.loads(text)[3]  # their 1.6 validation may swap floats for Decimals
    return getattr(THEIR_CALLS[version], msg.action)(**camel_to_snake_case(payload))


def their_unpack_response(version: str, action: str, text: str) -> Any:
    """What ChargePoint.call does with the CALLRESULT to its CALL."""
    msg = their_messages.unpack(text)
    assert isinstance(msg, their_messages.CallResult)
    msg.action = action
    their_messages._validate_payload(msg, version)
    payload = json.loads(text)[2]
    return getattr(THEIR_RESULTS[version], action)(**camel_to_snake_case(payload))


# --- theirs -> ours ---------------------------------------------------------------------


@pytest.mark.parametrize(("version", "action"), CASES, ids=CASE_IDS)
def test_their_request_decodes_with_ours(version: str, action: str) -> None:
    text = their_call_text(version, their_request(version, action, REQUESTS[version][action]))
    frame = decode_frame(text, version)
    assert isinstance(frame, Call)
    assert frame.action == action
    assert frame.message_id == json.loads(text)[1]
    assert type(frame.payload) is registry(version)[action].request
    assert json.loads(encode_frame(frame)) == json.loads(text)


@pytest.mark.parametrize(("version", "action"), CASES, ids=CASE_IDS)
def test_their_response_decodes_with_ours(version: str, action: str) -> None:
    text = their_result_text(
        version, action, their_response(version, action, RESPONSES[version][action])
    )
    frame = decode_frame(text, version, response_to=action)
    assert isinstance(frame, CallResult)
    assert type(frame.payload) is registry(version)[action].response
    assert json.loads(encode_frame(frame)) == json.loads(text)


def test_their_16_boot_built_from_their_enums_decodes() -> None:
    payload = result_16.BootNotification(
        current_time=datetime(2024, 5, 1, 12, tzinfo=UTC).isoformat(),
        interval=300,
        status=enums_16.RegistrationStatus.accepted,
    )
    text = their_result_text("1.6", "BootNotification", payload)
    frame = decode_frame(text, "1.6", response_to="BootNotification")
    assert frame.payload == v16.BootNotificationResponse(  # type: ignore[union-attr]
        status=v16.RegistrationStatus.ACCEPTED,
        current_time=datetime(2024, 5, 1, 12, tzinfo=UTC),
        interval=300,
    )


def test_their_16_set_charging_profile_built_from_their_datatypes_decodes() -> None:
    profile = datatypes_16.ChargingProfile(
        charging_profile_id=1,
        stack_level=0,
        charging_profile_purpose=enums_16.ChargingProfilePurposeType.tx_default_profile,
        charging_profile_kind=enums_16.ChargingProfileKindType.recurring,
        recurrency_kind=enums_16.RecurrencyKind.daily,
        charging_schedule=datatypes_16.ChargingSchedule(
            charging_rate_unit=enums_16.ChargingRateUnitType.amps,
            charging_schedule_period=[
                datatypes_16.ChargingSchedulePeriod(start_period=i * 3600, limit=6.0 + i / 10)
                for i in range(24)
            ],
        ),
    )
    text = their_call_text(
        "1.6", call_16.SetChargingProfile(connector_id=0, cs_charging_profiles=profile)
    )
    frame = decode_frame(text, "1.6")
    periods = frame.payload.cs_charging_profiles.charging_schedule.charging_schedule_period  # type: ignore[union-attr]
    assert [p.limit for p in periods] == [round(6.0 + i / 10, 1) for i in range(24)]
    assert frame.payload.cs_charging_profiles.recurrency_kind == v16.RecurrencyKindType.DAILY  # type: ignore[union-attr]


def test_their_201_boot_built_from_their_datatypes_decodes() -> None:
    payload = call_201.BootNotification(
        charging_station=datatypes_201.ChargingStationType(
            model="Model-1",
            vendor_name="VendorX",
            modem=datatypes_201.ModemType(iccid="8931", imsi="2040"),
        ),
        reason=enums_201.BootReasonEnumType.remote_reset,
    )
    frame = decode_frame(their_call_text("2.0.1", payload), "2.0.1")
    assert frame.payload == v201.BootNotificationRequest(  # type: ignore[union-attr]
        charging_station=v201.ChargingStation(
            model="Model-1", vendor_name="VendorX", modem=v201.Modem(iccid="8931", imsi="2040")
        ),
        reason=v201.BootReasonEnum.REMOTE_RESET,
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_their_python_isoformat_timestamps_decode(version: str) -> None:
    # Their examples write datetime.now(timezone.utc).isoformat(): microseconds, +00:00.
    stamp = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    payload = THEIR_RESULTS[version].Heartbeat(current_time=stamp.isoformat())
    text = their_result_text(version, "Heartbeat", payload)
    assert "+00:00" in text
    frame = decode_frame(text, version, response_to="Heartbeat")
    assert frame.payload.current_time == stamp  # type: ignore[union-attr]
    assert json.loads(encode_frame(frame))[2] == {"currentTime": "2024-05-01T12:00:00.123Z"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_their_naive_isoformat_timestamp_is_refused_by_ours(version: str) -> None:
    # Their validator checks no formats, so it lets a date-time without offset through;
    # the schema's date-time (RFC 3339) requires one.
    payload = THEIR_RESULTS[version].Heartbeat(current_time="2024-05-01T12:00:00")
    text = their_result_text(version, "Heartbeat", payload)
    with pytest.raises(FrameError) as info:
        decode_frame(text, version, response_to="Heartbeat")
    assert info.value.error_code == "TypeConstraintViolation"
    assert info.value.details["path"] == "$.currentTime"


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_their_callerror_decodes_with_ours(version: str) -> None:
    from ocpp.exceptions import NotSupportedError

    call = their_messages.Call(str(uuid.uuid4()), "Heartbeat", {})
    text = call.create_call_error(NotSupportedError(details={"cause": "no"})).to_json()
    frame = decode_frame(text, version)
    assert frame == CallError(
        message_id=call.unique_id,
        error_code="NotSupported",
        description=NotSupportedError.default_description,
        details={"cause": "no"},
    )


# --- ours -> theirs ---------------------------------------------------------------------


@pytest.mark.parametrize(("version", "action"), CASES, ids=CASE_IDS)
def test_our_request_is_accepted_by_theirs(version: str, action: str) -> None:
    wire = REQUESTS[version][action]
    ours = structure_fn(registry(version)[action].request)(copy.deepcopy(wire))
    text = encode_frame(Call(message_id=str(uuid.uuid4()), action=action, payload=ours))
    assert their_unpack_request(version, text) == their_request(version, action, wire)


@pytest.mark.parametrize(("version", "action"), CASES, ids=CASE_IDS)
def test_our_response_is_accepted_by_theirs(version: str, action: str) -> None:
    wire = RESPONSES[version][action]
    ours = structure_fn(registry(version)[action].response)(copy.deepcopy(wire))
    text = encode_frame(CallResult(message_id=str(uuid.uuid4()), payload=ours))
    assert their_unpack_response(version, action, text) == their_response(version, action, wire)


def test_our_hand_built_16_meter_values_accepted_by_theirs() -> None:
    stamp = datetime(2024, 5, 1, 14, 15, 0, 250000, tzinfo=UTC)
    request = v16.MeterValuesRequest(
        connector_id=1,
        transaction_id=42,
        meter_value=[
            v16.MeterValue(
                timestamp=stamp,
                sampled_value=[
                    v16.SampledValue(
                        value=str(1000 + i),
                        measurand=v16.Measurand.ENERGY_ACTIVE_IMPORT_REGISTER,
                        unit=v16.UnitOfMeasure.WH,
                    )
                    for i in range(10)
                ],
            )
        ],
    )
    text = encode_frame(Call(message_id="m-1", action="MeterValues", payload=request))
    theirs = their_unpack_request("1.6", text)
    assert theirs.connector_id == 1
    assert theirs.meter_value[0]["timestamp"] == "2024-05-01T14:15:00.250Z"
    assert [s["value"] for s in theirs.meter_value[0]["sampled_value"]] == [
        str(1000 + i) for i in range(10)
    ]


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
@pytest.mark.parametrize("code", ["NotImplemented", "NotSupported", "GenericError"])
def test_our_callerror_unpacks_with_theirs(version: str, code: str) -> None:
    text = encode_frame(
        CallError(message_id="c-1", error_code=code, description="d" * 300, details={"k": 1})
    )
    msg = their_messages.unpack(text)
    assert isinstance(msg, their_messages.CallError)
    assert (msg.unique_id, msg.error_code, msg.error_details) == ("c-1", code, {"k": 1})
    assert msg.error_description == "d" * 255
    assert msg.to_exception().code == code
