"""Our station client against our CSMS server over real loopback sockets, for each adapter
(trio, asyncio, threads) and, where the version matters, each OCPP version.

Every test is bounded by a timeout; waits poll state, never a fixed sleep.
"""

from __future__ import annotations

import ssl
import time
import uuid
from typing import Any

import anyio
import pytest
import trustme
from _adapterkit import (
    KITS,
    QUIET,
    VERSIONS,
    Kit,
    Script,
    SilentPeer,
    SyncApp,
    action_of,
    authorize,
    boot,
    csms_request,
    error,
    request,
    transaction_message,
    until,
)

from ocpp_sansio.adapters import (
    Backoff,
    CallLostError,
    CallTimedOutError,
    ConnectFailed,
    ConnectFailedError,
    Disconnected,
    OcppCallError,
    ServerOptions,
    StationOptions,
    WsOptions,
)
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.config import CsmsConfig
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import RegistrationStatus, ResponseReceived

pytestmark = pytest.mark.anyio
TIMEOUT = 10


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


def url(server: Any, identity: str = "CS001", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/ocpp/{identity}"


# --- boot, heartbeat, calls both ways -----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_accepted_then_heartbeat(kit: Kit, version: str) -> None:
    csms = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server), version, Script()) as station,
        ):
            await kit.wait_registered(station)
            answer = await kit.call(station, request(version, "Heartbeat"))
            assert action_of(version, answer) == "Heartbeat"
            session = server.sessions["cs001"]
            assert session.registration is RegistrationStatus.ACCEPTED
            assert session.version == station.version == version
    assert csms.actions() == ["BootNotification", "Heartbeat"]


async def test_message_ids_are_uuids(kit: Kit) -> None:
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script()) as server,
            kit.connect(url(server), "2.0.1", station_app) as station,
        ):
            await kit.wait_registered(station)
            await until(lambda: "ResponseReceived" in station_app.event_types())
    [boot_answer] = [e for _, e in station_app.events if isinstance(e, ResponseReceived)]
    assert uuid.UUID(boot_answer.message_id).version == 4


async def test_the_adapter_runs_the_station_core_timers(kit: Kit) -> None:
    """The core sends Heartbeat on its own once the boot's interval has passed."""
    csms = Script(interval=1)
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server), "1.6", Script()) as station,
        ):
            await kit.wait_registered(station)
            await until(lambda: csms.actions() == ["BootNotification", "Heartbeat"], 3)


async def test_call_timeout_raises_and_frees_the_channel(kit: Kit) -> None:
    version = "2.0.1"
    station_app = Script(delays={"ChangeAvailability": 2.0})
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), csms_config=CsmsConfig(call_timeout=0.3)) as server,
            kit.connect(url(server), version, station_app) as station,
        ):
            await kit.wait_registered(station)
            session = server.sessions["cs001"]
            with pytest.raises(CallTimedOutError):
                await kit.call(session, csms_request(version))
            station_app.delays.clear()
            answer = await kit.call(session, csms_request(version))
    assert str(answer.status) == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
async def test_csms_call_while_the_station_has_its_own_call_outstanding(
    kit: Kit, version: str
) -> None:
    """The CSMS handler of the station's Authorize asks the station something first: the
    station answers while its own CALL is outstanding (OCPP-J, Part 4: one CALL at a time
    each way), nobody deadlocks."""
    csms = Script(ask_first={"Authorize": csms_request})
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server), version, station_app) as station,
        ):
            await kit.wait_registered(station)
            answer = await kit.call(station, authorize(version))
    assert action_of(version, answer) == "Authorize"
    assert station_app.actions() == ["ChangeAvailability"]
    [asked] = csms.asked
    assert action_of(version, asked) == "ChangeAvailability"


async def test_csms_initiated_call_from_outside_a_handler(kit: Kit) -> None:
    version = "2.0.1"
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script()) as server,
            kit.connect(url(server), version, Script()) as station,
        ):
            await kit.wait_registered(station)
            session = server.sessions["cs001"]
            answer = await kit.call(session, csms_request(version))
    assert str(answer.status) == "Accepted"


async def test_slow_handler_does_not_hold_up_other_stations(kit: Kit) -> None:
    csms = Script(delays={"Authorize": 1.5})
    version = "2.0.1"
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server, "SLOW"), version, Script()) as slow,
            kit.connect(url(server, "FAST"), version, Script()) as fast,
        ):
            await kit.wait_registered(slow)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(kit.call, slow, authorize(version))
                await until(lambda: "Authorize" in csms.actions("slow"))
                with anyio.fail_after(1.0):  # well inside the slow handler's 1.5 s
                    await kit.wait_registered(fast)
                    await kit.call(fast, request(version, "Heartbeat"))
                assert csms.actions("slow") == ["BootNotification", "Authorize"]
                assert len(csms.seen) == 4  # the slow one is still being handled


async def test_handler_error_becomes_a_callerror_and_unexpected_ones_internal_error(
    kit: Kit,
) -> None:
    version = "2.0.1"
    csms = Script(errors={"Authorize": error("SecurityError"), "Heartbeat": RuntimeError("bug")})
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server), version, Script()) as station,
        ):
            await kit.wait_registered(station)
            with pytest.raises(OcppCallError) as refused:
                await kit.call(station, authorize(version))
            assert refused.value.error_code == "SecurityError"
            with pytest.raises(OcppCallError) as failed:
                await kit.call(station, request(version, "Heartbeat"))
            assert failed.value.error_code == "InternalError"


# --- handshake: subprotocols, identity, Basic auth ------------------------------------------------


async def test_server_picks_a_version_the_station_offers(kit: Kit) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), versions=("1.6", "2.0.1")) as server,
            kit.connect(url(server), "2.0.1", Script()) as station,
        ):
            await kit.wait_registered(station)
            assert server.sessions["cs001"].version == "2.0.1"


async def test_no_common_subprotocol_refuses_the_station(kit: Kit) -> None:
    csms = Script()
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms, versions=("1.6",)) as server,
            kit.connect(url(server), "2.1", station_app, max_attempts=1) as station,
        ):
            with pytest.raises(ConnectFailedError) as failed:
                await kit.wait_connected(station)
            assert "subprotocol" in failed.value.reason
            assert server.sessions == {}
            await until(lambda: station_app.event_types() == ["ConnectFailed"])
    assert csms.seen == []


@pytest.mark.parametrize(
    ("identity", "version"), [("UNKNOWN", "2.0.1"), ("A" * 49, "2.1"), ("CS%3A1", "1.6")]
)
async def test_unknown_or_invalid_identity_gets_404(kit: Kit, identity: str, version: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), known_identity=lambda i: i != "UNKNOWN") as server,
            kit.connect(url(server, identity), version, max_attempts=1) as station,
        ):
            with pytest.raises(ConnectFailedError) as failed:
                await kit.wait_connected(station)
            assert failed.value.status == 404


async def test_identity_is_case_insensitive_one_session(kit: Kit) -> None:
    with anyio.fail_after(TIMEOUT):
        async with kit.serve(Script()) as server:
            async with kit.connect(url(server, "Cs001"), "2.0.1") as station:
                await kit.wait_registered(station)
            async with kit.connect(url(server, "cS001"), "2.0.1") as station:
                await kit.wait_registered(station)
            assert list(server.sessions) == ["cs001"]


PASSWORDS = {"CS001": "0123456789abcdef0123456789abcdef"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_basic_auth_right_password_connects(kit: Kit, version: str) -> None:
    password: str | bytes = PASSWORDS["CS001"]
    if version == "1.6":
        password = bytes.fromhex(PASSWORDS["CS001"])  # AuthorizationKey as raw bytes
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), auth=PASSWORDS.get) as server,
            kit.connect(url(server), version, auth=password) as station,
        ):
            await kit.wait_registered(station)


async def test_basic_auth_wrong_password_gets_401(kit: Kit) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), auth=PASSWORDS.get) as server,
            kit.connect(url(server), "2.0.1", auth="wrong-password-123", max_attempts=1) as st,
        ):
            with pytest.raises(ConnectFailedError) as failed:
                await kit.wait_connected(st)
            assert failed.value.status == 401


# --- TLS and mutual TLS (security profiles 2 and 3) -----------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *, mutual: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if mutual:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


def client_context(ca: trustme.CA, common_name: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if common_name is not None:
        certificate = ca.issue_cert("station.example", common_name=common_name)
        certificate.configure_cert(context)
    return context


async def test_profile_2_tls_with_basic_auth(kit: Kit, ca: trustme.CA) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(
                Script(), auth=PASSWORDS.get, ssl_context=server_context(ca, mutual=False)
            ) as server,
            kit.connect(
                url(server, scheme="wss"),
                "2.0.1",
                auth=PASSWORDS["CS001"],
                ssl_context=client_context(ca),
            ) as station,
        ):
            await kit.wait_registered(station)
            assert server.sessions["cs001"].peer_certificate in (None, {})


async def test_profile_3_mutual_tls_exposes_the_client_certificate(
    kit: Kit, ca: trustme.CA
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), ssl_context=server_context(ca, mutual=True)) as server,
            kit.connect(
                url(server, scheme="wss"), "2.0.1", ssl_context=client_context(ca, "CS001")
            ) as station,
        ):
            await kit.wait_registered(station)
            # What the application checks the boot's serial number against (B01.FR.11).
            certificate = server.sessions["cs001"].peer_certificate
            assert certificate is not None
            subject = dict(pair for rdn in certificate["subject"] for pair in rdn)
            assert subject["commonName"] == "CS001"


async def test_profile_3_without_a_client_certificate_fails(kit: Kit, ca: trustme.CA) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), ssl_context=server_context(ca, mutual=True)) as server,
            kit.connect(
                url(server, scheme="wss"), "2.0.1", ssl_context=client_context(ca), max_attempts=1
            ) as station,
        ):
            with pytest.raises(ConnectFailedError):
                await kit.wait_connected(station)
            assert server.sessions == {}


async def test_tls_station_refuses_an_untrusted_csms(kit: Kit, ca: trustme.CA) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), ssl_context=server_context(ca, mutual=False)) as server,
            kit.connect(
                url(server, scheme="wss"),
                "2.0.1",
                ssl_context=ssl.create_default_context(),
                max_attempts=1,
            ) as station,
        ):
            with pytest.raises(ConnectFailedError):
                await kit.wait_connected(station)


# --- limits and keepalive -----------------------------------------------------------------------


async def test_message_too_big_closes_with_1009(kit: Kit) -> None:
    version = "2.0.1"
    station_app = Script()
    limited = WsOptions(ping_interval=0, max_message_size=300, close_timeout=1)
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), ws_options=limited) as server,
            kit.connect(url(server), version, station_app, backoff=Backoff(minimum=60)) as station,
        ):
            await kit.wait_registered(station)
            big = request(version, "DataTransfer", vendor_id="v", data="x" * 400)
            with pytest.raises(CallLostError):
                await kit.call(station, big)
            await until(lambda: "Disconnected" in station_app.event_types())
    [closed] = [e for _, e in station_app.events if isinstance(e, Disconnected)]
    assert closed.code == 1009


async def test_station_closes_when_the_csms_stops_answering_pings(kit: Kit) -> None:
    peer = SilentPeer()
    station_app = Script()
    options = WsOptions(ping_interval=0.2, ping_timeout=0.3, close_timeout=1)
    try:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.to_thread.run_sync, peer.serve_one, "ocpp2.0.1")
                address = f"ws://127.0.0.1:{peer.port}/ocpp/CS001"
                async with kit.connect(
                    address, "2.0.1", station_app, ws_options=options, backoff=Backoff(minimum=60)
                ) as station:
                    await kit.wait_connected(station)
                    await until(lambda: "Disconnected" in station_app.event_types())
                peer.close()
    finally:
        peer.close()
    [closed] = [e for _, e in station_app.events if isinstance(e, Disconnected)]
    assert closed.code == 1011


async def test_csms_closes_a_station_that_stops_answering_pings(kit: Kit) -> None:
    peer = SilentPeer()
    csms = Script()
    options = WsOptions(ping_interval=0.2, ping_timeout=0.3, close_timeout=1)
    try:
        with anyio.fail_after(TIMEOUT):
            async with (
                kit.serve(csms, ws_options=options) as server,
                anyio.create_task_group() as tasks,
            ):
                tasks.start_soon(
                    anyio.to_thread.run_sync,
                    peer.connect_silently,
                    server.port,
                    "/ocpp/CS001",
                    "ocpp1.6",
                )
                await until(lambda: "Disconnected" in csms.event_types())
                peer.close()
    finally:
        peer.close()
    assert csms.event_types() == ["Connected", "Disconnected"]
    [closed] = [e for _, e in csms.events if isinstance(e, Disconnected)]
    assert closed.code == 1011


# --- reconnects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_b04_reconnect_resumes_without_boot_and_delivers_held_messages_once(
    kit: Kit, version: str
) -> None:
    csms = Script()
    station_app = Script()
    refusing = False
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms, known_identity=lambda i: not refusing) as server,
            kit.connect(url(server), version, station_app) as station,
        ):
            await kit.wait_registered(station)
            refusing = True
            await kit.close_session(server.sessions["cs001"])
            await until(lambda: not station.connected)
            with pytest.raises(LocalProtocolError):  # only transaction messages wait
                await kit.call(station, request(version, "Heartbeat"))
            # Offline: transaction-related messages are held (E04.FR.01, 1.6 §3.7).
            answers: list[Any] = []

            async def send(number: int) -> None:
                answers.append(await kit.call(station, transaction_message(version, number)))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(send, 1)
                await until(lambda: len(station.core.held_requests) == 1)
                await until(lambda: "ConnectFailed" in station_app.event_types())
                refusing = False
            await until(lambda: len(answers) == 1)
            assert station.registration is RegistrationStatus.ACCEPTED
            await kit.call(station, request(version, "Heartbeat"))
    transaction = "StartTransaction" if version == "1.6" else "TransactionEvent"
    assert csms.actions() == ["BootNotification", transaction, "Heartbeat"]
    assert station_app.event_types().count("Reconnected") == 1


async def test_reconnect_waits_double_up_to_repeat_times_and_start_over_after_success(
    kit: Kit,
) -> None:
    station_app = Script()
    refusing = True
    backoff = Backoff(minimum=0.05, random_range=0, repeat_times=2)

    def retries() -> list[float | None]:
        return [e.retry_in for _, e in station_app.events if isinstance(e, ConnectFailed)]

    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script(), known_identity=lambda i: not refusing) as server,
            kit.connect(url(server), "2.0.1", station_app, backoff=backoff) as station,
        ):
            await until(lambda: len(retries()) == 4)
            refusing = False
            await kit.wait_registered(station)
            refusing = True
            await kit.close_session(server.sessions["cs001"])
            await until(lambda: len(retries()) == 6)
    # After a success the first wait (0.05, before the first new attempt) is the minimum
    # again, so the failures that follow report 0.1 and 0.2, not 0.2 and 0.2.
    assert retries() == [0.05, 0.1, 0.2, 0.2, 0.1, 0.2]


async def test_second_connection_for_an_identity_replaces_the_first(kit: Kit) -> None:
    version = "2.0.1"
    csms = Script()
    first_app = Script()
    second_app = Script()
    patient = Backoff(minimum=60)  # the first must not come back during the test
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(csms) as server,
            kit.connect(url(server), version, first_app, backoff=patient) as first,
        ):
            await kit.wait_registered(first)
            session = server.sessions["cs001"]
            async with kit.connect(url(server), version, second_app, backoff=patient) as second:
                await kit.wait_registered(second)
                await until(lambda: not first.connected)
                assert server.sessions == {"cs001": session}
                assert session.registration is RegistrationStatus.ACCEPTED
                answer = await kit.call(session, csms_request(version))
                assert str(answer.status) == "Accepted"
    [closed] = [e for _, e in first_app.events if isinstance(e, Disconnected)]
    assert (closed.code, closed.reason) == (1000, "replaced by a new connection")
    assert first_app.seen == []
    assert second_app.actions() == ["ChangeAvailability"]
    assert csms.event_types().count("Connected") == 2


async def test_unreachable_csms_ends_after_max_attempts(kit: Kit) -> None:
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with kit.connect(
            "ws://127.0.0.1:1/ocpp/CS001", "2.0.1", station_app, max_attempts=2
        ) as station:
            with pytest.raises(ConnectFailedError):
                await kit.wait_connected(station)
            await until(lambda: len(station_app.events) == 2)
    retries = [e.retry_in for _, e in station_app.events if isinstance(e, ConnectFailed)]
    assert len(retries) == 2 and retries[0] is not None and retries[1] is None


async def test_stopping_the_server_tells_stations_it_goes_away(kit: Kit) -> None:
    station_app = Script()
    with anyio.fail_after(TIMEOUT):
        async with (
            kit.serve(Script()) as server,
            kit.connect(url(server), "2.0.1", station_app, backoff=Backoff(minimum=60)) as station,
        ):
            await kit.wait_registered(station)
            await kit.stop_server(server)
            await until(lambda: "Disconnected" in station_app.event_types())
    [closed] = [e for _, e in station_app.events if isinstance(e, Disconnected)]
    assert closed.code == 1001


def test_the_kits_cover_every_adapter() -> None:
    assert set(KITS) == {"trio", "asyncio", "threads"}
    assert QUIET.ping_interval == 0


def test_threads_call_gives_up_waiting_after_its_timeout() -> None:
    version = "2.0.1"
    csms = Script(delays={"Authorize": 1.0})
    with (
        threads_adapter.serve(SyncApp(csms), options=ServerOptions(ws_options=QUIET)) as server,
        threads_adapter.connect(
            url(server),
            version=version,
            boot=boot(version),
            options=StationOptions(ws_options=QUIET),
        ) as station,
    ):
        assert station.wait_registered(TIMEOUT)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            station.call(authorize(version), timeout=0.2)
        assert time.monotonic() - started < 0.9
