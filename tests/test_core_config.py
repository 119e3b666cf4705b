"""Configuration objects are validated when built."""

from __future__ import annotations

import pytest
from _corekit import CsmsApp, make_pair, request

from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.events import CallFailed


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
    failed = [e for e in pair.csms_events if isinstance(e, CallFailed)]
    assert [e.message_id for e in failed] == [queued]
    assert "B03.FR.03" in failed[0].reason
