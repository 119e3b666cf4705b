"""What the cores log: the peer's violations at WARNING, refusals by a rule at INFO, each
once, when the event is taken (by the application, the flows or an adapter), on the
logger of the side (``ocpp_sansio.station``, ``ocpp_sansio.csms``)."""

from __future__ import annotations

import logging

import pytest
from _corekit import VERSIONS, CsmsApp, make_pair, request

from ocpp_sansio.events import ProtocolViolation, RequestRefused


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_peer_violation_is_logged_once_at_warning(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    pair = make_pair(version)
    with caplog.at_level(logging.DEBUG, "ocpp_sansio"):
        pair.csms.receive_text('[2, "x1", "Heartbeat"]', pair.now)  # wrong arity
        pair.flush()
    assert any(isinstance(e, ProtocolViolation) for e in pair.csms_events)
    [record] = records(caplog, "ocpp_sansio.csms")
    assert record.levelno == logging.WARNING
    assert "CS1" in record.getMessage()


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_a_refusal_by_a_rule_is_logged_once_at_info(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """B03.FR.07: the CSMS answers a Rejected station's request with SecurityError."""
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status="Rejected", interval=100))
    with caplog.at_level(logging.DEBUG, "ocpp_sansio"):
        pair.csms.receive_text(
            '[2, "r1", "Authorize", {"idToken": {"idToken": "a", "type": "ISO14443"}}]',
            pair.now,
        )
        pair.flush()
    assert any(isinstance(e, RequestRefused) for e in pair.csms_events)
    [record] = records(caplog, "ocpp_sansio.csms")
    assert record.levelno == logging.INFO
    assert "B03.FR.07" in record.getMessage()


@pytest.mark.parametrize("version", VERSIONS)
def test_ordinary_traffic_logs_nothing_above_debug(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "ocpp_sansio"):
        pair = make_pair(version)
        pair.station.send_request(request(version, "Heartbeat"), pair.now)
        pair.advance(600)
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
