"""The simulated station of ``ocpp-sansio station`` and the demo CSMS's answers, in memory.

A ``SimulatedStation`` core and a ``CsmsCore`` answered by ``DemoCsms``'s flows are wired through
the in-memory pair with a virtual clock: no sockets, no sleeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ocpp_sansio import registry
from ocpp_sansio._core import counter_ids
from ocpp_sansio.apps.demo_csms import EXERCISE, DemoCsms
from ocpp_sansio.apps.simulator import RebootRequested, SimulatedStation
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import CallErrorReceived, RequestReceived, ResponseReceived
from ocpp_sansio.flows import FlowHost
from ocpp_sansio.flows._base import build
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.smart_charging import (
    ChargingProfile,
    ChargingSchedule,
    SchedulePeriod,
    profile_to_message,
)
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.builders import minimal
from ocpp_sansio.testing.pair import TO_CSMS, InMemoryPair

MODULES = {"1.6": v16, "2.0.1": v201, "2.1": v21}
ALL_VERSIONS = ("1.6", "2.0.1", "2.1")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Rig:
    """A simulated station against the demo CSMS's answers, in memory."""

    def __init__(self, version: str, *, connectors: int = 1, boot_status: str = "Accepted"):
        self.version = version
        self.m = MODULES[version]
        self.demo = DemoCsms(boot_status=boot_status, heartbeat_interval=300)
        self.demo.wall_clock = lambda now: EPOCH
        self.sim = SimulatedStation(
            "CS1", version, connectors=connectors, id_generator=counter_ids("s")
        )
        self.station_events: list[Any] = []
        csms = CsmsCore(version, "CS1", id_generator=counter_ids("c"))
        self.flows = FlowHost(csms, self.demo.flows(csms))
        self.pair = InMemoryPair(
            self.sim.core,
            csms,
            on_csms_event=self._on_csms,
            on_station_event=lambda core, event, now: self.station_events.append(event),
        )
        self.pair.connect()
        self.pair.advance(0.1)

    def _on_csms(self, core: CsmsCore, event: Any, now: float) -> None:
        assert not (isinstance(event, RequestReceived) and not self.flows.route(event, now)), event

    def call(self, request: Any, *, then: float = 0.1) -> Any:
        """Send ``request`` from the CSMS; its answer (or the CallErrorReceived)."""
        message_id = self.pair.csms.send_request(request, self.pair.now)
        self.pair.advance(then)
        for event in self.pair.csms_events:
            if isinstance(event, ResponseReceived) and event.message_id == message_id:
                return event.response
            if isinstance(event, CallErrorReceived) and event.message_id == message_id:
                return event
        raise AssertionError(f"no answer to {request!r}")

    def sent(self, action: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(action, payload) of the station's CALLs, optionally one action only."""
        out = []
        for text in self.pair.frames(TO_CSMS):
            frame = json.loads(text)
            if frame[0] == 2 and action in (None, frame[2]):
                out.append((frame[2], frame[3]))
        return out

    def statuses(self) -> list[tuple[int, str]]:
        key = "status" if self.version == "1.6" else "connectorStatus"
        target = "connectorId" if self.version == "1.6" else "evseId"
        return [(p[target], p[key]) for _, p in self.sent("StatusNotification")]

    def reboots(self) -> list[str]:
        return [e.reason for e in self.station_events if isinstance(e, RebootRequested)]


def token(rig: Rig, value: str = "TAG") -> Any:
    if rig.version == "1.6":
        return value
    return build(rig.m.IdToken, id_token=value, type="Central")


def remote_start(rig: Rig, evse: int = 1) -> Any:
    m = rig.m
    if rig.version == "1.6":
        return rig.call(m.RemoteStartTransactionRequest(id_tag="TAG", connector_id=evse))
    request = m.RequestStartTransactionRequest(id_token=token(rig), remote_start_id=9, evse_id=evse)
    return rig.call(request)


def remote_stop(rig: Rig) -> Any:
    m = rig.m
    tx = rig.sim.connectors[1].transaction
    assert tx is not None and tx.transaction_id is not None
    if rig.version == "1.6":
        return rig.call(m.RemoteStopTransactionRequest(transaction_id=tx.transaction_id))
    return rig.call(m.RequestStopTransactionRequest(transaction_id=tx.transaction_id))


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_b01_fr_05_boot_then_every_connector_status(version: str) -> None:
    rig = Rig(version, connectors=2)
    actions = [action for action, _ in rig.sent()]
    assert actions[0] == "BootNotification"
    expected = [(0, "Available")] if version == "1.6" else []
    expected += [(1, "Available"), (2, "Available")]
    assert rig.statuses() == expected
    assert rig.sim.accepted_at is not None


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_remote_start_and_stop_run_a_transaction(version: str) -> None:
    rig = Rig(version)
    assert str(remote_start(rig).status) == "Accepted"
    rig.pair.advance(1)
    assert str(remote_stop(rig).status) == "Accepted"
    rig.pair.advance(1)
    charging = "Charging" if version == "1.6" else "Occupied"
    assert rig.statuses()[-2:] == [(1, charging), (1, "Available")]
    if version == "1.6":
        assert [a for a, _ in rig.sent()][-4:] == [
            "StartTransaction",
            "StatusNotification",
            "StopTransaction",
            "StatusNotification",
        ]
        assert rig.sent("StopTransaction")[0][1]["reason"] == "Remote"
        assert rig.sent("StopTransaction")[0][1]["meterStop"] > 0
    else:
        events = [p for _, p in rig.sent("TransactionEvent")]
        assert [(e["eventType"], e["triggerReason"]) for e in events] == [
            ("Started", "RemoteStart"),
            ("Ended", "RemoteStop"),
        ]
        assert events[0]["transactionInfo"]["remoteStartId"] == 9
        assert events[1]["transactionInfo"]["stoppedReason"] == "Remote"
        # AuthCtrlr.AuthorizeRemoteStart is true by default: Authorize goes first.
        actions = [a for a, _ in rig.sent()]
        assert actions.index("Authorize") == actions.index("TransactionEvent") - 1


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_remote_start_on_a_busy_connector_is_rejected(version: str) -> None:
    rig = Rig(version)
    remote_start(rig)
    rig.pair.advance(1)
    assert str(remote_start(rig).status) == "Rejected"


def test_1_6_periodic_meter_values_follow_the_configuration() -> None:
    rig = Rig("1.6")
    changed = rig.call(v16.ChangeConfigurationRequest(key="MeterValueSampleInterval", value="2"))
    assert str(changed.status) == "Accepted"
    remote_start(rig)
    rig.pair.advance(7)
    samples = rig.sent("MeterValues")
    assert len(samples) == 3
    readings = [float(p["meterValue"][0]["sampledValue"][0]["value"]) for _, p in samples]
    assert readings == sorted(readings) and readings[0] > 0
    assert all(p["transactionId"] == 1 for _, p in samples)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_g03_fr_05_availability_change_waits_for_the_transaction(version: str) -> None:
    rig = Rig(version)
    remote_start(rig)
    rig.pair.advance(1)
    m = rig.m
    if version == "1.6":
        request = build(m.ChangeAvailabilityRequest, connector_id=1, type="Inoperative")
    else:
        request = build(
            m.ChangeAvailabilityRequest, operational_status="Inoperative", evse=m.EVSE(id=1)
        )
    assert str(rig.call(request).status) == "Scheduled"
    assert rig.statuses()[-1][1] != "Unavailable"
    remote_stop(rig)
    assert rig.statuses()[-1] == (1, "Unavailable")
    # Asking for the state already in force is Accepted (G03.FR.03).
    assert str(rig.call(request).status) == "Accepted"
    assert str(remote_start(rig).status) == "Rejected"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_triggered_status_follows_its_answer(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    if version == "1.6":
        request = build(m.TriggerMessageRequest, requested_message="StatusNotification")
    else:
        request = build(
            m.TriggerMessageRequest,
            requested_message="StatusNotification",
            evse=m.EVSE(id=1, connector_id=1),
        )
    before = len(rig.statuses())
    assert str(rig.call(request).status) == "Accepted"
    expected = [(0, "Available"), (1, "Available")] if version == "1.6" else [(1, "Available")]
    assert rig.statuses()[before:] == expected
    # F06.FR.04: the answer was on the wire before the triggered message.
    texts = [json.loads(t) for t in rig.pair.frames()]
    answer = next(
        i for i, f in enumerate(texts) if f[0] == 3 and f[2].get("status") == "Accepted" and i > 4
    )
    assert texts[answer + 1][2] == "StatusNotification"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_trigger_for_something_the_simulator_cannot_make_is_not_implemented(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    if version == "1.6":
        request = build(
            m.ExtendedTriggerMessageRequest, requested_message="SignChargePointCertificate"
        )
    else:
        request = build(m.TriggerMessageRequest, requested_message="SignChargingStationCertificate")
    assert str(rig.call(request).status) == "NotImplemented"


def test_1_6_firmware_update_reports_each_step_then_reboots() -> None:
    rig = Rig("1.6")
    update = v16.UpdateFirmwareRequest(location="https://example.com/fw.bin", retrieve_date=EPOCH)
    rig.call(update)
    rig.pair.advance(5)
    statuses = [p["status"] for _, p in rig.sent("FirmwareStatusNotification")]
    assert statuses == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert rig.reboots() == ["FirmwareUpdate"]
    rebooted = rig.sim.rebooted()
    assert rebooted.core.boot_request.firmware_version == "sim-1.0+update"


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_l02_firmware_update_then_boot_reason_firmware_update(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    update = m.UpdateFirmwareRequest(
        request_id=4,
        firmware=m.Firmware(location="https://example.com/fw", retrieve_date_time=EPOCH),
    )
    assert str(rig.call(update).status) == "Accepted"
    rig.pair.advance(5)
    sent = [p for _, p in rig.sent("FirmwareStatusNotification")]
    assert [p["status"] for p in sent] == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert {p["requestId"] for p in sent} == {4}  # L02.FR.06
    assert rig.reboots() == ["FirmwareUpdate"]
    assert str(rig.sim.rebooted().core.boot_request.reason) == "FirmwareUpdate"


def test_1_6_reset_stops_the_transaction_then_reboots() -> None:
    rig = Rig("1.6")
    remote_start(rig)
    rig.pair.advance(1)
    assert str(rig.call(build(v16.ResetRequest, type="Soft")).status) == "Accepted"
    rig.pair.advance(1)
    assert rig.sent("StopTransaction")[0][1]["reason"] == "SoftReset"
    assert rig.reboots() == ["RemoteReset"]


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_b12_fr_01_on_idle_reset_waits_for_the_transaction(version: str) -> None:
    rig = Rig(version)
    remote_start(rig)
    rig.pair.advance(1)
    assert str(rig.call(build(rig.m.ResetRequest, type="OnIdle")).status) == "Scheduled"
    rig.pair.advance(1)
    assert rig.reboots() == []
    remote_stop(rig)
    rig.pair.advance(1)
    # The reset waited for the transaction: the boot says so (issue 12).
    assert rig.reboots() == ["ScheduledReset"]
    assert str(rig.sim.rebooted().core.boot_request.reason) == "ScheduledReset"


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_b12_fr_04_immediate_reset_ends_the_transaction(version: str) -> None:
    rig = Rig(version)
    remote_start(rig)
    rig.pair.advance(1)
    assert str(rig.call(build(rig.m.ResetRequest, type="Immediate")).status) == "Accepted"
    rig.pair.advance(1)
    ended = rig.sent("TransactionEvent")[-1][1]
    assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "ResetCommand")
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert rig.reboots() == ["RemoteReset"]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_n01_get_log_uploads_with_its_request_id(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    request = build(
        m.GetLogRequest,
        log=m.LogParameters(remote_location="https://example.com/logs"),
        log_type="DiagnosticsLog",
        request_id=12,
    )
    answer = rig.call(request)
    assert str(answer.status) == "Accepted" and answer.filename
    rig.pair.advance(2)
    sent = [p for _, p in rig.sent("LogStatusNotification")]
    assert sent == [
        {"status": "Uploading", "requestId": 12},
        {"status": "Uploaded", "requestId": 12},
    ]
    trigger_cls = m.ExtendedTriggerMessageRequest if version == "1.6" else m.TriggerMessageRequest
    rig.call(build(trigger_cls, requested_message="LogStatusNotification"))
    # Nothing uploading: Idle, without a requestId (N01.FR.13, F06.FR.15).
    assert rig.sent("LogStatusNotification")[-1][1] == {"status": "Idle"}


def test_1_6_get_diagnostics_names_the_file_and_uploads() -> None:
    rig = Rig("1.6")
    answer = rig.call(v16.GetDiagnosticsRequest(location="ftp://example.com/up"))
    assert answer.file_name == "CS1-diagnostics.log"
    rig.pair.advance(2)
    statuses = [p["status"] for _, p in rig.sent("DiagnosticsStatusNotification")]
    assert statuses == ["Uploading", "Uploaded"]


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_f05_fr_02_unlock_refused_during_a_transaction(version: str) -> None:
    rig = Rig(version)
    unlock = rig.m.UnlockConnectorRequest(evse_id=1, connector_id=1)
    assert str(rig.call(unlock).status) == "Unlocked"
    remote_start(rig)
    rig.pair.advance(1)
    assert str(rig.call(unlock).status) == "OngoingAuthorizedTransaction"
    assert str(rig.call(rig.m.UnlockConnectorRequest(evse_id=5, connector_id=1)).status) == (
        "UnknownConnector"
    )


def test_1_6_unlock_stops_the_transaction_first() -> None:
    rig = Rig("1.6")
    remote_start(rig)
    rig.pair.advance(1)
    assert str(rig.call(v16.UnlockConnectorRequest(connector_id=1)).status) == "Unlocked"
    assert rig.sent("StopTransaction")[0][1]["reason"] == "UnlockCommand"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_a_request_nothing_handles_gets_not_supported(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    if version == "1.6":
        request = v16.CertificateSignedRequest(certificate_chain="x")
    else:
        request = build(m.ClearDisplayMessageRequest, id=1)
    answer = rig.call(request)
    assert isinstance(answer, CallErrorReceived) and answer.error_code == "NotSupported"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_data_transfer_for_an_unknown_vendor(version: str) -> None:
    rig = Rig(version)
    answer = rig.call(rig.m.DataTransferRequest(vendor_id="com.example"))
    assert str(answer.status) == "UnknownVendorId"


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_b04_fr_02_short_outage_reports_only_changed_statuses(version: str) -> None:
    rig = Rig(version, connectors=2)
    before = len(rig.statuses())
    rig.pair.disconnect()
    rig.sim.availability.hold("maintenance", (2, None))  # changed while offline
    rig.pair.advance(5)
    rig.pair.connect()
    rig.pair.advance(0.1)
    assert rig.statuses()[before:] == [(2, "Unavailable")]
    assert rig.sent("BootNotification") == rig.sent("BootNotification")[:1]  # no new boot


@pytest.mark.parametrize("version", ("2.0.1", "2.1"))
def test_b04_fr_01_long_outage_reports_every_status(version: str) -> None:
    rig = Rig(version, connectors=2)
    before = len(rig.statuses())
    rig.pair.disconnect()
    rig.pair.advance(120)  # OCPPCommCtrlr.OfflineThreshold is 60 s by default
    rig.pair.connect()
    rig.pair.advance(0.1)
    assert rig.statuses()[before:] == [(1, "Available"), (2, "Available")]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_pending_station_sends_no_status(version: str) -> None:
    rig = Rig(version, boot_status="Pending")
    rig.pair.advance(10)
    assert [a for a, _ in rig.sent()] == ["BootNotification"]


def test_configuration_survives_a_reboot() -> None:
    rig = Rig("1.6")
    rig.call(v16.ChangeConfigurationRequest(key="MeterValueSampleInterval", value="7"))
    rebooted = rig.sim.rebooted()
    assert rebooted.settings.setting("MeterValueSampleInterval") == "7"


@pytest.mark.parametrize("version", ("1.6", "2.0.1"))
def test_changed_heartbeat_interval_is_adopted(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    if version == "1.6":
        rig.call(m.ChangeConfigurationRequest(key="HeartbeatInterval", value="5"))
    else:
        rig.call(
            m.SetVariablesRequest(
                set_variable_data=[
                    m.SetVariableData(
                        attribute_value="5",
                        component=m.Component(name="OCPPCommCtrlr"),
                        variable=m.Variable(name="HeartbeatInterval"),
                    )
                ]
            )
        )
    assert rig.sim.core.heartbeat_interval == 5
    rig.pair.advance(11)
    assert len(rig.sent("Heartbeat")) == 2


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_the_demo_exercise_runs_clean(version: str) -> None:
    rig = Rig(version)
    for step in EXERCISE:
        request = step(rig.demo, "CS1", version)
        if request is not None:
            answer = rig.call(request, then=2)
            assert not isinstance(answer, CallErrorReceived), answer
    assert [a for a, _ in rig.sent()].count("StatusNotification") >= 3
    assert rig.sim.latencies and all(latency == 0 for latency in rig.sim.latencies)


def demo_answers(version: str, requests: list[Any]) -> list[Any]:
    """What the demo CSMS's flows answer to ``requests`` from a plain station, in memory."""
    demo = DemoCsms(heartbeat_interval=300, wall_clock=lambda now: EPOCH)
    csms = CsmsCore(version, "CS1", id_generator=counter_ids("c"))
    flows = FlowHost(csms, demo.flows(csms))
    station = StationCore(
        version,
        minimal(registry(version)["BootNotification"].request),
        id_generator=counter_ids("s"),
    )
    pair = InMemoryPair(station, csms, on_csms_event=lambda c, e, now: flows.route(e, now))
    pair.connect()
    pair.advance(0.1)
    answers = []
    for request in requests:
        message_id = station.send_request(request, pair.now)
        pair.advance(0.1)
        (answer,) = [
            e
            for e in pair.station_events
            if isinstance(e, ResponseReceived) and e.message_id == message_id
        ]
        answers.append(answer.response)
    return answers


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_demo_csms_answers_through_its_flows(version: str) -> None:
    m = MODULES[version]
    if version == "1.6":
        start = v16.StartTransactionRequest(
            connector_id=1, id_tag="T", meter_start=0, timestamp=EPOCH
        )
        again = v16.StartTransactionRequest(
            connector_id=2, id_tag="T", meter_start=5, timestamp=EPOCH
        )
        authorize = v16.AuthorizeRequest(id_tag="any")
        first, second, authorized, transfer, heartbeat = demo_answers(
            version,
            [start, again, authorize, m.DataTransferRequest(vendor_id="x"), m.HeartbeatRequest()],
        )
        assert (first.transaction_id, second.transaction_id) == (1, 2)
        assert str(authorized.id_tag_info.status) == "Accepted"
    else:
        authorize = m.AuthorizeRequest(id_token=build(m.IdToken, id_token="any", type="Central"))
        authorized, transfer, heartbeat = demo_answers(
            version, [authorize, m.DataTransferRequest(vendor_id="x"), m.HeartbeatRequest()]
        )
        assert str(authorized.id_token_info.status) == "Accepted"
    assert str(transfer.status) == "UnknownVendorId"
    assert heartbeat.current_time == EPOCH


def test_1_6_hard_reset_reboots_at_once_and_stops_after_the_boot() -> None:
    rig = Rig("1.6")
    remote_start(rig)
    rig.pair.advance(1)
    assert str(rig.call(build(v16.ResetRequest, type="Hard")).status) == "Accepted"
    assert rig.sent("StopTransaction") == []
    assert rig.reboots() == ["RemoteReset"]
    rebooted = rig.sim.rebooted()
    rebooted.station.start(rig.pair.now, connect=False)
    held = rebooted.core.held_requests
    assert [type(r).__name__ for r in held] == ["StopTransactionRequest"]
    assert str(held[0].reason) == "HardReset" and held[0].transaction_id == 1


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_g03_fr_08_inoperative_survives_a_reboot(version: str) -> None:
    rig = Rig(version)
    m = rig.m
    if version == "1.6":
        request = build(m.ChangeAvailabilityRequest, connector_id=1, type="Inoperative")
    else:
        request = build(
            m.ChangeAvailabilityRequest, operational_status="Inoperative", evse=m.EVSE(id=1)
        )
    assert str(rig.call(request).status) == "Accepted"
    assert rig.statuses()[-1] == (1, "Unavailable")
    assert rig.sim.rebooted().status_of(1) == "Unavailable"


# --- smart charging (issue 14): profiles accepted or rejected, the meter follows the limit


def set_profile(rig: Rig, evse: int, item: Any) -> str:
    message = profile_to_message(item, rig.version)
    if rig.version == "1.6":
        request = rig.m.SetChargingProfileRequest(connector_id=evse, cs_charging_profiles=message)
    else:
        request = rig.m.SetChargingProfileRequest(evse_id=evse, charging_profile=message)
    answer = rig.call(request)
    return answer.error_code if isinstance(answer, CallErrorReceived) else str(answer.status)


def composite_periods(rig: Rig, evse: int, duration: int, unit: str) -> list[tuple[int, float]]:
    field = "connector_id" if rig.version == "1.6" else "evse_id"
    answer = rig.call(
        build(
            rig.m.GetCompositeScheduleRequest,
            duration=duration,
            charging_rate_unit=unit,
            **{field: evse},
        )
    )
    assert str(answer.status) == "Accepted"
    schedule = answer.charging_schedule if rig.version == "1.6" else answer.schedule
    return [(p.start_period, p.limit) for p in schedule.charging_schedule_period]


def default_profile(profile_id: int, limit: float, **fields: Any) -> ChargingProfile:
    periods = [SchedulePeriod(start_period=0, limit=limit)]
    return ChargingProfile(
        id=profile_id,
        stack_level=fields.pop("stack", 0),
        purpose=fields.pop("purpose", "TxDefaultProfile"),
        kind="Relative",
        schedules=[ChargingSchedule(id=1, rate_unit=fields.pop("unit", "A"), periods=periods)],
        **fields,
    )


@pytest.mark.parametrize("version", ("1.6", "2.0.1"))
def test_simulator_accepts_and_rejects_profiles_as_the_specification_says(version: str) -> None:
    rig = Rig(version, connectors=2)
    assert set_profile(rig, 1, default_profile(1, 16.0)) == "Accepted"  # K01.FR.02
    assert composite_periods(rig, 1, 3600, "A") == [(0, 16.0)]  # K08.FR.02
    assert composite_periods(rig, 1, 3600, "W") == [(0, 16.0 * 230)]
    assert composite_periods(rig, 2, 3600, "A") == [(0, 32.0)]  # the connector's own
    tx = default_profile(2, 8.0, purpose="TxProfile")
    assert set_profile(rig, 1, tx) == "Rejected"  # K01.FR.09: no transaction there
    high = default_profile(3, 6.0, stack=99)
    assert set_profile(rig, 1, high) == "Rejected"  # above ChargeProfileMaxStackLevel
    if version == "1.6":
        assert set_profile(rig, 5, default_profile(4, 6.0)) == "PropertyConstraintViolation"
    else:
        assert set_profile(rig, 5, default_profile(4, 6.0)) == "Rejected"  # K01.FR.28


@pytest.mark.parametrize("version", ("1.6", "2.0.1"))
def test_simulator_meter_follows_the_limit_in_force(version: str) -> None:
    rig = Rig(version)
    assert str(remote_start(rig).status) == "Accepted"
    rig.pair.advance(1)
    meter = rig.sim.hardware.read_meter(1, rig.pair.now)
    assert meter is not None and meter["Power.Active.Import"] == 7360.0
    before = meter["Energy.Active.Import.Register"]
    assert set_profile(rig, 1, default_profile(1, 10.0)) == "Accepted"
    rig.pair.advance(3600)
    meter = rig.sim.hardware.read_meter(1, rig.pair.now)
    assert meter is not None
    assert meter["Power.Active.Import"] == 2300.0  # 10 A x 230 V, one phase
    assert meter["Current.Import"] == 10.0
    assert meter["Energy.Active.Import.Register"] == pytest.approx(before + 2300.0, abs=1.0)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_the_pretend_meter_survives_a_reboot_and_a_kill_like_a_real_one(version: str) -> None:
    """The energy register never goes back: a transaction a kill interrupted ends with a
    reading at least the last one reported."""
    rig = Rig(version)
    remote_start(rig)
    rig.pair.advance(60)
    register = "Energy.Active.Import.Register"
    before = rig.sim.hardware.read_meter(1, rig.pair.now)[register]
    assert before > 0
    assert rig.sim.rebooted().hardware.read_meter(1, rig.pair.now)[register] == before
    after_a_kill = SimulatedStation("CS1", version, store=rig.sim.store.reopen())
    assert after_a_kill.hardware.read_meter(1, rig.pair.now)[register] == before
