"""The ASGI adapter under a real uvicorn: the PyPI ``ocpp`` package's charge point (over
``websockets``) runs its whole scenario against it for 1.6 and 2.0.1 on one endpoint, as
against ``serve()``; the handshake policy (subprotocol, identity from the path, HTTP Basic)
answers as ``serve()`` does; our own station connects; ``aclose()`` closes with 1001. And
under hypercorn's trio worker. Neither web server reports client certificates, so the
certificate check runs on the scope a mutual-TLS web server gives (the ASGI TLS extension)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import trustme
import uvicorn
from test_interop_sockets import (
    QUIET,
    SCENARIO_TIMEOUT,
    OurCsms,
    _AsyncHandler,
    _Recorder,
    expected_malformed,
    their_station_scenario,
)
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from ocpp_sansio import Router
from ocpp_sansio.adapters import (
    ServerOptions,
    StationOptions,
    WsOptions,
    certificate_common_name,
)
from ocpp_sansio.adapters.asgi import OcppAsgi, asgi_app, scope_certificate
from ocpp_sansio.adapters.asyncio import connect
from ocpp_sansio.events import ProtocolViolation
from ocpp_sansio.messages import v201

pytestmark = pytest.mark.interop

BOOT_201 = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="M", vendor_name="V"),
    reason=v201.BootReasonEnum.POWER_UP,
)


class Uvicorn:
    """uvicorn serving ``app`` on a free loopback port, in a thread with its own loop."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on uvicorn's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(SCENARIO_TIMEOUT)

    def __enter__(self) -> Uvicorn:
        self._thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            self._thread.join(0.01)
        raise AssertionError("uvicorn did not start")

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive()


@contextlib.contextmanager
def asgi_csms(**options: Any) -> Iterator[tuple[OurCsms, Uvicorn, OcppAsgi]]:
    recorder = _Recorder()
    app = asgi_app(
        _AsyncHandler(recorder),
        versions=["2.0.1", "1.6"],
        options=ServerOptions(ws_options=QUIET, flows=recorder.demo.flows, **options),
    )
    with Uvicorn(app) as web:

        def call(identity: str, request: Any) -> Any:
            return web.run(app.sessions[identity.casefold()].call(request))

        yield OurCsms(web.port, recorder, call), web, app


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_their_charge_point_against_the_asgi_app_under_uvicorn(version: str) -> None:
    """Both versions on one endpoint; identity from the path; the same answers, flows and
    protocol checks as serve()."""
    identity = f"THEIRS-asgi-{version}"
    with asgi_csms() as (csms, _web, app):
        asyncio.run(
            asyncio.wait_for(their_station_scenario(csms, version, identity), SCENARIO_TIMEOUT)
        )
        assert app.sessions[identity.casefold()].identity == identity
        assert app.sessions[identity.casefold()].version == version
        violations = csms.recorder.of_type(ProtocolViolation)
        assert len(violations) == len(expected_malformed(version)) + (version == "1.6")


def _basic(identity: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_basic_auth_behind_a_tls_terminating_server_answers_as_serve_does() -> None:
    """Security profiles 1 and 2: the password is checked (401 otherwise); the identity is
    the last path segment, however the application is mounted."""
    passwords = {"CS-AUTH": "s3cret-s3cret-16"}
    with asgi_csms(auth=passwords.get) as (csms, _web, _app):

        async def attempt(password: str | None) -> str:
            headers = _basic("CS-AUTH", password) if password else None
            try:
                async with ws_connect(
                    f"ws://127.0.0.1:{csms.port}/some/prefix/CS-AUTH",
                    subprotocols=[Subprotocol("ocpp2.0.1")],
                    additional_headers=headers,
                ) as ws:
                    return str(ws.subprotocol)
            except InvalidStatus as refused:
                return str(refused.response.status_code)

        assert asyncio.run(attempt(None)) == "401"
        assert asyncio.run(attempt("wrong-password-00")) == "401"
        assert asyncio.run(attempt("s3cret-s3cret-16")) == "ocpp2.0.1"


def test_no_common_subprotocol_is_closed_with_1002() -> None:
    with asgi_csms() as (csms, _web, _app):

        async def attempt() -> int | None:
            async with ws_connect(
                f"ws://127.0.0.1:{csms.port}/ocpp/CS9", subprotocols=[Subprotocol("ocpp9")]
            ) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                return closed.value.rcvd.code if closed.value.rcvd else None

        assert asyncio.run(attempt()) == 1002


def test_our_station_registers_and_aclose_closes_it_with_1001() -> None:
    with asgi_csms() as (csms, web, app):

        async def station() -> int | None:
            codes: list[int] = []

            async def on_event(_station: Any, event: Any) -> None:
                if type(event).__name__ == "Disconnected":
                    codes.append(event.code)

            options = StationOptions(ws_options=QUIET, max_attempts=1)
            url = f"ws://127.0.0.1:{csms.port}/ocpp/OURS1"
            async with connect(
                url, version="2.0.1", boot=BOOT_201, on_event=on_event, options=options
            ) as st:
                await st.wait_registered()
                await asyncio.to_thread(web.run, app.aclose())
                for _ in range(200):
                    if codes:
                        break
                    await asyncio.sleep(0.01)
            return codes[0] if codes else None

        assert asyncio.run(asyncio.wait_for(station(), SCENARIO_TIMEOUT)) == 1001


def test_plain_http_gets_426() -> None:
    import urllib.error
    import urllib.request

    with asgi_csms() as (csms, _web, _app):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{csms.port}/ocpp/CS1", timeout=5)
        assert answer.value.code == 426


def test_the_asgi_app_under_hypercorn_on_trio() -> None:
    """The same application on trio: hypercorn's trio worker, our station registering and
    the CSMS asking it something."""
    import functools

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    from ocpp_sansio.adapters import threads as threads_adapter

    recorder = _Recorder()
    app = asgi_app(
        _AsyncHandler(recorder),
        versions=["2.0.1", "1.6"],
        options=ServerOptions(ws_options=QUIET, flows=recorder.demo.flows),
    )
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.loglevel = "WARNING"
    heard: list[str] = []

    def station(port: int) -> None:
        def answers(_station: Any, request: Any) -> Any:
            heard.append(type(request).__name__)
            return v201.ChangeAvailabilityResponse(
                status=v201.ChangeAvailabilityStatusEnum.ACCEPTED
            )

        with threads_adapter.connect(
            f"ws://127.0.0.1:{port}/ocpp/HYPER1",
            version="2.0.1",
            boot=BOOT_201,
            on_request=answers,
            options=StationOptions(ws_options=QUIET),
        ) as st:
            assert st.wait_registered(SCENARIO_TIMEOUT)
            st.call(v201.HeartbeatRequest())
            session = app.sessions["hyper1"]
            request = v201.ChangeAvailabilityRequest(
                operational_status=v201.OperationalStatusEnum.OPERATIVE
            )
            answer = trio.from_thread.run(session.call, request)
            assert str(answer.status) == "Accepted"

    async def main() -> None:
        stop = trio.Event()
        with trio.fail_after(SCENARIO_TIMEOUT):
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(
                    functools.partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait)
                )
                port = int(binds[0].rsplit(":", 1)[1])
                await trio.to_thread.run_sync(station, port)
                stop.set()

    trio.run(main)
    assert heard == ["ChangeAvailabilityRequest"]


# --- a client certificate reported by the web server (the ASGI TLS extension) --------------------


def _websocket_scope(identity: str, certificate_pem: str | None) -> dict[str, Any]:
    """The scope a web server that terminated mutual TLS gives (asgiref's TLS extension)."""
    extensions: dict[str, Any] = {"websocket.http.response": {}}
    if certificate_pem is not None:
        extensions["tls"] = {"client_cert_chain": [certificate_pem], "tls_version": 0x0304}
    path = f"/ocpp/{identity}"
    return {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "headers": [(b"host", b"csms.example")],
        "subprotocols": ["ocpp2.0.1"],
        "extensions": extensions,
    }


async def _handshake(app: OcppAsgi, scope: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Run ``app`` on ``scope`` until its answer to the upgrade; then the station leaves.
    Returns that answer and the station's session (None when there is none)."""
    to_app, app_in = anyio.create_memory_object_stream[dict[str, Any]](10)
    app_out, from_app = anyio.create_memory_object_stream[dict[str, Any]](10)
    await to_app.send({"type": "websocket.connect"})
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(app, scope, app_in.receive, app_out.send)
        answer = await from_app.receive()
        await anyio.wait_all_tasks_blocked()  # the app has placed the connection
        session = app.sessions.get("cs001")
        await to_app.send({"type": "websocket.disconnect", "code": 1000})
    return answer, session


def test_a00_fr_405_the_web_servers_client_certificate_is_checked() -> None:
    ca = trustme.CA()

    def pem(common_name: str) -> str:
        cert = ca.issue_cert("station.example", common_name=common_name)
        return cert.cert_chain_pems[0].bytes().decode()

    async def main() -> None:
        app = asgi_app(Router(), versions=["2.0.1"])
        with anyio.fail_after(10):
            answer, session = await _handshake(app, _websocket_scope("CS001", pem("CS001")))
            assert answer["type"] == "websocket.accept" and session is not None
            assert certificate_common_name(session.peer_certificate) == "CS001"
            answer, _ = await _handshake(app, _websocket_scope("CS001", pem("CS002")))
            assert answer == {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
            answer, session = await _handshake(app, _websocket_scope("CS001", None))
            assert answer["type"] == "websocket.accept" and session.peer_certificate is None

    anyio.run(main)


def test_the_certificate_reads_as_getpeercert_gives_it() -> None:
    cert = trustme.CA(organization_name="Example CSO").issue_cert(
        "station.example", common_name="SN-0077"
    )
    scope = _websocket_scope("CS001", cert.cert_chain_pems[0].bytes().decode())
    certificate = scope_certificate(scope)
    assert certificate is not None
    assert certificate_common_name(certificate) == "SN-0077"
    issuer = dict(pair for rdn in certificate["issuer"] for pair in rdn)
    assert issuer["organizationName"] == "Example CSO"
    assert scope_certificate(_websocket_scope("CS001", None)) is None


# --- back-pressure: a web server that takes our messages slower than the station sends ---------


def test_the_app_stops_receiving_while_the_web_server_has_not_taken_its_answers() -> None:
    """The web server's ``send`` stops returning after the accept (a station that does not
    read, behind a server that applies back-pressure): the app receives only until about
    ``write_high_water`` characters of answers wait, not the 10,000 Heartbeats on offer
    (before: all of them, their answers queued)."""
    options = ServerOptions(ws_options=WsOptions(write_high_water=4096))
    app = asgi_app(Router(), versions=["2.0.1"], options=options)
    received = 0
    boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
    frames = [[2, "boot", "BootNotification", boot]]
    frames += [[2, f"hb{n}", "Heartbeat", {}] for n in range(10_000)]
    stuck = anyio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received == 0:
            received = 1
            return {"type": "websocket.connect"}
        if received > len(frames):
            await anyio.sleep_forever()
        text = json.dumps(frames[received - 1])
        received += 1
        return {"type": "websocket.receive", "text": text}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] != "websocket.accept":
            await stuck.wait()  # never set: nothing more goes out

    async def main() -> None:
        with anyio.move_on_after(1.0):
            await app(_websocket_scope("CS001", None), receive, send)

    anyio.run(main)
    assert 10 < received < 500, received
