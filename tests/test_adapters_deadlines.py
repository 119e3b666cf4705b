"""The boot deadline of a CSMS connection (ServerOptions.boot_timeout, adapters/_driver.py):
a station whose registration the CSMS does not know and that has no BootNotification
answered in time is closed with 1008; Pending and Rejected stations stay (B02.FR.06), and a
station back on a session the CSMS knows has no deadline. In memory, no sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ocpp_sansio.adapters import ServerOptions
from ocpp_sansio.adapters._driver import CsmsCores, Driver, posix_wall_clock
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RegistrationStatus
from ocpp_sansio.messages import v201
from tests.test_adapters_driver import FakeWs

BOOT = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


def csms_driver(boot_timeout: float = 60.0) -> Driver:
    cores = CsmsCores(ServerOptions(boot_timeout=boot_timeout), posix_wall_clock)
    return cores.new_driver("CS1", "2.0.1")


def test_a_station_that_does_not_boot_in_time_is_closed_with_1008() -> None:
    driver = csms_driver()
    ws = FakeWs("2.0.1")
    driver.attach(ws, 100.0)  # type: ignore[arg-type]
    assert driver.next_deadline(ws) == 160.0  # type: ignore[arg-type]
    driver.timer(ws, 159.0)  # type: ignore[arg-type]
    assert ws.closed is None
    driver.timer(ws, 160.0)  # type: ignore[arg-type]
    assert ws.closed == (1008, "no BootNotification within 60 s of connecting")


def test_B02_FR_06_a_pending_station_stays_connected() -> None:
    driver = csms_driver()
    ws = FakeWs("2.0.1")
    driver.attach(ws, 0.0)  # type: ignore[arg-type]
    driver.receive(ws, json.dumps([2, "b1", "BootNotification", BOOT]).encode(), 1.0)  # type: ignore[arg-type]
    ((generation, boot),) = driver.take_requests()
    pending = v201.BootNotificationResponse(
        current_time=datetime(2025, 1, 1, tzinfo=UTC),
        interval=300,
        status=v201.RegistrationStatusEnum.PENDING,
    )
    driver.answer(generation, boot.message_id, pending, 2.0)
    assert driver.core.registration is RegistrationStatus.PENDING
    driver.timer(ws, 61.0)  # type: ignore[arg-type]
    assert ws.closed is None


def test_a_station_back_on_a_known_session_has_no_boot_deadline() -> None:
    driver = Driver(
        CsmsCore("2.0.1", "CS1", registration=RegistrationStatus.ACCEPTED), boot_timeout=60.0
    )
    ws = FakeWs("2.0.1")
    driver.attach(ws, 0.0)  # type: ignore[arg-type]
    assert driver.next_deadline(ws) != 60.0  # type: ignore[arg-type]
    driver.timer(ws, 61.0)  # type: ignore[arg-type]
    assert ws.closed is None


def test_boot_timeout_0_turns_the_deadline_off() -> None:
    driver = csms_driver(boot_timeout=0)
    ws = FakeWs("2.0.1")
    driver.attach(ws, 0.0)  # type: ignore[arg-type]
    driver.timer(ws, 1e6)  # type: ignore[arg-type]
    assert ws.closed is None
