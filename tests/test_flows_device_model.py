"""The 2.0.1/2.1 device model end to end (B05 SetVariables, B06 GetVariables, B07
GetBaseReport, B08 GetReport), with NotifyReport split into parts and collected on the
CSMS side."""

from __future__ import annotations

from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import RegistrationChanged
from ocpp_sansio.flows.device_model import (
    AttributeValue,
    ComponentKey,
    DeviceModel,
    DeviceVariable,
    InMemoryDeviceModel,
    ReportAnomaly,
    ReportCollector,
    ReportReceived,
    VariableChanged,
    VariableKey,
    standard_variables,
    variable,
)

V2 = ("2.0.1", "2.1")


def extra_variables() -> list[DeviceVariable]:
    return [
        variable("OCPPCommCtrlr", "WebSocketPingInterval", "30", data_type="integer", min_limit=0),
        variable("SecurityCtrlr", "BasicAuthPassword", "secret", mutability="WriteOnly"),
        variable(
            "SecurityCtrlr", "SecurityProfile", "1", data_type="integer", reboot_required=True
        ),
        variable("ClockCtrlr", "DateTime", "2025-01-01T00:00:00Z", data_type="dateTime"),
        variable(
            "ClockCtrlr",
            "TimeSource",
            "Heartbeat",
            data_type="SequenceList",
            values_list=("Heartbeat", "NTP", "GPS"),
        ),
        variable("DisplayMessageCtrlr", "Available", "false", data_type="boolean"),
        variable("EVSE", "Power", "22000", data_type="decimal", evse_id=1, mutability="ReadOnly"),
        variable("EVSE", "Problem", "true", data_type="boolean", evse_id=2),
        DeviceVariable(
            component=ComponentKey("SmartChargingCtrlr"),
            variable=VariableKey("LimitChangeSignificance"),
            data_type="decimal",
            attributes={
                "Actual": AttributeValue(value="10"),
                "MinSet": AttributeValue(value="1"),
                "MaxSet": AttributeValue(value="50"),
                "Target": AttributeValue(value=None),
            },
        ),
        variable("Custom", "Mode", "a", component_instance="One"),
        variable("Custom", "Mode", "b", component_instance="Two"),
    ]


def setup(version: str, **options: Any) -> tuple[Rig, DeviceModel, ReportCollector]:
    rig = Rig(version)
    store = InMemoryDeviceModel(standard_variables(evses={1: ("cType2",), 2: ("cCCS2", "cType2")}))
    for item in extra_variables():
        store.add(item)
    model = DeviceModel(rig.station, store, **options)
    collector = ReportCollector(rig.csms)
    rig.station_flows.append(model)
    rig.csms_flows.append(collector)
    return rig, model, collector


def component(rig: Rig, name: str, *, evse: int | None = None, instance: str | None = None) -> Any:
    m = rig.m
    return m.Component(name=name, instance=instance, evse=m.EVSE(id=evse) if evse else None)


def get_variables(rig: Rig, *items: tuple[Any, ...]) -> list[dict[str, Any]]:
    m = rig.m
    data = [
        m.GetVariableData(
            component=comp,
            variable=m.Variable(name=name),
            attribute_type=m.AttributeEnum(kind) if kind else None,
        )
        for comp, name, kind in items
    ]
    rig.csms_sends(m.GetVariablesRequest(get_variable_data=data))
    return list(rig.answers("station->csms")[-1]["getVariableResult"])


def set_variables(rig: Rig, *items: tuple[Any, ...]) -> list[dict[str, Any]]:
    m = rig.m
    data = [
        m.SetVariableData(
            component=comp,
            variable=m.Variable(name=name),
            attribute_value=value,
            attribute_type=m.AttributeEnum(kind) if kind else None,
        )
        for comp, name, value, kind in items
    ]
    rig.csms_sends(m.SetVariablesRequest(set_variable_data=data))
    return list(rig.answers("station->csms")[-1]["setVariableResult"])


# --- B06 GetVariables ---------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_b06_fr_01_to_11_one_result_per_item_with_statuses(version: str) -> None:
    rig, _, _ = setup(version)
    results = get_variables(
        rig,
        (component(rig, "OCPPCommCtrlr"), "HeartbeatInterval", None),
        (component(rig, "NoSuchCtrlr"), "X", None),
        (component(rig, "OCPPCommCtrlr"), "NoSuchVariable", None),
        (component(rig, "OCPPCommCtrlr"), "HeartbeatInterval", "Target"),
        (component(rig, "SecurityCtrlr"), "BasicAuthPassword", None),
        (component(rig, "EVSE", evse=1), "Power", "Actual"),
        (component(rig, "SmartChargingCtrlr"), "LimitChangeSignificance", "Target"),
    )
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in results] == [
        ("Accepted", "300"),  # B06.FR.10
        ("UnknownComponent", None),  # B06.FR.06
        ("UnknownVariable", None),  # B06.FR.07
        ("NotSupportedAttributeType", None),  # B06.FR.08
        ("Rejected", None),  # B06.FR.09: write-only
        ("Accepted", "22000"),
        ("Accepted", ""),  # B06.FR.13: supported but unset
    ]
    assert results[0]["attributeType"] == "Actual"  # B06.FR.11
    assert results[3]["attributeType"] == "Target"  # B06.FR.03
    assert results[0]["component"] == {"name": "OCPPCommCtrlr"}  # B06.FR.02


@pytest.mark.parametrize("version", V2)
def test_b06_fr_14_15_instances_are_addressed_exactly(version: str) -> None:
    rig, _, _ = setup(version)
    m = rig.m
    results = get_variables(
        rig,
        (component(rig, "Custom", instance="two"), "Mode", None),  # case-insensitive
        (component(rig, "Custom"), "Mode", None),
        (component(rig, "DeviceDataCtrlr"), "ItemsPerMessage", None),
    )
    assert results[0]["attributeValue"] == "b"
    assert results[1]["attributeStatus"] == "UnknownComponent"
    assert results[2]["attributeStatus"] == "UnknownVariable"
    data = m.GetVariableData(
        component=component(rig, "DeviceDataCtrlr"),
        variable=m.Variable(name="ItemsPerMessage", instance="GetVariables"),
    )
    rig.csms_sends(m.GetVariablesRequest(get_variable_data=[data]))
    assert rig.answers("station->csms")[-1]["getVariableResult"][0]["attributeValue"] == "50"


@pytest.mark.parametrize("version", V2)
def test_b06_fr_16_more_items_than_items_per_message_is_a_callerror(version: str) -> None:
    rig, _, _ = setup(version)
    items = [(component(rig, "OCPPCommCtrlr"), "HeartbeatInterval", None)] * 51
    m = rig.m
    data = [
        m.GetVariableData(component=comp, variable=m.Variable(name=name)) for comp, name, _ in items
    ]
    rig.csms_sends(m.GetVariablesRequest(get_variable_data=data))
    (error,) = rig.errors("station->csms")
    assert error[2] == "OccurrenceConstraintViolation"


# --- B05 SetVariables ---------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_b05_fr_01_to_12_per_item_results(version: str) -> None:
    rig, model, _ = setup(version)
    results = set_variables(
        rig,
        (component(rig, "OCPPCommCtrlr"), "HeartbeatInterval", "120", None),
        (component(rig, "NoSuchCtrlr"), "X", "1", None),
        (component(rig, "OCPPCommCtrlr"), "Nope", "1", None),
        (component(rig, "OCPPCommCtrlr"), "HeartbeatInterval", "1", "MaxSet"),
        (component(rig, "OCPPCommCtrlr"), "HeartbeatInterval", "soon", None),
        (component(rig, "OCPPCommCtrlr"), "WebSocketPingInterval", "-3", None),
        (component(rig, "EVSE", evse=1), "Power", "1", None),
        (component(rig, "SecurityCtrlr"), "SecurityProfile", "2", None),
    )
    assert [r["attributeStatus"] for r in results] == [
        "Accepted",  # B05.FR.10
        "UnknownComponent",  # B05.FR.04
        "UnknownVariable",  # B05.FR.05
        "NotSupportedAttributeType",  # B05.FR.06
        "Rejected",  # B05.FR.07: badly formatted
        "Rejected",  # B05.FR.08: out of range
        "Rejected",  # B05.FR.09: read-only
        "RebootRequired",
    ]
    assert results[0]["attributeType"] == "Actual"  # B05.FR.12
    assert results[4]["attributeStatusInfo"] == {"reasonCode": "InvalidValue"}
    assert model.setting("OCPPCommCtrlr.HeartbeatInterval") == "120"
    changes = [e for e in model.events() if isinstance(e, VariableChanged)]
    assert [(c.variable.name, c.value, c.reboot_required) for c in changes] == [
        ("HeartbeatInterval", "120", False),
        ("SecurityProfile", "2", True),
    ]


@pytest.mark.parametrize("version", V2)
def test_b05_fr_07_08_values_checked_by_data_type(version: str) -> None:
    rig, _, _ = setup(version)
    cases = [
        ("ClockCtrlr", "DateTime", "2025-06-01T10:00:00Z", "Accepted"),
        ("ClockCtrlr", "DateTime", "2025-06-01 10:00", "Rejected"),
        ("ClockCtrlr", "TimeSource", "NTP,Heartbeat", "Accepted"),
        ("ClockCtrlr", "TimeSource", "NTP,Sundial", "Rejected"),
        ("DisplayMessageCtrlr", "Available", "TRUE", "Accepted"),
        ("DisplayMessageCtrlr", "Available", "1", "Rejected"),
        ("SmartChargingCtrlr", "LimitChangeSignificance", "49.5", "Accepted"),
        ("SmartChargingCtrlr", "LimitChangeSignificance", "0.5", "Rejected"),  # below MinSet
        ("AlignedDataCtrlr", "Measurands", "Voltage,SoC", "Accepted"),
        ("AlignedDataCtrlr", "Measurands", "Voltage,Sunshine", "Rejected"),
    ]
    results = set_variables(
        rig, *[(component(rig, comp), name, value, None) for comp, name, value, _ in cases]
    )
    assert [r["attributeStatus"] for r in results] == [expected for *_, expected in cases]


# --- B07 / B08 reports ------------------------------------------------------------------------


def report_names(data: tuple[Any, ...]) -> list[tuple[str, str]]:
    return [(d.component.name, d.variable.name) for d in data]


@pytest.mark.parametrize("version", V2)
def test_b07_full_inventory_in_parts_with_seq_no_and_tbc(version: str) -> None:
    rig, model, collector = setup(version, report_part_size=10)
    total = len(list(model.store.variables()))
    rig.csms_sends(
        rig.m.GetBaseReportRequest(request_id=7, report_base=rig.m.ReportBaseEnum.FULL_INVENTORY)
    )
    # B07.FR.01 / FR.05: the answer goes out before the first part.
    actions = rig.call_actions()
    assert rig.answers("station->csms")[-1] == {"status": "Accepted"}
    parts = rig.calls("NotifyReport")
    assert [p["seqNo"] for p in parts] == list(range(len(parts)))  # B07.FR.10
    assert {p["requestId"] for p in parts} == {7}  # B07.FR.04
    assert [p.get("tbc", False) for p in parts] == [True] * (len(parts) - 1) + [False]
    assert len(parts) == -(-total // 10)
    assert actions.count("NotifyReport") == len(parts)
    (received,) = [e for e in collector.events() if isinstance(e, ReportReceived)]
    assert received.request_id == 7 and len(received.report_data) == total
    first = received.report_data[0]
    assert first.variable_characteristics is not None  # B08.FR.12 / B07.FR.08
    by_name = {(d.component.name, d.variable.name): d for d in received.report_data}
    secret = by_name[("SecurityCtrlr", "BasicAuthPassword")].variable_attribute[0]
    assert secret.value is None and str(secret.mutability) == "WriteOnly"
    significance = by_name[("SmartChargingCtrlr", "LimitChangeSignificance")]
    assert len(significance.variable_attribute) == 4  # B07.FR.11: every attribute type


@pytest.mark.parametrize("version", V2)
def test_b07_configuration_and_summary_inventories(version: str) -> None:
    rig, _, collector = setup(version)
    m = rig.m
    for request_id, base in ((1, "ConfigurationInventory"), (2, "SummaryInventory")):
        rig.csms_sends(
            m.GetBaseReportRequest(request_id=request_id, report_base=m.ReportBaseEnum(base))
        )
    configuration, summary = [e for e in collector.events() if isinstance(e, ReportReceived)]
    names = report_names(configuration.report_data)
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in names
    assert ("OCPPCommCtrlr", "MessageTimeout") not in names  # B07.FR.07: read-only
    summary_names = report_names(summary.report_data)
    assert ("EVSE", "AvailabilityState") in summary_names
    assert ("EVSE", "Problem") in summary_names  # B07.FR.09: a component in trouble
    assert ("OCPPCommCtrlr", "HeartbeatInterval") not in summary_names


@pytest.mark.parametrize("version", V2)
def test_b07_fr_02_05_unsupported_base_gets_not_supported_and_no_report(version: str) -> None:
    rig, _, _ = setup(version, supported_bases={"FullInventory", "ConfigurationInventory"})
    rig.csms_sends(
        rig.m.GetBaseReportRequest(
            request_id=3, report_base=rig.m.ReportBaseEnum("SummaryInventory")
        )
    )
    assert rig.answers("station->csms")[-1] == {"status": "NotSupported"}
    assert rig.calls("NotifyReport") == []


@pytest.mark.parametrize("version", V2)
def test_b08_component_variables_with_wildcards(version: str) -> None:
    rig, _, collector = setup(version)
    m = rig.m

    def report(request_id: int, *wanted: Any, criteria: list[str] | None = None) -> list[Any]:
        rig.csms_sends(
            m.GetReportRequest(
                request_id=request_id,
                component_variable=list(wanted) or None,
                component_criteria=[m.ComponentCriterionEnum(c) for c in criteria]
                if criteria
                else None,
            )
        )
        status = rig.answers("station->csms")[-1]["status"]
        received = [e for e in collector.events() if isinstance(e, ReportReceived)]
        return [status, *(report_names(r.report_data) for r in received)]

    # B08.FR.20: no variable means every variable of the component.
    status, names = report(1, m.ComponentVariable(component=m.Component(name="AuthCtrlr")))
    assert status == "Accepted" and len(names) == 5 and {n for n, _ in names} == {"AuthCtrlr"}
    # B08.FR.23: no EVSE means every EVSE's component (and the top-level one).
    status, names = report(
        2,
        m.ComponentVariable(
            component=m.Component(name="EVSE"), variable=m.Variable(name="AvailabilityState")
        ),
    )
    assert names == [("EVSE", "AvailabilityState")] * 2
    # B08.FR.22: an EVSE without connector means each of its connectors.
    status, names = report(
        3,
        m.ComponentVariable(
            component=m.Component(name="Connector", evse=m.EVSE(id=2)),
            variable=m.Variable(name="ConnectorType"),
        ),
    )
    assert len(names) == 2
    # B08.FR.25: no instance means every instance.
    status, names = report(4, m.ComponentVariable(component=m.Component(name="custom")))
    assert len(names) == 2
    # B08.FR.10: criterion Problem.
    status, names = report(5, criteria=["Problem"])
    assert {n for n, _ in names} == {"EVSE"}
    # B08.FR.15: nothing matches.
    assert report(6, m.ComponentVariable(component=m.Component(name="Nothing"))) == [
        "EmptyResultSet"
    ]
    assert rig.calls("NotifyReport")[-1]["requestId"] == 5


@pytest.mark.parametrize("version", V2)
def test_b08_fr_08_available_criterion_keeps_components_without_the_variable(version: str) -> None:
    rig, _, collector = setup(version)
    m = rig.m
    rig.csms_sends(
        m.GetReportRequest(
            request_id=9,
            component_criteria=[m.ComponentCriterionEnum("Available")],
            component_variable=[
                m.ComponentVariable(component=m.Component(name=name))
                for name in ("DisplayMessageCtrlr", "OCPPCommCtrlr")
            ],
        )
    )
    (received,) = [e for e in collector.events() if isinstance(e, ReportReceived)]
    components = {name for name, _ in report_names(received.report_data)}
    assert "DisplayMessageCtrlr" not in components  # Available is false
    assert "OCPPCommCtrlr" in components  # has no Available variable


@pytest.mark.parametrize("version", V2)
def test_TC_B_16_CS_criteria_alone_report_only_the_criteria_variables(version: str) -> None:
    rig, _, collector = setup(version)
    m = rig.m
    rig.csms_sends(
        m.GetReportRequest(request_id=9, component_criteria=[m.ComponentCriterionEnum("Enabled")])
    )
    (received,) = [e for e in collector.events() if isinstance(e, ReportReceived)]
    assert received.report_data
    for data in received.report_data:
        assert data.variable.name == "Enabled"
        assert data.variable_attribute[0].value == "true"


@pytest.mark.parametrize("version", V2)
def test_b02_fr_02_requested_report_goes_out_while_pending(version: str) -> None:
    rig = Rig(version, boot_status="Pending")
    model = DeviceModel(rig.station, InMemoryDeviceModel(standard_variables()), report_part_size=5)
    rig.station_flows.append(model)
    rig.csms_flows.append(ReportCollector(rig.csms))
    assert any(isinstance(e, RegistrationChanged) for e in rig.pair.station_events)
    rig.csms_sends(
        rig.m.GetBaseReportRequest(request_id=1, report_base=rig.m.ReportBaseEnum.FULL_INVENTORY)
    )
    parts = rig.calls("NotifyReport")
    assert len(parts) > 1 and not parts[-1].get("tbc")


@pytest.mark.parametrize("version", V2)
def test_collector_flags_unknown_request_ids_and_parts_out_of_order(version: str) -> None:
    rig, _, collector = setup(version)
    m = rig.m
    for seq_no, tbc in ((0, True), (2, None)):
        rig.station.send_request(
            m.NotifyReportRequest(
                request_id=42, generated_at=wall(rig.now), seq_no=seq_no, tbc=tbc
            ),
            rig.now,
        )
    rig.flush()
    problems = [e.problem for e in collector.events() if isinstance(e, ReportAnomaly)]
    assert len(problems) == 2 and "requestId" in problems[0]


def test_device_model_is_not_for_1_6() -> None:
    rig = Rig("1.6")
    with pytest.raises(LocalProtocolError):
        DeviceModel(rig.station, InMemoryDeviceModel())


def test_settings_read_station_level_variables() -> None:
    rig = Rig("2.0.1")
    model = DeviceModel(rig.station, InMemoryDeviceModel(standard_variables()))
    assert model.setting("TxCtrlr.StopTxOnInvalidId") == "true"
    assert model.setting("OCPPCommCtrlr.MessageAttempts[TransactionEvent]") == "3"
    assert model.setting("NoDot") is None
    assert model.setting("TxCtrlr.Missing") is None


@settings(max_examples=120, deadline=None)
@given(
    component_name=st.sampled_from(["OCPPCommCtrlr", "ClockCtrlr", "Custom", "Nope", "EVSE"]),
    variable_name=st.sampled_from(["HeartbeatInterval", "DateTime", "TimeSource", "Mode", "Power"]),
    attribute=st.sampled_from([None, "Actual", "Target", "MinSet", "MaxSet"]),
    value=st.one_of(
        st.text(max_size=20), st.sampled_from(["1", "-1", "true", "NTP", "2025-01-01T00:00:00Z"])
    ),
)
def test_random_set_then_get_never_stores_a_value_that_breaks_its_type(
    component_name: str, variable_name: str, attribute: str | None, value: str
) -> None:
    rig = Rig("2.0.1", connect=False)
    store = InMemoryDeviceModel([*standard_variables(), *extra_variables()])
    model = DeviceModel(rig.station, store)
    m = rig.m
    item = m.SetVariableData(
        component=m.Component(name=component_name),
        variable=m.Variable(name=variable_name),
        attribute_value=value,
        attribute_type=m.AttributeEnum(attribute) if attribute else None,
    )
    (result,) = model.set_variables(
        m.SetVariablesRequest(set_variable_data=[item])
    ).set_variable_result
    status = str(result.attribute_status)
    found = store.lookup(ComponentKey(component_name), VariableKey(variable_name))
    if status in ("Accepted", "RebootRequired"):
        assert found is not None
        stored = found.attributes[attribute or "Actual"].value
        assert stored == value
        if found.data_type == "integer":
            int(stored)
    get = m.GetVariableData(
        component=m.Component(name=component_name),
        variable=m.Variable(name=variable_name),
        attribute_type=m.AttributeEnum(attribute) if attribute else None,
    )
    (got,) = model.get_variables(m.GetVariablesRequest(get_variable_data=[get])).get_variable_result
    if status in ("Accepted", "RebootRequired"):
        assert got.attribute_value == value
