"""One surface on every adapter: the same handler object (plain methods) serves trio,
asyncio, threads and ASGI; options are checked when they are built; the frame observer
and the frame logger see every frame; the adapters offer a wall clock."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from test_adapters_asgi import Uvicorn

from ocpp_sansio.adapters import (
    Backoff,
    ServerOptions,
    StationOptions,
    WsOptions,
    _conformance,
    surface,
)
from ocpp_sansio.adapters import asyncio as asyncio_adapter
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.adapters import trio as trio_adapter
from ocpp_sansio.adapters._driver import Driver
from ocpp_sansio.adapters.asgi import asgi_app
from ocpp_sansio.config import CsmsConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import Connected
from ocpp_sansio.messages import v16

QUIET = WsOptions(ping_interval=0, close_timeout=1, handshake_timeout=3)
BOOT = v16.BootNotificationRequest(charge_point_vendor="V", charge_point_model="M")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT = 10


class PlainCsms:
    """A handler with plain methods: it works on every adapter."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_request(self, session: Any, request: Any) -> Any:
        if isinstance(request, v16.BootNotificationRequest):
            accepted = v16.RegistrationStatus.ACCEPTED
            return v16.BootNotificationResponse(status=accepted, current_time=NOW, interval=300)
        return v16.HeartbeatResponse(current_time=NOW)

    def on_event(self, session: Any, event: Any) -> None:
        self.events.append(f"{session.identity} {type(event).__name__}")


class Frames:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str, datetime]] = []

    def __call__(self, direction: Any, identity: str, version: str, text: str, at: Any) -> None:
        self.seen.append((direction, identity, version, text, at))

    def actions(self, direction: str) -> list[str]:
        return [text.split('"')[3] for d, _, _, text, _ in self.seen if d == direction]


def _check(handler: PlainCsms, csms_frames: Frames, station_frames: Frames) -> None:
    assert "CS1 Connected" in handler.events
    assert csms_frames.actions("received")[:2] == ["BootNotification", "Heartbeat"]
    assert station_frames.actions("sent")[:2] == ["BootNotification", "Heartbeat"]
    assert len(station_frames.actions("received")) == 2  # the two answers
    for direction, identity, version, _, at in csms_frames.seen + station_frames.seen:
        assert direction in ("received", "sent")
        assert (identity, version) == ("CS1", "1.6")
        assert abs(at - datetime.now(UTC)) < timedelta(seconds=30)


@pytest.mark.parametrize("adapter", ["trio", "asyncio"])
def test_one_plain_handler_and_the_observer_on_the_event_loop_adapters(adapter: str) -> None:
    module: Any = trio_adapter if adapter == "trio" else asyncio_adapter
    handler, csms_frames, station_frames = PlainCsms(), Frames(), Frames()

    async def main() -> None:
        options = ServerOptions(ws_options=QUIET, observer=csms_frames)
        async with module.serve(handler, options=options) as server:
            url = f"ws://127.0.0.1:{server.port}/ocpp/CS1"
            station_options = StationOptions(ws_options=QUIET, observer=station_frames)
            async with module.connect(
                url, version="1.6", boot=BOOT, options=station_options
            ) as station:
                await station.wait_registered()
                await station.call(v16.HeartbeatRequest())

    if adapter == "trio":
        trio.run(main)
    else:
        asyncio.run(main())
    _check(handler, csms_frames, station_frames)


def test_one_plain_handler_and_the_observer_on_threads() -> None:
    handler, csms_frames, station_frames = PlainCsms(), Frames(), Frames()
    options = ServerOptions(ws_options=QUIET, observer=csms_frames)
    with threads_adapter.serve(handler, options=options) as server:
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS1"
        station_options = StationOptions(ws_options=QUIET, observer=station_frames)
        with threads_adapter.connect(url, version="1.6", boot=BOOT, options=station_options) as st:
            assert st.wait_registered(TIMEOUT)
            st.call(v16.HeartbeatRequest())
    _check(handler, csms_frames, station_frames)


def test_one_plain_handler_and_the_observer_on_asgi() -> None:
    handler, csms_frames, station_frames = PlainCsms(), Frames(), Frames()
    app = asgi_app(handler, options=ServerOptions(ws_options=QUIET, observer=csms_frames))
    with Uvicorn(app) as web:
        url = f"ws://127.0.0.1:{web.port}/ocpp/CS1"
        station_options = StationOptions(ws_options=QUIET, observer=station_frames)
        with threads_adapter.connect(url, version="1.6", boot=BOOT, options=station_options) as st:
            assert st.wait_registered(TIMEOUT)
            st.call(v16.HeartbeatRequest())
    _check(handler, csms_frames, station_frames)


def test_the_frame_logger_has_every_frame_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ocpp_sansio.adapters.frames")
    with threads_adapter.serve(PlainCsms(), options=ServerOptions(ws_options=QUIET)) as server:
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS1"
        options = StationOptions(ws_options=QUIET)
        with threads_adapter.connect(url, version="1.6", boot=BOOT, options=options) as st:
            assert st.wait_registered(TIMEOUT)
    lines = [r.getMessage() for r in caplog.records if r.name == "ocpp_sansio.adapters.frames"]
    assert any(line.startswith("CS1 1.6 sent [2,") for line in lines)  # the station's boot
    assert any(line.startswith("CS1 1.6 received [2,") for line in lines)  # the CSMS's view
    assert any(line.startswith("CS1 1.6 sent [3,") for line in lines)  # the CSMS's answer


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (
            lambda: ServerOptions(
                core_factory=lambda i, v: CsmsCore(v, i), csms_config=CsmsConfig()
            ),
            TypeError,
        ),
        (lambda: ServerOptions(backlog=0), ValueError),
        (lambda: ServerOptions(ws_options={"ping_interval": 0}), TypeError),  # type: ignore[arg-type]
        (lambda: ServerOptions(auth="secret"), TypeError),  # type: ignore[arg-type]
        (lambda: StationOptions(max_attempts=0), ValueError),
        (lambda: StationOptions(backoff=Backoff(minimum=-1)), ValueError),
        (lambda: StationOptions(rng=random), TypeError),  # type: ignore[arg-type]
        (lambda: StationOptions(auth=1234), TypeError),  # type: ignore[arg-type]
    ],
)
def test_options_are_checked_when_built(build: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://127.0.0.1:9/CS1", "not a ws:// or wss:// URL"), ("ws://127.0.0.1:9/", "identity")],
)
def test_a_url_connect_cannot_use_is_refused_at_once(url: str, problem: str) -> None:
    with (
        pytest.raises(ValueError, match=problem),
        threads_adapter.connect(url, version="1.6", boot=BOOT),
    ):
        pass


def test_every_adapter_conforms_to_the_declared_surface() -> None:
    """(mypy checks the types; this keeps the check's module importable and complete.)"""
    assert set(_conformance.SERVE) == set(_conformance.CONNECT) == {"trio", "asyncio", "memory"}
    assert _conformance.SYNC_SERVE is threads_adapter.serve
    assert set(surface.__all__) >= {"AsyncServer", "AsyncStation", "SyncServer", "SyncStation"}


def test_the_adapters_wall_clock_reads_utc_now() -> None:
    async def on_trio() -> datetime:
        return trio_adapter.wall_clock()(trio.current_time())

    async def on_asyncio() -> datetime:
        return asyncio_adapter.wall_clock()(asyncio.get_running_loop().time())

    import time

    readings = [
        trio.run(on_trio),
        asyncio.run(on_asyncio()),
        threads_adapter.wall_clock()(time.monotonic()),
    ]
    for reading in readings:
        assert abs(reading - datetime.now(UTC)) < timedelta(seconds=1)


def test_the_driver_offers_its_wall_clock_to_a_core_that_has_none() -> None:
    class CoreWithClock(CsmsCore):
        wall_clock: Any = None

    def clock(now: float) -> datetime:
        return NOW

    core = CoreWithClock("1.6", "CS1")
    Driver(core, wall_clock=clock)
    assert core.wall_clock is clock
    own = CoreWithClock("1.6", "CS2")
    own.wall_clock = lambda now: NOW
    Driver(own, wall_clock=clock)
    assert own.wall_clock is not clock
    assert Connected  # (the events the handler saw above are the package's own)
