"""Test a CSMS written with a Router against a real station, in memory, on a virtual clock.

The station runs its own flows (here the remote-control one), every frame crosses the real
WebSocket layer, handlers run as tasks, and no socket is opened and nothing sleeps: an hour
of heartbeats takes milliseconds. Run with pytest; anyio's plugin runs each test on trio
and on asyncio.
"""

from datetime import UTC, datetime

import pytest

from ocpp_sansio import Router, StationCore
from ocpp_sansio.adapters import StationOptions
from ocpp_sansio.flows import Activity, RemoteControl
from ocpp_sansio.messages import v201
from ocpp_sansio.testing.memory import CsmsSession, VirtualClock, connect, serve

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def make_csms(heartbeats: list[str]) -> Router:
    """The application under test: accepts every station and notes its heartbeats."""
    router = Router()

    @router.on(v201.BootNotificationRequest)
    async def boot(
        session: CsmsSession, request: v201.BootNotificationRequest
    ) -> v201.BootNotificationResponse:
        accepted = v201.RegistrationStatusEnum.ACCEPTED
        return v201.BootNotificationResponse(current_time=NOW, interval=300, status=accepted)

    @router.on(v201.HeartbeatRequest)
    async def heartbeat(
        session: CsmsSession, request: v201.HeartbeatRequest
    ) -> v201.HeartbeatResponse:
        heartbeats.append(session.identity)
        return v201.HeartbeatResponse(current_time=NOW)

    return router


BOOT = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="X1", vendor_name="Acme"),
    reason=v201.BootReasonEnum.POWER_UP,
)


def station_flows(core: StationCore) -> list[object]:
    """The station answers remote starts by the protocol's rules."""
    return [RemoteControl(core, Activity())]


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_the_station_accepts_a_remote_start() -> None:
    clock = VirtualClock()
    async with serve(make_csms([]), clock=clock) as server:
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
        options = StationOptions(flows=station_flows)
        async with connect(url, version="2.0.1", boot=BOOT, clock=clock, options=options) as cs:
            await cs.wait_registered()
            session = server.sessions["cs001"]
            token = v201.IdToken(id_token="TAG-1", type=v201.IdTokenEnum.ISO14443)
            start = v201.RequestStartTransactionRequest(
                id_token=token, remote_start_id=1, evse_id=1
            )
            answer = await session.call(start)  # typed: a RequestStartTransactionResponse
            assert answer.status == v201.RequestStartStopStatusEnum.ACCEPTED


@pytest.mark.anyio
async def test_an_hour_of_heartbeats_takes_no_time() -> None:
    heartbeats: list[str] = []
    clock = VirtualClock()
    async with serve(make_csms(heartbeats), clock=clock) as server:
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
        async with connect(url, version="2.0.1", boot=BOOT, clock=clock) as station:
            await station.wait_registered()
            await clock.run_for(3600)  # every timer on the way runs, in order
    assert heartbeats == ["CS001"] * 12
