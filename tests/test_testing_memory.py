"""ocpp_sansio.testing.memory: a CSMS (handler object or Router) and stations connected
through memory on a virtual clock, under trio and asyncio: no sockets, no sleeps."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from ocpp_sansio import (
    CallTimedOutError,
    ConnectFailedError,
    RegistrationChanged,
    RegistrationStatus,
    Router,
    SupportsCall,
)
from ocpp_sansio.adapters import Backoff, StationOptions
from ocpp_sansio.flows import Activity, RemoteControl, RemoteStartAccepted
from ocpp_sansio.messages import v201
from ocpp_sansio.testing.memory import VirtualClock, connect, serve

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BOOT = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="X1", vendor_name="Acme"),
    reason=v201.BootReasonEnum.POWER_UP,
)
URL = "ws://csms.test/ocpp/CS001"


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Csms:
    """A Router-based CSMS that records what it answered and the events it saw; served
    as a handler object (``on_request`` from the router, ``on_event`` of its own)."""

    def __init__(self, boot_status: str = "Accepted", interval: int = 300) -> None:
        self.router = Router()
        self.on_request = self.router.on_request
        self.seen: list[tuple[str, float]] = []
        self.events: list[Any] = []
        self.clock: VirtualClock | None = None
        self.boot_status = boot_status

        @self.router.on(v201.BootNotificationRequest)
        async def boot(
            session: SupportsCall, request: v201.BootNotificationRequest
        ) -> v201.BootNotificationResponse:
            self._saw("BootNotification")
            status = v201.RegistrationStatusEnum(self.boot_status)
            return v201.BootNotificationResponse(
                current_time=START, interval=interval, status=status
            )

        @self.router.on(v201.HeartbeatRequest)
        async def beat(
            session: SupportsCall, request: v201.HeartbeatRequest
        ) -> v201.HeartbeatResponse:
            self._saw("Heartbeat")
            return v201.HeartbeatResponse(current_time=START)

    async def on_event(self, session: Any, event: Any) -> None:
        self.events.append(event)

    def _saw(self, action: str) -> None:
        self.seen.append((action, self.clock.now if self.clock else 0.0))

    def actions(self) -> list[str]:
        return [action for action, _ in self.seen]


def remote_control(core: Any) -> list[Any]:
    return [RemoteControl(core, Activity())]


def start_request() -> v201.RequestStartTransactionRequest:
    token = v201.IdToken(id_token="TAG1", type=v201.IdTokenEnum.ISO14443)
    return v201.RequestStartTransactionRequest(id_token=token, remote_start_id=7, evse_id=1)


async def test_a_csms_session_calls_and_the_station_flows_answer() -> None:
    clock = VirtualClock()
    csms = Csms()
    seen_by_station: list[Any] = []

    async def on_event(station: Any, event: Any) -> None:
        seen_by_station.append(event)

    async with (
        serve(csms.router, versions=["2.0.1"], clock=clock) as server,
        connect(
            f"ws://127.0.0.1:{server.port}/ocpp/CS001",
            version="2.0.1",
            boot=BOOT,
            clock=clock,
            on_event=on_event,
            options=StationOptions(flows=remote_control),
        ) as station,
    ):
        await station.wait_registered()
        session = server.sessions["cs001"]
        assert (session.identity, session.version) == ("CS001", "2.0.1")
        answer = await session.call(start_request())
        assert answer.status == v201.RequestStartStopStatusEnum.ACCEPTED
        await clock.run_for(0)  # let the event reach on_event
    assert [type(e) for e in seen_by_station if isinstance(e, RemoteStartAccepted)] == [
        RemoteStartAccepted
    ]
    assert clock.now == 0.0  # nothing above needed time to pass


async def test_run_for_moves_time_through_every_timer_without_waiting() -> None:
    clock = VirtualClock()
    csms = Csms(interval=300)
    csms.clock = clock
    began = time.monotonic()
    async with (
        serve(csms.router, clock=clock) as server,
        connect(f"ws://127.0.0.1:{server.port}/ocpp/CS001", version="2.0.1", boot=BOOT),
    ):
        await clock.run_for(3600)
        beats = [at for action, at in csms.seen if action == "Heartbeat"]
    assert beats == [300.0 * n for n in range(1, 13)]
    assert time.monotonic() - began < 5  # an hour, in far less than a second of work


async def test_a_call_nobody_answers_times_out_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    router = Router()
    forever = anyio.Event()

    @router.on(v201.BootNotificationRequest)
    async def boot(session: SupportsCall, request: Any) -> v201.BootNotificationResponse:
        accepted = v201.RegistrationStatusEnum.ACCEPTED
        return v201.BootNotificationResponse(current_time=START, interval=300, status=accepted)

    @router.on(v201.AuthorizeRequest)
    async def never(session: SupportsCall, request: Any) -> v201.AuthorizeResponse:
        await forever.wait()
        raise AssertionError("unreachable")

    outcome: list[BaseException] = []
    async with (
        serve(router, clock=clock) as server,
        connect(f"ws://127.0.0.1:{server.port}/ocpp/CS001", version="2.0.1", boot=BOOT) as st,
    ):
        await st.wait_registered()

        async def authorize() -> None:
            token = v201.IdToken(id_token="T", type=v201.IdTokenEnum.ISO14443)
            try:
                await st.call(v201.AuthorizeRequest(id_token=token))
            except CallTimedOutError as error:
                outcome.append(error)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(authorize)
            await clock.run_for(29)
            assert outcome == []
            await clock.run_for(2)  # past the 30 s call timeout
        assert len(outcome) == 1


async def test_the_station_reconnects_after_its_back_off_and_resumes_without_a_boot() -> None:
    clock = VirtualClock()
    csms = Csms()
    backoff = Backoff(minimum=10, random_range=0, repeat_times=0)
    async with (
        serve(csms.router, clock=clock) as server,
        connect(
            f"ws://127.0.0.1:{server.port}/ocpp/CS001",
            version="2.0.1",
            boot=BOOT,
            options=StationOptions(backoff=backoff),
        ) as station,
    ):
        await station.wait_registered()
        await server.sessions["cs001"].close()
        assert not station.connected
        await clock.run_for(9)
        assert not station.connected
        await clock.run_for(1)
        assert station.connected
    assert csms.actions().count("BootNotification") == 1  # B04: no new boot


async def test_the_csms_session_waits_for_the_registration_and_reports_it() -> None:
    clock = VirtualClock()
    csms = Csms(boot_status="Pending", interval=60)
    async with (
        serve(csms, clock=clock) as server,
        connect(f"ws://127.0.0.1:{server.port}/ocpp/CS001", version="2.0.1", boot=BOOT),
    ):
        await clock.run_for(0)
        session = server.sessions["cs001"]
        assert session.registration is RegistrationStatus.PENDING
        done: list[float] = []

        async def wait() -> None:
            await session.wait_registered()
            done.append(clock.now)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await clock.run_for(59)
            assert done == []
            csms.boot_status = "Accepted"
            await clock.run_for(2)  # the station boots again after 60 s (B02.FR.08)
        assert done == [60.0]
        await session.wait_registered()  # at once now
    changes = [(e.previous, e.status) for e in csms.events if isinstance(e, RegistrationChanged)]
    assert changes == [
        (RegistrationStatus.BOOTING, RegistrationStatus.PENDING),
        (RegistrationStatus.PENDING, RegistrationStatus.ACCEPTED),
    ]


async def test_a_url_where_no_server_listens_fails_like_a_refused_socket() -> None:
    once = StationOptions(max_attempts=1)
    async with connect(URL, version="2.0.1", boot=BOOT, options=once) as station:
        with pytest.raises(ConnectFailedError, match="no in-memory server"):
            await station.wait_connected()


async def test_the_cores_stamp_the_virtual_wall_clock() -> None:
    clock = VirtualClock(wall_start=START)
    async with (
        serve(Csms().router, clock=clock) as server,
        connect(f"ws://127.0.0.1:{server.port}/ocpp/CS001", version="2.0.1", boot=BOOT) as st,
    ):
        await st.wait_registered()
        await clock.run_for(90)
        assert st.core.wall_time(clock.now) == START + timedelta(seconds=90)
        assert server.sessions["cs001"].core.wall_time(0.0) == START


async def test_a_station_on_another_clock_cannot_reach_the_server() -> None:
    async with (
        serve(Csms().router, clock=VirtualClock()) as server,
        connect(
            f"ws://127.0.0.1:{server.port}/ocpp/CS001",
            version="2.0.1",
            boot=BOOT,
            clock=VirtualClock(),
            options=StationOptions(max_attempts=1),
        ) as station,
    ):
        with pytest.raises(ConnectFailedError, match="another VirtualClock"):
            await station.wait_connected()


def test_docs_testing_shows_the_in_memory_example_as_it_is() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "testing.md").read_text(encoding="utf-8")
    copies = re.findall(r"<!-- example: (\S+) -->\s*```python\n(.*?)```", text, re.S)
    assert [path for path, _ in copies] == ["examples/test_router_in_memory.py"]
    for path, copy in copies:
        assert copy == (root / path).read_text(encoding="utf-8")
