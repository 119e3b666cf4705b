"""OCTT 2.0.1 station test cases (Part 6, chapter 2) whose stimulus comes from the CSMS,
run through the ChargingStation facade in memory: the CSMS side is a CsmsCore (with the
demo CSMS's answers), the hardware is pretend, the clock virtual. docs/charging_station.md
lists which cases are covered here and why the others cannot apply."""

from __future__ import annotations

from typing import Any

from _stationkit import Rig, wall

from ocpp_sansio.flows._base import build

V = "2.0.1"


def status(answer: Any) -> str:
    return str(answer.status)


def set_var(rig: Rig, component: str, name: str, value: str, instance: str | None = None) -> str:
    m = rig.m
    answer = rig.request(
        "SetVariables",
        set_variable_data=[
            m.SetVariableData(
                attribute_value=value,
                component=m.Component(name=component),
                variable=m.Variable(name=name, instance=instance),
            )
        ],
    )
    return str(answer.set_variable_result[0].attribute_status)


def get_var(rig: Rig, component: str, name: str, **fields: Any) -> Any:
    m = rig.m
    answer = rig.request(
        "GetVariables",
        get_variable_data=[
            build(
                m.GetVariableData,
                component=m.Component(name=component),
                variable=m.Variable(name=name),
                **fields,
            )
        ],
    )
    return answer.get_variable_result[0]


def report(rig: Rig, action: str, **fields: Any) -> tuple[str, list[dict[str, Any]]]:
    before = len(rig.sent("NotifyReport"))
    answer = rig.request(action, request_id=len(rig.sent()) + 100, **fields)
    parts = rig.sent("NotifyReport")[before:]
    return status(answer), [d for p in parts for d in p.get("reportData", [])]


def evse(rig: Rig, evse_id: int, connector_id: int | None = None) -> Any:
    return build(rig.m.EVSE, id=evse_id, connector_id=connector_id)


def remote_start(rig: Rig, evse_id: int | None = 1, token: str = "TOKEN1") -> str:
    return status(
        rig.request(
            "RequestStartTransaction", id_token=rig.token(token), remote_start_id=7, evse_id=evse_id
        )
    )


def remote_stop(rig: Rig, evse_id: int = 1) -> str:
    tx = rig.station.get_evse_transaction_id(evse_id)
    return status(rig.request("RequestStopTransaction", transaction_id=tx or "unknown"))


def events(rig: Rig) -> list[tuple[str, str]]:
    return [(e["eventType"], e["triggerReason"]) for e in rig.tx_events()]


# --- B Provisioning


def test_TC_B_01_CS_cold_boot_accepted() -> None:
    rig = Rig(V)
    assert rig.sent()[0]["reason"] == "PowerUp"
    assert rig.statuses() == [(1, "Available")]


def test_TC_B_02_CS_cold_boot_pending() -> None:
    rig = Rig(V, boot_status="Pending")
    assert set_var(rig, "OCPPCommCtrlr", "OfflineThreshold", "300") == "Accepted"
    assert get_var(rig, "OCPPCommCtrlr", "OfflineThreshold").attribute_value == "300"
    assert report(rig, "GetBaseReport", report_base="FullInventory")[0] == "Accepted"
    answer = rig.inject("RequestStartTransaction", id_token=rig.token(), remote_start_id=1)
    assert answer[2]["status"] == "Rejected"  # B02.FR.05
    rig.demo.boot_status = "Accepted"
    assert status(rig.request("TriggerMessage", requested_message="BootNotification")) == "Accepted"
    assert rig.sent("BootNotification")[-1]["reason"] == "Triggered"
    assert rig.statuses() == [(1, "Available")]


def test_TC_B_03_CS_cold_boot_rejected() -> None:
    rig = Rig(V, boot_status="Rejected")
    rig.pair.advance(100)
    assert {next(iter(p)) for p in rig.sent()} <= {"chargingStation", "reason"}
    assert rig.sent("StatusNotification") == []


def test_TC_B_06_CS_get_variables_single_value() -> None:
    result = get_var(Rig(V), "OCPPCommCtrlr", "HeartbeatInterval")
    assert str(result.attribute_status) == "Accepted" and result.attribute_value


def test_TC_B_07_CS_get_variables_multiple_values() -> None:
    rig = Rig(V)
    m = rig.m
    answer = rig.request(
        "GetVariables",
        get_variable_data=[
            m.GetVariableData(component=m.Component(name=c), variable=m.Variable(name=v))
            for c, v in (
                ("OCPPCommCtrlr", "OfflineThreshold"),
                ("AuthCtrlr", "AuthorizeRemoteStart"),
            )
        ],
    )
    assert [str(r.attribute_status) for r in answer.get_variable_result] == ["Accepted"] * 2


def test_TC_B_09_CS_set_variables_single_value() -> None:
    rig = Rig(V)
    assert set_var(rig, "OCPPCommCtrlr", "OfflineThreshold", "300") == "Accepted"


def test_TC_B_10_CS_set_variables_multiple_values() -> None:
    rig = Rig(V)
    assert set_var(rig, "OCPPCommCtrlr", "OfflineThreshold", "300") == "Accepted"
    assert set_var(rig, "AuthCtrlr", "LocalAuthorizeOffline", "true") == "Accepted"


def test_TC_B_11_CS_set_variables_invalidly_formatted_values() -> None:
    rig = Rig(V)
    assert set_var(rig, "OCPPCommCtrlr", "OfflineThreshold", "-1.5x") == "Rejected"
    assert set_var(rig, "AuthCtrlr", "LocalAuthorizeOffline", "maybe") == "Rejected"


def test_TC_B_12_CS_configuration_inventory() -> None:
    result, data = report(Rig(V), "GetBaseReport", report_base="ConfigurationInventory")
    assert result == "Accepted" and data
    for item in data:
        assert {a["mutability"] for a in item["variableAttribute"]} & {"ReadWrite", "WriteOnly"}


def test_TC_B_14_CS_summary_inventory() -> None:
    result, data = report(Rig(V), "GetBaseReport", report_base="SummaryInventory")
    assert result == "Accepted"
    assert {(d["component"]["name"], d["variable"]["name"]) for d in data} >= {
        ("ChargingStation", "AvailabilityState"),
        ("EVSE", "AvailabilityState"),
    }


def test_TC_B_16_CS_custom_report_component_criteria() -> None:
    result, data = report(Rig(V), "GetReport", component_criteria=["Enabled"])
    assert result == "Accepted" and data
    assert all(d["variable"]["name"] == "Enabled" for d in data)


def test_TC_B_17_CS_custom_report_component_variable() -> None:
    rig = Rig(V)
    m = rig.m
    result, data = report(
        rig,
        "GetReport",
        component_variable=[
            m.ComponentVariable(
                component=m.Component(name="EVSE", evse=evse(rig, 1)),
                variable=m.Variable(name="AvailabilityState"),
            )
        ],
    )
    assert result == "Accepted"
    (item,) = data
    assert item["variableCharacteristics"]["dataType"] == "OptionList"
    assert item["variableAttribute"][0]["mutability"] == "ReadOnly"


def test_TC_B_20_CS_reset_without_transaction_on_idle() -> None:
    rig = Rig(V)
    assert status(rig.request("Reset", type="OnIdle")) == "Accepted"
    rig.pair.advance(1)
    rig.reboot()
    assert rig.sent("BootNotification")[-1]["reason"] == "RemoteReset"


def test_TC_B_21_CS_reset_with_transaction_on_idle() -> None:
    rig = Rig(V)
    rig.charge()
    assert status(rig.request("Reset", type="OnIdle")) == "Scheduled"
    assert rig.tx_events()[-1]["eventType"] == "Started"  # B12.FR.03: it runs on
    assert remote_stop(rig) == "Accepted"
    rig.pair.advance(1)
    assert rig.reboots == ["ScheduledReset"]


def test_TC_B_22_CS_reset_with_transaction_immediate() -> None:
    rig = Rig(V)
    rig.charge()
    assert status(rig.request("Reset", type="Immediate")) == "Accepted"
    ended = rig.tx_events()[-1]
    assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "ResetCommand")
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"


def test_TC_B_23_CS_unavailable_persists_reset() -> None:
    rig = Rig(V)
    rig.request("ChangeAvailability", operational_status="Inoperative", evse=evse(rig, 1))
    rig.request("Reset", type="OnIdle")
    rig.pair.advance(1)
    before = len(rig.statuses())
    rig.reboot()
    assert rig.statuses()[before:] == [(1, "Unavailable")]


def test_TC_B_24_CS_reserved_persists_reset() -> None:
    rig = Rig(V)
    rig.request(
        "ReserveNow", id=1, expiry_date_time=wall(rig.now + 600), id_token=rig.token(), evse_id=1
    )
    rig.request("Reset", type="OnIdle")
    rig.pair.advance(1)
    before = len(rig.statuses())
    rig.reboot()
    assert rig.statuses()[before:] == [(1, "Reserved")]


def test_TC_B_25_CS_reset_evse_without_transaction() -> None:
    rig = Rig(V)
    assert status(rig.request("Reset", type="OnIdle", evse_id=1)) == "Accepted"
    rig.pair.advance(1)
    assert ("reset", 1) in rig.hardware.calls and rig.reboots == []


def test_TC_B_26_CS_reset_evse_with_transaction_on_idle() -> None:
    rig = Rig(V)
    rig.charge()
    assert status(rig.request("Reset", type="OnIdle", evse_id=1)) == "Scheduled"
    rig.unplug()
    rig.pair.advance(1)
    assert ("reset", 1) in rig.hardware.calls


def test_TC_B_27_CS_reset_evse_with_transaction_immediate() -> None:
    rig = Rig(V)
    rig.charge()
    assert status(rig.request("Reset", type="Immediate", evse_id=1)) == "Accepted"
    rig.pair.advance(1)
    assert rig.tx_events()[-1]["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert ("reset", 1) in rig.hardware.calls


def test_TC_B_30_CS_rejected_station_answers_security_error() -> None:
    rig = Rig(V, boot_status="Rejected")
    m = rig.m
    answer = rig.inject(
        "GetVariables",
        get_variable_data=[
            m.GetVariableData(
                component=m.Component(name="OCPPCommCtrlr"),
                variable=m.Variable(name="HeartbeatInterval"),
            )
        ],
    )
    assert answer[0] == 4 and answer[2] == "SecurityError"  # B03.FR.08


def test_TC_B_32_CS_get_variables_unknown_component() -> None:
    assert str(get_var(Rig(V), "NoSuchCtrlr", "X").attribute_status) == "UnknownComponent"


def test_TC_B_33_CS_get_variables_unknown_variable() -> None:
    assert str(get_var(Rig(V), "OCPPCommCtrlr", "NoSuch").attribute_status) == "UnknownVariable"


def test_TC_B_34_CS_get_variables_not_supported_attribute_type() -> None:
    result = get_var(Rig(V), "OCPPCommCtrlr", "OfflineThreshold", attribute_type="Target")
    assert str(result.attribute_status) == "NotSupportedAttributeType"


def test_TC_B_35_B_36_CS_set_variables_unknown_component_and_variable() -> None:
    rig = Rig(V)
    assert set_var(rig, "NoSuchCtrlr", "X", "1") == "UnknownComponent"
    assert set_var(rig, "OCPPCommCtrlr", "NoSuch", "1") == "UnknownVariable"


def test_TC_B_37_CS_set_variables_not_supported_attribute_type() -> None:
    rig = Rig(V)
    m = rig.m
    answer = rig.request(
        "SetVariables",
        set_variable_data=[
            build(
                m.SetVariableData,
                attribute_value="10",
                attribute_type="MaxSet",
                component=m.Component(name="OCPPCommCtrlr"),
                variable=m.Variable(name="OfflineThreshold"),
            )
        ],
    )
    assert str(answer.set_variable_result[0].attribute_status) == "NotSupportedAttributeType"


def test_TC_B_39_CS_set_variables_read_only() -> None:
    assert set_var(Rig(V), "ChargingStation", "SupplyPhases", "1") == "Rejected"


def test_TC_B_41_CS_reset_with_multiple_transactions_on_idle() -> None:
    rig = Rig(V, evses=2)
    rig.charge(1)
    rig.charge(2)
    assert status(rig.request("Reset", type="OnIdle")) == "Scheduled"
    rig.unplug(1)
    rig.pair.advance(1)
    assert rig.reboots == []
    rig.unplug(2)
    rig.pair.advance(1)
    assert rig.reboots == ["ScheduledReset"]


def _profile(rig: Rig, url: str = "ws://127.0.0.1:9/csms", security: int = 1) -> Any:
    m = rig.m
    return m.NetworkConnectionProfile(
        ocpp_version=m.OCPPVersionEnum("OCPP20"),
        ocpp_transport=m.OCPPTransportEnum("JSON"),
        ocpp_csms_url=url,
        message_timeout=30,
        security_profile=security,
        ocpp_interface=m.OCPPInterfaceEnum("Wired0"),
    )


def test_TC_B_43_CS_set_network_profile_rejected() -> None:
    rig = Rig(V)
    rig.station.set_variables([("SecurityCtrlr", "SecurityProfile", "2")], rig.now)
    rig.station.model.write(  # the station runs profile 2 (set at installation)
        *_security_profile_key(), "Actual", "2"
    )
    answer = rig.request("SetNetworkProfile", configuration_slot=2, connection_data=_profile(rig))
    assert status(answer) == "Rejected"  # B09.FR.04: lower security profile


def _security_profile_key() -> tuple[Any, Any]:
    from ocpp_sansio.flows.device_model import ComponentKey, VariableKey

    return ComponentKey("SecurityCtrlr"), VariableKey("SecurityProfile")


def test_TC_B_45_CS_migrate_to_new_connection_profile() -> None:
    rig = Rig(V)
    assert (
        status(
            rig.request("SetNetworkProfile", configuration_slot=2, connection_data=_profile(rig))
        )
        == "Accepted"
    )
    assert set_var(rig, "OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1") == "Accepted"
    rig.request("Reset", type="OnIdle")
    rig.pair.advance(1)
    station = rig.reboot(connect=False)
    # B10.FR.04: after the reboot it connects to the first entry first
    plan = station.network.plan(rig.now)
    assert plan.slot == 2 and plan.profile.ocpp_csms_url == "ws://127.0.0.1:9/csms"


def test_TC_B_46_CS_fallback_to_the_old_profile() -> None:
    rig = Rig(V)
    rig.request("SetNetworkProfile", configuration_slot=2, connection_data=_profile(rig))
    set_var(rig, "OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1")
    set_var(rig, "OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "3")
    slots = [rig.station.on_connect_failed(rig.now).slot for _ in range(3)]
    assert slots == [2, 2, 1]  # B10.FR.03: three attempts on slot 2, then slot 1


def test_TC_B_51_CS_status_change_offline_longer_than_threshold() -> None:
    rig = Rig(V, evses=2)
    set_var(rig, "OCPPCommCtrlr", "OfflineThreshold", "10")
    rig.pair.disconnect()
    rig.station.on_session_started(1, 1, rig.now)
    rig.pair.advance(20)
    before = len(rig.statuses())
    rig.pair.connect()
    rig.pair.advance(1)
    assert sorted(rig.statuses()[before:]) == [(1, "Occupied"), (2, "Available")]  # B04.FR.01


def test_TC_B_52_CS_status_change_offline_shorter_than_threshold() -> None:
    rig = Rig(V, evses=2)
    set_var(rig, "OCPPCommCtrlr", "OfflineThreshold", "300")
    rig.pair.disconnect()
    rig.station.on_session_started(1, 1, rig.now)
    rig.pair.advance(20)
    before = len(rig.statuses())
    rig.pair.connect()
    rig.pair.advance(1)
    assert rig.statuses()[before:] == [(1, "Occupied")]  # B04.FR.02


def test_TC_B_54_CS_custom_report_without_instance() -> None:
    rig = Rig(V)
    m = rig.m
    result, data = report(
        rig,
        "GetReport",
        component_variable=[
            m.ComponentVariable(
                component=m.Component(name="OCPPCommCtrlr"),
                variable=m.Variable(name="MessageAttempts"),
            )
        ],
    )
    assert result == "Accepted"
    assert [d["variable"].get("instance") for d in data] == ["TransactionEvent"]


def test_TC_B_55_CS_custom_report_with_instance() -> None:
    rig = Rig(V)
    m = rig.m
    result, data = report(
        rig,
        "GetReport",
        component_variable=[
            m.ComponentVariable(
                component=m.Component(name="DeviceDataCtrlr"),
                variable=m.Variable(name="ItemsPerMessage", instance="GetVariables"),
            )
        ],
    )
    assert result == "Accepted" and len(data) == 1


def test_TC_B_56_CS_custom_report_without_evse_id() -> None:
    rig = Rig(V, evses=2)
    m = rig.m
    result, data = report(
        rig,
        "GetReport",
        component_variable=[
            m.ComponentVariable(
                component=m.Component(name="EVSE"), variable=m.Variable(name="AvailabilityState")
            )
        ],
    )
    assert result == "Accepted"
    assert sorted(d["component"]["evse"]["id"] for d in data) == [1, 2]


def test_TC_B_57_CS_network_reconnection_after_connection_loss() -> None:
    rig = Rig(V)
    from ocpp_sansio.charging_station import ConnectRequested

    rig.pair.disconnect()
    asked = [e for e in rig.pair.station_events if isinstance(e, ConnectRequested)]
    assert asked and asked[-1].at == rig.now  # reconnect at once
    rig.pair.connect()
    rig.pair.advance(1)
    assert len(rig.sent("BootNotification")) == 1  # B04: no new boot


# --- C Authorization (the CSMS-side stimuli) ----------------------------------------------------


def test_TC_C_37_CS_clear_cache_accepted() -> None:
    rig = Rig(V)
    assert status(rig.request("ClearCache")) == "Accepted"


def test_TC_C_38_CS_clear_cache_rejected_when_disabled() -> None:
    rig = Rig(V)
    set_var(rig, "AuthCacheCtrlr", "Enabled", "false")
    assert status(rig.request("ClearCache")) == "Rejected"


def test_TC_C_32_CS_authorization_cache_persists_over_reboot() -> None:
    rig = Rig(V)
    rig.authorize()  # the Authorize answer goes into the cache
    rig.request("Reset", type="Immediate")
    rig.pair.advance(1)
    station = rig.reboot()
    rig.pair.disconnect()
    assert station.validate_token(rig.token(), rig.now) is True  # from the cache, offline


# --- D Local authorization list


def _auth_data(rig: Rig, token: str, status_: str = "Accepted") -> Any:
    m = rig.m
    return m.AuthorizationData(
        id_token=rig.token(token),
        id_token_info=m.IdTokenInfo(status=m.AuthorizationStatusEnum(status_)),
    )


def test_TC_D_01_CS_send_local_list_full() -> None:
    rig = Rig(V)
    answer = rig.request(
        "SendLocalList",
        version_number=1,
        update_type="Full",
        local_authorization_list=[_auth_data(rig, "A"), _auth_data(rig, "B")],
    )
    assert status(answer) == "Accepted"
    assert rig.request("GetLocalListVersion").version_number == 1


def test_TC_D_02_D_03_CS_differential_update_and_remove() -> None:
    rig = Rig(V)
    rig.request(
        "SendLocalList",
        version_number=1,
        update_type="Full",
        local_authorization_list=[_auth_data(rig, "A")],
    )
    m = rig.m
    add = rig.request(
        "SendLocalList",
        version_number=2,
        update_type="Differential",
        local_authorization_list=[_auth_data(rig, "B")],
    )
    remove = rig.request(
        "SendLocalList",
        version_number=3,
        update_type="Differential",
        local_authorization_list=[m.AuthorizationData(id_token=rig.token("A"))],
    )
    assert status(add) == status(remove) == "Accepted"
    assert rig.request("GetLocalListVersion").version_number == 3


def test_TC_D_04_D_05_CS_full_and_differential_with_empty_list() -> None:
    rig = Rig(V)
    assert status(rig.request("SendLocalList", version_number=4, update_type="Full")) == "Accepted"
    assert (
        status(rig.request("SendLocalList", version_number=5, update_type="Differential"))
        == "Accepted"
    )
    assert rig.request("GetLocalListVersion").version_number == 5


def test_TC_D_06_CS_version_mismatch() -> None:
    rig = Rig(V)
    rig.request("SendLocalList", version_number=5, update_type="Full")
    answer = rig.request(
        "SendLocalList",
        version_number=3,
        update_type="Differential",
        local_authorization_list=[_auth_data(rig, "A")],
    )
    assert status(answer) == "VersionMismatch"


def test_TC_D_07_CS_local_list_persists_over_reboot() -> None:
    rig = Rig(V)
    rig.request(
        "SendLocalList",
        version_number=9,
        update_type="Full",
        local_authorization_list=[_auth_data(rig, "A")],
    )
    rig.request("Reset", type="Immediate")
    rig.pair.advance(1)
    station = rig.reboot()
    assert rig.request("GetLocalListVersion").version_number == 9
    rig.pair.disconnect()
    assert station.validate_token(rig.token("A"), rig.now) is True


def test_TC_D_08_D_10_CS_get_local_list_version() -> None:
    rig = Rig(V)
    assert rig.request("GetLocalListVersion").version_number == 0
    set_var(rig, "LocalAuthListCtrlr", "Enabled", "false")
    assert rig.request("GetLocalListVersion").version_number == 0


# --- E Transactions (the CSMS-side stimuli) ----------------------------------------------------


def test_TC_E_13_CS_start_point_authorized_remote() -> None:
    rig = Rig(V)
    set_var(rig, "TxCtrlr", "TxStartPoint", "Authorized")
    set_var(rig, "AuthCtrlr", "AuthorizeRemoteStart", "false")
    assert remote_start(rig) == "Accepted"
    started = rig.tx_events()[0]
    assert (started["eventType"], started["triggerReason"]) == ("Started", "RemoteStart")
    assert started["transactionInfo"]["remoteStartId"] == 7


def test_TC_E_21_CS_stop_authorized_remote() -> None:
    rig = Rig(V)
    rig.charge()
    assert remote_stop(rig) == "Accepted"
    ended = rig.tx_events()[-1]
    assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "RemoteStop")
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"


def test_TC_E_28_CS_transaction_status_unknown_id() -> None:
    answer = Rig(V).request("GetTransactionStatus", transaction_id="nope")
    assert answer.ongoing_indicator is False and answer.messages_in_queue is False


def test_TC_E_29_E_30_CS_transaction_status_ongoing() -> None:
    rig = Rig(V)
    rig.charge()
    tx = rig.station.get_evse_transaction_id(1)
    answer = rig.request("GetTransactionStatus", transaction_id=tx)
    assert answer.ongoing_indicator is True and answer.messages_in_queue is False


def test_TC_E_31_E_32_CS_transaction_status_ended() -> None:
    rig = Rig(V)
    rig.charge()
    tx = rig.station.get_evse_transaction_id(1)
    rig.unplug()
    answer = rig.request("GetTransactionStatus", transaction_id=tx)
    assert answer.ongoing_indicator is False and answer.messages_in_queue is False


def test_TC_E_33_E_34_CS_transaction_status_without_id() -> None:
    rig = Rig(V)
    answer = rig.request("GetTransactionStatus")
    assert answer.ongoing_indicator is None and answer.messages_in_queue is False
    set_var(rig, "OCPPCommCtrlr", "MessageAttemptInterval", "600", "TransactionEvent")
    rig.answers["TransactionEvent"] = lambda request: "InternalError"
    rig.charge()
    assert rig.request("GetTransactionStatus").messages_in_queue is True


def test_TC_E_35_CS_stop_power_path_closed_remote() -> None:
    rig = Rig(V)
    set_var(rig, "TxCtrlr", "TxStopPoint", "PowerPathClosed")
    rig.charge()
    assert remote_stop(rig) == "Accepted"
    assert rig.tx_events()[-1]["eventType"] == "Ended"
    assert rig.hardware.called("stop_energy") == [1]


def test_TC_E_40_CS_connection_loss_during_transaction() -> None:
    rig = Rig(V)
    set_var(rig, "SampledDataCtrlr", "TxUpdatedInterval", "10")
    rig.charge()
    rig.pair.disconnect()
    rig.pair.advance(25)
    rig.pair.connect()
    rig.pair.advance(1)
    offline = [e for e in rig.tx_events() if e.get("offline")]
    assert len(offline) == 2
    seq = [e["seqNo"] for e in rig.tx_events()]
    assert seq == sorted(seq) == list(range(len(seq)))


def test_TC_E_41_CS_retry_until_the_max_retry_count() -> None:
    rig = Rig(V)
    set_var(rig, "OCPPCommCtrlr", "MessageAttempts", "3", "TransactionEvent")
    set_var(rig, "OCPPCommCtrlr", "MessageAttemptInterval", "5", "TransactionEvent")
    rig.answers["TransactionEvent"] = lambda request: None  # never answered: timeouts
    rig.charge()
    rig.pair.advance(200)
    assert len([e for e in rig.attempts("TransactionEvent") if e["eventType"] == "Started"]) == 3


def test_TC_E_42_E_51_CS_retry_succeeds_before_the_max() -> None:
    rig = Rig(V)
    set_var(rig, "OCPPCommCtrlr", "MessageAttempts", "3", "TransactionEvent")
    set_var(rig, "OCPPCommCtrlr", "MessageAttemptInterval", "5", "TransactionEvent")
    refusals = iter(["InternalError"])
    m = rig.m
    rig.answers["TransactionEvent"] = lambda request: next(refusals, m.TransactionEventResponse())
    rig.charge()
    rig.pair.advance(30)
    assert len([e for e in rig.attempts("TransactionEvent") if e["eventType"] == "Started"]) == 2


def test_TC_E_50_CS_call_errors_until_the_max_retry_count() -> None:
    rig = Rig(V)
    set_var(rig, "OCPPCommCtrlr", "MessageAttempts", "2", "TransactionEvent")
    set_var(rig, "OCPPCommCtrlr", "MessageAttemptInterval", "5", "TransactionEvent")
    rig.answers["TransactionEvent"] = lambda request: "InternalError"
    rig.charge()
    rig.pair.advance(60)
    assert len([e for e in rig.attempts("TransactionEvent") if e["eventType"] == "Started"]) == 2


# --- F Remote control


def test_TC_F_01_CS_remote_start_cable_first() -> None:
    rig = Rig(V)
    rig.plug()
    assert remote_start(rig) == "Accepted"
    assert events(rig) == [("Started", "RemoteStart")]
    assert rig.tx_events()[0]["transactionInfo"]["chargingState"] == "Charging"


def test_TC_F_02_CS_remote_start_first_authorize_remote_start_true() -> None:
    rig = Rig(V)
    assert remote_start(rig) == "Accepted"
    assert rig.sent("Authorize")  # F01.FR.02
    rig.plug()
    assert events(rig) == [("Started", "RemoteStart")]


def test_TC_F_03_CS_remote_start_first_authorize_remote_start_false() -> None:
    rig = Rig(V)
    set_var(rig, "AuthCtrlr", "AuthorizeRemoteStart", "false")
    assert remote_start(rig) == "Accepted"
    rig.plug()
    assert rig.sent("Authorize") == []
    assert events(rig) == [("Started", "RemoteStart")]


def test_TC_F_04_CS_remote_start_cable_plugin_timeout() -> None:
    rig = Rig(V)
    set_var(rig, "TxCtrlr", "TxStartPoint", "Authorized")
    set_var(rig, "TxCtrlr", "EVConnectionTimeOut", "20")
    assert remote_start(rig) == "Accepted"
    rig.pair.advance(25)
    ended = rig.tx_events()[-1]
    assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "EVConnectTimeout")


def test_TC_F_05_CS_unlock_with_ongoing_transaction() -> None:
    rig = Rig(V)
    rig.charge()
    answer = rig.request("UnlockConnector", evse_id=1, connector_id=1)
    assert status(answer) == "OngoingAuthorizedTransaction"


def test_TC_F_06_F_07_CS_unlock_without_transaction() -> None:
    rig = Rig(V)
    assert status(rig.request("UnlockConnector", evse_id=1, connector_id=1)) == "Unlocked"
    rig.hardware.unlocks = False
    assert status(rig.request("UnlockConnector", evse_id=1, connector_id=1)) == "UnlockFailed"


def test_TC_F_08_F_09_CS_remote_stop() -> None:
    rig = Rig(V)
    assert remote_stop(rig) == "Rejected"
    rig.charge()
    assert remote_stop(rig) == "Accepted"


def test_TC_F_10_CS_unlock_unknown_connector() -> None:
    rig = Rig(V)
    assert status(rig.request("UnlockConnector", evse_id=3, connector_id=1)) == "UnknownConnector"


def _trigger(rig: Rig, what: str, evse_: Any = None) -> str:
    return status(rig.request("TriggerMessage", requested_message=what, evse=evse_))


def test_TC_F_11_F_12_CS_trigger_meter_values() -> None:
    rig = Rig(V, evses=2)
    assert _trigger(rig, "MeterValues", evse(rig, 1)) == "Accepted"
    assert [p["evseId"] for p in rig.sent("MeterValues")] == [1]
    assert _trigger(rig, "MeterValues") == "Accepted"
    assert [p["evseId"] for p in rig.sent("MeterValues")] == [1, 1, 2]


def test_TC_F_13_F_14_CS_trigger_transaction_event() -> None:
    rig = Rig(V, evses=2)
    rig.charge(1)
    assert _trigger(rig, "TransactionEvent", evse(rig, 1)) == "Accepted"
    assert events(rig)[-1] == ("Updated", "Trigger")
    assert _trigger(rig, "TransactionEvent") == "Accepted"
    assert events(rig)[-1] == ("Updated", "Trigger")


def test_TC_F_15_F_16_CS_trigger_log_status() -> None:
    rig = Rig(V)
    assert _trigger(rig, "LogStatusNotification") == "Accepted"
    assert rig.sent("LogStatusNotification")[-1] == {"status": "Idle"}
    rig.request(
        "GetLog",
        log_type="DiagnosticsLog",
        request_id=4,
        log=rig.m.LogParameters(remote_location="ftp://127.0.0.1/x"),
    )
    rig.station.on_log_status_notification("Uploading", 4, rig.now)
    rig.pair.advance(0.1)
    assert _trigger(rig, "LogStatusNotification") == "Accepted"
    assert rig.sent("LogStatusNotification")[-1] == {"status": "Uploading", "requestId": 4}


def test_TC_F_17_F_18_CS_trigger_firmware_status_idle() -> None:
    rig = Rig(V)
    assert _trigger(rig, "FirmwareStatusNotification", evse(rig, 1)) == "Accepted"
    assert rig.sent("FirmwareStatusNotification")[-1] == {"status": "Idle"}


def test_TC_F_19_CS_trigger_firmware_status_downloading() -> None:
    rig = Rig(V)
    firmware = build(
        rig.m.Firmware, location="http://127.0.0.1/fw", retrieve_date_time=wall(rig.now)
    )
    rig.request("UpdateFirmware", request_id=3, firmware=firmware)
    rig.station.on_firmware_update_status_notification(3, "Downloading", rig.now)
    rig.pair.advance(0.1)
    assert _trigger(rig, "FirmwareStatusNotification") == "Accepted"
    assert rig.sent("FirmwareStatusNotification")[-1] == {"status": "Downloading", "requestId": 3}


def test_TC_F_20_CS_trigger_heartbeat() -> None:
    rig = Rig(V)
    assert _trigger(rig, "Heartbeat") == "Accepted"
    assert len(rig.sent("Heartbeat")) == 1


def test_TC_F_23_F_24_CS_trigger_status_notification() -> None:
    rig = Rig(V)
    assert _trigger(rig, "StatusNotification", evse(rig, 1, 1)) == "Accepted"
    assert rig.statuses()[-1] == (1, "Available")
    rig.plug()
    assert _trigger(rig, "StatusNotification", evse(rig, 1, 1)) == "Accepted"
    assert rig.statuses()[-1] == (1, "Occupied")


def test_TC_F_26_CS_trigger_boot_notification_rejected() -> None:
    assert _trigger(Rig(V), "BootNotification") == "Rejected"  # F06.FR.17


def test_TC_F_27_CS_trigger_not_implemented() -> None:
    assert _trigger(Rig(V), "SignChargingStationCertificate") == "NotImplemented"


# --- G Availability


def _availability(rig: Rig, kind: str, target: Any = None) -> str:
    return status(rig.request("ChangeAvailability", operational_status=kind, evse=target))


def test_TC_G_03_G_04_CS_evse_inoperative_and_back() -> None:
    rig = Rig(V)
    assert _availability(rig, "Inoperative", evse(rig, 1)) == "Accepted"
    assert rig.last_status(1) == "Unavailable"
    assert _availability(rig, "Operative", evse(rig, 1)) == "Accepted"
    assert rig.last_status(1) == "Available"


def test_TC_G_05_G_06_CS_station_inoperative_and_back() -> None:
    rig = Rig(V, evses=2)
    assert _availability(rig, "Inoperative") == "Accepted"
    assert rig.last_status(1) == rig.last_status(2) == "Unavailable"
    assert _availability(rig, "Operative") == "Accepted"
    assert rig.last_status(1) == rig.last_status(2) == "Available"


def test_TC_G_07_G_08_CS_connector_inoperative_and_back() -> None:
    rig = Rig(V)
    assert _availability(rig, "Inoperative", evse(rig, 1, 1)) == "Accepted"
    assert rig.last_status(1) == "Unavailable"
    assert _availability(rig, "Operative", evse(rig, 1, 1)) == "Accepted"
    assert rig.last_status(1) == "Available"


def test_TC_G_09_G_10_G_12_G_13_G_15_G_16_CS_state_already_in_force() -> None:
    rig = Rig(V)
    for target in (evse(rig, 1), None, evse(rig, 1, 1)):
        assert _availability(rig, "Operative", target) == "Accepted"
    before = len(rig.statuses())
    assert _availability(rig, "Inoperative", evse(rig, 1)) == "Accepted"
    assert _availability(rig, "Inoperative", evse(rig, 1)) == "Accepted"
    assert len(rig.statuses()) == before + 1


def test_TC_G_11_G_17_CS_evse_or_connector_with_transaction() -> None:
    rig = Rig(V)
    rig.charge()
    assert _availability(rig, "Inoperative", evse(rig, 1)) == "Scheduled"
    assert rig.last_status(1) == "Occupied"
    rig.unplug()
    assert rig.last_status(1) == "Unavailable"


def test_TC_G_14_CS_station_with_transaction() -> None:
    rig = Rig(V, evses=2)
    rig.charge(1)
    assert _availability(rig, "Inoperative") == "Scheduled"
    assert rig.last_status(2) == "Unavailable"
    rig.unplug(1)
    assert rig.last_status(1) == "Unavailable"


def test_TC_G_18_G_19_G_21_CS_availability_persists_across_reboot() -> None:
    rig = Rig(V, evses=2)
    _availability(rig, "Inoperative", evse(rig, 1))
    _availability(rig, "Inoperative", evse(rig, 2, 1))
    rig.request("Reset", type="OnIdle")
    rig.pair.advance(1)
    before = len(rig.statuses())
    rig.reboot()
    assert sorted(rig.statuses()[before:]) == [(1, "Unavailable"), (2, "Unavailable")]


# --- H Reservation


def _reserve(
    rig: Rig, reservation_id: int, evse_id: int | None = 1, token: str = "TOKEN1", **fields: Any
) -> str:
    return status(
        rig.request(
            "ReserveNow",
            id=reservation_id,
            expiry_date_time=wall(rig.now + 600),
            id_token=rig.token(token),
            evse_id=evse_id,
            **fields,
        )
    )


def test_TC_H_01_CS_reserve_specific_evse_valid_token() -> None:
    rig = Rig(V)
    assert _reserve(rig, 1) == "Accepted"
    assert rig.last_status(1) == "Reserved"
    rig.charge()
    started = rig.tx_events()[0]
    assert started["reservationId"] == 1


def test_TC_H_02_CS_reserved_evse_refuses_another_token() -> None:
    rig = Rig(V)
    _reserve(rig, 1, token="OWNER")
    assert remote_start(rig, token="OTHER") == "Rejected"  # F01.FR.21


def test_TC_H_03_H_04_H_06_CS_reserve_refused_when_reserved_occupied_or_unavailable() -> None:
    rig = Rig(V, evses=3)
    _reserve(rig, 1, evse_id=1)
    assert _reserve(rig, 2, evse_id=1) == "Occupied"
    rig.plug(2)
    assert _reserve(rig, 3, evse_id=2) == "Occupied"
    _availability(rig, "Inoperative", evse(rig, 3))
    assert _reserve(rig, 4, evse_id=3) == "Unavailable"


def test_TC_H_07_CS_reservation_ends_unused() -> None:
    rig = Rig(V)
    _reserve(rig, 1)
    rig.pair.advance(601)
    assert rig.last_status(1) == "Available"
    update = rig.sent("ReservationStatusUpdate")[-1]
    assert update == {"reservationId": 1, "reservationUpdateStatus": "Expired"}


def test_TC_H_08_CS_reserve_unspecified_evse() -> None:
    rig = Rig(V)
    set_var(rig, "ReservationCtrlr", "NonEvseSpecific", "true")
    assert _reserve(rig, 1, evse_id=None) == "Accepted"


def test_TC_H_13_CS_reserve_unspecified_evse_rejected_when_not_supported() -> None:
    rig = Rig(V)
    set_var(rig, "ReservationCtrlr", "NonEvseSpecific", "false")
    assert _reserve(rig, 1, evse_id=None) == "Rejected"


def test_TC_H_17_H_18_CS_cancel_reservation() -> None:
    rig = Rig(V)
    _reserve(rig, 5)
    assert status(rig.request("CancelReservation", reservation_id=5)) == "Accepted"
    assert rig.last_status(1) == "Available"
    assert status(rig.request("CancelReservation", reservation_id=5)) == "Rejected"


def _group_member(rig: Rig, group: str) -> None:
    """The CSMS says every token it authorizes belongs to ``group``."""
    m = rig.m
    rig.answers["Authorize"] = lambda request: m.AuthorizeResponse(
        id_token_info=m.IdTokenInfo(
            status=m.AuthorizationStatusEnum.ACCEPTED,
            group_id_token=build(m.IdToken, id_token=group, type="Central"),
        )
    )


def test_TC_H_19_CS_a_reserved_evse_used_through_the_group_id_token() -> None:
    rig = Rig(V)
    group = build(rig.m.IdToken, id_token="GROUP1", type="Central")
    assert _reserve(rig, 4, evse_id=1, token="OWNER", group_id_token=group) == "Accepted"
    assert rig.last_status(1) == "Reserved"
    _group_member(rig, "GROUP1")
    rig.plug()
    rig.authorize(value="MEMBER")  # H01.FR.15, H03.FR.04
    started = rig.tx_events()[0]
    assert started["reservationId"] == 4
    assert started["idToken"]["idToken"] == "MEMBER"
    assert rig.station.reservations.reservations == {}


def test_TC_H_24_CS_an_unspecified_reservation_used_through_the_group_id_token() -> None:
    rig = Rig(V, evses=2)
    set_var(rig, "ReservationCtrlr", "NonEvseSpecific", "true")
    group = build(rig.m.IdToken, id_token="GROUP2", type="Central")
    assert _reserve(rig, 8, evse_id=None, token="OWNER", group_id_token=group) == "Accepted"
    _group_member(rig, "GROUP2")
    rig.plug(2)
    rig.authorize(2, value="MEMBER")  # H03.FR.06
    assert rig.tx_events()[0]["reservationId"] == 8


def test_F01_FR_21_a_remote_start_for_the_reservations_group_is_accepted() -> None:
    rig = Rig(V, evses=2)
    group = build(rig.m.IdToken, id_token="GROUP1", type="Central")
    _reserve(rig, 4, evse_id=1, token="OWNER", group_id_token=group)

    def start(group_name: str) -> str:
        return status(
            rig.request(
                "RequestStartTransaction",
                id_token=rig.token("MEMBER"),
                remote_start_id=7,
                evse_id=1,
                group_id_token=build(rig.m.IdToken, id_token=group_name, type="Central"),
            )
        )

    assert start("GROUP9") == "Rejected"
    assert start("GROUP1") == "Accepted"


def test_TC_H_21_CS_station_cancels_reservation_when_unavailable() -> None:
    rig = Rig(V)
    _reserve(rig, 6)
    _availability(rig, "Inoperative", evse(rig, 1))
    assert rig.sent("ReservationStatusUpdate")[-1]["reservationUpdateStatus"] == "Removed"


def test_TC_H_22_CS_reservations_configured_to_reject() -> None:
    rig = Rig(V)
    set_var(rig, "ReservationCtrlr", "Enabled", "false")
    assert _reserve(rig, 1) == "Rejected"


def test_TC_H_23_CS_replace_reservation() -> None:
    rig = Rig(V, evses=2)
    _reserve(rig, 1, evse_id=1)
    assert _reserve(rig, 1, evse_id=2) == "Accepted"  # H01.FR.02
    assert rig.last_status(1) == "Available" and rig.last_status(2) == "Reserved"


# --- J Meter values


def test_TC_J_01_CS_clock_aligned_no_transaction() -> None:
    rig = Rig(V)
    set_var(rig, "AlignedDataCtrlr", "Interval", "60")
    rig.pair.advance(130)
    samples = rig.sent("MeterValues")
    assert len(samples) == 2
    assert samples[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"


def test_TC_J_02_CS_clock_aligned_transaction_ongoing() -> None:
    rig = Rig(V)
    set_var(rig, "AlignedDataCtrlr", "Interval", "60")
    set_var(rig, "SampledDataCtrlr", "TxUpdatedInterval", "0")
    rig.charge()
    rig.pair.advance(70)
    clock = [e for e in rig.tx_events() if e["triggerReason"] == "MeterValueClock"]
    assert clock and clock[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"


def test_TC_J_03_CS_clock_aligned_values_in_the_ended_event() -> None:
    rig = Rig(V)
    set_var(rig, "AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register")
    set_var(rig, "AlignedDataCtrlr", "TxEndedInterval", "60")
    set_var(rig, "SampledDataCtrlr", "TxEndedMeasurands", "")
    rig.charge()
    rig.pair.advance(150)
    rig.unplug()
    ended = rig.tx_events()[-1]
    assert ended["eventType"] == "Ended"
    values = ended["meterValue"]
    assert [mv["sampledValue"][0]["context"] for mv in values] == ["Sample.Clock"] * 2
    assert [mv["timestamp"][14:19] for mv in values] == ["01:00", "02:00"]  # on the boundaries


def test_E06_FR_11_sampled_values_every_TxEndedInterval_from_the_start() -> None:
    rig = Rig(V)
    set_var(rig, "SampledDataCtrlr", "TxEndedInterval", "30")
    set_var(rig, "SampledDataCtrlr", "TxUpdatedInterval", "0")
    rig.charge()
    rig.pair.advance(95)
    rig.unplug()
    values = rig.tx_events()[-1]["meterValue"]
    contexts = [mv["sampledValue"][0]["context"] for mv in values]
    assert contexts == ["Transaction.Begin"] + ["Sample.Periodic"] * 3 + ["Transaction.End"]
    energy = [mv["sampledValue"][0]["value"] for mv in values]
    assert energy == sorted(energy) and energy[0] < energy[-1]  # J02.FR.16


def test_E06_FR_11_nothing_configured_nothing_carried() -> None:
    rig = Rig(V)
    set_var(rig, "SampledDataCtrlr", "TxEndedMeasurands", "")
    rig.charge()
    rig.pair.advance(10)
    rig.unplug()
    assert "meterValue" not in rig.tx_events()[-1]


def test_TC_J_07_J_09_J_10_CS_sampled_meter_values() -> None:
    rig = Rig(V)
    set_var(rig, "SampledDataCtrlr", "TxUpdatedInterval", "10")
    rig.charge()
    started = rig.tx_events()[0]
    assert started["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.Begin"
    rig.pair.advance(21)
    periodic = [e for e in rig.tx_events() if e["triggerReason"] == "MeterValuePeriodic"]
    assert len(periodic) == 2
    assert periodic[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"
    rig.unplug()
    ended = rig.tx_events()[-1]
    contexts = [mv["sampledValue"][0]["context"] for mv in ended["meterValue"]]
    assert contexts == ["Transaction.Begin", "Transaction.End"]  # E06.FR.11, TxEndedInterval 0


# --- L Firmware

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


def _firmware(rig: Rig, request_id: int, **fields: Any) -> str:
    firmware = build(
        rig.m.Firmware,
        location="https://127.0.0.1/fw.bin",
        retrieve_date_time=wall(rig.now),
        signing_certificate=CERT,
        signature="c2ln",
        **fields,
    )
    return status(
        rig.request("UpdateFirmware", request_id=request_id, firmware=firmware, retries=0)
    )


def _fw(rig: Rig, request_id: int, *statuses: str) -> None:
    for item in statuses:
        rig.station.on_firmware_update_status_notification(request_id, item, rig.now)
    rig.pair.advance(0.1)


def _fw_statuses(rig: Rig) -> list[str]:
    return [p["status"] for p in rig.sent("FirmwareStatusNotification")]


def test_TC_L_01_CS_secure_firmware_update_installed() -> None:
    rig = Rig(V)
    assert _firmware(rig, 1) == "Accepted"
    _fw(rig, 1, "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting")
    rig.pair.advance(1)
    station = rig.reboot()
    assert rig.sent("BootNotification")[-1]["reason"] == "FirmwareUpdate"
    station.on_firmware_update_status_notification(1, "Installed", rig.now)
    rig.pair.advance(0.1)
    assert _fw_statuses(rig) == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "InstallRebooting",
        "Installed",
    ]
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "FirmwareUpdated"


def test_TC_L_02_CS_install_scheduled() -> None:
    rig = Rig(V)
    assert _firmware(rig, 2, install_date_time=wall(rig.now + 100)) == "Accepted"
    _fw(rig, 2, "Downloading", "Downloaded", "SignatureVerified")
    assert _fw_statuses(rig)[-1] == "InstallScheduled"
    assert rig.hardware.called("install_firmware") == []
    rig.pair.advance(101)
    assert rig.hardware.called("install_firmware") == [2]


def test_TC_L_03_CS_download_scheduled() -> None:
    rig = Rig(V)
    firmware = build(
        rig.m.Firmware,
        location="https://127.0.0.1/fw.bin",
        retrieve_date_time=wall(rig.now + 100),
        signing_certificate=CERT,
        signature="c2ln",
    )
    rig.request("UpdateFirmware", request_id=3, firmware=firmware)
    assert _fw_statuses(rig) == ["DownloadScheduled"]
    rig.pair.advance(101)
    assert len(rig.hardware.called("download_firmware")) == 1


def test_TC_L_05_CS_invalid_certificate() -> None:
    rig = Rig(V)
    rig.hardware.certificate_verdict = "InvalidCertificate"
    assert _firmware(rig, 5) == "InvalidCertificate"
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "InvalidFirmwareSigningCertificate"


def test_TC_L_06_CS_invalid_signature() -> None:
    rig = Rig(V)
    _firmware(rig, 6)
    _fw(rig, 6, "Downloading", "Downloaded", "InvalidSignature")
    assert _fw_statuses(rig)[-1] == "InvalidSignature"
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "InvalidFirmwareSignature"


def test_TC_L_07_CS_download_failed() -> None:
    rig = Rig(V)
    _firmware(rig, 7)
    _fw(rig, 7, "Downloading", "DownloadFailed")
    assert _fw_statuses(rig) == ["Downloading", "DownloadFailed"]


def test_TC_L_08_CS_installation_failed() -> None:
    rig = Rig(V)
    _firmware(rig, 8)
    _fw(
        rig, 8, "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallationFailed"
    )
    assert _fw_statuses(rig)[-1] == "InstallationFailed"


def test_TC_L_10_CS_accepted_canceled() -> None:
    rig = Rig(V)
    _firmware(rig, 9)
    _fw(rig, 9, "Downloading")
    assert _firmware(rig, 10) == "AcceptedCanceled"


def test_TC_L_11_CS_unable_to_cancel() -> None:
    rig = Rig(V)
    _firmware(rig, 11)
    _fw(rig, 11, "Downloading", "Downloaded", "SignatureVerified", "Installing")
    assert _firmware(rig, 12) == "Rejected"


def _allow_new_sessions(rig: Rig, allow: bool) -> None:
    value = "true" if allow else "false"
    assert set_var(rig, "ChargingStation", "AllowNewSessionsPendingFirmwareUpdate", value) == (
        "Accepted"
    )


def test_TC_L_12_CS_new_sessions_allowed_while_the_update_waits() -> None:
    rig = Rig(V, evses=2)
    _allow_new_sessions(rig, True)
    rig.charge(1)
    assert _firmware(rig, 12) == "Accepted"
    _fw(rig, 12, "Downloading", "Downloaded", "SignatureVerified")
    assert _fw_statuses(rig)[-1] == "InstallScheduled"  # L01.FR.06: it waits
    assert rig.last_status(2) == "Available"
    rig.charge(2)  # a second transaction may start
    assert rig.station.get_evse_transaction_id(2) is not None
    rig.station.on_transaction_finished(1, rig.now)
    rig.pair.advance(0.1)
    assert rig.hardware.called("install_firmware") == []
    rig.station.on_transaction_finished(2, rig.now)
    rig.pair.advance(0.1)
    assert rig.hardware.called("install_firmware") == [12]  # once both ended


def test_TC_L_13_CS_free_evses_unavailable_while_the_update_waits() -> None:
    rig = Rig(V, evses=2)
    _allow_new_sessions(rig, False)
    rig.charge(1)
    assert _firmware(rig, 13) == "Accepted"
    _fw(rig, 13, "Downloading", "Downloaded", "SignatureVerified")
    assert rig.last_status(2) == "Unavailable"  # L01.FR.07: the free one at once
    assert rig.last_status(1) == "Occupied"
    assert remote_start(rig, evse_id=2) == "Rejected"
    rig.station.on_transaction_finished(1, rig.now)
    rig.unplug(1)
    assert rig.last_status(1) == "Unavailable"  # L01.FR.07: as it becomes free
    assert rig.hardware.called("install_firmware") == [13]
    _fw(rig, 13, "Installing", "Installed")
    assert rig.last_status(1) == rig.last_status(2) == "Available"
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "FirmwareUpdated"


def test_TC_L_14_CS_activation_waits_for_the_transactions_new_sessions_allowed() -> None:
    rig = Rig(V, evses=2, installs_firmware_during_transactions=True)
    _allow_new_sessions(rig, True)
    rig.charge(1)
    assert _firmware(rig, 14) == "Accepted"
    _fw(rig, 14, "Downloading", "Downloaded", "SignatureVerified", "Installing")
    rig.station.on_firmware_update_status_notification(14, "Installed", rig.now, reboot=True)
    rig.pair.advance(10)
    assert rig.reboots == []  # L01.FR.33: activation waits for the transaction
    assert rig.last_status(2) == "Available"
    rig.station.on_transaction_finished(1, rig.now)
    rig.pair.advance(1)
    assert rig.reboots == ["FirmwareUpdate"]


def test_TC_L_15_CS_activation_waits_for_the_transactions_free_evses_unavailable() -> None:
    rig = Rig(V, evses=2, installs_firmware_during_transactions=True)
    _allow_new_sessions(rig, False)
    rig.charge(1)
    assert _firmware(rig, 15) == "Accepted"
    _fw(rig, 15, "Downloading", "Downloaded", "SignatureVerified", "Installing")
    assert rig.last_status(2) == "Available"  # this hardware installs while charging
    rig.station.on_firmware_update_status_notification(15, "Installed", rig.now, reboot=True)
    rig.pair.advance(10)
    # L01.FR.33 then L01.FR.07: the activation waits, the free EVSE is Unavailable.
    assert rig.reboots == [] and rig.last_status(2) == "Unavailable"
    rig.station.on_transaction_finished(1, rig.now)
    rig.pair.advance(1)
    assert rig.reboots == ["FirmwareUpdate"]


def test_TC_L_16_CS_an_update_installed_during_a_transaction() -> None:
    rig = Rig(V, installs_firmware_during_transactions=True)
    rig.charge()
    assert _firmware(rig, 16) == "Accepted"
    _fw(rig, 16, "Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")
    assert _fw_statuses(rig) == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ]
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "FirmwareUpdated"
    assert rig.station.get_evse_transaction_id(1) is not None  # it kept charging


def test_TC_L_18_CS_missing_certificate_and_signature_is_an_unsigned_update() -> None:
    rig = Rig(V)
    firmware = build(
        rig.m.Firmware, location="https://127.0.0.1/fw", retrieve_date_time=wall(rig.now)
    )
    assert status(rig.request("UpdateFirmware", request_id=18, firmware=firmware)) == "Accepted"
    (job,) = rig.hardware.called("download_firmware")
    assert job.signature is None and job.signing_certificate is None


# --- N Diagnostics (logs)


def _get_log(rig: Rig, request_id: int, log_type: str = "DiagnosticsLog") -> Any:
    return rig.request(
        "GetLog",
        log_type=log_type,
        request_id=request_id,
        retries=0,
        log=rig.m.LogParameters(remote_location="ftp://127.0.0.1/logs/"),
    )


def test_TC_N_25_N_35_CS_retrieve_log_success() -> None:
    rig = Rig(V)
    for request_id, kind in ((1, "DiagnosticsLog"), (2, "SecurityLog")):
        answer = _get_log(rig, request_id, kind)
        assert status(answer) == "Accepted" and answer.filename
        (job,) = rig.hardware.called("upload_log")[-1:]
        assert job.request_id == request_id
        rig.station.on_log_status_notification("Uploading", request_id, rig.now)
        rig.station.on_log_status_notification("Uploaded", request_id, rig.now)
        rig.pair.advance(0.1)
        assert rig.sent("LogStatusNotification")[-1] == {
            "status": "Uploaded",
            "requestId": request_id,
        }


def test_TC_N_26_CS_retrieve_log_upload_failed() -> None:
    rig = Rig(V)
    _get_log(rig, 3)
    rig.station.on_log_status_notification("Uploading", 3, rig.now)
    rig.station.on_log_status_notification("UploadFailure", 3, rig.now)
    rig.pair.advance(0.1)
    assert rig.sent("LogStatusNotification")[-1] == {"status": "UploadFailure", "requestId": 3}


def test_TC_N_36_CS_second_log_request_cancels_the_first() -> None:
    rig = Rig(V)
    _get_log(rig, 4)
    rig.station.on_log_status_notification("Uploading", 4, rig.now)
    rig.pair.advance(0.1)
    assert status(_get_log(rig, 5)) == "AcceptedCanceled"
    assert {"status": "AcceptedCanceled", "requestId": 4} in rig.sent("LogStatusNotification")


# --- P Data transfer


def test_TC_P_01_CS_data_transfer_unknown_vendor() -> None:
    answer = Rig(V).request("DataTransfer", vendor_id="org.unknown")
    assert status(answer) == "UnknownVendorId"


def test_TC_P_03_CS_custom_data_is_accepted() -> None:
    rig = Rig(V)
    m = rig.m
    answer = rig.request(
        "GetVariables",
        custom_data=m.CustomData(vendor_id="org.example"),
        get_variable_data=[
            m.GetVariableData(
                component=m.Component(name="OCPPCommCtrlr"),
                variable=m.Variable(name="OfflineThreshold"),
            )
        ],
    )
    assert str(answer.get_variable_result[0].attribute_status) == "Accepted"


def test_the_local_list_is_committed_before_the_answer_leaves() -> None:
    """D01: what SendLocalList changed survives a kill right after its answer."""
    rig = Rig(V)
    rig.request(
        "SendLocalList",
        version_number=2,
        update_type="Full",
        local_authorization_list=[_auth_data(rig, "A")],
    )
    after_a_kill = rig.store.reopen()
    assert after_a_kill.load("auth/list-version") == 2
    assert [key for key, _ in after_a_kill.items("auth/list/")] == ["auth/list/iso14443:a"]


def _pooled(rig: Rig) -> None:
    set_var(rig, "ReservationCtrlr", "NonEvseSpecific", "true")


def test_TC_H_09_CS_unspecified_reservation_when_the_evse_is_reserved() -> None:
    rig = Rig(V)
    _pooled(rig)
    _reserve(rig, 1, evse_id=1)
    assert _reserve(rig, 2, evse_id=None) == "Occupied"


def test_TC_H_10_CS_unspecified_reservation_when_the_evse_is_occupied() -> None:
    rig = Rig(V)
    _pooled(rig)
    rig.plug()
    assert _reserve(rig, 2, evse_id=None) == "Occupied"


def test_TC_H_12_CS_unspecified_reservation_when_unavailable() -> None:
    rig = Rig(V)
    _pooled(rig)
    _availability(rig, "Inoperative", evse(rig, 1))
    assert _reserve(rig, 2, evse_id=None) == "Unavailable"


def test_TC_H_14_CS_as_many_reservations_as_free_evses() -> None:
    rig = Rig(V, evses=2)
    _pooled(rig)
    assert _reserve(rig, 1, evse_id=None) == "Accepted"
    assert _reserve(rig, 2, evse_id=None, token="TOKEN2") == "Accepted"
    assert rig.last_status(1) == rig.last_status(2) == "Reserved"  # H01.FR.24
    assert _reserve(rig, 3, evse_id=None, token="TOKEN3") == "Occupied"


def test_TC_H_15_CS_reserve_a_connector_type() -> None:
    rig = Rig(V)
    _pooled(rig)
    assert _reserve(rig, 1, evse_id=None, connector_type="cType2") == "Accepted"


def test_TC_H_16_CS_as_many_reservations_as_free_connectors_of_the_type() -> None:
    """Two of three EVSEs have cType2: two cType2 reservations take both, a third is
    Occupied (H01.FR.12) while the sType2 EVSE stays free for its own type."""
    rig = Rig(V, evses=3, connector_type={1: "cType2", 2: "sType2", 3: "cType2"})
    _pooled(rig)
    assert _reserve(rig, 1, evse_id=None, connector_type="cType2") == "Accepted"
    assert _reserve(rig, 2, evse_id=None, token="TOKEN2", connector_type="cType2") == "Accepted"
    assert rig.last_status(1) == rig.last_status(3) == "Reserved"
    assert rig.last_status(2) == "Available"
    assert _reserve(rig, 3, evse_id=None, token="TOKEN3", connector_type="cType2") == "Occupied"
    assert _reserve(rig, 4, evse_id=None, token="TOKEN4", connector_type="sType2") == "Accepted"


def test_TC_J_06_CS_no_clock_aligned_values_during_a_transaction() -> None:
    rig = Rig(V)
    set_var(rig, "AlignedDataCtrlr", "Interval", "60")
    set_var(rig, "AlignedDataCtrlr", "SendDuringIdle", "true")
    set_var(rig, "SampledDataCtrlr", "TxUpdatedInterval", "0")
    rig.charge()
    rig.pair.advance(130)
    assert rig.sent("MeterValues") == []
    assert [e for e in rig.tx_events() if e["triggerReason"] == "MeterValueClock"] == []
