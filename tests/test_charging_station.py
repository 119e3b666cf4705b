"""ChargingStation: the behaviours issue 12 found missing, each through the facade in
memory (a CsmsCore on the other side, the demo CSMS's answers, pretend hardware)."""

from __future__ import annotations

from typing import Any

import pytest
from _stationkit import Rig, wall

from ocpp_sansio.charging_station import NetworkProfile
from ocpp_sansio.events import CallErrorReceived
from ocpp_sansio.flows._base import build

V2 = ("2.0.1", "2.1")
ALL = ("1.6", "2.0.1", "2.1")


def set_variables(rig: Rig, *items: tuple[str, str, str, str | None]) -> list[str]:
    m = rig.m
    response = rig.request(
        "SetVariables",
        set_variable_data=[
            m.SetVariableData(
                attribute_value=value,
                component=m.Component(name=component),
                variable=m.Variable(name=name, instance=instance),
            )
            for component, name, value, instance in items
        ],
    )
    return [str(r.attribute_status) for r in response.set_variable_result]


def report(rig: Rig, action: str, request_id: int, **fields: Any) -> tuple[str, list[Any]]:
    before = len(rig.sent("NotifyReport"))
    response = rig.request(action, request_id=request_id, **fields)
    parts = rig.sent("NotifyReport")[before:]
    return str(response.status), [d for p in parts for d in p.get("reportData", [])]


# --- registration


@pytest.mark.parametrize("version", V2)
def test_F06_FR_17_a_triggered_boot_says_reason_Triggered(version: str) -> None:
    rig = Rig(version, boot_status="Pending")
    assert rig.sent("BootNotification")[0]["reason"] == "PowerUp"
    rig.demo.boot_status = "Accepted"
    answer = rig.request("TriggerMessage", requested_message="BootNotification")
    assert str(answer.status) == "Accepted"
    boots = rig.sent("BootNotification")
    assert boots[-1]["reason"] == "Triggered"


@pytest.mark.parametrize("version", ALL)
def test_A04_startup_of_the_device_is_sent_at_power_up(version: str) -> None:
    rig = Rig(version)
    assert [e["type"] for e in rig.sent("SecurityEventNotification")] == ["StartupOfTheDevice"]


@pytest.mark.parametrize("version", ALL)
def test_A04_FR_02_critical_security_events_wait_through_an_outage(version: str) -> None:
    rig = Rig(version)
    rig.pair.disconnect()
    rig.station.on_security_event("TamperDetectionActivated", rig.now, tech_info="lid open")
    rig.station.on_security_event("InvalidMessages", rig.now)  # not critical: dropped
    rig.pair.advance(5)
    rig.pair.connect()
    rig.pair.advance(1)
    types = [e["type"] for e in rig.sent("SecurityEventNotification")]
    assert types == ["StartupOfTheDevice", "TamperDetectionActivated"]


@pytest.mark.parametrize("version", ALL)
def test_A04_FR_02_critical_security_events_are_delivered_after_a_reboot(version: str) -> None:
    rig = Rig(version)
    rig.pair.disconnect()
    rig.station.on_security_event("MemoryExhaustion", rig.now)
    rig.reboot(boot_reason="PowerUp")
    types = [e["type"] for e in rig.sent("SecurityEventNotification")]
    assert types == ["StartupOfTheDevice", "MemoryExhaustion", "StartupOfTheDevice"]


@pytest.mark.parametrize("version", ALL)
def test_A04_FR_02_an_unanswered_critical_event_goes_again_after_a_power_loss(
    version: str,
) -> None:
    rig = Rig(version)
    rig.answers["SecurityEventNotification"] = lambda request: None  # never answered
    rig.station.on_security_event("TamperDetectionActivated", rig.now)
    rig.pair.advance(0.1)
    del rig.answers["SecurityEventNotification"]
    rig.reboot(boot_reason="PowerUp")
    types = [e["type"] for e in rig.attempts("SecurityEventNotification")]
    assert types.count("TamperDetectionActivated") == 2
    assert rig.store.load("security_events") is None  # delivered now


def test_A04_1_6_the_security_extension_list_says_what_is_critical() -> None:
    rig = Rig("1.6")
    rig.pair.disconnect()
    # Critical in 2.0.1, not in the 1.6 security extension: not queued.
    rig.station.on_security_event("InvalidFirmwareSignature", rig.now)
    rig.station.on_security_event("SecurityLogWasCleared", rig.now)
    rig.pair.connect()
    rig.pair.advance(1)
    types = [e["type"] for e in rig.sent("SecurityEventNotification")]
    assert types == ["StartupOfTheDevice", "SecurityLogWasCleared"]


@pytest.mark.parametrize("version", ALL)
def test_A04_a_reset_reports_ResetOrReboot_after_the_boot(version: str) -> None:
    rig = Rig(version)
    kind = "Hard" if version == "1.6" else "Immediate"
    field = "type"
    answer = rig.request("Reset", **{field: kind})
    assert str(answer.status) == "Accepted"
    rig.pair.advance(6)
    rig.reboot()
    types = [e["type"] for e in rig.sent("SecurityEventNotification")]
    assert types[-2:] == ["StartupOfTheDevice", "ResetOrReboot"]


def test_H01_1_6_a_reservation_used_through_the_parent_id_tag() -> None:
    rig = Rig("1.6")
    answer = rig.request(
        "ReserveNow",
        connector_id=1,
        expiry_date=wall(rig.now + 600),
        id_tag="OWNER",
        reservation_id=3,
        parent_id_tag="FLEET",
    )
    assert str(answer.status) == "Accepted"
    m = rig.m
    rig.answers["Authorize"] = lambda request: m.AuthorizeResponse(
        id_tag_info=m.IdTagInfo(status=m.AuthorizationStatus.ACCEPTED, parent_id_tag="FLEET")
    )
    rig.plug()
    rig.authorize(value="DRIVER")  # 1.6 §5.13: the same parentIdTag uses it
    (started,) = rig.sent("StartTransaction")
    assert started["reservationId"] == 3 and started["idTag"] == "DRIVER"


def test_1_6_stop_transaction_carries_StopTxnSampledData_and_StopTxnAlignedData() -> None:
    rig = Rig("1.6")
    rig.station.set_variables(
        [
            ("StopTxnSampledData", "", "Energy.Active.Import.Register"),
            ("StopTxnAlignedData", "", "Energy.Active.Import.Register"),
            ("MeterValueSampleInterval", "", "40"),
            ("ClockAlignedDataInterval", "", "60"),
        ],
        rig.now,
    )
    rig.charge()
    rig.pair.advance(100)
    rig.unplug()
    (stop,) = rig.sent("StopTransaction")
    contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
    assert contexts == [
        "Transaction.Begin",
        "Sample.Periodic",
        "Sample.Clock",
        "Sample.Periodic",
        "Transaction.End",
    ]


def _csms_says_invalid(rig: Rig) -> None:
    """The CSMS answers the transaction's token Invalid (E05.FR.01)."""
    m = rig.m
    rig.answers["TransactionEvent"] = lambda request: (
        m.TransactionEventResponse(id_token_info=m.IdTokenInfo(status="Invalid"))
        if request.id_token is not None
        else m.TransactionEventResponse()
    )


@pytest.mark.parametrize("version", V2)
def test_E05_FR_03_MaxEnergyOnInvalidId_lets_the_energy_flow_until_it_is_delivered(
    version: str,
) -> None:
    rig = Rig(version)
    set_variables(
        rig,
        ("TxCtrlr", "StopTxOnInvalidId", "false", None),
        ("TxCtrlr", "MaxEnergyOnInvalidId", "100", None),  # Wh; the meter counts 2 Wh/s
    )
    _csms_says_invalid(rig)
    rig.charge()
    rig.pair.advance(30)
    assert rig.hardware.called("stop_energy") == []  # 60 Wh so far
    rig.pair.advance(30)
    assert rig.hardware.called("stop_energy") == [1]  # E05.FR.02 once 100 Wh are in
    (suspended,) = [e for e in rig.tx_events() if e["triggerReason"] == "ChargingStateChanged"]
    assert suspended["transactionInfo"]["chargingState"] == "SuspendedEVSE"
    assert suspended["eventType"] == "Updated"
    delivered = rig.hardware.energy_wh[1]
    assert 100 <= delivered <= 104


@pytest.mark.parametrize("version", V2)
def test_E05_FR_02_without_MaxEnergyOnInvalidId_the_energy_stops_at_once(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("TxCtrlr", "StopTxOnInvalidId", "false", None))
    _csms_says_invalid(rig)
    rig.charge()
    assert rig.hardware.called("stop_energy") == [1]
    assert rig.tx_events()[-1]["triggerReason"] == "ChargingStateChanged"
    assert rig.station.get_evse_transaction_id(1) is not None


@pytest.mark.parametrize("version", V2)
def test_E05_FR_09_stop_point_without_authorization_suspends_the_transaction(
    version: str,
) -> None:
    rig = Rig(version)
    set_variables(rig, ("TxCtrlr", "TxStopPoint", "EVConnected", None))
    _csms_says_invalid(rig)
    rig.charge()
    last = rig.tx_events()[-1]
    assert (last["eventType"], last["triggerReason"]) == ("Updated", "Deauthorized")
    assert last["transactionInfo"]["chargingState"] == "EVConnected"
    assert rig.station.get_evse_transaction_id(1) is not None


@pytest.mark.parametrize("version", V2)
def test_E05_FR_10_stop_point_with_authorization_ends_the_transaction(version: str) -> None:
    rig = Rig(version)
    _csms_says_invalid(rig)
    rig.charge()
    last = rig.tx_events()[-1]
    assert (last["eventType"], last["triggerReason"]) == ("Ended", "Deauthorized")
    assert last["transactionInfo"]["stoppedReason"] == "DeAuthorized"


@pytest.mark.parametrize("version", V2)
def test_H01_a_reservation_expires_at_its_time_after_a_reboot(version: str) -> None:
    rig = Rig(version)
    expiry = rig.now + 3000
    answer = rig.request(
        "ReserveNow", id=7, expiry_date_time=wall(expiry), id_token=rig.token(), evse_id=1
    )
    assert str(answer.status) == "Accepted"
    rig.pair.advance(1000)
    rig.reboot()  # a power loss, 1000 s in
    rig.pair.advance(expiry - rig.now - 5)
    assert rig.last_status(1) == "Reserved"
    rig.pair.advance(10)
    assert rig.last_status(1) == "Available"


@pytest.mark.parametrize("version", V2)
def test_C10_FR_08_cache_lifetime_counts_across_a_reboot(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("AuthCacheCtrlr", "LifeTime", "100", None))
    rig.pair.advance(50)
    token = rig.token("CACHED")
    rig.station.validate_token(token, rig.now)  # the CSMS accepts it: cached now
    rig.pair.advance(10)
    rig.reboot()
    rig.pair.disconnect()
    rig.pair.advance(50)  # 60 s after it was cached
    assert rig.station.validate_token(token, rig.now) is True  # C13: the cache, offline
    rig.reboot()
    rig.pair.disconnect()
    rig.pair.advance(60)  # 60 s after it was last used, 120 s after it was cached
    assert rig.station.validate_token(token, rig.now) is True
    rig.pair.advance(101)
    assert rig.station.validate_token(token, rig.now) is False  # C10.FR.08/10: expired


# --- device model


#: The required (component, variable) pairs of the 2.0.1 device-model appendix.
REQUIRED_VARIABLES: dict[str, tuple[str, ...]] = {
    "AlignedDataCtrlr": (
        "Interval",
        "Measurands",
        "TxEndedInterval",
        "TxEndedMeasurands",
    ),
    "AuthCtrlr": (
        "AuthorizeRemoteStart",
        "LocalAuthorizeOffline",
        "LocalPreAuthorize",
    ),
    "ChargingStation": (
        "AvailabilityState",
        "Available",
        "SupplyPhases",
    ),
    "ClockCtrlr": (
        "DateTime",
        "TimeSource",
    ),
    "Connector": (
        "Available",
        "ConnectorType",
        "SupplyPhases",
    ),
    "DeviceDataCtrlr": (
        "BytesPerMessage",
        "ItemsPerMessage",
    ),
    "DisplayMessageCtrlr": (
        "DisplayMessages",
        "SupportedFormats",
        "SupportedPriorities",
    ),
    "EVSE": (
        "AvailabilityState",
        "Available",
        "Power",
        "SupplyPhases",
    ),
    "ISO15118Ctrlr": ("ContractValidationOffline",),
    "LocalAuthListCtrlr": (
        "BytesPerMessage",
        "Entries",
        "ItemsPerMessage",
    ),
    "MonitoringCtrlr": (
        "BytesPerMessage",
        "ItemsPerMessage",
    ),
    "OCPPCommCtrlr": (
        "FileTransferProtocols",
        "MessageAttemptInterval",
        "MessageAttempts",
        "MessageTimeout",
        "NetworkConfigurationPriority",
        "NetworkProfileConnectionAttempts",
        "OfflineThreshold",
        "ResetRetries",
        "UnlockOnEVSideDisconnect",
    ),
    "SampledDataCtrlr": (
        "TxEndedInterval",
        "TxEndedMeasurands",
        "TxStartedMeasurands",
        "TxUpdatedInterval",
        "TxUpdatedMeasurands",
    ),
    "SecurityCtrlr": (
        "CertificateEntries",
        "OrganizationName",
        "SecurityProfile",
    ),
    "SmartChargingCtrlr": (
        "Entries",
        "LimitChangeSignificance",
        "PeriodsPerSchedule",
        "ProfileStackLevel",
        "RateUnit",
    ),
    "TariffCostCtrlr": (
        "Currency",
        "TariffFallbackMessage",
        "TotalCostFallbackMessage",
    ),
    "TxCtrlr": (
        "EVConnectionTimeOut",
        "StopTxOnEVSideDisconnect",
        "StopTxOnInvalidId",
        "TxStartPoint",
        "TxStopPoint",
    ),
}


def _required_variables() -> set[tuple[str, str]]:
    """The appendix's required variables of the blocks the facade implements."""
    return {(c, v) for c, names in REQUIRED_VARIABLES.items() for v in names}


IMPLEMENTED = {
    "AlignedDataCtrlr",
    "AuthCtrlr",
    "ChargingStation",
    "ClockCtrlr",
    "Connector",
    "DeviceDataCtrlr",
    "EVSE",
    "LocalAuthListCtrlr",
    "OCPPCommCtrlr",
    "SampledDataCtrlr",
    "SecurityCtrlr",
    "SmartChargingCtrlr",
    "TxCtrlr",
}


@pytest.mark.parametrize("version", V2)
def test_TC_B_13_B_53_CS_full_inventory_lists_every_required_variable(version: str) -> None:
    rig = Rig(version, evses=2)
    status, data = report(rig, "GetBaseReport", 1, report_base="FullInventory")
    assert status == "Accepted"
    reported = {(d["component"]["name"], d["variable"]["name"]) for d in data}
    required = {(c, v) for c, v in _required_variables() if c in IMPLEMENTED}
    assert required - reported == set()
    for d in data:
        kind = d["variableCharacteristics"]["dataType"]
        if kind in ("OptionList", "SequenceList", "MemberList"):
            assert d["variableCharacteristics"].get("valuesList"), d
    per_evse = {
        d["component"].get("evse", {}).get("id") for d in data if d["component"]["name"] == "EVSE"
    }
    assert per_evse == {1, 2}


@pytest.mark.parametrize("version", V2)
def test_TC_B_18_CS_custom_report_applies_criteria_and_component_variable(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    wanted = [
        m.ComponentVariable(
            component=m.Component(name="EVSE", evse=m.EVSE(id=1)),
            variable=m.Variable(name="AvailabilityState"),
        )
    ]
    status, data = report(
        rig, "GetReport", 2, component_criteria=["Available"], component_variable=wanted
    )
    assert status == "Accepted"
    assert [(d["component"]["name"], d["variable"]["name"]) for d in data] == [
        ("EVSE", "AvailabilityState")
    ]
    status, data = report(
        rig, "GetReport", 3, component_criteria=["Problem"], component_variable=wanted
    )
    assert status == "EmptyResultSet" and data == []


@pytest.mark.parametrize("version", V2)
def test_part4_5_3_retry_back_off_variables_are_known_and_act(version: str) -> None:
    rig = Rig(version)
    statuses = set_variables(
        rig,
        ("OCPPCommCtrlr", "RetryBackOffWaitMinimum", "40", None),
        ("OCPPCommCtrlr", "RetryBackOffRandomRange", "0", None),
        ("OCPPCommCtrlr", "RetryBackOffRepeatTimes", "2", None),
    )
    assert statuses == ["Accepted"] * 3
    waits = []
    for _ in range(4):
        plan = rig.station.on_connect_failed(rig.now)
        waits.append(plan.at - rig.now)
    assert waits == [40, 80, 160, 160]


# --- transaction messages


@pytest.mark.parametrize("version", V2)
def test_E13_FR_02_message_attempts_set_by_the_csms_reach_the_core(version: str) -> None:
    rig = Rig(version)
    assert set_variables(
        rig,
        ("OCPPCommCtrlr", "MessageAttempts", "4", "TransactionEvent"),
        ("OCPPCommCtrlr", "MessageAttemptInterval", "2", "TransactionEvent"),
    ) == ["Accepted", "Accepted"]
    rig.answers["TransactionEvent"] = lambda request: "InternalError"
    rig.charge()
    rig.pair.advance(60)
    started = [e for e in rig.attempts("TransactionEvent") if e["eventType"] == "Started"]
    assert len(started) == 4  # E13.FR.02: MessageAttempts transmissions, then discarded


def test_E13_1_6_transaction_message_attempts_reach_the_core() -> None:
    rig = Rig("1.6")
    answer = rig.request("ChangeConfiguration", key="TransactionMessageAttempts", value="2")
    assert str(answer.status) == "Accepted"
    rig.request("ChangeConfiguration", key="TransactionMessageRetryInterval", value="1")
    rig.answers["StartTransaction"] = lambda request: "InternalError"
    rig.charge()
    rig.pair.advance(30)
    assert len(rig.attempts("StartTransaction")) == 2


@pytest.mark.parametrize("version", V2)
def test_E11_E12_samples_taken_offline_are_delivered_later_marked_offline(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("SampledDataCtrlr", "TxUpdatedInterval", "5", None))
    rig.charge()
    rig.pair.disconnect()
    rig.pair.advance(17)
    assert len(rig.station.held_messages) == 3  # samples at 5, 10, 15 s
    rig.pair.connect()
    rig.pair.advance(1)
    periodic = [e for e in rig.tx_events() if e["triggerReason"] == "MeterValuePeriodic"]
    assert len(periodic) == 3 and all(e.get("offline") for e in periodic)
    values = [e["meterValue"][0]["sampledValue"][0]["value"] for e in periodic]
    assert values == sorted(values) and values[0] > 0


@pytest.mark.parametrize("version", V2)
def test_E14_transaction_status_reports_queued_messages(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("OCPPCommCtrlr", "MessageAttemptInterval", "600", "TransactionEvent"))
    rig.answers["TransactionEvent"] = lambda request: "InternalError"
    rig.charge()
    tx_id = rig.station.get_evse_transaction_id(1)
    answer = rig.request("GetTransactionStatus", transaction_id=tx_id)
    assert answer.messages_in_queue is True and answer.ongoing_indicator is True
    del rig.answers["TransactionEvent"]
    rig.pair.advance(1300)
    answer = rig.request("GetTransactionStatus", transaction_id=tx_id)
    assert answer.messages_in_queue is False


# --- reset and reboot


@pytest.mark.parametrize("version", V2)
def test_B12_FR_01_on_idle_reset_boots_with_ScheduledReset(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    answer = rig.request("Reset", type="OnIdle")
    assert str(answer.status) == "Scheduled"
    assert rig.reboots == []
    rig.unplug()
    rig.pair.advance(1)
    assert rig.reboots == ["ScheduledReset"]
    rig.reboot()
    assert rig.sent("BootNotification")[-1]["reason"] == "ScheduledReset"
    events = [e["type"] for e in rig.sent("SecurityEventNotification")]
    assert events[-2:] == ["StartupOfTheDevice", "ResetOrReboot"]


@pytest.mark.parametrize("version", V2)
def test_B11_remote_reset_of_an_idle_station_boots_with_RemoteReset(version: str) -> None:
    rig = Rig(version)
    assert str(rig.request("Reset", type="OnIdle").status) == "Accepted"
    rig.pair.advance(1)
    assert rig.reboots == ["RemoteReset"]
    rig.reboot()
    assert rig.sent("BootNotification")[-1]["reason"] == "RemoteReset"


@pytest.mark.parametrize("version", V2)
def test_B12_immediate_reset_with_the_cable_plugged_comes_back_Occupied(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    assert str(rig.request("Reset", type="Immediate").status) == "Accepted"
    ended = rig.tx_events()[-1]
    assert ended["eventType"] == "Ended" and ended["triggerReason"] == "ResetCommand"
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    rig.pair.advance(1)
    assert rig.reboots == ["RemoteReset"]
    before = len(rig.statuses())
    rig.reboot()
    assert rig.statuses()[before:] == [(1, "Occupied")]


@pytest.mark.parametrize("version", V2)
def test_H01_a_reservation_survives_a_reset(version: str) -> None:
    rig = Rig(version)
    answer = rig.request(
        "ReserveNow",
        id=7,
        expiry_date_time=wall(rig.now + 3600),
        id_token=rig.token("DRIVER"),
        evse_id=1,
    )
    assert str(answer.status) == "Accepted"
    assert rig.last_status(1) == "Reserved"
    rig.request("Reset", type="Immediate")
    rig.pair.advance(1)
    before = len(rig.statuses())
    rig.reboot()
    assert rig.statuses()[before:] == [(1, "Reserved")]
    assert 7 in rig.station.reservations.reservations
    # and it still expires at its time
    rig.pair.advance(3600)
    assert rig.last_status(1) == "Available"


@pytest.mark.parametrize("version", V2)
def test_B12_a_reset_gets_its_answer_while_our_own_call_is_unanswered(version: str) -> None:
    rig = Rig(version)
    rig.answers["Heartbeat"] = lambda request: None  # never answered
    rig.pair.advance(300)  # our Heartbeat is out, unanswered
    channel = rig.station.core.channel
    assert channel is not None and channel.outstanding is not None
    answer = rig.call(build(rig.m.ResetRequest, type="Immediate"), then=0.0)
    assert str(answer.status) == "Accepted"  # it reached the CSMS: sent before the reboot
    rig.pair.advance(6)
    assert rig.reboots == ["RemoteReset"]


# --- availability


@pytest.mark.parametrize("version", V2)
def test_G04_station_inoperative_during_a_transaction(version: str) -> None:
    rig = Rig(version, evses=2)
    rig.charge(1)
    answer = rig.request("ChangeAvailability", operational_status="Inoperative")
    assert str(answer.status) == "Scheduled"  # G04.FR.06
    assert rig.last_status(2) == "Unavailable"  # at once: no transaction there
    assert rig.last_status(1) == "Occupied"
    rig.unplug(1)
    assert rig.last_status(1) == "Unavailable"  # once its transaction ended
    rig.reboot()
    assert rig.last_status(1) == "Unavailable" and rig.last_status(2) == "Unavailable"


@pytest.mark.parametrize("version", V2)
def test_G03_FR_03_evse_operative_again(version: str) -> None:
    rig = Rig(version)
    rig.request("ChangeAvailability", operational_status="Inoperative", evse=rig.m.EVSE(id=1))
    assert rig.last_status(1) == "Unavailable"
    assert ("set_availability", (1, 1, False)) in rig.hardware.calls
    rig.request("ChangeAvailability", operational_status="Operative", evse=rig.m.EVSE(id=1))
    assert rig.last_status(1) == "Available"


# --- firmware and logs


CERTIFICATE = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----"


def _update(rig: Rig, *, signed: bool = True, retries: int = 0, request_id: int = 5) -> Any:
    m = rig.m
    firmware = build(
        m.Firmware,
        location="https://127.0.0.1:1/fw.bin",
        retrieve_date_time=wall(rig.now),
        signing_certificate="-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----"
        if signed
        else None,
        signature="c2ln" if signed else None,
    )
    return rig.request(
        "UpdateFirmware",
        request_id=request_id,
        firmware=firmware,
        retries=retries,
        retry_interval=1,
    )


def _firmware_statuses(rig: Rig) -> list[str]:
    return [p["status"] for p in rig.sent("FirmwareStatusNotification")]


@pytest.mark.parametrize("version", V2)
def test_L01_FR_22_an_expired_signing_certificate_is_InvalidCertificate(version: str) -> None:
    rig = Rig(version)
    rig.hardware.certificate_verdict = "InvalidCertificate"
    assert str(_update(rig).status) == "InvalidCertificate"
    assert rig.hardware.called("download_firmware") == []
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "InvalidFirmwareSigningCertificate"


@pytest.mark.parametrize("version", V2)
def test_L01_FR_03_a_wrong_signature_is_InvalidSignature(version: str) -> None:
    rig = Rig(version)
    assert str(_update(rig).status) == "Accepted"
    (job,) = rig.hardware.called("download_firmware")
    assert job.signature == "c2ln" and job.signing_certificate.startswith("-----BEGIN")
    for status in ("Downloading", "Downloaded", "InvalidSignature"):
        rig.station.on_firmware_update_status_notification(5, status, rig.now)
    rig.pair.advance(1)
    assert _firmware_statuses(rig) == ["Downloading", "Downloaded", "InvalidSignature"]
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "InvalidFirmwareSignature"
    assert rig.hardware.called("install_firmware") == []


@pytest.mark.parametrize("version", V2)
def test_L01_FR_30_unreachable_location_is_DownloadFailed_after_retries(
    version: str,
) -> None:
    rig = Rig(version)
    _update(rig, retries=2)
    for _ in range(3):
        rig.station.on_firmware_update_status_notification(5, "Downloading", rig.now)
        rig.station.on_firmware_update_status_notification(5, "DownloadFailed", rig.now)
        rig.pair.advance(1.5)
    assert len(rig.hardware.called("download_firmware")) == 3
    assert _firmware_statuses(rig) == ["Downloading"] * 3 + ["DownloadFailed"]


@pytest.mark.parametrize("version", V2)
def test_L01_installed_update_reboots_with_FirmwareUpdate(version: str) -> None:
    rig = Rig(version)
    _update(rig, signed=False)
    for status in ("Downloading", "Downloaded"):
        rig.station.on_firmware_update_status_notification(5, status, rig.now)
    rig.pair.advance(0.1)
    assert rig.hardware.called("install_firmware") == [5]
    for status in ("Installing", "InstallRebooting"):
        rig.station.on_firmware_update_status_notification(5, status, rig.now)
    rig.pair.advance(1)
    assert rig.reboots == ["FirmwareUpdate"]
    station = rig.reboot()
    assert rig.sent("BootNotification")[-1]["reason"] == "FirmwareUpdate"
    station.on_firmware_update_status_notification(5, "Installed", rig.now)
    rig.pair.advance(0.1)
    assert _firmware_statuses(rig)[-1] == "Installed"
    assert rig.sent("FirmwareStatusNotification")[-1]["requestId"] == 5
    assert rig.sent("SecurityEventNotification")[-1]["type"] == "FirmwareUpdated"


@pytest.mark.parametrize("version", V2)
def test_N01_FR_10_a_failing_upload_reports_UploadFailure(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    answer = rig.request(
        "GetLog",
        log_type="DiagnosticsLog",
        request_id=9,
        retries=1,
        retry_interval=1,
        log=m.LogParameters(remote_location="ftp://127.0.0.1:1/logs"),
    )
    assert str(answer.status) == "Accepted"
    for _ in range(2):
        rig.station.on_log_status_notification("Uploading", 9, rig.now)
        rig.station.on_log_status_notification("UploadFailure", 9, rig.now)
        rig.pair.advance(1.5)
    assert len(rig.hardware.called("upload_log")) == 2
    statuses = [p["status"] for p in rig.sent("LogStatusNotification")]
    assert statuses == ["Uploading", "Uploading", "UploadFailure"]


# --- network profiles


@pytest.mark.parametrize("version", V2)
def test_B09_B10_set_network_profile_and_migrate(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    profile = m.NetworkConnectionProfile(
        ocpp_version=m.OCPPVersionEnum("OCPP20"),
        ocpp_transport=m.OCPPTransportEnum("JSON"),
        ocpp_csms_url="ws://127.0.0.1:9999/CS1",
        message_timeout=30,
        security_profile=1,
        ocpp_interface=m.OCPPInterfaceEnum("Wired0"),
    )
    answer = rig.request("SetNetworkProfile", configuration_slot=2, connection_data=profile)
    assert str(answer.status) == "Accepted"  # B09.FR.01
    stored = rig.station.get_network_connection_profile(2)
    assert stored is not None and stored.ocpp_csms_url.endswith(":9999/CS1")
    # B10.FR.02: a priority naming a slot without a profile is rejected
    assert set_variables(rig, ("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,3", None)) == [
        "Rejected"
    ]
    assert set_variables(rig, ("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1", None)) == [
        "Accepted"
    ]
    assert rig.station.get_network_connection_slots() == [2, 1]
    assert rig.station.get_priority_from_configuration_slot(1) == 1
    # B10.FR.03: NetworkProfileConnectionAttempts per slot, then the next one; once
    # every slot failed, back to slot 1, where the last connection worked (B10.FR.07)
    set_variables(rig, ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "2", None))
    slots = [rig.station.on_connect_failed(rig.now).slot for _ in range(6)]
    assert slots == [2, 1, 1, 1, 1, 2]
    # kept across a reboot
    rig.request("Reset", type="Immediate")
    rig.pair.advance(1)
    station = rig.reboot()
    assert station.get_network_connection_slots() == [2, 1]


def test_B10_FR_07_every_slot_failed_falls_back_to_the_last_good_one() -> None:
    rig = Rig("2.0.1")
    station = rig.station
    station.network.profiles[2] = NetworkProfile(ocpp_csms_url="ws://127.0.0.1:2/CS1")
    station.network.set_priority([2, 1])
    station.network.last_good = 1
    station.network.attempts_per_slot = 1
    assert [station.on_connect_failed(rig.now).slot for _ in range(3)] == [1, 1, 2]


# --- settings that act


@pytest.mark.parametrize("version", V2)
def test_E09_stop_on_ev_side_disconnect_false_suspends(version: str) -> None:
    rig = Rig(version)
    set_variables(
        rig,
        ("TxCtrlr", "StopTxOnEVSideDisconnect", "false", None),
        ("TxCtrlr", "TxStopPoint", "Authorized", None),
    )
    rig.charge()
    rig.unplug()
    last = rig.tx_events()[-1]
    assert last["eventType"] == "Updated" and last["triggerReason"] == "EVCommunicationLost"
    assert rig.station.get_evse_transaction_id(1) is not None


@pytest.mark.parametrize("version", V2)
def test_E10_stop_on_ev_side_disconnect_ends_the_transaction(version: str) -> None:
    rig = Rig(version)
    rig.charge()
    rig.unplug()
    last = rig.tx_events()[-1]
    assert last["eventType"] == "Ended"
    assert last["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert rig.hardware.called("stop_energy") == [1]


@pytest.mark.parametrize("version", V2)
def test_E01_tx_start_point_ev_connected(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("TxCtrlr", "TxStartPoint", "EVConnected", None))
    rig.plug()
    (started,) = rig.tx_events()
    assert started["eventType"] == "Started" and started["triggerReason"] == "CablePluggedIn"
    rig.authorize()
    updated = rig.tx_events()[-1]
    assert updated["triggerReason"] == "Authorized" and "idToken" in updated
    assert updated["transactionInfo"]["chargingState"] == "Charging"


@pytest.mark.parametrize("version", V2)
def test_E03_ev_connection_timeout_ends_an_authorized_transaction(version: str) -> None:
    rig = Rig(version)
    set_variables(
        rig,
        ("TxCtrlr", "TxStartPoint", "Authorized", None),
        ("TxCtrlr", "EVConnectionTimeOut", "30", None),
    )
    rig.authorize()
    assert rig.tx_events()[0]["eventType"] == "Started"
    rig.pair.advance(31)
    ended = rig.tx_events()[-1]
    assert ended["eventType"] == "Ended" and ended["triggerReason"] == "EVConnectTimeout"
    assert ended["transactionInfo"]["stoppedReason"] == "Timeout"


@pytest.mark.parametrize("version", V2)
def test_heartbeat_interval_set_by_the_csms_acts_at_once(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("OCPPCommCtrlr", "HeartbeatInterval", "20", None))
    before = len(rig.sent("Heartbeat"))
    rig.pair.advance(61)
    assert len(rig.sent("Heartbeat")) - before == 3


@pytest.mark.parametrize("version", V2)
def test_settings_survive_a_reboot(version: str) -> None:
    rig = Rig(version)
    set_variables(rig, ("OCPPCommCtrlr", "OfflineThreshold", "300", None))
    rig.request("Reset", type="Immediate")
    rig.pair.advance(1)
    station = rig.reboot()
    assert station.get_variables([("OCPPCommCtrlr", "OfflineThreshold")], rig.now) == ["300"]


@pytest.mark.parametrize("version", V2)
def test_C16_master_pass_stops_every_transaction(version: str) -> None:
    rig = Rig(version, evses=2)
    rig.station.set_variables([("AuthCtrlr", "MasterPassGroupId", "MASTER")], rig.now)
    rig.charge(1)
    m = rig.m
    rig.answers["Authorize"] = lambda request: m.AuthorizeResponse(
        id_token_info=m.IdTokenInfo(
            status=m.AuthorizationStatusEnum("Accepted"),
            group_id_token=build(m.IdToken, id_token="MASTER", type="Central"),
        )
    )
    rig.station.validate_token(rig.token("BOSS"), rig.now, evse_id=2)
    rig.pair.advance(0.1)
    ended = rig.tx_events()[-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "MasterPass"


# --- 1.6 with the same names


def test_1_6_the_same_names_charge_and_reset() -> None:
    rig = Rig("1.6")
    rig.charge()
    (start,) = rig.sent("StartTransaction")
    assert start["connectorId"] == 1 and start["idTag"] == "TOKEN1"
    assert rig.last_status(1) == "Charging"
    assert rig.station.get_evse_transaction_id(1) is not None
    rig.unplug()
    assert rig.sent("StopTransaction")[-1]["reason"] == "EVDisconnected"
    rig.request("Reset", type="Soft")
    rig.pair.advance(1)
    assert rig.reboots == ["RemoteReset"]


def test_data_transfer_answer_comes_back() -> None:
    rig = Rig("2.0.1")
    message_id = rig.station.data_transfer("acme", rig.now, message_id="hello")
    assert message_id is not None
    rig.pair.advance(0.1)
    from ocpp_sansio.charging_station import DataTransferAnswered

    (answered,) = [e for e in rig.pair.station_events if isinstance(e, DataTransferAnswered)]
    assert answered.message_id == message_id
    rig.pair.disconnect()
    assert rig.station.data_transfer("acme", rig.now) is None
    assert not any(isinstance(e, CallErrorReceived) for e in rig.pair.station_events)


@pytest.mark.parametrize("version", V2)
def test_message_queue_resume_delay_holds_messages_after_a_reconnect(version: str) -> None:
    rig = Rig(version)
    rig.station.set_message_queue_resume_delay(10)
    rig.charge()
    rig.pair.disconnect()
    rig.unplug()  # Ended is held while offline
    rig.pair.connect()
    rig.pair.advance(5)
    assert rig.tx_events()[-1]["eventType"] == "Started"
    rig.pair.advance(6)
    assert rig.tx_events()[-1]["eventType"] == "Ended"


@pytest.mark.parametrize("version", V2)
def test_N01_an_upload_cut_short_by_a_reboot_goes_on(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    rig.request(
        "GetLog",
        log_type="DiagnosticsLog",
        request_id=3,
        retries=2,
        log=m.LogParameters(remote_location="ftp://127.0.0.1/logs/"),
    )
    rig.station.on_log_status_notification("Uploading", 3, rig.now)
    rig.request("Reset", type="Immediate")
    rig.pair.advance(1)
    rig.reboot()
    jobs = rig.hardware.called("upload_log")
    assert [(j.request_id, j.attempt) for j in jobs] == [(3, 1), (3, 2)]


def test_1_6_settings_survive_a_reboot() -> None:
    rig = Rig("1.6")
    rig.request("ChangeConfiguration", key="MeterValueSampleInterval", value="17")
    rig.request("Reset", type="Hard")
    rig.pair.advance(1)
    station = rig.reboot()
    assert station.get_variables([("MeterValueSampleInterval", "")], rig.now) == ["17"]


@pytest.mark.parametrize("version", V2)
def test_E04_FR_04_a_transaction_cut_short_by_a_power_loss_ends_after_the_boot(
    version: str,
) -> None:
    rig = Rig(version)
    rig.charge()
    tx_id = rig.station.get_evse_transaction_id(1)
    rig.reboot()  # no reset: the power went
    ended = rig.tx_events()[-1]
    assert ended["eventType"] == "Ended" and ended["transactionInfo"]["transactionId"] == tx_id
    assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert ended["seqNo"] == 1
    assert rig.last_status(1) == "Occupied"  # the cable is still in


def test_a_connector_type_mapping_must_name_every_evse() -> None:
    with pytest.raises(ValueError, match="no type for EVSE 2"):
        Rig("2.0.1", evses=2, connector_type={1: "cType2"})


def test_connector_types_per_evse_reach_the_device_model() -> None:
    rig = Rig("2.0.1", evses=2, connector_type={1: "cType2", 2: "cCCS2"})
    types = {
        item.component.evse_id: item.attributes["Actual"].value
        for item in rig.station.model.variables()
        if item.variable.name == "ConnectorType"
    }
    assert types == {1: "cType2", 2: "cCCS2"}
