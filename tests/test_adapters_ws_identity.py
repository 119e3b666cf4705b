"""Who a connection may speak for (adapters/_ws.py): one normalisation of station identities
for sessions, HTTP Basic and certificates, and the certificate of security profile 3 bound
to the identity (A00.FR.405, B01.FR.11). In memory here; over real TLS for every adapter at
the end.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import anyio
import pytest
import trustme
from _adapterkit import KITS, Kit, Script
from hypothesis import given
from hypothesis import strategies as st

from ocpp_sansio.adapters import ConnectFailedError, PasswordTable, ServerOptions, identity_key
from ocpp_sansio.adapters._driver import CsmsCores, posix_wall_clock
from ocpp_sansio.adapters._ws import (
    ClientWebSocket,
    Closed,
    Endpoint,
    Opened,
    ServerPolicy,
    ServerWebSocket,
    WsOptions,
    basic_authorization,
    certificate_common_name,
    station_certificate_check,
)

QUIET = WsOptions(ping_interval=0)
PASSWORD = "0123456789abcdef0123456789abcdef"
#: CS001 in full-width forms (a 1.6 identity may hold them).
FULL_WIDTH_CS001 = "\uff23\uff33\uff10\uff10\uff11"


def handshake(
    identity: str,
    policy: ServerPolicy,
    *,
    password: str | None = None,
    certificate: Mapping[str, Any] | None = None,
) -> tuple[ServerWebSocket, list[Any]]:
    """A station connecting as ``identity``: the server and what it reported."""
    client = ClientWebSocket(
        Endpoint.from_url(f"ws://csms.example/ocpp/{identity}"),
        versions=["1.6"],
        options=QUIET,
        password=password,
        now=0.0,
    )
    client.start()
    server = ServerWebSocket(policy, 0.0, peer_certificate=lambda: certificate)
    server.receive_data(client.data_to_send(), 0.0)
    return server, server.events()


def status_of(events: list[Any]) -> int | None:
    [closed] = events
    assert isinstance(closed, Closed)
    return closed.status


# --- one identity normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("CS001", "cs001"),
        ("STRAßE", "STRASSE"),  # casefold: ß is ss
        ("\u212aW-1", "KW-1"),  # the Kelvin sign is K (NFKC)
        (FULL_WIDTH_CS001, "cs001"),  # full-width forms (NFKC)
    ],
)
def test_identities_that_fold_alike_have_one_key(one: str, other: str) -> None:
    assert one != other and identity_key(one) == identity_key(other)


def test_distinct_identities_keep_distinct_keys() -> None:
    assert identity_key("CS001") != identity_key("CS0O1")
    assert identity_key("cs-1") != identity_key("cs_1")


@given(st.text(max_size=20))
def test_the_key_of_a_key_is_itself(identity: str) -> None:
    key = identity_key(identity)
    assert identity_key(key) == key


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=20))
def test_ascii_identities_compare_case_insensitively(identity: str) -> None:
    assert identity_key(identity) == identity.lower() == identity_key(identity.upper())


def test_the_connection_tells_its_identity_key() -> None:
    server, events = handshake("STRAßE", ServerPolicy(versions=("1.6",), options=QUIET))
    assert events == [Opened(version="1.6", identity="STRAßE")]
    assert server.identity_key == "strasse"


class Session:
    def __init__(self, identity: str, driver: Any) -> None:
        self.identity, self.driver, self.link = identity, driver, None


def test_csms_sessions_are_keyed_by_the_identity_key() -> None:
    cores = CsmsCores(ServerOptions(), posix_wall_clock)
    sessions: dict[str, Session] = {}
    placed = []
    for identity in ("\u212aW-1", "KW-1"):
        server, _ = handshake(identity, ServerPolicy(versions=("1.6",), options=QUIET))
        placed.append(cores.place(sessions, server, 0.0, Session))
    assert list(sessions) == ["kw-1"]
    assert placed[0] is not None and placed[1] is not None and placed[0][0] is placed[1][0]


# --- HTTP Basic: a password opens only the spelling it is registered under ------------------------


def basic(passwords: Any) -> ServerPolicy:
    return ServerPolicy(versions=("1.6",), password_for=passwords, options=QUIET)


def test_a_password_table_refuses_two_spellings_of_one_identity() -> None:
    """Finding: with both in a table, cs001 logging in with its own password took over
    CS001's session. Now such a table is refused, also given as a plain mapping."""
    passwords = {"CS001": PASSWORD, "cs001": "another password of 32 characters"}
    with pytest.raises(ValueError, match="'CS001' and 'cs001' are one station identity"):
        PasswordTable(passwords)
    with pytest.raises(ValueError, match="one station identity"):
        ServerPolicy(password_for=passwords)
    with pytest.raises(ValueError, match="one station identity"):
        PasswordTable({"STRAßE": PASSWORD, "STRASSE": PASSWORD})


def test_a00_fr_207_a_password_opens_the_spelling_it_is_registered_under_only() -> None:
    for passwords in (PasswordTable({"CS001": PASSWORD}), {"CS001": PASSWORD}):
        _, events = handshake("CS001", basic(passwords), password=PASSWORD)
        assert events == [Opened(version="1.6", identity="CS001")]
        _, events = handshake("cs001", basic(passwords), password=PASSWORD)
        assert status_of(events) == 401


def test_the_table_is_consulted_with_the_identity_as_sent() -> None:
    asked: list[str] = []

    def lookup(identity: str) -> str | None:
        asked.append(identity)
        return PASSWORD

    handshake(FULL_WIDTH_CS001, basic(lookup), password=PASSWORD)
    assert asked == [FULL_WIDTH_CS001]


def test_a00_fr_204_the_username_is_the_identity_compared_by_key() -> None:
    def answer(username: str) -> list[Any]:
        head = (
            b"GET /ocpp/CS001 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
            b"Authorization: " + basic_authorization(username, PASSWORD) + b"\r\n\r\n"
        )
        server = ServerWebSocket(basic(PasswordTable({"CS001": PASSWORD})), 0.0)
        server.receive_data(head, 0.0)
        return server.events()

    assert answer("cs001") == [Opened(version="1.6", identity="CS001")]
    assert answer(FULL_WIDTH_CS001) == [Opened(version="1.6", identity="CS001")]
    assert status_of(answer("CS002")) == 401


# --- security profile 3: the certificate speaks for one identity ---------------------------------


def certificate(*subject: tuple[str, str]) -> dict[str, Any]:
    """A client certificate as ``ssl.SSLSocket.getpeercert()`` gives it (the part we read)."""
    return {"subject": tuple(((name, value),) for name, value in subject), "version": 3}


CSO = ("organizationName", "Example CSO")


def test_the_common_name_is_the_subjects_one_cn() -> None:
    assert certificate_common_name(certificate(CSO, ("commonName", "CS001"))) == "CS001"
    assert certificate_common_name(certificate(CSO)) is None
    two = certificate(("commonName", "CS001"), ("commonName", "CS002"))
    assert certificate_common_name(two) is None


def test_a00_fr_405_by_default_the_certificate_cn_must_be_the_identity() -> None:
    policy = ServerPolicy(versions=("1.6",), options=QUIET)
    own = certificate(CSO, ("commonName", "CS001"))
    for identity in ("CS001", "cs001"):
        _, events = handshake(identity, policy, certificate=own)
        assert events == [Opened(version="1.6", identity=identity)]
    _, events = handshake("CS002", policy, certificate=own)
    assert status_of(events) == 403
    for unnamed in (
        certificate(CSO),
        certificate(("commonName", "CS002"), ("commonName", "CS001")),
    ):
        _, events = handshake("CS001", policy, certificate=unnamed)
        assert status_of(events) == 403


def test_without_a_client_certificate_no_certificate_check_runs() -> None:
    policy = ServerPolicy(versions=("1.6",), options=QUIET)
    for none in (None, {}):  # plain TCP; TLS without a client certificate
        _, events = handshake("CS001", policy, certificate=none)
        assert events == [Opened(version="1.6", identity="CS001")]


def test_the_certificate_check_gets_the_identity_as_sent_and_the_certificate() -> None:
    seen: list[tuple[str, Mapping[str, Any]]] = []

    def check(identity: str, presented: Mapping[str, Any]) -> bool:
        seen.append((identity, presented))
        return False

    own = certificate(("commonName", "x"))
    policy = ServerPolicy(versions=("1.6",), certificate_check=check, options=QUIET)
    _, events = handshake(FULL_WIDTH_CS001, policy, certificate=own)
    assert status_of(events) == 403 and seen == [(FULL_WIDTH_CS001, own)]
    off = ServerPolicy(versions=("1.6",), certificate_check=None, options=QUIET)
    _, events = handshake("CS001", off, certificate=own)
    assert events == [Opened(version="1.6", identity="CS001")]


def test_b01_fr_11_the_cn_may_be_a_serial_number_other_than_the_identity() -> None:
    serials = {"CS001": "SN-0077"}
    policy = ServerPolicy(
        versions=("1.6",),
        certificate_check=station_certificate_check(serial_number_of=serials.get),
        options=QUIET,
    )
    _, events = handshake("CS001", policy, certificate=certificate(("commonName", "SN-0077")))
    assert events == [Opened(version="1.6", identity="CS001")]
    for other in ("sn-0077", "CS001"):  # a serial number is compared as it is (B01.FR.12)
        _, events = handshake("CS001", policy, certificate=certificate(("commonName", other)))
        assert status_of(events) == 403
    _, events = handshake("CS999", policy, certificate=certificate(("commonName", "SN-0077")))
    assert status_of(events) == 403  # no serial number known for CS999


def test_a00_fr_404_the_organization_can_be_required_too() -> None:
    policy = ServerPolicy(
        versions=("1.6",),
        certificate_check=station_certificate_check(organization="Example CSO"),
        options=QUIET,
    )
    named = ("commonName", "CS001")
    _, events = handshake("CS001", policy, certificate=certificate(CSO, named))
    assert events == [Opened(version="1.6", identity="CS001")]
    for subject in ([named], [("organizationName", "Other CSO"), named]):
        _, events = handshake("CS001", policy, certificate=certificate(*subject))
        assert status_of(events) == 403


def test_the_certificate_is_asked_for_once_the_request_is_complete() -> None:
    """Over TLS it exists only after the TLS handshake: the layer asks when it needs it."""
    asked: list[int] = []

    def peer_certificate() -> dict[str, Any]:
        asked.append(1)
        return certificate(("commonName", "CS001"))

    client = ClientWebSocket(
        Endpoint.from_url("ws://x/ocpp/CS001"), versions=["1.6"], options=QUIET, now=0.0
    )
    client.start()
    request = client.data_to_send()
    server = ServerWebSocket(
        ServerPolicy(versions=("1.6",), options=QUIET), 0.0, peer_certificate=peer_certificate
    )
    server.receive_data(request[:-2], 0.0)
    assert asked == []
    server.receive_data(request[-2:], 0.0)
    assert asked == [1] and server.events() == [Opened(version="1.6", identity="CS001")]


# --- over TLS, every adapter ---------------------------------------------------------------------


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def mutual_tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    return context


def station_tls(ca: trustme.CA, common_name: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    ca.issue_cert("station.example", common_name=common_name).configure_cert(context)
    return context


@pytest.mark.anyio
async def test_a00_fr_405_a_certificate_cannot_take_over_another_stations_session(
    kit: Kit, ca: trustme.CA
) -> None:
    with anyio.fail_after(10):
        async with kit.serve(Script(), ssl_context=mutual_tls_server(ca)) as server:
            url = f"wss://127.0.0.1:{server.port}/ocpp/CS001"
            async with kit.connect(url, "2.0.1", ssl_context=station_tls(ca, "CS001")) as station:
                await kit.wait_registered(station)
                session = server.sessions["cs001"]
                async with kit.connect(
                    url, "2.0.1", ssl_context=station_tls(ca, "CS002"), max_attempts=1
                ) as impostor:
                    with pytest.raises(ConnectFailedError) as failed:
                        await kit.wait_connected(impostor)
                assert failed.value.status == 403
                assert server.sessions["cs001"] is session and session.connected


@pytest.mark.anyio
async def test_b01_fr_11_serve_takes_a_certificate_check_for_serial_numbers(
    kit: Kit, ca: trustme.CA
) -> None:
    check = station_certificate_check(serial_number_of={"CS001": "SN-0077"}.get)
    with anyio.fail_after(10):
        async with kit.serve(
            Script(), ssl_context=mutual_tls_server(ca), certificate_check=check
        ) as server:
            url = f"wss://127.0.0.1:{server.port}/ocpp/CS001"
            async with kit.connect(url, "2.0.1", ssl_context=station_tls(ca, "SN-0077")) as station:
                await kit.wait_registered(station)
                presented = server.sessions["cs001"].peer_certificate
                assert certificate_common_name(presented) == "SN-0077"
