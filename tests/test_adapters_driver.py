"""The adapters' shared policy (adapters/_driver.py), in memory: the station's reconnect
decisions (OCPPCommCtrlr.RetryBackOff*), the cores an application supplies, where a CSMS
connection's session comes from, and flows hosted next to a core. No sockets, no clock."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from ocpp_sansio.adapters import (
    Backoff,
    ConnectFailed,
    ConnectFailedError,
    CoreMismatch,
    ServerOptions,
    StationOptions,
)
from ocpp_sansio.adapters._driver import (
    CsmsCores,
    Driver,
    StationDriver,
    posix_wall_clock,
    station_core,
)
from ocpp_sansio.adapters._ws import Closed, Endpoint, Phase, TextReceived
from ocpp_sansio.config import CsmsConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import CallErrorReceived, RequestReceived, ResponseReceived
from ocpp_sansio.flows import CsmsTransactions16, DataTransferRouter, FlowHost
from ocpp_sansio.flows._base import FlowEvent
from ocpp_sansio.messages import v16, v201
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.pair import InMemoryPair

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
BOOT_16 = v16.BootNotificationRequest(charge_point_model="M", charge_point_vendor="V")
BOOT_201 = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="M", vendor_name="V"),
    reason=v201.BootReasonEnum.POWER_UP,
)


class FakeWs:
    """An open WebSocket as the driver sees it: text in and out, no bytes."""

    def __init__(self, version: str = "1.6", identity: str = "CS1") -> None:
        self.version: str | None = version
        self.identity = identity
        self.phase = Phase.OPEN
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self._inbox: list[Any] = []

    def send_text(self, text: str) -> None:
        self.sent.append(text)

    def receive_data(self, data: bytes | None, now: float) -> None:
        assert data is not None
        self._inbox.append(TextReceived(text=data.decode()))

    def events(self) -> list[Any]:
        out, self._inbox = self._inbox, []
        return out

    def handle_timer(self, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def close(self, code: int, reason: str, now: float) -> None:
        self.closed = (code, reason)
        self.phase = Phase.CLOSING


def station_driver(**options: Any) -> StationDriver:
    options.setdefault("backoff", Backoff(minimum=1, random_range=0, repeat_times=2))
    return StationDriver(
        StationCore("1.6", BOOT_16),
        Endpoint.from_url("ws://127.0.0.1:9/CS1"),
        StationOptions(**options),
        rng=random.Random(1),
        wall_clock=posix_wall_clock,
    )


def unreachable() -> ConnectFailedError:
    return ConnectFailedError("cannot connect")


# --- the station's reconnect policy (OCPPCommCtrlr.RetryBackOff*) ---------------------------------


def test_reconnect_waits_double_up_to_repeat_times_then_give_up_after_max_attempts() -> None:
    driver = station_driver(max_attempts=5)
    waits = [driver.attempt_ended(None, unreachable()) for _ in range(5)]
    assert waits == [1, 2, 4, 4, None]
    reported = [e.retry_in for e in driver.take_events() if isinstance(e, ConnectFailed)]
    assert reported == [1, 2, 4, 4, None]
    assert not driver.trying
    with pytest.raises(ConnectFailedError):
        driver.is_connected()
    with pytest.raises(ConnectFailedError):
        driver.is_registered()


def test_a_connection_that_opened_starts_the_waits_afresh() -> None:
    driver = station_driver(max_attempts=3)
    assert [driver.attempt_ended(None, unreachable()) for _ in range(2)] == [1, 2]
    assert driver.attempt_ended(FakeWs()) == 1  # type: ignore[arg-type]
    # The failures before the success no longer count toward max_attempts; the wait after
    # the connection was wait 0 of the fresh series.
    assert [driver.attempt_ended(None, unreachable()) for _ in range(3)] == [2, 4, None]


def test_a_refused_handshake_fails_the_attempt_with_its_http_status() -> None:
    driver = station_driver()
    driver.new_websocket(0.0)
    driver.refused(Closed(code=1006, reason="HTTP 404", by_peer=True, status=404))
    refused = FakeWs()
    refused.version = None  # the handshake never completed
    assert driver.attempt_ended(refused) == 1  # type: ignore[arg-type]
    (event,) = driver.take_events()
    assert isinstance(event, ConnectFailed) and event.error.status == 404


def test_closing_the_station_ends_the_attempts() -> None:
    driver = station_driver()
    assert driver.stop() is None
    assert not driver.trying
    assert driver.attempt_ended(FakeWs()) is None  # type: ignore[arg-type]
    assert driver.attempt_ended(None, unreachable()) is None


# --- cores the application supplies --------------------------------------------------------------


def build_station_core(core: Any = None, **options: Any) -> StationCore:
    arguments: dict[str, Any] = {
        "version": None,
        "boot": None,
        "station_config": None,
        "id_generator": None,
    }
    arguments.update(options)
    return station_core(core, rng=random.Random(0), **arguments)


def test_connect_builds_a_core_from_version_and_boot_or_takes_the_applications() -> None:
    built = build_station_core(version="1.6", boot=BOOT_16)
    assert built.version == "1.6" and built.boot_request is BOOT_16
    own = StationCore("2.0.1", BOOT_201)
    assert build_station_core(own) is own
    assert build_station_core(own, version="2.0.1") is own


@pytest.mark.parametrize(
    ("core", "options", "error"),
    [
        (None, {"version": "1.6"}, TypeError),  # no boot
        ("station", {"boot": BOOT_201}, TypeError),  # the boot belongs to the core
        ("station", {"id_generator": lambda: "x"}, TypeError),
        ("station", {"version": "1.6"}, CoreMismatch),  # the core speaks 2.0.1
        ("csms", {}, CoreMismatch),  # the wrong side's core
        ("connected", {}, CoreMismatch),  # one connection per core
    ],
)
def test_connect_refuses_a_core_that_does_not_fit(
    core: str | None, options: Any, error: type
) -> None:
    given: Any = None
    if core == "station":
        given = StationCore("2.0.1", BOOT_201)
    elif core == "csms":
        given = CsmsCore("2.0.1", "CS1")
    elif core == "connected":
        given = StationCore("2.0.1", BOOT_201)
        given.connection_made(0.0)
    with pytest.raises(error):
        build_station_core(given, **options)


def csms_cores(**options: Any) -> CsmsCores:
    return CsmsCores(ServerOptions(**options), posix_wall_clock)


def test_core_factory_makes_each_stations_core_and_flows_see_it() -> None:
    made: list[tuple[str, str]] = []
    seen: list[Any] = []

    def factory(identity: str, version: str) -> CsmsCore:
        made.append((identity, version))
        return CsmsCore(version, identity, config=CsmsConfig(call_timeout=7))

    def flows(core: Any) -> list[Any]:
        seen.append(core)
        return [DataTransferRouter(core)]

    driver = csms_cores(core_factory=factory, flows=flows).new_driver("CS1", "2.0.1")
    assert made == [("CS1", "2.0.1")]
    assert seen == [driver.core] and driver.core.config.call_timeout == 7
    assert driver.host is not None and isinstance(driver.host.flows[0], DataTransferRouter)


@pytest.mark.parametrize(
    ("made", "problem"),
    [
        (lambda identity, version: CsmsCore("1.6", identity), "negotiated 2.0.1"),
        (lambda identity, version: CsmsCore(version, "OTHER"), "'OTHER'"),
        (lambda identity, version: StationCore(version, BOOT_201), "not a CsmsCore"),
    ],
)
def test_a_core_factory_that_gives_a_core_that_does_not_fit_is_refused(
    made: Any, problem: str
) -> None:
    with pytest.raises(CoreMismatch, match=problem):
        csms_cores(core_factory=made).new_driver("CS1", "2.0.1")


def test_core_factory_excludes_the_options_of_the_cores_serve_builds() -> None:
    with pytest.raises(TypeError):
        csms_cores(core_factory=lambda i, v: CsmsCore(v, i), csms_config=CsmsConfig())


class Session:
    def __init__(self, identity: str, driver: Driver) -> None:
        self.identity = identity
        self.driver = driver
        self.link: Any = None


class Conn:
    def __init__(self, ws: FakeWs) -> None:
        self.ws = ws


def test_a_station_keeps_its_session_across_connections_and_a_new_version_gets_a_new_core() -> None:
    cores = csms_cores()
    sessions: dict[str, Session] = {}
    first = FakeWs("1.6", "CS1")
    placed = cores.place(sessions, first, 0.0, Session)  # type: ignore[arg-type]
    assert placed is not None and placed[1] is None
    session = placed[0]
    session.link = Conn(first)
    session.driver.attach(first, 0.0)  # type: ignore[arg-type]
    again = cores.place(sessions, FakeWs("1.6", "cs1"), 1.0, Session)  # type: ignore[arg-type]
    assert again is not None and again[0] is session
    assert again[1] is session.link and first.closed == (1000, "replaced by a new connection")
    other = cores.place(sessions, FakeWs("2.0.1", "CS1"), 2.0, Session)  # type: ignore[arg-type]
    assert other is not None and other[0] is not session and other[0].driver.core.version == "2.0.1"
    assert list(sessions) == ["cs1"]
    closing = FakeWs("1.6", "CS2")
    closing.phase = Phase.CLOSING  # its core could not be made; it is on its way out
    assert cores.place(sessions, closing, 3.0, Session) is None  # type: ignore[arg-type]


# --- flows next to a core ------------------------------------------------------------------------


def start_transaction(meter_start: int) -> Any:
    return v16.StartTransactionRequest(
        connector_id=1, id_tag="TAG", meter_start=meter_start, timestamp=EPOCH
    )


class Exploding:
    def handle_event(self, event: Any, now: float) -> bool:
        if isinstance(event, RequestReceived) and event.action == "Authorize":
            raise RuntimeError("boom")
        return False


def test_flows_answer_in_order_and_the_first_to_take_an_event_keeps_it() -> None:
    csms = CsmsCore("1.6", "CS1")
    host = FlowHost(csms, [Exploding(), CsmsTransactions16(csms), DataTransferRouter(csms)])
    left: list[Any] = []

    def on_csms(core: Any, event: Any, now: float) -> None:
        if not host.route(event, now):
            left.append(event)

    pair = InMemoryPair(StationCore("1.6", BOOT_16), csms, on_csms_event=on_csms)
    pair.connect()
    (boot,) = [e for e in left if isinstance(e, RequestReceived)]
    assert boot.action == "BootNotification"  # no flow takes it
    boot_id = boot.message_id
    csms.send_response(
        boot_id,
        v16.BootNotificationResponse(
            status=v16.RegistrationStatus.ACCEPTED, current_time=EPOCH, interval=300
        ),
        pair.now,
    )
    pair.flush()
    pair.station.send_request(start_transaction(0), pair.now)
    pair.station.send_request(v16.DataTransferRequest(vendor_id="nobody"), pair.now)
    pair.station.send_request(v16.AuthorizeRequest(id_tag="TAG"), pair.now)
    pair.flush()
    answers = [e for e in pair.station_events if isinstance(e, ResponseReceived)]
    assert [type(e.response).__name__ for e in answers][1:] == [
        "StartTransactionResponse",
        "DataTransferResponse",
    ]
    assert answers[1].response.transaction_id == 1
    assert str(answers[2].response.status) == "UnknownVendorId"
    # A flow that raises keeps the request and answers it InternalError.
    (failed,) = [e for e in pair.station_events if isinstance(e, CallErrorReceived)]
    assert failed.error_code == "InternalError"
    assert [type(e).__name__ for e in host.events()] == ["TransactionReport"]
    assert not [e for e in left if isinstance(e, RequestReceived) and e.message_id != boot_id]


def test_something_without_handle_event_is_not_a_flow() -> None:
    with pytest.raises(TypeError, match="no handle_event"):
        FlowHost(CsmsCore("1.6", "CS1"), [object()])


class Ticked(FlowEvent):
    pass


class Ticker:
    """A flow with a timer: ``delay`` after the connection it sends a Heartbeat."""

    def __init__(self, core: Any, delay: float) -> None:
        self.core = core
        self.delay = delay
        self.due: float | None = None
        self.sent: str | None = None
        self._events: list[Any] = []

    def handle_event(self, event: Any, now: float) -> bool:
        if type(event).__name__ == "RegistrationChanged" and self.sent is None:
            self.due = now + self.delay
        return isinstance(event, ResponseReceived) and event.message_id == self.sent

    def next_deadline(self) -> float | None:
        return self.due

    def handle_timer(self, now: float) -> None:
        self.due = None
        self.sent = self.core.send_request(v16.HeartbeatRequest(), now)
        self._events.append(Ticked())

    def events(self) -> list[Any]:
        out, self._events = self._events, []
        return out


def test_the_driver_runs_flows_before_the_application_with_their_timers() -> None:
    core = StationCore("1.6", BOOT_16)
    driver = Driver(core, lambda core: [Ticker(core, 5.0)])
    ws = FakeWs()
    driver.attach(ws, 100.0)  # type: ignore[arg-type]
    driver.flush()
    boot = json.loads(ws.sent[-1])
    accepted = {"status": "Accepted", "currentTime": "2025-01-01T00:00:00Z", "interval": 300}
    driver.receive(ws, json.dumps([3, boot[1], accepted]).encode(), 100.5)  # type: ignore[arg-type]
    driver.flush()
    assert driver.next_deadline(ws) == 105.5  # type: ignore[arg-type]
    driver.timer(ws, 105.5)  # type: ignore[arg-type]
    driver.flush()
    heartbeat = json.loads(ws.sent[-1])
    assert heartbeat[2] == "Heartbeat"
    answer = [3, heartbeat[1], {"currentTime": "2025-01-01T00:00:05Z"}]
    driver.receive(ws, json.dumps(answer).encode(), 106.0)  # type: ignore[arg-type]
    events = driver.take_events()
    assert "Ticked" in [type(e).__name__ for e in events]
    # The flow kept the answer to its Heartbeat.
    assert heartbeat[1] not in [getattr(e, "message_id", None) for e in events]
    assert driver.take_requests() == []


def test_a_connection_whose_core_cannot_be_made_is_closed_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cores = csms_cores(core_factory=lambda identity, version: CsmsCore("1.6", identity))
    sessions: dict[str, Session] = {}
    ws = FakeWs("2.0.1", "CS1")
    assert cores.place(sessions, ws, 0.0, Session) is None  # type: ignore[arg-type]
    assert ws.closed == (1011, "the CSMS could not set up this station")
    assert sessions == {}
    assert "CoreMismatch" in caplog.text
