"""A station that resumes without a boot (B04) meets a CSMS that no longer knows it (the
CSMS restarted and answers SecurityError, B01.FR.10 / FR.04): it boots again and delivers
its held transaction messages, none discarded, none twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _corekit import VERSIONS, CsmsApp, make_pair, transaction_message, transaction_number

from ocpp_sansio import (
    RegistrationChanged,
    RegistrationStatus,
    StationConfig,
    TransactionMessageDiscarded,
)
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RequestReceived
from ocpp_sansio.testing.pair import TO_CSMS


def delivered(pair: object, version: str) -> list[int]:
    """Transaction numbers the CSMS application saw, in order."""
    numbers = []
    for event in pair.csms_events:  # type: ignore[attr-defined]
        request = getattr(event, "request", None)
        if type(event).__name__ == "RequestReceived" and event.action in (
            "TransactionEvent",
            "MeterValues",
        ):
            numbers.append(transaction_number(version, request))
    return numbers


@pytest.mark.parametrize("version", VERSIONS)
def test_B04_resumed_session_refused_with_SecurityError_boots_again_and_keeps_messages(
    version: str,
) -> None:
    pair = make_pair(version, station_config=StationConfig(transaction_message_attempts=1))
    pair.disconnect()
    for n in (1, 2):
        pair.station.send_request(transaction_message(version, n), pair.now)
    # The CSMS restarted: a new core that never answered this station's boot.
    pair.csms = CsmsCore(version, "CS1")
    pair.csms_events.clear()
    pair.connect()
    pair.flush()

    boots = [json.loads(s.text)[2] for s in pair.transcript if s.direction == TO_CSMS]
    assert boots.count("BootNotification") == 2  # the first boot, and one after the refusal
    assert delivered(pair, version) == [1, 2]
    assert not any(isinstance(e, TransactionMessageDiscarded) for e in pair.station_events)
    changes = [e for e in pair.station_events if isinstance(e, RegistrationChanged)]
    assert changes[-2].status is RegistrationStatus.BOOTING
    assert changes[-1].status is RegistrationStatus.ACCEPTED


class RefusesTransactions(CsmsApp):
    """Accepts boots, answers every transaction message with SecurityError."""

    def __call__(self, core: CsmsCore, event: Any, now: float) -> None:
        if isinstance(event, RequestReceived) and event.action in (
            "TransactionEvent",
            "MeterValues",
        ):
            core.send_error(event.message_id, "SecurityError", "refused")
            return
        super().__call__(core, event, now)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("resumed", [False, True])
def test_no_boot_loop_a_security_error_after_a_boot_on_this_connection_is_a_failure(
    version: str, resumed: bool
) -> None:
    pair = make_pair(
        version,
        csms_app=RefusesTransactions(version),
        station_config=StationConfig(transaction_message_attempts=2),
    )
    if resumed:
        pair.disconnect()
        pair.connect()
    pair.station.send_request(transaction_message(version, 1), pair.now)
    pair.advance(3600)
    boots = [json.loads(s.text)[2] for s in pair.transcript if s.direction == TO_CSMS]
    assert boots.count("BootNotification") == (2 if resumed else 1)
    discarded = [e for e in pair.station_events if isinstance(e, TransactionMessageDiscarded)]
    assert len(discarded) == 1 and discarded[0].attempts == 2
