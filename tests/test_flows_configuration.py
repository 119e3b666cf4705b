"""OCPP 1.6 GetConfiguration / ChangeConfiguration end to end (1.6 §5.3, §5.8, §9; security
whitepaper §7), with the standard keys' types and read-only flags."""

from __future__ import annotations

from typing import Any

import pytest
from _flowkit import Rig
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.flows.configuration import (
    STANDARD_KEYS,
    Configuration16,
    ConfigurationChanged,
    InMemoryConfiguration,
    KeyDefinition,
    KeyType,
    default_configuration,
)


def setup(values: dict[str, str] | None = None, **options: Any) -> tuple[Rig, Configuration16]:
    rig = Rig("1.6")
    store = InMemoryConfiguration(default_configuration() if values is None else values)
    flow = Configuration16(rig.station, store, **options)
    rig.station_flows.append(flow)
    return rig, flow


def get(rig: Rig, *keys: str) -> dict[str, Any]:
    rig.csms_sends(rig.m.GetConfigurationRequest(key=list(keys) or None))
    return rig.answers(direction="station->csms")[-1]


def change(rig: Rig, key: str, value: str) -> str:
    rig.csms_sends(rig.m.ChangeConfigurationRequest(key=key, value=value))
    return str(rig.answers(direction="station->csms")[-1]["status"])


def test_16_5_8_get_configuration_reports_known_and_unknown_keys() -> None:
    rig, _ = setup()
    answer = get(rig, "HeartbeatInterval", "NoSuchKey", "NumberOfConnectors")
    assert answer["configurationKey"] == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
    ]
    assert answer["unknownKey"] == ["NoSuchKey"]


def test_16_5_8_without_keys_every_key_is_reported() -> None:
    values = default_configuration()
    rig, _ = setup(values)
    answer = get(rig)
    assert {kv["key"] for kv in answer["configurationKey"]} == set(values)
    assert "unknownKey" not in answer


def test_16_keys_are_case_insensitive() -> None:
    rig, _ = setup()
    (kv,) = get(rig, "heartbeatinterval")["configurationKey"]
    assert kv["key"] == "HeartbeatInterval"
    assert change(rig, "HEARTBEATINTERVAL", "60") == "Accepted"
    assert get(rig, "HeartbeatInterval")["configurationKey"][0]["value"] == "60"


def test_16_5_3_change_accepted_and_reported_as_an_event() -> None:
    rig, flow = setup()
    assert change(rig, "MeterValueSampleInterval", "30") == "Accepted"
    (event,) = flow.events()
    assert event == ConfigurationChanged(
        key="MeterValueSampleInterval", value="30", previous="60", reboot_required=False
    )
    assert flow.setting("MeterValueSampleInterval") == "30"


def test_16_5_3_unknown_key_is_not_supported() -> None:
    rig, flow = setup()
    assert change(rig, "NoSuchKey", "1") == "NotSupported"
    # An optional key the station does not have (it is not in the store) is not supported.
    assert change(rig, "LightIntensity", "50") == "NotSupported"
    assert flow.events() == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NumberOfConnectors", "2"),  # read-only
        ("HeartbeatInterval", "often"),  # not an integer
        ("HeartbeatInterval", "-5"),  # out of range
        ("StopTransactionOnInvalidId", "yes"),  # not a boolean
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus"),  # §3.16.4
        ("WebSocketPingInterval", "-1"),  # §9.1.34: negative is Rejected
    ],
)
def test_16_5_3_invalid_changes_are_rejected_and_change_nothing(key: str, value: str) -> None:
    values = default_configuration() | {"WebSocketPingInterval": "0"}
    rig, flow = setup(values)
    before = flow.setting(key)
    assert change(rig, key, value) == "Rejected"
    assert flow.setting(key) == before
    assert flow.events() == []


def test_16_3_16_4_measurands_limited_to_what_the_station_supports() -> None:
    rig, _ = setup(supported_measurands={"Energy.Active.Import.Register", "Voltage"})
    assert change(rig, "MeterValuesSampledData", "Voltage.L1,Energy.Active.Import.Register") == (
        "Accepted"
    )
    assert change(rig, "MeterValuesSampledData", "SoC") == "Rejected"


def test_16_csl_length_is_bounded_by_its_max_length_key() -> None:
    values = default_configuration() | {"MeterValuesSampledDataMaxLength": "2"}
    rig, _ = setup(values)
    assert change(rig, "MeterValuesSampledData", "Voltage,Current.Import") == "Accepted"
    assert change(rig, "MeterValuesSampledData", "Voltage,Current.Import,SoC") == "Rejected"


def test_16_reboot_required_keys_answer_reboot_required() -> None:
    definitions = dict(STANDARD_KEYS) | {
        "VendorMode": KeyDefinition(name="VendorMode", type=KeyType.STRING, reboot_required=True)
    }
    rig, flow = setup(default_configuration() | {"VendorMode": "a"}, definitions=definitions)
    assert change(rig, "VendorMode", "b") == "RebootRequired"
    assert flow.events()[0].reboot_required


def test_16_vendor_keys_without_definition_are_read_write_strings() -> None:
    rig, _ = setup({"com.acme.Mode": "eco"})
    assert get(rig, "com.acme.Mode")["configurationKey"] == [
        {"key": "com.acme.Mode", "readonly": False, "value": "eco"}
    ]
    assert change(rig, "com.acme.Mode", "boost") == "Accepted"


def test_security_a01_authorization_key_is_write_only() -> None:
    rig, flow = setup(default_configuration() | {"AuthorizationKey": "00" * 16})
    assert change(rig, "AuthorizationKey", "ab" * 20) == "Accepted"
    assert get(rig, "AuthorizationKey")["configurationKey"] == [
        {"key": "AuthorizationKey", "readonly": False}
    ]
    assert change(rig, "AuthorizationKey", "ab" * 8) == "Rejected"  # under 16 bytes
    assert change(rig, "AuthorizationKey", "zz" * 16) == "Rejected"  # not hex
    assert flow.setting("AuthorizationKey") == "ab" * 20


def test_security_a05_fr_01_security_profile_only_goes_up() -> None:
    rig, _ = setup(default_configuration() | {"SecurityProfile": "1"})
    assert change(rig, "SecurityProfile", "1") == "Rejected"
    assert change(rig, "SecurityProfile", "0") == "Rejected"
    assert change(rig, "SecurityProfile", "2") == "Accepted"


def test_security_a05_fr_02_to_04_the_application_can_veto_a_change() -> None:
    rig, _ = setup(
        default_configuration() | {"SecurityProfile": "1"},
        approve=lambda key, value: not (key == "SecurityProfile" and value == "3"),
    )
    assert change(rig, "SecurityProfile", "3") == "Rejected"
    assert change(rig, "SecurityProfile", "2") == "Accepted"


def test_default_configuration_has_every_required_core_key() -> None:
    required = {
        "AuthorizeRemoteTxRequests", "ClockAlignedDataInterval", "ConnectionTimeOut",
        "ConnectorPhaseRotation", "GetConfigurationMaxKeys", "HeartbeatInterval",
        "LocalAuthorizeOffline", "LocalPreauthorize", "MeterValuesAlignedData",
        "MeterValuesSampledData", "MeterValueSampleInterval", "NumberOfConnectors",
        "ResetRetries", "StopTransactionOnEVSideDisconnect", "StopTransactionOnInvalidId",
        "StopTxnAlignedData", "StopTxnSampledData", "SupportedFeatureProfiles",
        "TransactionMessageAttempts", "TransactionMessageRetryInterval",
        "UnlockConnectorOnEVSideDisconnect",
    }  # fmt: skip
    values = default_configuration(connectors=3)
    assert required <= set(values) and values["NumberOfConnectors"] == "3"
    assert all(key in STANDARD_KEYS for key in values)


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from([*sorted(STANDARD_KEYS), "Unknown", "com.acme.X"]),
    value=st.one_of(
        st.sampled_from(["", "0", "1", "-1", "true", "FALSE", "Voltage", "ab" * 16, "x,y"]),
        st.text(max_size=30),
    ),
)
def test_random_changes_answer_a_valid_status_and_keep_values_typed(key: str, value: str) -> None:
    store = InMemoryConfiguration(default_configuration() | {"com.acme.X": "1"})
    flow = Configuration16(_NoCore(), store)
    status = str(flow.change_configuration(_Change(key=key, value=value)).status)
    assert status in ("Accepted", "Rejected", "RebootRequired", "NotSupported")
    stored = store.read(key)
    definition = STANDARD_KEYS.get(key)
    if status == "Accepted" and definition is not None:
        assert stored is not None
        if definition.type is KeyType.BOOLEAN:
            assert stored in ("true", "false")
        if definition.type is KeyType.INTEGER:
            int(stored)
        assert not definition.readonly
    if status != "Accepted":
        assert stored == (default_configuration() | {"com.acme.X": "1"}).get(key)


class _NoCore:
    version = "1.6"


class _Change:
    def __init__(self, key: str, value: str) -> None:
        self.key = key
        self.value = value
