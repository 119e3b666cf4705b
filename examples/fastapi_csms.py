"""A CSMS inside a FastAPI application: stations connect to ws://HOST:PORT/ocpp/<identity>,
and plain HTTP endpoints list them and ask one to change its availability.

Run it with ``uvicorn fastapi_csms:api`` (or ``python fastapi_csms.py``, which also starts
a station of its own and asks it once through the HTTP endpoint)."""

import asyncio
import json
import urllib.request
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, HTTPException

from ocpp_sansio.adapters import OcppCallError, StationOptions
from ocpp_sansio.adapters.asgi import asgi_app
from ocpp_sansio.adapters.asyncio import connect
from ocpp_sansio.messages import v16, v201


class Csms:
    async def on_request(self, session, request):
        now = datetime.now(UTC)
        match request:
            case v201.BootNotificationRequest():
                accepted = v201.RegistrationStatusEnum.ACCEPTED
                return v201.BootNotificationResponse(
                    status=accepted, current_time=now, interval=300
                )
            case v16.BootNotificationRequest():
                accepted = v16.RegistrationStatus.ACCEPTED
                return v16.BootNotificationResponse(status=accepted, current_time=now, interval=300)
            case v201.HeartbeatRequest():
                return v201.HeartbeatResponse(current_time=now)
            case v16.HeartbeatRequest():
                return v16.HeartbeatResponse(current_time=now)
        raise OcppCallError("NotSupported", f"{type(request).__name__} is not handled here")


csms = asgi_app(Csms(), versions=["2.0.1", "1.6"])
api = FastAPI()
api.mount("/ocpp", csms)  # the station identity is the last path segment


@api.get("/stations")
async def stations():
    return {
        session.identity: {"version": session.version, "connected": session.connected}
        for session in csms.sessions.values()
    }


@api.post("/stations/{identity}/operative")
async def make_operative(identity: str):
    session = csms.sessions.get(identity.casefold())
    if session is None or not session.connected:
        raise HTTPException(404, f"{identity} is not connected")
    if session.version == "1.6":
        request = v16.ChangeAvailabilityRequest(connector_id=0, type=v16.AvailabilityType.OPERATIVE)
    else:
        request = v201.ChangeAvailabilityRequest(
            operational_status=v201.OperationalStatusEnum.OPERATIVE
        )
    answer = await session.call(request)
    return {"status": str(answer.status)}


async def station_answers(station, request):
    if isinstance(request, v201.ChangeAvailabilityRequest):
        return v201.ChangeAvailabilityResponse(status=v201.ChangeAvailabilityStatusEnum.ACCEPTED)
    raise OcppCallError("NotSupported")


def http(method, url):
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as answer:
        return json.load(answer)


async def main():
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    base = f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    boot = v201.BootNotificationRequest(
        charging_station=v201.ChargingStation(model="Demo", vendor_name="Example"),
        reason=v201.BootReasonEnum.POWER_UP,
    )
    url = f"ws://{base}/ocpp/CS001"
    options = StationOptions(max_attempts=3)
    async with connect(
        url, version="2.0.1", boot=boot, on_request=station_answers, options=options
    ) as station:
        await station.wait_registered()
        print("stations:", await asyncio.to_thread(http, "GET", f"http://{base}/stations"))
        asked = await asyncio.to_thread(http, "POST", f"http://{base}/stations/CS001/operative")
        print("the station says", asked["status"])
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
