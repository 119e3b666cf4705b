"""The WebSocket glue the adapters share (adapters/_ws.py), driven in memory: a client and a
server glue object pass bytes to each other under a fake clock. No sockets, no sleeping.

OCPP-J (Part 4): subprotocols, the identity, keepalive, compression (RFC 7692); the reconnect
back-off (OCPPCommCtrlr.RetryBackOff*); HTTP Basic and security profiles 1 and 2 (A00).
"""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
import wsproto
import wsproto.events as wse

from ocpp_sansio.adapters import Backoff
from ocpp_sansio.adapters import _ws as glue
from ocpp_sansio.adapters._ws import (
    ClientWebSocket,
    Closed,
    Endpoint,
    Opened,
    ServerPolicy,
    ServerWebSocket,
    TextReceived,
    WsOptions,
    identity_from_target,
    identity_problem,
)

QUIET = WsOptions(ping_interval=0)


def pair(
    *,
    client_versions: tuple[str, ...] = ("2.0.1",),
    policy: ServerPolicy | None = None,
    url: str = "ws://csms.example:9000/ocpp/CS001",
    password: str | bytes | None = None,
    client_options: WsOptions = QUIET,
) -> tuple[ClientWebSocket, ServerWebSocket]:
    client = ClientWebSocket(
        Endpoint.from_url(url),
        versions=client_versions,
        options=client_options,
        password=password,
        now=0.0,
    )
    server = ServerWebSocket(policy or ServerPolicy(options=QUIET), 0.0)
    client.start()
    return client, server


def exchange(client: Any, server: Any, now: float = 0.0) -> tuple[list[Any], list[Any]]:
    """Carry bytes both ways until neither side has any; the events each side produced."""
    client_events: list[Any] = []
    server_events: list[Any] = []
    for _ in range(20):
        to_server = client.data_to_send()
        if to_server:
            server.receive_data(to_server, now)
        to_client = server.data_to_send()
        if to_client:
            client.receive_data(to_client, now)
        client_events += client.events()
        server_events += server.events()
        if not to_server and not to_client:
            break
    return client_events, server_events


def handshake_response(client: ClientWebSocket, server: ServerWebSocket) -> bytes:
    server.receive_data(client.data_to_send(), 0.0)
    return server.data_to_send()


# --- subprotocols (OCPP-J, Part 4) ---------------------------------------------------------------


def test_client_offers_its_versions_in_order_of_preference() -> None:
    client, _ = pair(client_versions=("2.1", "2.0.1", "1.6"))
    request = client.data_to_send()
    assert b"Sec-WebSocket-Protocol: ocpp2.1, ocpp2.0.1, ocpp1.6\r\n" in request


def test_server_picks_by_its_own_preference_among_the_offered() -> None:
    policy = ServerPolicy(versions=("1.6", "2.0.1"), options=QUIET)
    client, server = pair(client_versions=("2.1", "2.0.1", "1.6"), policy=policy)
    client_events, server_events = exchange(client, server)
    assert server_events == [Opened(version="1.6", identity="CS001")]
    assert client_events == [Opened(version="1.6", identity="CS001")]
    assert client.version == server.version == "1.6"


@pytest.mark.parametrize("offered", [("2.1",), ("2.0.1", "2.1"), ("1.6", "2.1")])
def test_the_default_server_prefers_the_newest_offered_version(offered: tuple[str, ...]) -> None:
    client, server = pair(client_versions=offered)
    client_events, _ = exchange(client, server)
    assert client_events == [Opened(version="2.1", identity="CS001")]


def test_no_common_subprotocol_completes_the_handshake_without_the_header_then_closes() -> None:
    policy = ServerPolicy(versions=("1.6",), options=QUIET)
    client, server = pair(client_versions=("2.0.1", "2.1"), policy=policy)
    response = handshake_response(client, server)
    head, _, frames = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-protocol" not in head.lower()
    assert frames[:1] == b"\x88"  # a close frame right behind the handshake
    assert int.from_bytes(frames[2:4], "big") == glue.PROTOCOL_ERROR
    assert server.done
    client.receive_data(response, 0.0)
    [closed] = client.events()
    assert isinstance(closed, Closed) and closed.code == glue.PROTOCOL_ERROR
    assert client.done and client.version is None


def test_server_versions_are_checked() -> None:
    with pytest.raises(ValueError):
        ServerPolicy(versions=("2.0",))
    with pytest.raises(ValueError):
        ServerPolicy(versions=())


# --- identity (OCPP-J, Part 4) --------------------------------------------------------------------


def test_identity_is_the_last_path_segment_percent_decoded() -> None:
    assert identity_from_target("/ocpp/CS001") == "CS001"
    assert identity_from_target("/webServices/ocpp/RDAM%20123?x=1") == "RDAM 123"
    assert identity_from_target("/CS%2A1") == "CS*1"


def test_endpoint_from_url_percent_encodes_the_identity() -> None:
    endpoint = Endpoint.from_url("wss://csms.example/ocppj/RDAM 123")
    assert (endpoint.secure, endpoint.port, endpoint.identity) == (True, 443, "RDAM 123")
    assert endpoint.target == "/ocppj/RDAM%20123"
    assert Endpoint.from_url("ws://[::1]:9000/a/B").host_header == "[::1]:9000"
    with pytest.raises(ValueError):
        Endpoint.from_url("http://csms.example/ocpp/CS1")


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_identity_2x_is_an_identifier_string_of_at_most_48(version: str) -> None:
    assert identity_problem("A" * 48, version) is None
    assert identity_problem("cs-01_a*b=c+d|e@f.g", version) is None
    assert identity_problem("A" * 49, version) is not None
    assert identity_problem("RDAM 123", version) is not None
    assert identity_problem("", version) is not None


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_identity_never_holds_a_colon(version: str) -> None:
    assert identity_problem("CS:01", version) is not None


def test_identity_1_6_has_no_length_limit() -> None:
    assert identity_problem("A" * 200, "1.6") is None
    assert identity_problem("RDAM 123", "1.6") is None
    assert identity_problem("bad\x00", "1.6") is not None


def rejected_status(client: ClientWebSocket, server: ServerWebSocket) -> int | None:
    client_events, server_events = exchange(client, server)
    assert server.done and client.done
    [closed] = [e for e in client_events if isinstance(e, Closed)]
    [server_closed] = server_events
    assert isinstance(server_closed, Closed) and server_closed.status == closed.status
    return closed.status


def test_invalid_identity_gets_404() -> None:
    client, server = pair(url="ws://csms.example/ocpp/" + "A" * 49)
    assert rejected_status(client, server) == 404


def test_unknown_identity_gets_404_from_the_user_callback() -> None:
    asked: list[str] = []

    def known(identity: str) -> bool:
        asked.append(identity)
        return identity == "CS002"

    policy = ServerPolicy(known_identity=known, options=QUIET)
    client, server = pair(policy=policy, url="ws://csms.example/ocpp/CS001")
    assert rejected_status(client, server) == 404
    assert asked == ["CS001"]
    client, server = pair(policy=policy, url="ws://csms.example/ocpp/CS002")
    client_events, _ = exchange(client, server)
    assert client_events == [Opened(version="2.0.1", identity="CS002")]


# --- HTTP Basic (A00.FR.204/207) ----------------------------------------------------


PASSWORDS = {"CS001": "0123456789abcdef0123456789abcdef"}


def basic_policy(versions: tuple[str, ...] = ("2.0.1",)) -> ServerPolicy:
    return ServerPolicy(versions=versions, password_for=PASSWORDS.get, options=QUIET)


def test_a00_fr_207_right_password_opens() -> None:
    client, server = pair(policy=basic_policy(), password=PASSWORDS["CS001"])
    client_events, _ = exchange(client, server)
    assert client_events == [Opened(version="2.0.1", identity="CS001")]


def test_a00_fr_207_wrong_or_missing_password_gets_401_with_a_challenge() -> None:
    for password in ("x" * 32, None):
        client, server = pair(policy=basic_policy(), password=password)
        response = handshake_response(client, server)
        assert response.startswith(b"HTTP/1.1 401 ")
        assert b"www-authenticate: basic" in response.lower()
        client.receive_data(response, 0.0)
        [closed] = client.events()
        assert isinstance(closed, Closed) and closed.status == 401


def test_a00_fr_204_username_must_be_the_identity() -> None:
    client, server = pair(policy=basic_policy(), password=None)
    request = client.data_to_send()
    token = base64.b64encode(b"CS999:" + PASSWORDS["CS001"].encode())
    request = request.replace(b"\r\n\r\n", b"\r\nAuthorization: Basic " + token + b"\r\n\r\n")
    server.receive_data(request, 0.0)
    assert server.data_to_send().startswith(b"HTTP/1.1 401 ")


def test_username_compares_case_insensitively_like_the_identity() -> None:
    client, server = pair(
        policy=basic_policy(), password=PASSWORDS["CS001"], url="ws://csms.example/ocpp/cs001"
    )
    password_for = {"cs001": PASSWORDS["CS001"]}.get
    server.policy = ServerPolicy(versions=("2.0.1",), password_for=password_for, options=QUIET)
    client_events, _ = exchange(client, server)
    assert client_events == [Opened(version="2.0.1", identity="cs001")]


def test_1_6_authorization_key_is_accepted_as_raw_bytes_and_as_hex_text() -> None:
    key = PASSWORDS["CS001"]
    for password in (bytes.fromhex(key), key):
        client, server = pair(
            client_versions=("1.6",), policy=basic_policy(("1.6",)), password=password
        )
        client_events, _ = exchange(client, server)
        assert client_events == [Opened(version="1.6", identity="CS001")]


def test_2x_password_is_text_only() -> None:
    raw = bytes.fromhex(PASSWORDS["CS001"])
    client, server = pair(policy=basic_policy(), password=raw)
    assert rejected_status(client, server) == 401


def test_password_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = glue.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(glue.hmac, "compare_digest", spy)
    client, server = pair(client_versions=("1.6",), policy=basic_policy(("1.6",)), password="wrong")
    assert rejected_status(client, server) == 401
    key = PASSWORDS["CS001"]
    assert compared == [(b"wrong", key.encode()), (b"wrong", bytes.fromhex(key))]


def test_parse_basic_refuses_garbage() -> None:
    assert glue.parse_basic(b"Bearer abc") is None
    assert glue.parse_basic(b"Basic !!!") is None
    assert glue.parse_basic(b"Basic " + base64.b64encode(b"no-colon")) is None
    assert glue.parse_basic(glue.basic_authorization("CS1", "pw:x")) == ("CS1", b"pw:x")


# --- messages, size limit, compression ------------------------------------------------------------


def opened_pair(**kwargs: Any) -> tuple[ClientWebSocket, ServerWebSocket]:
    client, server = pair(**kwargs)
    client_events, _ = exchange(client, server)
    assert isinstance(client_events[0], Opened)
    return client, server


def test_text_messages_cross_both_ways() -> None:
    client, server = opened_pair()
    client.send_text('[2,"1","Heartbeat",{}]')
    server.send_text("ü" * 3)
    client_events, server_events = exchange(client, server)
    assert server_events == [TextReceived(text='[2,"1","Heartbeat",{}]')]
    assert client_events == [TextReceived(text="ü" * 3)]


def test_compression_is_offered_and_accepted() -> None:
    client, server = pair()
    response = handshake_response(client, server)
    assert b"permessage-deflate" in response.lower()
    client.receive_data(response, 0.0)
    text = '[2,"1","DataTransfer",{"vendorId":"' + "x" * 5000 + '"}]'
    client.send_text(text)
    wire = client.data_to_send()
    assert len(wire) < 200
    assert [type(e) for e in server.events()] == [Opened]
    server.receive_data(wire, 0.0)
    assert server.events() == [TextReceived(text=text)]


def test_without_context_takeover_no_zlib_state_stays_between_messages() -> None:
    options = WsOptions(ping_interval=0, compression_context_takeover=False)
    client, server = opened_pair(
        policy=ServerPolicy(options=options), client_options=WsOptions(ping_interval=0)
    )
    client.send_text("x" * 1000)
    server.send_text("y" * 1000)
    client_events, server_events = exchange(client, server)
    assert server_events == [TextReceived(text="x" * 1000)]
    assert client_events == [TextReceived(text="y" * 1000)]
    [deflate] = server._conn._proto.extensions
    assert deflate._compressor is None and deflate._decompressor is None


def test_compression_can_be_turned_off() -> None:
    client, server = pair(client_options=WsOptions(ping_interval=0, compression=False))
    assert b"permessage-deflate" not in handshake_response(client, server).lower()


def test_message_of_the_maximum_size_passes_one_more_closes_with_1009() -> None:
    policy = ServerPolicy(options=WsOptions(ping_interval=0, max_message_size=100))
    client, server = opened_pair(policy=policy)
    client.send_text("a" * 100)
    _, server_events = exchange(client, server)
    assert server_events == [TextReceived(text="a" * 100)]
    client.send_text("é" * 50 + "a")  # 101 bytes in UTF-8
    client_events, server_events = exchange(client, server)
    assert server_events == [
        Closed(code=glue.MESSAGE_TOO_BIG, reason="message too big", by_peer=False)
    ]
    assert client_events[0].code == glue.MESSAGE_TOO_BIG and client_events[0].by_peer
    assert client.done and server.done


def test_size_limit_counts_every_fragment_of_a_message() -> None:
    policy = ServerPolicy(options=WsOptions(ping_interval=0, max_message_size=100))
    client, server = opened_pair(policy=policy)
    conn = client._conn
    client._out += conn.send(wse.TextMessage(data="a" * 60, message_finished=False))
    client._out += conn.send(wse.TextMessage(data="b" * 30, message_finished=False))
    client._out += conn.send(wse.TextMessage(data="c" * 10, message_finished=True))
    _, server_events = exchange(client, server)
    assert server_events == [TextReceived(text="a" * 60 + "b" * 30 + "c" * 10)]
    client._out += conn.send(wse.TextMessage(data="a" * 60, message_finished=False))
    client._out += conn.send(wse.TextMessage(data="b" * 41, message_finished=True))
    _, server_events = exchange(client, server)
    assert [e.code for e in server_events] == [glue.MESSAGE_TOO_BIG]


def test_a_deflate_bomb_is_stopped_by_the_size_limit() -> None:
    client, server = opened_pair()  # compression on, the default 1 MiB limit
    client.send_text("a" * (64 << 20))
    wire = client.data_to_send()
    assert len(wire) < 100_000
    server.events()
    server.receive_data(wire, 0.0)
    assert server.done and server._parts == []
    client_events, server_events = exchange(client, server)
    assert [e.code for e in server_events] == [glue.MESSAGE_TOO_BIG]
    assert [e.code for e in client_events] == [glue.MESSAGE_TOO_BIG]


def test_large_reads_give_the_same_messages() -> None:
    client, server = opened_pair()
    texts = [str(n) * 30_000 for n in range(5)]
    for text in texts:
        client.send_text(text)
    server.events()
    server.receive_data(client.data_to_send(), 0.0)
    assert server.events() == [TextReceived(text=text) for text in texts]


def test_binary_message_closes_with_1003() -> None:
    client, server = opened_pair()
    client._out += client._conn.send(wse.BytesMessage(data=b"\x00"))
    _, server_events = exchange(client, server)
    assert [e.code for e in server_events] == [glue.UNSUPPORTED_DATA]


# --- keepalive (WebSocketPingInterval) ------------------------------------------------------------


def test_ping_every_interval_answered_pong_keeps_the_connection() -> None:
    options = WsOptions(ping_interval=10, ping_timeout=5)
    client, server = opened_pair(client_options=options)
    assert client.next_deadline() == 10
    client.handle_timer(10)
    exchange(client, server, now=10)  # the server answers the ping by itself
    assert client.next_deadline() == 20
    client.handle_timer(20)
    exchange(client, server, now=20)
    assert not client.done


def test_no_pong_within_the_timeout_closes_with_1011() -> None:
    options = WsOptions(ping_interval=10, ping_timeout=5)
    client, _ = opened_pair(client_options=options)
    client.handle_timer(10)
    assert client.data_to_send()  # the ping, which never arrives
    assert client.next_deadline() == 15
    client.handle_timer(15)
    [closed] = client.events()
    assert closed == Closed(
        code=glue.INTERNAL_ERROR, reason="no pong within the ping timeout", by_peer=False
    )
    assert client.done and client.next_deadline() is None


def test_ping_interval_0_disables_pings() -> None:
    client, _ = opened_pair(client_options=WsOptions(ping_interval=0))
    assert client.next_deadline() is None


def test_negative_ping_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        WsOptions(ping_interval=-1)


# --- closing --------------------------------------------------------------------------------------


def test_orderly_close_both_sides_see_the_code() -> None:
    client, server = opened_pair()
    client.close(1000, "bye", now=1.0)
    assert not client.done
    client_events, server_events = exchange(client, server, now=1.0)
    assert server_events == [Closed(code=1000, reason="bye", by_peer=True)]
    assert client_events == [Closed(code=1000, reason="bye", by_peer=False)]
    assert client.done and server.done


def test_close_without_answer_ends_after_the_close_timeout() -> None:
    client, _ = opened_pair(client_options=WsOptions(ping_interval=0, close_timeout=3))
    client.close(1001, "", now=1.0)
    assert client.next_deadline() == 4.0
    client.handle_timer(4.0)
    assert client.done


def test_a_client_closed_during_its_handshake_closes_in_order_once_accepted() -> None:
    # A station told to stop while its upgrade request is unanswered does not drop the
    # socket (the CSMS would see 1006): once accepted, it sends its Close at once, with
    # the code it was given, and never reports the connection opened.
    client, server = pair()
    response = handshake_response(client, server)
    client.close(1000, "stopping", now=0.5)
    assert not client.done and client.data_to_send() == b""
    client.receive_data(response, 0.6)
    client_events, server_events = exchange(client, server, now=0.6)
    assert server_events == [
        Opened(version="2.0.1", identity="CS001"),
        Closed(code=1000, reason="stopping", by_peer=True),
    ]
    assert client_events == [Closed(code=1000, reason="stopping", by_peer=False)]
    assert client.version is None and client.done


def test_a_client_closed_during_its_handshake_gives_up_after_the_close_timeout() -> None:
    options = WsOptions(ping_interval=0, close_timeout=2, handshake_timeout=30)
    client, server = pair(client_options=options)
    server.receive_data(client.data_to_send(), 0.0)
    client.close(1000, "", now=1.0)
    assert client.next_deadline() == 3.0
    client.handle_timer(3.0)
    assert client.done and client.version is None


def test_a_client_closed_before_its_request_went_out_ends_at_once() -> None:
    client = ClientWebSocket(
        Endpoint.from_url("ws://csms.example/ocpp/CS001"), versions=("2.0.1",), options=QUIET, now=0
    )
    client.close(1000, "", now=0.0)
    client.start()
    assert client.done and client.data_to_send() == b""


def test_end_of_file_is_an_abnormal_closure() -> None:
    _, server = opened_pair()
    server.receive_data(None, 0.0)
    assert server.events() == [Closed(code=glue.ABNORMAL_CLOSURE, reason="", by_peer=True)]
    assert server.done


def test_handshake_must_finish_within_its_timeout() -> None:
    server = ServerWebSocket(ServerPolicy(options=WsOptions(handshake_timeout=2)), 0.0)
    assert server.next_deadline() == 2
    server.handle_timer(2)
    assert server.done


def test_garbage_instead_of_a_handshake_gets_400() -> None:
    server = ServerWebSocket(ServerPolicy(options=QUIET), 0.0)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
    assert server.done


def test_raw_wsproto_client_can_talk_to_the_server_glue() -> None:
    """The glue speaks plain RFC 6455: a bare wsproto client gets through."""
    server = ServerWebSocket(ServerPolicy(options=QUIET), 0.0)
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    data = client.send(wse.Request(host="x", target="/CS9", subprotocols=["ocpp1.6"]))
    server.receive_data(data, 0.0)
    client.receive_data(server.data_to_send())
    [accepted] = list(client.events())
    assert isinstance(accepted, wse.AcceptConnection) and accepted.subprotocol == "ocpp1.6"


# --- reconnect back-off (OCPPCommCtrlr.RetryBackOff*) ---------------------------------------------


def test_backoff_doubles_up_to_repeat_times_with_a_new_random_part_each_time() -> None:
    backoff = Backoff(minimum=2, random_range=1, repeat_times=3)
    rng = random.Random(7)
    waits = backoff.waits(rng)
    got = [next(waits) for _ in range(6)]
    check = random.Random(7)
    expected = [base + check.uniform(0, 1) for base in (2, 4, 8, 16, 16, 16)]
    assert got == expected
    assert len({round(w - int(w), 9) for w in got}) == 6  # a new random part every time


def test_backoff_starts_over_from_the_minimum() -> None:
    backoff = Backoff(minimum=5, random_range=0, repeat_times=2)
    first = backoff.waits(random.Random(1))
    assert [next(first) for _ in range(4)] == [5, 10, 20, 20]
    assert next(backoff.waits(random.Random(1))) == 5
