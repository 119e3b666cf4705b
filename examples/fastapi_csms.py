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

from ocpp_sansio import Router
from ocpp_sansio.adapters import StationOptions, identity_key
from ocpp_sansio.adapters.asgi import CsmsSession, asgi_app
from ocpp_sansio.adapters.asyncio import Station, connect
from ocpp_sansio.messages import v16, v201

router = Router()


@router.on(v201.BootNotificationRequest)
async def boot(
    session: CsmsSession, request: v201.BootNotificationRequest
) -> v201.BootNotificationResponse:
    accepted = v201.RegistrationStatusEnum.ACCEPTED
    now = datetime.now(UTC)
    return v201.BootNotificationResponse(status=accepted, current_time=now, interval=300)


@router.on(v16.BootNotificationRequest)
async def boot_1_6(
    session: CsmsSession, request: v16.BootNotificationRequest
) -> v16.BootNotificationResponse:
    accepted = v16.RegistrationStatus.ACCEPTED
    now = datetime.now(UTC)
    return v16.BootNotificationResponse(status=accepted, current_time=now, interval=300)


csms = asgi_app(router, versions=["2.0.1", "1.6"])
api = FastAPI()
api.mount("/ocpp", csms)  # the station identity is the last path segment


@api.get("/stations")
async def stations() -> dict[str, dict[str, object]]:
    return {
        session.identity: {"version": session.version, "connected": session.connected}
        for session in csms.sessions.values()
    }


@api.post("/stations/{identity}/operative")
async def make_operative(identity: str) -> dict[str, str]:
    session = csms.sessions.get(identity_key(identity))
    if session is None or not session.connected:
        raise HTTPException(404, f"{identity} is not connected")
    if session.version == "1.6":
        operative = v16.AvailabilityType.OPERATIVE
        answer_1_6 = await session.call(
            v16.ChangeAvailabilityRequest(connector_id=0, type=operative)
        )
        return {"status": str(answer_1_6.status)}
    request = v201.ChangeAvailabilityRequest(
        operational_status=v201.OperationalStatusEnum.OPERATIVE
    )
    answer = await session.call(request)
    return {"status": str(answer.status)}


# The example's own station answers the CSMS with a router of its own.
station_side = Router()


@station_side.on(v201.ChangeAvailabilityRequest)
async def change_availability(
    station: Station, request: v201.ChangeAvailabilityRequest
) -> v201.ChangeAvailabilityResponse:
    return v201.ChangeAvailabilityResponse(status=v201.ChangeAvailabilityStatusEnum.ACCEPTED)


def http(method: str, url: str) -> dict[str, object]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as answer:
        body: dict[str, object] = json.load(answer)
        return body


async def main() -> None:
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
    answers = station_side.on_request
    async with connect(
        url, version="2.0.1", boot=boot, on_request=answers, options=options
    ) as station:
        await station.wait_registered()
        print("stations:", await asyncio.to_thread(http, "GET", f"http://{base}/stations"))
        asked = await asyncio.to_thread(http, "POST", f"http://{base}/stations/CS001/operative")
        print("the station says", asked["status"])
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
