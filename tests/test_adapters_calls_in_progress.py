"""The peer's requests in progress on one connection (adapters/_driver.py): OCPP-J lets a
peer send a CALL only once its previous one was answered or timed out (OCPP-J section
4.1.1 "Synchronicity": 1.6 SHOULD, 2.x SHALL, FR.01), so a driver hands at most
``max_calls_in_progress`` requests to handlers at once and answers the excess at once
with a CALLERROR (FR.03), starting no task or thread for it. In memory, no sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ocpp_sansio.adapters import ServerOptions, StationOptions
from ocpp_sansio.adapters._driver import Driver
from ocpp_sansio.adapters._options import DEFAULT_MAX_CALLS_IN_PROGRESS
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.messages import v16, v201
from tests.test_adapters_driver import FakeWs

BOOTS = {
    "1.6": {"chargePointVendor": "V", "chargePointModel": "M"},
    "2.0.1": {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"},
}


def pipelined(driver: Driver, ws: FakeWs, version: str, count: int, first: int = 0) -> None:
    """``count`` BootNotifications in one read, none waiting for an answer."""
    for number in range(first, first + count):
        text = json.dumps([2, f"m{number}", "BootNotification", BOOTS[version]])
        driver.receive(ws, text.encode(), 1.0)  # type: ignore[arg-type]


def boot_answer(version: str) -> Any:
    if version == "1.6":
        return v16.BootNotificationResponse(
            current_time=datetime(2025, 1, 1, tzinfo=UTC),
            interval=300,
            status=v16.RegistrationStatus.PENDING,
        )
    return v201.BootNotificationResponse(
        current_time=datetime(2025, 1, 1, tzinfo=UTC),
        interval=300,
        status=v201.RegistrationStatusEnum.PENDING,
    )


@pytest.mark.parametrize(
    ("version", "code"), [("1.6", "GenericError"), ("2.0.1", "RpcFrameworkError")]
)
def test_FR_01_FR_03_requests_past_the_limit_get_a_callerror_at_once(
    version: str, code: str
) -> None:
    driver = Driver(CsmsCore(version, "CS1"), max_calls_in_progress=3)
    ws = FakeWs(version)
    driver.attach(ws, 0.0)  # type: ignore[arg-type]
    pipelined(driver, ws, version, 5)
    requests, _ = driver.take_work()
    driver.flush()
    # Three go to handlers; the fourth and fifth are answered at once.
    assert [request.message_id for _, request in requests] == ["m0", "m1", "m2"]
    errors = [json.loads(text) for text in ws.sent]
    assert [(e[0], e[1], e[2]) for e in errors] == [(4, "m3", code), (4, "m4", code)]
    assert errors[0][3].startswith("the limit of 3 requests in progress is reached")
    # An answer makes room for one more.
    generation, first = requests[0]
    driver.answer(generation, first.message_id, boot_answer(version), 2.0)
    pipelined(driver, ws, version, 2, first=5)
    assert [request.message_id for _, request in driver.take_work()[0]] == ["m5"]
    driver.flush()
    assert json.loads(ws.sent[-1])[:3] == [4, "m6", code]


def test_a_handler_that_raised_also_makes_room() -> None:
    driver = Driver(CsmsCore("2.0.1", "CS1"), max_calls_in_progress=1)
    ws = FakeWs("2.0.1")
    driver.attach(ws, 0.0)  # type: ignore[arg-type]
    pipelined(driver, ws, "2.0.1", 1)
    ((generation, first),) = driver.take_work()[0]
    driver.answer_exception(generation, first.message_id, RuntimeError("broken"))
    pipelined(driver, ws, "2.0.1", 1, first=1)
    assert [request.message_id for _, request in driver.take_work()[0]] == ["m1"]


def test_a_new_connection_starts_with_none_in_progress() -> None:
    driver = Driver(CsmsCore("2.0.1", "CS1"), max_calls_in_progress=1)
    ws = FakeWs("2.0.1")
    driver.attach(ws, 0.0)  # type: ignore[arg-type]
    pipelined(driver, ws, "2.0.1", 1)
    ((old_generation, first),) = driver.take_work()[0]
    driver.detach(1.0, 1006, "cut")
    again = FakeWs("2.0.1")
    driver.attach(again, 2.0)  # type: ignore[arg-type]
    pipelined(driver, again, "2.0.1", 1)
    assert [request.message_id for _, request in driver.take_work()[0]] == ["m0"]
    # The old connection's handler finishing changes nothing on the new one.
    driver.answer(old_generation, first.message_id, boot_answer("2.0.1"), 3.0)
    pipelined(driver, again, "2.0.1", 1, first=1)
    assert driver.take_work()[0] == []
    driver.flush()
    assert json.loads(again.sent[-1])[:4] == [
        4,
        "m1",
        "RpcFrameworkError",
        "the limit of 1 requests in progress is reached: send a request once the "
        "previous one is answered (OCPP-J 4.1.1)",
    ]


def test_the_limit_is_an_option_of_both_sides() -> None:
    assert ServerOptions().max_calls_in_progress == DEFAULT_MAX_CALLS_IN_PROGRESS
    assert StationOptions(max_calls_in_progress=1).max_calls_in_progress == 1
    with pytest.raises(ValueError, match="at least 1"):
        ServerOptions(max_calls_in_progress=0)
