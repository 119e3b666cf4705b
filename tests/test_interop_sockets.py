"""Interop over real loopback sockets with the PyPI ``ocpp`` package and ``websockets``.

Both directions, OCPP 1.6 and 2.0.1, every adapter:

- their ``ChargePoint`` (a station) against our CSMS server: boot, the usual station
  requests, our requests to them, and malformed frames sent from their side of the
  socket, each answered with the CALLERROR the OCPP-J rules prescribe (docs/errors.md)
  while the connection
  stays usable;
- our simulated station against their central system: boot, their requests to us (their
  schema validation checks our answers), and malformed frames from them.

The ``ocpp`` package is a peer here, not an oracle for error codes (it swaps
NotImplemented and NotSupported, and sends FormatViolation in 1.6): expected codes come
from the OCPP-J rules. Every scenario runs under a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
from ocpp.messages import CallError as TheirCallError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as TheirChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as TheirChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.typing import Subprotocol

from ocpp_sansio.adapters import Backoff, OcppCallError, ServerOptions, WsOptions, uuid_ids
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.apps.demo_csms import DemoCsms
from ocpp_sansio.apps.simulator import SimulatedStation
from ocpp_sansio.cli.commands import _adapter, _async_station, _thread_station, _wall_clock
from ocpp_sansio.events import Event, ProtocolViolation, RequestRefused
from ocpp_sansio.messages import v16, v201

pytestmark = pytest.mark.interop

ADAPTERS = ("trio", "asyncio", "threads")
VERSIONS = ("1.6", "2.0.1")
#: Every scenario must finish within this many seconds.
SCENARIO_TIMEOUT = 20.0
ANSWER_TIMEOUT = 5.0
QUIET = WsOptions(ping_interval=0, close_timeout=1, handshake_timeout=3)
FAST_BACKOFF = Backoff(minimum=0.05, random_range=0.05, repeat_times=1)

# The codes the OCPP-J rules prescribe, per version; the ocpp package is no oracle here.
RPC = {"1.6": "FormationViolation", "2.0.1": "RpcFrameworkError"}
NOT_AN_OBJECT = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}
OCCURRENCE = {"1.6": "OccurenceConstraintViolation", "2.0.1": "OccurrenceConstraintViolation"}


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- our CSMS in a thread of its own -------------------------------------------------------------


class _Recorder:
    """Our CSMS application: DemoCsms answers through its flows; every event is kept."""

    def __init__(self) -> None:
        self.demo = DemoCsms(wall_clock=lambda _now: datetime.now(UTC))
        self.events: list[tuple[str, Event]] = []
        self.lock = threading.Lock()

    def keep(self, session: Any, event: Event) -> None:
        with self.lock:
            self.events.append((session.identity, event))

    def of_type(self, kind: type) -> list[Any]:
        with self.lock:
            return [event for _, event in self.events if isinstance(event, kind)]


class _AsyncHandler:
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    async def on_event(self, session: Any, event: Event) -> None:
        self.recorder.keep(session, event)


class _ThreadHandler:
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def on_event(self, session: Any, event: Event) -> None:
        self.recorder.keep(session, event)


class OurCsms:
    """A running CSMS: ``port``, ``recorder``, and ``call(identity, request)`` (blocking;
    run it off the event loop that serves their side)."""

    def __init__(self, port: int, recorder: _Recorder, call: Callable[[str, Any], Any]) -> None:
        self.port = port
        self.recorder = recorder
        self.call = call


@contextlib.contextmanager
def our_csms(adapter: str) -> Iterator[OurCsms]:
    recorder = _Recorder()
    if adapter == "threads":
        with threads_adapter.serve(
            _ThreadHandler(recorder),
            options=ServerOptions(ws_options=QUIET, flows=recorder.demo.flows),
        ) as server:

            def call(identity: str, request: Any) -> Any:
                return server.sessions[identity.casefold()].call(request)

            yield OurCsms(server.port, recorder, call)
        return
    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    async def main() -> None:
        async with _adapter(adapter).serve(
            _AsyncHandler(recorder),
            options=ServerOptions(ws_options=QUIET, flows=recorder.demo.flows),
        ) as server:
            ready.put((server, anyio.lowlevel.current_token()))
            while not stop.is_set():
                await anyio.sleep(0.02)

    def run() -> None:
        try:
            anyio.run(main, backend=adapter)
        except BaseException as error:  # report instead of hanging the test
            ready.put(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started = ready.get(timeout=10)
    if isinstance(started, BaseException):
        raise started
    server, token = started

    def call(identity: str, request: Any) -> Any:
        session = server.sessions[identity.casefold()]
        return anyio.from_thread.run(session.call, request, token=token)

    try:
        yield OurCsms(server.port, recorder, call)
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the CSMS did not stop"


# --- their charge point --------------------------------------------------------------------------


class TheirStation16(TheirChargePoint16):
    @on(Action16.get_configuration)
    def on_get_configuration(self, **kwargs: Any) -> Any:
        return result16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        )

    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag: str, **kwargs: Any) -> Any:
        return result16.RemoteStartTransaction(status="Accepted")


class TheirStation201(TheirChargePoint201):
    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data: list[Any], **kwargs: Any) -> Any:
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attributeStatus": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                    "attributeValue": "300",
                }
                for item in get_variable_data
            ]
        )

    @on(Action201.request_start_transaction)
    def on_request_start(self, **kwargs: Any) -> Any:
        return result201.RequestStartTransaction(status="Accepted")


async def raw_exchange(cp: Any, text: str) -> Any:
    """Send ``text`` as it is on their socket; the CALLERROR that comes back."""
    await cp._connection.send(text)
    answer = await asyncio.wait_for(cp._response_queue.get(), ANSWER_TIMEOUT)
    assert isinstance(answer, TheirCallError), answer
    return answer


async def expect_no_answer(cp: Any, text: str) -> None:
    """Send ``text``; nothing comes back before the answer to a Heartbeat sent after it."""
    await cp._connection.send(text)
    await cp._connection.send('[2,"after-ignored","Heartbeat",{}]')
    answer = await asyncio.wait_for(cp._response_queue.get(), ANSWER_TIMEOUT)
    assert answer.unique_id == "after-ignored"


#: Broken CALLs per (version, receiving role): (what, frame). Actions are ones the
#: receiver does receive, so the payload check is what answers.
BROKEN = {
    ("1.6", "csms"): (
        ("required field missing", '[2,"m4","Authorize",{}]'),
        ("wrong type", '[2,"m5","Authorize",{"idTag":42}]'),
        ("value out of range", '[2,"m6","Authorize",{"idTag":"' + "x" * 21 + '"}]'),
        ("unknown property", '[2,"m7","Heartbeat",{"surprise":1}]'),
        ("payload not an object", '[2,"m3","Heartbeat",[]]'),
    ),
    ("2.0.1", "csms"): (
        ("required field missing", '[2,"m4","Authorize",{}]'),
        ("wrong type", '[2,"m5","Authorize",{"idToken":{"idToken":42,"type":"Central"}}]'),
        ("value out of range", '[2,"m6","Authorize",{"idToken":{"idToken":"x","type":"Nope"}}]'),
        ("unknown property", '[2,"m7","Heartbeat",{"surprise":1}]'),
        ("payload not an object", '[2,"m3","Heartbeat",[]]'),
    ),
    ("1.6", "station"): (
        ("required field missing", '[2,"m4","ChangeConfiguration",{"key":"HeartbeatInterval"}]'),
        ("wrong type", '[2,"m5","ChangeConfiguration",{"key":1,"value":"1"}]'),
        ("value out of range", '[2,"m6","Reset",{"type":"Never"}]'),
        ("unknown property", '[2,"m7","ClearCache",{"surprise":1}]'),
        ("payload not an object", '[2,"m3","ClearCache",[]]'),
    ),
    ("2.0.1", "station"): (
        ("required field missing", '[2,"m4","GetVariables",{}]'),
        ("wrong type", '[2,"m5","UnlockConnector",{"evseId":"1","connectorId":1}]'),
        ("value out of range", '[2,"m6","Reset",{"type":"Never"}]'),
        ("unknown property", '[2,"m7","ClearCache",{"surprise":1}]'),
        ("payload not an object", '[2,"m3","ClearCache",[]]'),
    ),
}


async def malformed_frames(cp: Any, version: str, receiver: str) -> list[tuple[str, str, str]]:
    """(what, code, id) answered to each broken frame sent from their side."""
    frames = [
        ("unknown action", '[2,"m1","NoSuchAction",{}]'),
        ("not JSON", '[2,"m2","Heartbeat",{'),
        *BROKEN[version, receiver],
    ]
    if version == "2.0.1":
        frames.append(("unknown message type", '[7,"m8","Heartbeat",{}]'))
    out = []
    for what, text in frames:
        answer = await raw_exchange(cp, text)
        out.append((what, answer.error_code, answer.unique_id))
    return out


def expected_malformed(version: str) -> list[tuple[str, str, str]]:
    rows = [
        ("unknown action", "NotImplemented", "m1"),
        ("not JSON", RPC[version], "-1"),
        ("required field missing", OCCURRENCE[version], "m4"),
        ("wrong type", "TypeConstraintViolation", "m5"),
        ("value out of range", "PropertyConstraintViolation", "m6"),
        ("unknown property", "FormationViolation" if version == "1.6" else "ProtocolError", "m7"),
        ("payload not an object", NOT_AN_OBJECT[version], "m3"),
    ]
    if version == "2.0.1":
        rows.append(("unknown message type", "MessageTypeNotSupported", "m8"))
    return rows


async def their_station_scenario(csms: OurCsms, version: str, identity: str) -> None:
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    async with ws_connect(
        f"ws://127.0.0.1:{csms.port}/ocpp/{identity}", subprotocols=[Subprotocol(subprotocol)]
    ) as ws:
        assert ws.subprotocol == subprotocol
        cp: Any = (TheirStation16 if version == "1.6" else TheirStation201)(identity, ws)
        reader = asyncio.create_task(cp.start())
        try:
            if version == "1.6":
                await station_requests_16(cp)
            else:
                await station_requests_201(cp)
            await csms_requests(csms, cp, version, identity)
            broken = await malformed_frames(cp, version, "csms")
            assert broken == expected_malformed(version)
            # NotSupported: an action of the version that a CSMS never receives (§1.11).
            wrong_role = "RemoteStartTransaction" if version == "1.6" else "RequestStartTransaction"
            payload = (
                '{"idTag":"X"}'
                if version == "1.6"
                else '{"idToken":{"idToken":"X","type":"Central"},"remoteStartId":1}'
            )
            answer = await raw_exchange(cp, f'[2,"r1","{wrong_role}",{payload}]')
            assert (answer.error_code, answer.unique_id) == ("NotSupported", "r1")
            if version == "1.6":
                await expect_no_answer(cp, '[7,"m8","Heartbeat",{}]')  # 1.6 ignores it
            # The connection is still usable.
            heartbeat = call16.Heartbeat() if version == "1.6" else call201.Heartbeat()
            assert (await cp.call(heartbeat)).current_time
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def station_requests_16(cp: Any) -> None:
    boot = await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    assert boot.status == "Accepted" and boot.interval == 300
    assert (await cp.call(call16.Heartbeat())).current_time
    assert (await cp.call(call16.Authorize(id_tag="TAG"))).id_tag_info["status"] == "Accepted"
    status = call16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
    assert await cp.call(status) is not None
    started = await cp.call(
        call16.StartTransaction(connector_id=1, id_tag="TAG", meter_start=0, timestamp=now_text())
    )
    assert started.transaction_id >= 1 and started.id_tag_info["status"] == "Accepted"
    meter = call16.MeterValues(
        connector_id=1,
        transaction_id=started.transaction_id,
        meter_value=[{"timestamp": now_text(), "sampledValue": [{"value": "10"}]}],
    )
    assert await cp.call(meter) is not None
    stop = call16.StopTransaction(
        meter_stop=10, timestamp=now_text(), transaction_id=started.transaction_id, id_tag="TAG"
    )
    assert (await cp.call(stop)).id_tag_info["status"] == "Accepted"
    transfer = await cp.call(call16.DataTransfer(vendor_id="com.example.unknown"))
    assert transfer.status == "UnknownVendorId"


async def station_requests_201(cp: Any) -> None:
    boot = await cp.call(
        call201.BootNotification(
            charging_station={"model": "M", "vendorName": "V"}, reason="PowerUp"
        )
    )
    assert boot.status == "Accepted" and boot.interval == 300
    assert (await cp.call(call201.Heartbeat())).current_time
    token = {"idToken": "TAG", "type": "ISO14443"}
    assert (await cp.call(call201.Authorize(id_token=token))).id_token_info["status"] == "Accepted"
    status = call201.StatusNotification(
        timestamp=now_text(), connector_status="Available", evse_id=1, connector_id=1
    )
    assert await cp.call(status) is not None
    event = call201.TransactionEvent(
        event_type="Started",
        timestamp=now_text(),
        trigger_reason="Authorized",
        seq_no=0,
        transaction_info={"transactionId": "tx-1"},
        id_token=token,
        evse={"id": 1, "connectorId": 1},
    )
    assert (await cp.call(event)).id_token_info["status"] == "Accepted"
    notify = call201.NotifyEvent(
        generated_at=now_text(),
        seq_no=0,
        event_data=[
            {
                "eventId": 1,
                "timestamp": now_text(),
                "trigger": "Delta",
                "actualValue": "Occupied",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    )
    assert await cp.call(notify) is not None
    transfer = await cp.call(call201.DataTransfer(vendor_id="com.example.unknown"))
    assert transfer.status == "UnknownVendorId"


async def csms_requests(csms: OurCsms, cp: Any, version: str, identity: str) -> None:
    """Our CSMS asks their station; the blocking call runs off their event loop."""
    if version == "1.6":
        asked = v16.GetConfigurationRequest(key=["HeartbeatInterval"])
        answer = await asyncio.to_thread(csms.call, identity, asked)
        assert answer.configuration_key[0].value == "300"
        start = v16.RemoteStartTransactionRequest(id_tag="TAG", connector_id=1)
        assert str((await asyncio.to_thread(csms.call, identity, start)).status) == "Accepted"
        unhandled = v16.ClearCacheRequest()
    else:
        asked = v201.GetVariablesRequest(
            get_variable_data=[
                v201.GetVariableData(
                    component=v201.Component(name="OCPPCommCtrlr"),
                    variable=v201.Variable(name="HeartbeatInterval"),
                )
            ]
        )
        answer = await asyncio.to_thread(csms.call, identity, asked)
        assert answer.get_variable_result[0].attribute_value == "300"
        start = v201.RequestStartTransactionRequest(
            id_token=v201.IdToken(id_token="TAG", type=v201.IdTokenEnum("Central")),
            remote_start_id=7,
        )
        assert str((await asyncio.to_thread(csms.call, identity, start)).status) == "Accepted"
        unhandled = v201.ClearCacheRequest()
    # They have no handler for it: their CALLERROR reaches us as OcppCallError.
    with pytest.raises(OcppCallError) as raised:
        await asyncio.to_thread(csms.call, identity, unhandled)
    assert raised.value.error_code in ("NotImplemented", "NotSupported")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_their_charge_point_against_our_csms(adapter: str, version: str) -> None:
    identity = f"THEIRS-{adapter}-{version}"
    with our_csms(adapter) as csms:
        asyncio.run(
            asyncio.wait_for(their_station_scenario(csms, version, identity), SCENARIO_TIMEOUT)
        )
        # The application heard about every frame the core answered on its own.
        violations = csms.recorder.of_type(ProtocolViolation)
        refused = csms.recorder.of_type(RequestRefused)
        codes = sorted(v.error.error_code for v in violations)
        assert len(violations) == len(expected_malformed(version)) + (
            1 if version == "1.6" else 0
        ), codes
        assert [r.error_code for r in refused] == ["NotSupported"]


# --- our station against their central system ----------------------------------------------------


class TheirCsms16(TheirChargePoint16):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.booted = asyncio.Event()
        self.seen: list[str] = []
        self.transaction_ids = iter(range(100, 200))

    @on(Action16.boot_notification)
    def on_boot(self, **kwargs: Any) -> Any:
        self.seen.append("BootNotification")
        self.booted.set()
        return result16.BootNotification(current_time=now_text(), interval=300, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return result16.Heartbeat(current_time=now_text())

    @on(Action16.status_notification)
    def on_status(self, **kwargs: Any) -> Any:
        self.seen.append(f"StatusNotification:{kwargs['connector_id']}:{kwargs['status']}")
        return result16.StatusNotification()

    @on(Action16.start_transaction)
    def on_start(self, **kwargs: Any) -> Any:
        self.seen.append("StartTransaction")
        return result16.StartTransaction(
            transaction_id=next(self.transaction_ids), id_tag_info={"status": "Accepted"}
        )

    @on(Action16.stop_transaction)
    def on_stop(self, **kwargs: Any) -> Any:
        self.seen.append(f"StopTransaction:{kwargs.get('reason')}")
        return result16.StopTransaction()

    @on(Action16.meter_values)
    def on_meter_values(self, **kwargs: Any) -> Any:
        self.seen.append("MeterValues")
        return result16.MeterValues()


class TheirCsms201(TheirChargePoint201):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.booted = asyncio.Event()
        self.seen: list[str] = []

    @on(Action201.boot_notification)
    def on_boot(self, **kwargs: Any) -> Any:
        self.seen.append("BootNotification")
        self.booted.set()
        return result201.BootNotification(current_time=now_text(), interval=300, status="Accepted")

    @on(Action201.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return result201.Heartbeat(current_time=now_text())

    @on(Action201.status_notification)
    def on_status(self, **kwargs: Any) -> Any:
        self.seen.append(f"StatusNotification:{kwargs['evse_id']}:{kwargs['connector_status']}")
        return result201.StatusNotification()

    @on(Action201.authorize)
    def on_authorize(self, **kwargs: Any) -> Any:
        self.seen.append("Authorize")
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.transaction_event)
    def on_transaction_event(self, **kwargs: Any) -> Any:
        self.seen.append(f"TransactionEvent:{kwargs['event_type']}:{kwargs['trigger_reason']}")
        return result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter_values(self, **kwargs: Any) -> Any:
        self.seen.append("MeterValues")
        return result201.MeterValues()

    @on(Action201.notify_report)
    def on_notify_report(self, **kwargs: Any) -> Any:
        self.seen.append(f"NotifyReport:{kwargs['seq_no']}")
        return result201.NotifyReport()


class Running:
    """Our station in its thread; ``stop()`` blocks until it is gone (call it off the
    event loop that serves their side, so the close handshake can complete)."""

    def __init__(self, station: SimulatedStation, stop: Callable[[], None]) -> None:
        self.station = station
        self.stop = stop


@contextlib.contextmanager
def our_station(adapter: str, url: str, version: str) -> Iterator[Running]:
    """A simulated station on ``adapter`` in a thread of its own, stopped on exit."""
    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def make(clock: Any) -> SimulatedStation:
        return SimulatedStation(
            url.rsplit("/", 1)[-1], version, wall_clock=clock, id_generator=uuid_ids
        )

    async def ignore(_session: Any, _event: Event) -> None:
        pass

    async def main() -> None:
        station = make(_wall_clock(adapter))
        async with _async_station(
            adapter,
            url,
            station.core,
            ignore,
            password=None,
            ssl_context=None,
            backoff=FAST_BACKOFF,
        ):
            ready.put(station)
            while not stop.is_set():
                await anyio.sleep(0.02)

    def run() -> None:
        try:
            if adapter == "threads":
                station = make(_wall_clock("threads"))
                with _thread_station(
                    url,
                    station.core,
                    lambda _s, _e: None,
                    password=None,
                    ssl_context=None,
                    backoff=FAST_BACKOFF,
                ):
                    ready.put(station)
                    stop.wait(SCENARIO_TIMEOUT)
            else:
                anyio.run(main, backend=adapter)
        except BaseException as error:
            ready.put(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started = ready.get(timeout=10)
    if isinstance(started, BaseException):
        raise started

    def stop_station() -> None:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the station did not stop"

    try:
        yield Running(started, stop_station)
    finally:
        stop_station()


async def their_csms_scenario(adapter: str, version: str) -> None:
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    connected: asyncio.Queue[Any] = asyncio.Queue()
    finished = asyncio.Event()

    async def on_connect(ws: Any) -> None:
        cls = TheirCsms16 if version == "1.6" else TheirCsms201
        cp = cls(ws.request.path.rsplit("/", 1)[-1], ws)
        reader = asyncio.create_task(cp.start())
        await connected.put((ws, cp))
        await finished.wait()
        reader.cancel()

    async with ws_serve(
        on_connect, "127.0.0.1", 0, subprotocols=[Subprotocol(subprotocol)]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/ocpp/OURS-{adapter}"
        with our_station(adapter, url, version) as running:
            ws, cp = await asyncio.wait_for(connected.get(), ANSWER_TIMEOUT)
            assert ws.subprotocol == subprotocol
            await asyncio.wait_for(cp.booted.wait(), ANSWER_TIMEOUT)
            if version == "1.6":
                await their_requests_16(cp)
            else:
                await their_requests_201(cp)
            broken = await malformed_frames(cp, version, "station")
            assert broken == expected_malformed(version)
            wrong_role = '[2,"r1","BootNotification",' + (
                '{"chargePointModel":"M","chargePointVendor":"V"}]'
                if version == "1.6"
                else '{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp"}]'
            )
            answer = await raw_exchange(cp, wrong_role)
            assert (answer.error_code, answer.unique_id) == ("NotSupported", "r1")
            if version == "1.6":
                await expect_unanswered_station(cp)
            # Still usable: the station answers a request after all that.
            trigger = (
                call16.TriggerMessage(requested_message="Heartbeat")
                if version == "1.6"
                else call201.TriggerMessage(requested_message="Heartbeat")
            )
            assert (await cp.call(trigger)).status == "Accepted"
            await asyncio.to_thread(running.stop)
            finished.set()


async def expect_unanswered_station(cp: Any) -> None:
    """1.6 ignores an unknown message type: the next answer is the next request's."""
    await cp._connection.send('[7,"m8","Heartbeat",{}]')
    answer = await cp.call(call16.GetLocalListVersion())
    assert answer.list_version == 0


async def their_requests_16(cp: Any) -> None:
    configuration = await cp.call(call16.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
    assert configuration.unknown_key == ["Nope"]
    changed = await cp.call(call16.ChangeConfiguration(key="MeterValueSampleInterval", value="1"))
    assert changed.status == "Accepted"
    assert (
        await cp.call(call16.TriggerMessage(requested_message="StatusNotification"))
    ).status == "Accepted"
    started = await cp.call(call16.RemoteStartTransaction(id_tag="TAG", connector_id=1))
    assert started.status == "Accepted"
    for _ in range(100):
        if "StartTransaction" in cp.seen:
            break
        await asyncio.sleep(0.02)
    stopped = await cp.call(call16.RemoteStopTransaction(transaction_id=100))
    assert stopped.status == "Accepted"
    availability = await cp.call(call16.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert availability.status == "Accepted"
    assert (await cp.call(call16.UnlockConnector(connector_id=1))).status == "Unlocked"
    reserved = await cp.call(
        call16.ReserveNow(connector_id=1, expiry_date=now_text(), id_tag="TAG", reservation_id=1)
    )
    assert reserved.status in ("Rejected", "Unavailable")
    transfer = await cp.call(call16.DataTransfer(vendor_id="com.example.unknown"))
    assert transfer.status == "UnknownVendorId"
    for _ in range(100):
        if "StopTransaction:Remote" in cp.seen:
            break
        await asyncio.sleep(0.02)
    assert "StopTransaction:Remote" in cp.seen
    assert "StatusNotification:1:Unavailable" in cp.seen


async def their_requests_201(cp: Any) -> None:
    variables = await cp.call(
        call201.GetVariables(
            get_variable_data=[
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                {"component": {"name": "Nope"}, "variable": {"name": "Nope"}},
            ]
        )
    )
    statuses = [r["attribute_status"] for r in variables.get_variable_result]
    assert statuses == ["Accepted", "UnknownComponent"]
    trigger = call201.TriggerMessage(
        requested_message="StatusNotification", evse={"id": 1, "connectorId": 1}
    )
    assert (await cp.call(trigger)).status == "Accepted"
    started = await cp.call(
        call201.RequestStartTransaction(
            id_token={"idToken": "TAG", "type": "Central"}, remote_start_id=5, evse_id=1
        )
    )
    assert started.status == "Accepted"
    for _ in range(100):
        if any(s.startswith("TransactionEvent:Started") for s in cp.seen):
            break
        await asyncio.sleep(0.02)
    status = await cp.call(call201.GetTransactionStatus())
    assert status.messages_in_queue is False
    availability = await cp.call(
        call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
    )
    assert availability.status == "Scheduled"  # a transaction runs there (G03.FR.05)
    report = await cp.call(call201.GetBaseReport(request_id=1, report_base="SummaryInventory"))
    assert report.status == "Accepted"
    unlock = await cp.call(call201.UnlockConnector(evse_id=1, connector_id=1))
    assert unlock.status == "OngoingAuthorizedTransaction"
    assert (await cp.call(call201.Reset(type="OnIdle"))).status == "Scheduled"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_our_station_against_their_csms(adapter: str, version: str) -> None:
    asyncio.run(asyncio.wait_for(their_csms_scenario(adapter, version), SCENARIO_TIMEOUT))
