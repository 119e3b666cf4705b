"""Test your own CSMS handler against a simulated station, in memory, on a virtual clock.

Run with pytest: ``pytest examples/test_your_csms_in_memory.py``. No sockets, no sleeps:
an hour of heartbeats takes milliseconds.
"""

from datetime import UTC, datetime

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RequestReceived
from ocpp_sansio.messages import v201
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.pair import TO_CSMS, InMemoryPair


def my_csms(core: CsmsCore, event: object, now: float) -> None:
    """The application under test: accepts every station, answers heartbeats."""
    if not isinstance(event, RequestReceived):
        return
    clock = datetime(2025, 1, 1, tzinfo=UTC)
    answer: v201.BootNotificationResponse | v201.HeartbeatResponse
    if event.action == "BootNotification":
        answer = v201.BootNotificationResponse(
            current_time=clock, interval=300, status=v201.RegistrationStatusEnum.ACCEPTED
        )
    elif event.action == "Heartbeat":
        answer = v201.HeartbeatResponse(current_time=clock)
    else:
        core.send_error(event.message_id, "NotSupported", "not in this example")
        return
    core.send_response(event.message_id, answer, now)


def test_station_is_accepted_and_heartbeats_every_interval() -> None:
    boot = v201.BootNotificationRequest(
        charging_station=v201.ChargingStation(model="X1", vendor_name="Acme"),
        reason=v201.BootReasonEnum.POWER_UP,
    )
    pair = InMemoryPair(StationCore("2.0.1", boot), CsmsCore("2.0.1", "CS1"), on_csms_event=my_csms)
    pair.connect()
    pair.advance(3600)  # one virtual hour
    sent = [frame for frame in pair.frames(TO_CSMS) if '"Heartbeat"' in frame]
    assert len(sent) == 12
    assert pair.station.registration.value == "Accepted"
