"""Issue 16, finding 6: identities that fold alike (``CS001``/``cs001``, ``STRAßE``/
``STRASSE``, the Kelvin sign and K) are one station and share one session, so no spelling
may reach another's session with credentials of its own; and another OCPP version never
wipes a station's registration silently. On every adapter, over real sockets; the ASGI
adapter under uvicorn.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest
from _adapterkit import KITS, Kit, Script, until

from ocpp_sansio import RegistrationStatus, VersionChanged
from ocpp_sansio.adapters import Backoff, ConnectFailedError, identity_key
from ocpp_sansio.adapters._upgrade import HandshakeRefused
from ocpp_sansio.adapters._ws import (
    ClientWebSocket,
    Closed,
    Endpoint,
    Opened,
    ServerPolicy,
    ServerWebSocket,
    SpeaksFor,
    WsOptions,
)

PASSWORD = "0123456789abcdef0123456789abcdef"
OTHER_PASSWORD = "fedcba9876543210fedcba9876543210"
#: (the spelling that connects first, another spelling of it); 1.6 allows non-ASCII ones.
SPELLINGS = [("CS001", "cs001"), ("STRAßE", "STRASSE"), ("\u212aW-1", "KW-1")]


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


def url(server: Any, identity: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ocpp/{identity}"


async def refused_status(kit: Kit, server: Any, identity: str, version: str, **options: Any) -> int:
    """The HTTP status a station connecting as ``identity`` is refused with."""
    async with kit.connect(url(server, identity), version, max_attempts=1, **options) as station:
        with pytest.raises(ConnectFailedError) as failed:
            await kit.wait_connected(station)
    status = failed.value.status
    assert status is not None
    return status


# --- spellings ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("owner", "other"), SPELLINGS)
async def test_a00_fr_207_another_spelling_with_its_own_password_cannot_take_over(
    kit: Kit, owner: str, other: str
) -> None:
    """Finding: ``auth`` a function knowing both spellings, each with its own password:
    ``cs001`` logging in with its password took over ``CS001``'s connection, registration
    and the CSMS's requests. Now it is refused with 409 and CS001 goes on undisturbed."""
    passwords = {owner: PASSWORD, other: OTHER_PASSWORD}
    with anyio.fail_after(10):
        async with kit.serve(Script(), auth=passwords.get) as server:
            async with kit.connect(url(server, owner), "1.6", auth=PASSWORD) as station:
                await kit.wait_registered(station)
                session = server.sessions[identity_key(owner)]
                status = await refused_status(kit, server, other, "1.6", auth=OTHER_PASSWORD)
                assert status == 409
                assert list(server.sessions) == [identity_key(owner)]
                assert server.sessions[identity_key(owner)] is session
                assert session.connected and session.identity == owner
                assert session.registration is RegistrationStatus.ACCEPTED
            # Nor once the owner has left: its session is kept for it (session_keep).
            await until(lambda: not session.connected)
            assert await refused_status(kit, server, other, "1.6", auth=OTHER_PASSWORD) == 409


@pytest.mark.anyio
async def test_a00_fr_207_a_spelling_whose_password_opens_the_session_reaches_it(
    kit: Kit,
) -> None:
    """A lookup that answers every spelling alike (identities are case-insensitive): the
    same station under another spelling, with the same password, resumes its session."""

    def password_of(identity: str) -> str | None:
        return PASSWORD if identity_key(identity) == "cs001" else None

    with anyio.fail_after(10):
        async with kit.serve(Script(), auth=password_of) as server:
            async with kit.connect(url(server, "CS001"), "1.6", auth=PASSWORD) as station:
                await kit.wait_registered(station)
            session = server.sessions["cs001"]
            async with kit.connect(url(server, "cs001"), "1.6", auth=PASSWORD) as station:
                await kit.wait_connected(station)
                await until(lambda: session.connected)
                assert server.sessions["cs001"] is session and session.identity == "CS001"


@pytest.mark.anyio
async def test_without_credentials_every_spelling_is_the_same_station(kit: Kit) -> None:
    """Where the CSMS asks for no credentials anyone may connect as any identity, spelled
    as the station spells it: a spelling that folds alike is the same station (identities
    are case-insensitive) and resumes its session."""
    with anyio.fail_after(10):
        async with kit.serve(Script()) as server:
            async with kit.connect(url(server, "STRAßE"), "1.6") as station:
                await kit.wait_registered(station)
            session = server.sessions["strasse"]
            async with kit.connect(url(server, "STRASSE"), "1.6") as station:
                await kit.wait_connected(station)
                await until(lambda: session.connected)
            assert server.sessions["strasse"] is session


def test_a00_fr_405_a_certificate_reaches_only_the_spellings_its_check_accepts() -> None:
    """Profile 3: a certificate another spelling presents must pass the check for the
    session's spelling too (here a check comparing the CN exactly)."""
    spelled: list[tuple[str, bool]] = []

    def session_check(identity: str, version: str, speaks_for: SpeaksFor) -> Any:
        owner = "CS001"
        opens = speaks_for(owner)
        spelled.append((identity, opens))
        return None if identity == owner or opens else HandshakeRefused(409, "taken")

    def exact(identity: str, certificate: Any) -> bool:
        return dict(certificate["subject"][0])["commonName"] == identity

    policy = ServerPolicy(
        versions=("1.6",),
        certificate_check=exact,
        session_check=session_check,
        options=WsOptions(ping_interval=0),
    )
    for identity in ("CS001", "cs001"):
        certificate = {"subject": ((("commonName", identity),),)}
        client = ClientWebSocket(
            Endpoint.from_url(f"ws://x/ocpp/{identity}"),
            versions=["1.6"],
            options=policy.options,
            now=0.0,
        )
        client.start()
        server = ServerWebSocket(policy, 0.0, peer_certificate=lambda c=certificate: c)
        server.receive_data(client.data_to_send(), 0.0)
        [verdict] = server.events()
        if identity == "CS001":
            assert verdict == Opened(version="1.6", identity="CS001")
        else:
            assert isinstance(verdict, Closed) and verdict.status == 409
    assert spelled == [("CS001", True), ("cs001", False)]


# --- versions -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_another_version_is_refused_while_the_station_is_connected(kit: Kit) -> None:
    """Finding: without auth, connecting as CS001 with another version wiped CS001's
    registration. While its connection is open, that is refused with 409: without
    credentials, anyone could be asking."""
    with anyio.fail_after(10):
        async with (
            kit.serve(Script()) as server,
            kit.connect(url(server, "CS001"), "2.0.1") as station,
        ):
            await kit.wait_registered(station)
            session = server.sessions["cs001"]
            assert await refused_status(kit, server, "CS001", "1.6") == 409
            assert server.sessions["cs001"] is session and session.connected
            assert session.registration is RegistrationStatus.ACCEPTED


@pytest.mark.anyio
async def test_a_station_back_with_another_version_gets_a_fresh_session_and_the_csms_is_told(
    kit: Kit,
) -> None:
    script = Script()
    with anyio.fail_after(10):
        async with kit.serve(script) as server:
            async with kit.connect(url(server, "CS001"), "2.0.1") as station:
                await kit.wait_registered(station)
            old = server.sessions["cs001"]
            await until(lambda: not old.connected)
            async with kit.connect(url(server, "CS001"), "1.6") as station:
                await kit.wait_registered(station)
                new = server.sessions["cs001"]
                assert new is not old and new.version == "1.6"
                await until(lambda: any(isinstance(e, VersionChanged) for _, e in script.events))
    told = [(i, e) for i, e in script.events if isinstance(e, VersionChanged)]
    accepted = RegistrationStatus.ACCEPTED
    assert told == [
        ("CS001", VersionChanged(previous="2.0.1", version="1.6", registration=accepted))
    ]
    after = [type(e).__name__ for _, e in script.events[script.events.index(told[0]) :]]
    assert after[:2] == ["VersionChanged", "Connected"]


@pytest.mark.anyio
async def test_a00_fr_207_a_station_with_its_password_may_change_version_while_connected(
    kit: Kit,
) -> None:
    """With credentials checked, a connection of another version is the station itself
    (after a firmware update, its old connection perhaps half-open): it replaces the open
    one and starts a fresh session, and the CSMS is told."""
    script = Script()
    slow = Backoff(minimum=30, random_range=0)  # the replaced station stays away
    with anyio.fail_after(10):
        async with (
            kit.serve(script, auth={"CS001": PASSWORD}) as server,
            kit.connect(url(server, "CS001"), "2.0.1", auth=PASSWORD, backoff=slow) as old_station,
        ):
            await kit.wait_registered(old_station)
            old = server.sessions["cs001"]
            async with kit.connect(url(server, "CS001"), "1.6", auth=PASSWORD) as station:
                await kit.wait_registered(station)
                new = server.sessions["cs001"]
                assert new is not old and new.version == "1.6" and not old.connected
    assert [e for _, e in script.events if isinstance(e, VersionChanged)] == [
        VersionChanged(previous="2.0.1", version="1.6", registration=RegistrationStatus.ACCEPTED)
    ]


# --- the ASGI adapter -------------------------------------------------------------------------


def test_asgi_judges_spellings_and_versions_as_serve_does() -> None:
    from test_adapters_asgi import _basic, asgi_csms
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidStatus
    from websockets.typing import Subprotocol

    passwords = {"CS001": PASSWORD, "cs001": OTHER_PASSWORD}

    def connecting(identity: str, password: str, subprotocol: str) -> Any:
        return ws_connect(
            f"ws://127.0.0.1:{csms.port}/ocpp/{identity}",
            subprotocols=[Subprotocol(subprotocol)],
            additional_headers=_basic(identity, password),
        )

    async def status(identity: str, password: str, subprotocol: str) -> int | None:
        try:
            async with connecting(identity, password, subprotocol):
                return None
        except InvalidStatus as refused:
            return int(refused.response.status_code)

    async def scenario() -> tuple[int | None, int | None]:
        async with connecting("CS001", PASSWORD, "ocpp2.0.1") as ws:
            assert ws.subprotocol == "ocpp2.0.1"
            spelled = await status("cs001", OTHER_PASSWORD, "ocpp2.0.1")
            versioned = await status("CS001", PASSWORD, "ocpp1.6")
        return spelled, versioned

    with asgi_csms(auth=passwords.get) as (csms, _web, app):
        # Another spelling with its own password: 409. Another version with CS001's own
        # password: the station itself, which may (a fresh 1.6 session).
        assert asyncio.run(scenario()) == (409, None)
        assert list(app.sessions) == ["cs001"]
        assert app.sessions["cs001"].identity == "CS001"
        assert app.sessions["cs001"].version == "1.6"


def test_asgi_evicts_the_session_of_a_station_gone_for_session_keep() -> None:
    from test_adapters_asgi import BOOT_201, asgi_csms

    from ocpp_sansio.adapters import StationOptions
    from ocpp_sansio.adapters.asyncio import connect

    async def visit(port: int) -> None:
        options = StationOptions(ws_options=WsOptions(ping_interval=0), max_attempts=1)
        url = f"ws://127.0.0.1:{port}/ocpp/CS001"
        async with connect(url, version="2.0.1", boot=BOOT_201, options=options) as station:
            await asyncio.wait_for(station.wait_registered(), 5)

    with asgi_csms(session_keep=0) as (csms, _web, app):
        asyncio.run(visit(csms.port))
        deadline = time.monotonic() + 5
        while app.sessions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not app.sessions


def test_asgi_refuses_another_version_without_credentials_while_connected() -> None:
    from test_adapters_asgi import asgi_csms
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidStatus
    from websockets.typing import Subprotocol

    async def scenario(port: int) -> int | None:
        target = f"ws://127.0.0.1:{port}/ocpp/CS001"
        async with ws_connect(target, subprotocols=[Subprotocol("ocpp2.0.1")]):
            try:
                async with ws_connect(target, subprotocols=[Subprotocol("ocpp1.6")]):
                    return None
            except InvalidStatus as refused:
                return int(refused.response.status_code)

    with asgi_csms() as (csms, _web, app):
        assert asyncio.run(scenario(csms.port)) == 409
        assert app.sessions["cs001"].version == "2.0.1"
