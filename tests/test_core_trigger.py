"""TriggerMessage on both sides (F06; 1.6 §5.17 and ExtendedTriggerMessage)."""

from __future__ import annotations

from typing import Any

import pytest
from _corekit import (
    MODULES,
    V2,
    VERSIONS,
    CsmsApp,
    StationApp,
    decoded,
    make_pair,
    request,
    status_notification,
)

from ocpp_sansio import LocalProtocolError
from ocpp_sansio.config import StationConfig
from ocpp_sansio.events import RequestReceived, TriggerAccepted
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION


def trigger(version: str, what: str, scope: int | None = None, connector: int | None = 1) -> Any:
    m = MODULES[version]
    if version == "1.6":
        return m.TriggerMessageRequest(requested_message=m.MessageTrigger(what), connector_id=scope)
    evse = None if scope is None else m.EVSE(id=scope, connector_id=connector)
    return m.TriggerMessageRequest(requested_message=m.MessageTriggerEnum(what), evse=evse)


def trigger_answers(pair: Any) -> list[str]:
    return [m[2]["status"] for m in decoded(pair.frames(TO_CSMS)) if m[0] == 3 and "status" in m[2]]


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_04_the_answer_precedes_the_triggered_message(version: str) -> None:
    pair = make_pair(version, station_config=StationConfig(connectors=2))
    pair.csms.send_request(trigger(version, "StatusNotification", 2), pair.now)
    pair.flush()
    to_csms = decoded(pair.frames(TO_CSMS))
    answer_at = next(i for i, m in enumerate(to_csms) if m[0] == 3)
    status_at = next(i for i, m in enumerate(to_csms) if m[0] == 2 and m[2] == "StatusNotification")
    assert answer_at < status_at
    assert to_csms[answer_at][2] == {"status": "Accepted"}


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_triggered_message_may_go_out_while_pending(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=300))
    pair.csms.send_request(trigger(version, "StatusNotification", 1), pair.now)
    pair.flush()
    sent = [m[2] for m in decoded(pair.frames(TO_CSMS)) if m[0] == 2]
    assert sent == ["BootNotification", "StatusNotification"]


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_heartbeat_trigger_sends_a_heartbeat(version: str) -> None:
    pair = make_pair(version)
    pair.csms.send_request(trigger(version, "Heartbeat"), pair.now)
    pair.flush()
    assert [m[2] for m in decoded(pair.frames(TO_CSMS)) if m[0] == 2][-1] == "Heartbeat"


@pytest.mark.parametrize("version", VERSIONS)
def test_boot_trigger_while_pending_boots_before_the_interval(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=300))
    pair.csms.send_request(trigger(version, "BootNotification"), pair.now)
    pair.flush()
    boots = [m for m in decoded(pair.frames(TO_CSMS)) if m[0] == 2]
    assert [m[2] for m in boots] == ["BootNotification", "BootNotification"]


@pytest.mark.parametrize("version", V2)
def test_f06_fr_17_boot_trigger_after_accepted_boot_is_rejected(version: str) -> None:
    pair = make_pair(version)
    pair.csms.send_request(trigger(version, "BootNotification"), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Rejected"
    assert [m[2] for m in decoded(pair.frames(TO_CSMS)) if m[0] == 2] == ["BootNotification"]


def test_f06_fr_17_does_not_apply_to_1_6_boot_trigger() -> None:
    pair = make_pair("1.6")
    pair.csms.send_request(trigger("1.6", "BootNotification"), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Accepted"
    sent = [m[2] for m in decoded(pair.frames(TO_CSMS)) if m[0] == 2]
    assert sent == ["BootNotification", "BootNotification"]


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_05_08_unsupported_trigger_answers_not_implemented(version: str) -> None:
    config = StationConfig(supported_triggers=frozenset({"StatusNotification"}))
    pair = make_pair(version, station_config=config)
    pair.csms.send_request(trigger(version, "MeterValues", 1), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "NotImplemented"


def accepted_triggers(pair: Any) -> list[str]:
    return [e.action for e in pair.station_events if isinstance(e, TriggerAccepted)]


@pytest.mark.parametrize(
    "what", ["StatusNotification", "MeterValues", "FirmwareStatusNotification"]
)
@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_08_a_message_no_one_sends_is_not_implemented_by_default(
    version: str, what: str
) -> None:
    pair = make_pair(version, triggers=frozenset())
    pair.csms.send_request(trigger(version, what, 1), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "NotImplemented"
    assert accepted_triggers(pair) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_08_the_core_answers_the_boot_and_heartbeat_triggers_itself(version: str) -> None:
    pair = make_pair(version, triggers=frozenset())
    assert pair.station.served_triggers == {"BootNotification", "Heartbeat"}
    pair.csms.send_request(trigger(version, "Heartbeat"), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Accepted"
    assert [m[2] for m in decoded(pair.frames(TO_CSMS)) if m[0] == 2][-1] == "Heartbeat"


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_08_the_application_declares_what_it_sends(version: str) -> None:
    config = StationConfig(supported_triggers=frozenset({"StatusNotification"}))
    pair = make_pair(version, station_config=config)
    pair.csms.send_request(trigger(version, "StatusNotification", 1), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Accepted"
    assert accepted_triggers(pair) == ["StatusNotification"]


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_08_a_flow_registers_the_triggers_it_serves(version: str) -> None:
    pair = make_pair(version, triggers=frozenset())
    pair.station.serve_triggers("MeterValues")
    pair.csms.send_request(trigger(version, "MeterValues", 1), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Accepted"
    assert "MeterValues" in pair.station.served_triggers


@pytest.mark.parametrize("version", VERSIONS)
def test_serving_a_message_the_station_never_sends_is_refused(version: str) -> None:
    pair = make_pair(version, triggers=frozenset())
    with pytest.raises(LocalProtocolError, match=r"no OCPP .* station message"):
        pair.station.serve_triggers("Reset")  # the CSMS sends Reset
    with pytest.raises(LocalProtocolError):
        pair.station.serve_triggers("NoSuchMessage")


def test_supported_triggers_are_checked_when_the_config_is_built() -> None:
    with pytest.raises(ValueError, match="'Statusnotification' is no requestedMessage value"):
        StationConfig(supported_triggers=frozenset({"Statusnotification"}))
    with pytest.raises(TypeError, match="None no longer means all"):
        StationConfig(supported_triggers=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_11_absent_scope_means_every_connector(version: str) -> None:
    seen: list[TriggerAccepted] = []

    def station_app(core: Any, event: Any, now: float) -> None:
        if isinstance(event, TriggerAccepted):
            seen.append(event)
        StationApp(version)(core, event, now)

    pair = make_pair(version, station_app=station_app, station_config=StationConfig(connectors=3))
    pair.csms.send_request(trigger(version, "MeterValues"), pair.now)
    pair.flush()
    assert seen[0].targets == frozenset({1, 2, 3})


def test_1_6_status_trigger_without_connector_covers_the_station_and_every_connector() -> None:
    pair = make_pair("1.6", station_config=StationConfig(connectors=2))
    pair.csms.send_request(trigger("1.6", "StatusNotification"), pair.now)
    pair.flush()
    connectors = [
        m[3]["connectorId"]
        for m in decoded(pair.frames(TO_CSMS))
        if m[0] == 2 and m[2] == "StatusNotification"
    ]
    assert connectors == [0, 1, 2]


@pytest.mark.parametrize("version", V2)
def test_f06_fr_12_status_trigger_without_evse_is_rejected(version: str) -> None:
    pair = make_pair(version)
    pair.csms.send_request(trigger(version, "StatusNotification"), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Rejected"


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_03_an_irrelevant_scope_is_ignored(version: str) -> None:
    pair = make_pair(version, station_config=StationConfig(connectors=1))
    pair.csms.send_request(trigger(version, "Heartbeat", 9), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
def test_trigger_for_a_connector_that_does_not_exist_is_rejected(version: str) -> None:
    pair = make_pair(version, station_config=StationConfig(connectors=1))
    pair.csms.send_request(trigger(version, "MeterValues", 5), pair.now)
    pair.flush()
    assert trigger_answers(pair)[-1] == "Rejected"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_waiting_message_of_the_same_kind_satisfies_the_trigger(version: str) -> None:
    events: list[Any] = []

    def station_app(core: Any, event: Any, now: float) -> None:
        events.append(event)
        if isinstance(event, RequestReceived):
            StationApp(version)(core, event, now)

    app = CsmsApp(version, silent_for={"Heartbeat"})
    pair = make_pair(version, csms_app=app, station_app=station_app)
    # Keep the channel busy so the StatusNotification waits in the queue.
    pair.advance(60)
    pair.station.send_request(status_notification(version, 1), pair.now)
    pair.csms.send_request(trigger(version, "StatusNotification", 1), pair.now)
    pair.flush()
    assert not any(isinstance(e, TriggerAccepted) for e in events)
    assert trigger_answers(pair)[-1] == "Accepted"


def test_extended_trigger_status_for_connector_zero_is_rejected() -> None:
    from ocpp_sansio.messages import v16

    pair = make_pair("1.6")
    pair.csms.send_request(
        v16.ExtendedTriggerMessageRequest(
            requested_message=v16.MessageTriggerEnum.STATUS_NOTIFICATION, connector_id=0
        ),
        pair.now,
    )
    pair.flush()
    assert trigger_answers(pair)[-1] == "Rejected"


def test_extended_trigger_firmware_status_means_signed_firmware_status() -> None:
    from ocpp_sansio.messages import v16

    seen: list[TriggerAccepted] = []
    pair = make_pair(
        "1.6",
        station_app=lambda core, event, now: (
            seen.append(event) if isinstance(event, TriggerAccepted) else None
        ),
    )
    pair.csms.send_request(
        v16.ExtendedTriggerMessageRequest(
            requested_message=v16.MessageTriggerEnum.FIRMWARE_STATUS_NOTIFICATION
        ),
        pair.now,
    )
    pair.flush()
    assert seen[0].action == "SignedFirmwareStatusNotification"


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_correlates_the_triggered_message_with_its_trigger(version: str) -> None:
    pair = make_pair(version)
    trigger_id = pair.csms.send_request(trigger(version, "StatusNotification", 1), pair.now)
    pair.flush()
    received = [
        e
        for e in pair.csms_events
        if isinstance(e, RequestReceived) and e.action == "StatusNotification"
    ]
    assert received[0].requested_by == trigger_id


@pytest.mark.parametrize("version", V2)
def test_b01_fr_10_csms_accepts_a_triggered_message_from_a_pending_station(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Pending", interval=300))
    pair.csms.send_request(trigger(version, "StatusNotification", 1), pair.now)
    pair.flush()
    answers = [m for m in decoded(pair.frames(TO_STATION)) if m[0] in (3, 4)]
    assert [m[0] for m in answers] == [3, 3]  # boot answer, StatusNotification answer


@pytest.mark.parametrize("version", VERSIONS)
def test_trigger_window_closes(version: str) -> None:
    pair = make_pair(
        version,
        csms_app=CsmsApp(version, boot_status="Pending", interval=3000),
        station_app=lambda core, event, now: None,
        station_config=StationConfig(trigger_window=10),
    )
    pair.csms.send_request(trigger(version, "StatusNotification", 1), pair.now)
    pair.flush()
    pair.advance(11)
    from ocpp_sansio import LocalProtocolError

    with pytest.raises(LocalProtocolError):
        pair.station.send_request(status_notification(version, 1), pair.now)


def test_request_helper_builds_trigger_requests() -> None:
    assert request("2.0.1", "TriggerMessage").requested_message == "BootNotification"


@pytest.mark.parametrize("version", VERSIONS)
def test_b01_fr_08_a_booting_station_rejects_triggers_it_cannot_honour(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, silent_for={"BootNotification"}))
    pair.station.receive_text(
        '[2,"t1","TriggerMessage",{"requestedMessage":"Heartbeat"}]', pair.now
    )
    assert decoded(pair.station.data_to_send()) == [[3, "t1", {"status": "Rejected"}]]


@pytest.mark.parametrize(
    ("version", "flow", "served"),
    [
        (
            "1.6",
            "FirmwareUpdater",
            {"FirmwareStatusNotification", "SignedFirmwareStatusNotification"},
        ),
        ("2.0.1", "FirmwareUpdater", {"FirmwareStatusNotification"}),
        ("2.1", "FirmwareUpdater", {"FirmwareStatusNotification"}),
        ("1.6", "LogUploader", {"LogStatusNotification"}),
        ("2.0.1", "LogUploader", {"LogStatusNotification"}),
        ("1.6", "DiagnosticsUploader", {"DiagnosticsStatusNotification"}),
    ],
)
def test_f06_fr_08_flows_that_send_a_triggered_message_register_it(
    version: str, flow: str, served: set[str]
) -> None:
    import ocpp_sansio.flows

    pair = make_pair(version, triggers=frozenset())
    getattr(ocpp_sansio.flows, flow)(pair.station)
    assert pair.station.served_triggers == {"BootNotification", "Heartbeat", *served}
