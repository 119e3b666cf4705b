"""Configuration objects are validated when built."""

from __future__ import annotations

import pytest
from _corekit import (
    VERSIONS,
    CsmsApp,
    actions,
    make_pair,
    request,
    status_notification,
    transaction_message,
)

from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import CallLost, CallTimedOut, TransactionMessageDiscarded
from ocpp_sansio.testing.pair import TO_CSMS


@pytest.mark.parametrize(
    "bad",
    [
        {"call_timeout": 0},
        {"boot_retry_initial": -1},
        {"boot_retry_jitter": 1.5},
        {"boot_retry_initial": 100, "boot_retry_max": 10},
        {"transaction_message_attempts": 0},
        {"transaction_message_retry_interval": -5},
        {"connectors": 0},
        {"max_held_messages": 0},
    ],
)
def test_station_config_refuses_impossible_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StationConfig(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [{"call_timeout": -1}, {"heartbeat_tolerance": 0}, {"max_queued_requests": 0}]
)
def test_csms_config_refuses_impossible_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CsmsConfig(**bad)  # type: ignore[arg-type]


def test_b03_fr_03_queued_csms_request_is_dropped_once_the_station_is_rejected() -> None:
    app = CsmsApp("2.0.1", boot_status="Pending", interval=5)
    pair = make_pair("2.0.1", csms_app=app, station_app=lambda core, event, now: None)
    pair.csms.send_request(request("2.0.1", "ClearCache"), pair.now)  # outstanding, unanswered
    queued = pair.csms.send_request(request("2.0.1", "ClearCache"), pair.now)
    app.boot_status = "Rejected"
    pair.advance(5)  # the station boots again and is now rejected
    pair.advance(30)  # the first CALL times out; the queued one may not leave
    failed = [e for e in pair.csms_events if isinstance(e, CallLost)]
    assert [e.message_id for e in failed] == [queued]
    assert "B03.FR.03" in failed[0].reason


@pytest.mark.parametrize("version", VERSIONS)
def test_a_changed_heartbeat_interval_counts_from_the_change(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, interval=100))
    pair.advance(50)
    pair.station.set_heartbeat_interval(20, pair.now)
    assert pair.station.next_heartbeat == pytest.approx(70)
    pair.advance(19.9)
    assert "Heartbeat" not in actions(pair.frames(TO_CSMS))
    pair.advance(0.2)
    assert actions(pair.frames(TO_CSMS)).count("Heartbeat") == 1
    with pytest.raises(LocalProtocolError):
        pair.station.set_heartbeat_interval(0, pair.now)


@pytest.mark.parametrize("version", VERSIONS)
def test_e13_fr_03_changed_attempts_and_retry_interval_apply_to_the_next_retry(
    version: str,
) -> None:
    action = "MeterValues" if version == "1.6" else "TransactionEvent"
    config = StationConfig(transaction_message_attempts=2, transaction_message_retry_interval=60)
    pair = make_pair(version, csms_app=CsmsApp(version, error_for={action}), station_config=config)
    pair.station.send_request(transaction_message(version, 1), pair.now)
    pair.flush()  # attempt 1 fails at t=0; attempt 2 is scheduled for t=60
    pair.station.reconfigure(
        StationConfig(transaction_message_attempts=4, transaction_message_retry_interval=10)
    )
    pair.advance(1000)
    times = [s.time for s in pair.transcript if s.direction == TO_CSMS and action in s.text]
    assert times == [0, 60, 80, 110]  # 4 attempts; waits of 2 x 10 and 3 x 10 after the change
    [discarded] = [e for e in pair.station_events if isinstance(e, TransactionMessageDiscarded)]
    assert discarded.attempts == 4


@pytest.mark.parametrize("role", ["station", "csms"])
def test_a_changed_call_timeout_applies_to_the_next_call(role: str) -> None:
    app = CsmsApp("2.0.1", silent_for={"StatusNotification"})
    pair = make_pair("2.0.1", csms_app=app, station_app=lambda core, event, now: None)
    if role == "station":
        pair.station.reconfigure(StationConfig(call_timeout=5))
        pair.station.send_request(status_notification("2.0.1", 1), pair.now)
        pair.advance(5)
        events = pair.station_events
    else:
        pair.csms.reconfigure(CsmsConfig(call_timeout=5))
        pair.csms.send_request(request("2.0.1", "ClearCache"), pair.now)
        pair.advance(5)
        events = pair.csms_events
    assert any(isinstance(e, CallTimedOut) for e in events)
