"""A CSMS and a charging station talking OCPP 2.0.1 over loopback, on trio."""

from datetime import UTC, datetime

import trio

from ocpp_sansio import Event, Router
from ocpp_sansio.adapters.trio import CsmsSession, Station, connect, serve
from ocpp_sansio.messages import v201

# The CSMS: one handler per request class. A request without one is answered NotSupported.
csms = Router()


@csms.on(v201.BootNotificationRequest)
async def boot(
    session: CsmsSession, request: v201.BootNotificationRequest
) -> v201.BootNotificationResponse:
    return v201.BootNotificationResponse(
        current_time=datetime.now(UTC),
        interval=300,
        status=v201.RegistrationStatusEnum.ACCEPTED,
    )


@csms.on(v201.HeartbeatRequest)
async def heartbeat(session: CsmsSession, request: v201.HeartbeatRequest) -> v201.HeartbeatResponse:
    return v201.HeartbeatResponse(current_time=datetime.now(UTC))


class Csms:
    """What ``serve`` takes: requests go to the router, events are printed."""

    def __init__(self, router: Router) -> None:
        self.on_request = router.on_request

    async def on_event(self, session: CsmsSession, event: Event) -> None:
        print(f"csms: {session.identity}: {type(event).__name__}")


# The station answers the CSMS with a router of its own.
station_side = Router()


@station_side.on(v201.ChangeAvailabilityRequest)
async def change_availability(
    station: Station, request: v201.ChangeAvailabilityRequest
) -> v201.ChangeAvailabilityResponse:
    return v201.ChangeAvailabilityResponse(status=v201.ChangeAvailabilityStatusEnum.ACCEPTED)


async def main() -> None:
    async with serve(Csms(csms), "127.0.0.1", 0) as server:
        boot = v201.BootNotificationRequest(
            charging_station=v201.ChargingStation(model="Demo", vendor_name="Example"),
            reason=v201.BootReasonEnum.POWER_UP,
        )
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
        answers = station_side.on_request
        async with connect(url, version="2.0.1", boot=boot, on_request=answers) as station:
            await station.wait_registered()
            heartbeat = await station.call(v201.HeartbeatRequest())
            print("station: CSMS time", heartbeat.current_time)
            session = server.sessions["cs001"]
            answer = await session.call(
                v201.ChangeAvailabilityRequest(
                    operational_status=v201.OperationalStatusEnum.OPERATIVE
                )
            )
            print("csms: the station says", answer.status)


if __name__ == "__main__":
    trio.run(main)
