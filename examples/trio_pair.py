"""A CSMS and a charging station talking OCPP 2.0.1 over loopback, on trio."""

from datetime import UTC, datetime

import trio

from ocpp_sansio.adapters import OcppCallError
from ocpp_sansio.adapters.trio import connect, serve
from ocpp_sansio.messages import v201


class Csms:
    """One handler object serves every station; ``session`` says which one."""

    async def on_request(self, session, request):
        match request:
            case v201.BootNotificationRequest():
                return v201.BootNotificationResponse(
                    current_time=datetime.now(UTC),
                    interval=300,
                    status=v201.RegistrationStatusEnum.ACCEPTED,
                )
            case v201.HeartbeatRequest():
                return v201.HeartbeatResponse(current_time=datetime.now(UTC))
        raise OcppCallError("NotSupported", f"{type(request).__name__} is not handled")

    async def on_event(self, session, event):
        print(f"csms: {session.identity}: {type(event).__name__}")


async def station_answers(station, request):
    match request:
        case v201.ChangeAvailabilityRequest():
            return v201.ChangeAvailabilityResponse(
                status=v201.ChangeAvailabilityStatusEnum.ACCEPTED
            )
    raise OcppCallError("NotSupported")


async def main():
    async with serve(Csms(), "127.0.0.1", 0) as server:
        boot = v201.BootNotificationRequest(
            charging_station=v201.ChargingStation(model="Demo", vendor_name="Example"),
            reason=v201.BootReasonEnum.POWER_UP,
        )
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
        async with connect(url, version="2.0.1", boot=boot, on_request=station_answers) as station:
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
