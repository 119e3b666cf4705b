"""One scenario, the same code, on the in-memory adapter and on the socket adapters: the
server's ``sessions``, a session's ``call``, ``identity``, ``version`` and ``registration``,
and a station's ``call`` and ``wait_registered`` behave alike (docs/testing.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from _adapterkit import KITS, Kit, until

from ocpp_sansio import OcppCallError, RegistrationStatus, Router, SupportsCall
from ocpp_sansio.adapters import memory
from ocpp_sansio.flows import Activity, RemoteControl
from ocpp_sansio.messages import v201

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BOOT = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="X1", vendor_name="Acme"),
    reason=v201.BootReasonEnum.POWER_UP,
)
ADAPTERS = {
    "memory-trio": Kit("memory", memory, "trio", blocking=False),
    "memory-asyncio": Kit("memory", memory, "asyncio", blocking=False),
    "trio": KITS["trio"],
    "asyncio": KITS["asyncio"],
    "threads": KITS["threads"],
}


@pytest.fixture(params=sorted(ADAPTERS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return ADAPTERS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


def csms(blocking: bool) -> Router:
    router = Router()

    def boot(session: Any, request: v201.BootNotificationRequest) -> Any:
        accepted = v201.RegistrationStatusEnum.ACCEPTED
        return v201.BootNotificationResponse(current_time=NOW, interval=300, status=accepted)

    def beat(session: Any, request: v201.HeartbeatRequest) -> Any:
        return v201.HeartbeatResponse(current_time=NOW)

    async def boot_async(session: SupportsCall, request: v201.BootNotificationRequest) -> Any:
        return boot(session, request)

    async def beat_async(session: SupportsCall, request: v201.HeartbeatRequest) -> Any:
        return beat(session, request)

    router.on(v201.BootNotificationRequest)(boot if blocking else boot_async)
    router.on(v201.HeartbeatRequest)(beat if blocking else beat_async)
    return router


async def test_the_same_scenario_behaves_alike(kit: Kit) -> None:
    with anyio.fail_after(20):
        async with kit.serve_handler(csms(kit.blocking), versions=["2.0.1"]) as server:
            url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
            flows = lambda core: [RemoteControl(core, Activity())]  # noqa: E731
            async with kit.connect(url, "2.0.1", flows=flows) as station:
                await kit.wait_registered(station)
                assert station.registration is RegistrationStatus.ACCEPTED
                session = server.sessions["cs001"]
                assert (session.identity, session.version) == ("CS001", "2.0.1")
                assert session.registration is RegistrationStatus.ACCEPTED
                token = v201.IdToken(id_token="TAG1", type=v201.IdTokenEnum.ISO14443)
                start = v201.RequestStartTransactionRequest(
                    id_token=token, remote_start_id=7, evse_id=1
                )
                answer = await kit.call(session, start)
                assert answer == v201.RequestStartTransactionResponse(
                    status=v201.RequestStartStopStatusEnum.ACCEPTED
                )
                beat = await kit.call(station, v201.HeartbeatRequest())
                assert beat == v201.HeartbeatResponse(current_time=NOW)
                with pytest.raises(OcppCallError) as raised:
                    await kit.call(station, v201.AuthorizeRequest(id_token=token))
                assert raised.value.error_code == "NotSupported"


@pytest.mark.parametrize("kit", sorted(KITS), indirect=True)
async def test_the_csms_session_waits_for_the_registration(kit: Kit) -> None:
    """``session.wait_registered()`` on the socket adapters: a Pending answer does not end
    the wait, the Accepted one after the station's next boot does (B02.FR.08); then it
    returns at once."""
    statuses = [v201.RegistrationStatusEnum.PENDING, v201.RegistrationStatusEnum.ACCEPTED]
    router = Router()

    def boot(session: Any, request: v201.BootNotificationRequest) -> Any:
        status = statuses.pop(0)
        return v201.BootNotificationResponse(current_time=NOW, interval=1, status=status)

    async def boot_async(session: SupportsCall, request: v201.BootNotificationRequest) -> Any:
        return boot(session, request)

    router.on(v201.BootNotificationRequest)(boot if kit.blocking else boot_async)
    with anyio.fail_after(20):
        async with kit.serve_handler(router, versions=["2.0.1"]) as server:
            url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
            async with kit.connect(url, "2.0.1"):
                await until(lambda: "cs001" in server.sessions)
                session = server.sessions["cs001"]
                await kit.wait_registered(session)
                assert session.registration is RegistrationStatus.ACCEPTED
                assert statuses == []
                await kit.wait_registered(session)  # at once now
