"""Diagnostics and log uploads end to end (N01; 1.6 §5.9; F06.FR.14/15): 1.6 GetDiagnostics,
GetLog in the 1.6 security extension and in 2.0.1/2.1 (N01)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _flowkit import Rig
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows._base import Activity, FlowAnomaly, build
from ocpp_sansio.flows.logs import (
    LEGAL_INPUTS,
    LOG_FAILURES,
    DiagnosticsUploader,
    LogMonitor,
    LogUploader,
    UploadCanceled,
    UploadDue,
    UploadPhase,
    UploadStatusReported,
)

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")
WHERE = "ftp://logs.example/upload/"


def get_log(
    rig: Rig, request_id: int, *, retries: int | None = None, interval: int | None = None
) -> Any:
    m = rig.m
    return build(
        m.GetLogRequest,
        log=m.LogParameters(remote_location=WHERE),
        log_type="DiagnosticsLog",
        request_id=request_id,
        retries=retries,
        retry_interval=interval,
    )


def get_diagnostics(rig: Rig, *, retries: int | None = None, interval: int | None = None) -> Any:
    return rig.m.GetDiagnosticsRequest(location=WHERE, retries=retries, retry_interval=interval)


def setup_logs(version: str, **options: Any) -> tuple[Rig, LogUploader, LogMonitor]:
    rig = Rig(version)
    uploader = LogUploader(rig.station, **options)
    monitor = LogMonitor(rig.csms)
    rig.station_flows.append(uploader)
    rig.csms_flows.append(monitor)
    return rig, uploader, monitor


def setup_diagnostics(**options: Any) -> tuple[Rig, DiagnosticsUploader, LogMonitor]:
    rig = Rig("1.6")
    uploader = DiagnosticsUploader(rig.station, **options)
    monitor = LogMonitor(rig.csms)
    rig.station_flows.append(uploader)
    rig.csms_flows.append(monitor)
    return rig, uploader, monitor


def anomalies(monitor: LogMonitor) -> list[FlowAnomaly]:
    return [e for e in monitor.events() if isinstance(e, FlowAnomaly)]


def of_type(flow: Any, cls: type) -> list[Any]:
    return [e for e in flow.events() if isinstance(e, cls)]


def log_statuses(rig: Rig) -> list[tuple[str, int | None]]:
    return [(p["status"], p.get("requestId")) for p in rig.calls("LogStatusNotification")]


# --- GetLog -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_n01_fr_01_fr_07_log_upload_reports_with_the_request_id(version: str) -> None:
    rig, uploader, monitor = setup_logs(version)
    rig.csms_sends(get_log(rig, 5))
    assert rig.answers()[-1] == {"status": "Accepted", "filename": "DiagnosticsLog-5.log"}
    (due,) = of_type(uploader, UploadDue)
    assert (due.request_id, due.location, due.attempt) == (5, WHERE, 1)
    uploader.upload_started(rig.now)  # N01.FR.08
    uploader.uploaded(rig.now)  # N01.FR.09
    rig.flush()
    assert log_statuses(rig) == [("Uploading", 5), ("Uploaded", 5)]
    assert anomalies(monitor) == []
    assert monitor.logs[5].finished
    assert uploader.phase is UploadPhase.UPLOADED


@pytest.mark.parametrize("version", VERSIONS)
def test_n01_fr_05_unavailable_log_is_rejected(version: str) -> None:
    rig, uploader, _ = setup_logs(version, file_for=lambda request: None)
    rig.csms_sends(get_log(rig, 1))
    assert rig.answers()[-1] == {"status": "Rejected"}
    assert uploader.phase is UploadPhase.IDLE and not of_type(uploader, UploadDue)


@pytest.mark.parametrize("version", VERSIONS)
def test_n01_fr_10_upload_fails_after_all_retries(version: str) -> None:
    rig, uploader, monitor = setup_logs(version)
    rig.csms_sends(get_log(rig, 2, retries=1, interval=45))
    uploader.upload_started(rig.now)
    uploader.upload_failed(rig.now, "PermissionDenied")
    with pytest.raises(LocalProtocolError, match="retry interval"):
        uploader.upload_started(rig.now)
    rig.advance(45)
    (_, again) = of_type(uploader, UploadDue)
    assert again.attempt == 2
    uploader.upload_started(rig.now)
    uploader.upload_failed(rig.now, "PermissionDenied")
    rig.flush()
    # The failure is reported once, after the last attempt.
    assert log_statuses(rig) == [("Uploading", 2), ("Uploading", 2), ("PermissionDenied", 2)]
    assert uploader.phase is UploadPhase.FAILED
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_n01_fr_10_only_log_failure_statuses(version: str) -> None:
    rig, uploader, _ = setup_logs(version)
    rig.csms_sends(get_log(rig, 2))
    uploader.upload_started(rig.now)
    with pytest.raises(LocalProtocolError):
        uploader.upload_failed(rig.now, "Uploaded")
    assert sorted(LOG_FAILURES) == [
        "BadMessage",
        "NotSupportedOperation",
        "PermissionDenied",
        "UploadFailure",
    ]


@pytest.mark.parametrize("version", V2)
def test_n01_fr_12_fr_20_new_request_cancels_the_upload(version: str) -> None:
    rig, uploader, monitor = setup_logs(version)
    rig.csms_sends(get_log(rig, 1))
    uploader.upload_started(rig.now)
    rig.csms_sends(get_log(rig, 2))
    assert rig.answers()[-1]["status"] == "AcceptedCanceled"
    (canceled,) = of_type(uploader, UploadCanceled)
    assert canceled.request_id == 1
    uploader.upload_started(rig.now)
    uploader.uploaded(rig.now)
    rig.flush()
    assert log_statuses(rig) == [
        ("Uploading", 1),
        ("AcceptedCanceled", 1),  # N01.FR.20
        ("Uploading", 2),
        ("Uploaded", 2),
    ]
    assert monitor.logs[1].canceled and monitor.logs[2].finished
    assert anomalies(monitor) == []


def test_1_6_security_n01_fr_11_new_request_cancels_without_a_canceled_status() -> None:
    rig, uploader, monitor = setup_logs("1.6")
    rig.csms_sends(get_log(rig, 1))
    uploader.upload_started(rig.now)
    rig.csms_sends(get_log(rig, 2))
    assert rig.answers()[-1]["status"] == "AcceptedCanceled"
    rig.flush()
    # The 1.6 UploadLogStatusEnumType has no AcceptedCanceled.
    assert log_statuses(rig) == [("Uploading", 1)]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_15_trigger_while_idle_sends_idle_without_request_id(version: str) -> None:
    rig, _, monitor = setup_logs(version)
    rig.trigger("LogStatusNotification", extended=True)
    assert rig.calls("LogStatusNotification") == [{"status": "Idle"}]  # N01.FR.13
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_14_trigger_while_uploading_sends_uploading(version: str) -> None:
    rig, uploader, monitor = setup_logs(version)
    rig.csms_sends(get_log(rig, 4))
    uploader.upload_started(rig.now)
    rig.flush()
    rig.trigger("LogStatusNotification", extended=True)
    uploader.uploaded(rig.now)
    rig.flush()
    rig.trigger("LogStatusNotification", extended=True)
    assert log_statuses(rig) == [
        ("Uploading", 4),
        ("Uploading", 4),
        ("Uploaded", 4),
        ("Idle", None),
    ]
    assert anomalies(monitor) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_illegal_upload_moves_raise_local_protocol_error(version: str) -> None:
    rig, uploader, _ = setup_logs(version)
    with pytest.raises(LocalProtocolError, match="no log upload"):
        uploader.upload_started(rig.now)
    rig.csms_sends(get_log(rig, 1))
    with pytest.raises(LocalProtocolError):
        uploader.uploaded(rig.now)
    uploader.upload_started(rig.now)
    with pytest.raises(LocalProtocolError):
        uploader.upload_started(rig.now)


@pytest.mark.parametrize("version", V2)
def test_b12_log_upload_keeps_the_station_from_being_idle(version: str) -> None:
    rig = Rig(version)
    activity = Activity()
    uploader = LogUploader(rig.station, activity=activity)
    rig.station_flows.append(uploader)
    rig.csms_sends(get_log(rig, 1))
    assert not activity.is_idle()
    uploader.upload_started(rig.now)
    uploader.uploaded(rig.now)
    assert activity.is_idle()


# --- GetDiagnostics (1.6) ---------------------------------------------------------------------


def test_1_6_get_diagnostics_names_the_file_and_uploads_it() -> None:
    rig, uploader, monitor = setup_diagnostics(file_for=lambda request: "diag-2025.zip")
    rig.csms_sends(get_diagnostics(rig))
    assert rig.answers()[-1] == {"fileName": "diag-2025.zip"}
    (due,) = of_type(uploader, UploadDue)
    assert due.filename == "diag-2025.zip" and due.request_id is None
    uploader.upload_started(rig.now)
    uploader.uploaded(rig.now)
    rig.flush()
    assert rig.calls("DiagnosticsStatusNotification") == [
        {"status": "Uploading"},
        {"status": "Uploaded"},
    ]
    assert anomalies(monitor) == []


def test_1_6_get_diagnostics_without_information_answers_without_file_name() -> None:
    rig, uploader, _ = setup_diagnostics(file_for=lambda request: None)
    rig.csms_sends(get_diagnostics(rig))
    assert rig.answers()[-1] == {}
    assert uploader.phase is UploadPhase.IDLE


def test_1_6_diagnostics_upload_fails_after_retries() -> None:
    rig, uploader, monitor = setup_diagnostics()
    rig.csms_sends(get_diagnostics(rig, retries=2, interval=10))
    for _ in range(3):
        uploader.upload_started(rig.now)
        uploader.upload_failed(rig.now)
        rig.advance(10)
    assert rig.statuses("DiagnosticsStatusNotification") == ["Uploading"] * 3 + ["UploadFailed"]
    assert anomalies(monitor) == []


def test_1_6_diagnostics_idle_only_when_triggered_and_not_uploading() -> None:
    rig, uploader, monitor = setup_diagnostics()
    rig.trigger("DiagnosticsStatusNotification")
    rig.csms_sends(get_diagnostics(rig))
    uploader.upload_started(rig.now)
    rig.flush()
    rig.trigger("DiagnosticsStatusNotification")
    assert rig.statuses("DiagnosticsStatusNotification") == ["Idle", "Uploading", "Uploading"]
    assert anomalies(monitor) == []


def test_1_6_new_get_diagnostics_replaces_the_running_upload() -> None:
    rig, uploader, monitor = setup_diagnostics()
    rig.csms_sends(get_diagnostics(rig))
    uploader.upload_started(rig.now)
    rig.csms_sends(get_diagnostics(rig))
    assert of_type(uploader, UploadCanceled)
    uploader.upload_started(rig.now)
    uploader.uploaded(rig.now)
    rig.flush()
    assert anomalies(monitor) == []
    assert monitor.diagnostics[0].canceled and monitor.diagnostics[1].finished


def test_get_diagnostics_is_1_6_only() -> None:
    rig = Rig("2.0.1")
    with pytest.raises(LocalProtocolError):
        DiagnosticsUploader(rig.station)


# --- the CSMS view ------------------------------------------------------------------------------


def station_says(rig: Rig, status: str, request_id: int | None) -> None:
    cls = rig.m.LogStatusNotificationRequest
    rig.station.send_request(build(cls, status=status, request_id=request_id), rig.now)
    rig.flush()


def monitor_only(version: str) -> tuple[Rig, LogMonitor]:
    rig = Rig(version)
    monitor = LogMonitor(rig.csms)
    rig.csms_flows.append(monitor)
    return rig, monitor


@pytest.mark.parametrize("version", V2)
def test_n01_fr_08_csms_flags_uploaded_before_uploading(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(get_log(rig, 1))
    station_says(rig, "Uploaded", 1)
    (anomaly,) = anomalies(monitor)
    assert "out of order" in anomaly.reason


@pytest.mark.parametrize("version", V2)
def test_n01_fr_07_csms_flags_an_unknown_request_id(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(get_log(rig, 1))
    station_says(rig, "Uploading", 3)
    (anomaly,) = anomalies(monitor)
    assert anomaly.rule == "N01.FR.07"


@pytest.mark.parametrize("version", V2)
def test_n01_fr_13_csms_flags_a_missing_request_id(version: str) -> None:
    rig, monitor = monitor_only(version)
    rig.csms_sends(get_log(rig, 1))
    station_says(rig, "Uploading", None)
    (anomaly,) = anomalies(monitor)
    assert anomaly.rule == "N01.FR.13"


@pytest.mark.parametrize("version", VERSIONS)
def test_f06_fr_15_csms_flags_idle_nobody_asked_for(version: str) -> None:
    rig, monitor = monitor_only(version)
    station_says(rig, "Idle", None)
    (anomaly,) = anomalies(monitor)
    assert "TriggerMessage" in anomaly.reason


# --- random orders (hypothesis) ---


#: Upload order written independently of the flow: Uploading (repeated per attempt), then
#: Uploaded or one failure; a cancelled upload may end with AcceptedCanceled instead.
LOG_ORDER = re.compile(
    r"(?:Uploading )*(?:Uploaded |UploadFailure |BadMessage |PermissionDenied "
    r"|NotSupportedOperation |AcceptedCanceled )?"
)
DIAGNOSTICS_ORDER = re.compile(r"(?:Uploading )*(?:Uploaded |UploadFailed )?")


class UploadOrders(RuleBasedStateMachine):
    """Random requests, upload-code inputs, waits, triggers and outages."""

    @initialize(version=st.sampled_from(["1.6-diagnostics", *VERSIONS]))
    def start(self, version: str) -> None:
        self.diagnostics = version == "1.6-diagnostics"
        if self.diagnostics:
            self.rig, self.uploader, self.monitor = setup_diagnostics()
        else:
            self.rig, self.uploader, self.monitor = setup_logs(version)
        self.next_id = 1
        self.seen: dict[int | None, list[str]] = {}
        self.anomalies: list[FlowAnomaly] = []
        self.request()

    @rule(retries=st.sampled_from([None, 0, 1]), interval=st.sampled_from([None, 0, 15]))
    def request(self, retries: int | None = 0, interval: int | None = None) -> None:
        rig = self.rig
        if self.diagnostics:
            rig.csms_sends(get_diagnostics(rig, retries=retries, interval=interval))
        else:
            rig.csms_sends(get_log(rig, self.next_id, retries=retries, interval=interval))
        self.next_id += 1

    def _step(self, data: st.DataObject, steer: int) -> None:
        phase = self.uploader.phase
        names = sorted(LEGAL_INPUTS)
        legal = [n for n in names if phase in LEGAL_INPUTS[n]]
        name = data.draw(st.sampled_from(legal if legal and steer else names))
        try:
            if name == "upload_failed" and not self.diagnostics:
                self.uploader.upload_failed(
                    self.rig.now, data.draw(st.sampled_from(sorted(LOG_FAILURES)))
                )
            else:
                getattr(self.uploader, name)(self.rig.now)
        except LocalProtocolError:
            return
        assert phase in LEGAL_INPUTS[name]

    @rule(data=st.data(), steer=st.integers(0, 4))
    def upload_code(self, data: st.DataObject, steer: int) -> None:
        self._step(data, steer)

    @rule(seconds=st.sampled_from([1, 15, 60]))
    def wait(self, seconds: float) -> None:
        self.rig.advance(seconds)

    @rule()
    def trigger(self) -> None:
        if self.diagnostics:
            self.rig.trigger("DiagnosticsStatusNotification")
        else:
            self.rig.trigger("LogStatusNotification", extended=True)

    @rule(data=st.data(), steps=st.integers(0, 2))
    def outage(self, data: st.DataObject, steps: int) -> None:
        self.rig.disconnect()
        for _ in range(steps):
            self._step(data, 1)
        self.rig.advance(5)
        self.rig.connect()

    @invariant()
    def csms_sees_legal_orders(self) -> None:
        if not hasattr(self, "rig"):
            return
        self.rig.flush()
        for event in self.monitor.events():
            if isinstance(event, FlowAnomaly):
                self.anomalies.append(event)
            elif isinstance(event, UploadStatusReported) and event.status != "Idle":
                if event.request_id is None:
                    continue  # diagnostics: no id to group by; the monitor judged it
                statuses = self.seen.setdefault(event.request_id, [])
                if not (event.triggered and statuses and statuses[-1] == event.status):
                    statuses.append(event.status)
        assert self.anomalies == [], self.anomalies
        for request_id, statuses in self.seen.items():
            text = "".join(f"{s} " for s in statuses)
            assert LOG_ORDER.fullmatch(text), (request_id, statuses)


UploadOrders.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_upload_random_orders = UploadOrders.TestCase
