"""The WebSocket layer every adapter shares, itself sans-IO: wsproto plus what OCPP-J adds.

Bytes and the time go in; text messages, a handful of events and bytes to write come out.
It does the handshakes (subprotocol negotiation, station identity, HTTP Basic), limits the
message size, keeps the connection alive with pings, and closes in order. It never touches
a socket and never reads a clock, so the trio, asyncio and thread adapters only move bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import hmac
import re
import unicodedata
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import attrs
import wsproto
import wsproto.events as ws
from wsproto.connection import Connection, ConnectionState
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from ocpp_sansio.frames import VERSIONS

from ._upgrade import (
    HandshakeRefused,
    UpgradeRequest,
    accept_response,
    head_length,
    parse_upgrade_request,
    reject_response,
)

#: The WebSocket subprotocol of each OCPP version (OCPP-J, Part 4: connection and subprotocol).
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
VERSION_OF = {name: version for version, name in SUBPROTOCOLS.items()}
#: Newest first: the order a party prefers when it supports several.
DEFAULT_VERSIONS = ("2.1", "2.0.1", "1.6")

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
ABNORMAL_CLOSURE = 1006
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011

#: identifierString (2.x part 2, primitive datatypes) without ':' (part 4 §3.1.1).
_IDENTIFIER = re.compile(r"[A-Za-z0-9*\-_=+|@.]+")
MAX_IDENTITY_LENGTH_2X = 48


def _positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _not_negative(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def check_versions(versions: Sequence[str]) -> tuple[str, ...]:
    """``versions`` as a tuple, refusing unknown versions, duplicates and an empty list."""
    versions = tuple(versions)
    unknown = [v for v in versions if v not in VERSIONS]
    if unknown or not versions or len(set(versions)) != len(versions):
        raise ValueError(f"versions must be distinct values out of {VERSIONS}, got {versions!r}")
    return versions


@attrs.frozen(kw_only=True)
class WsOptions:
    """WebSocket knobs for either side. Times are seconds."""

    #: The largest text message accepted (UTF-8 bytes, inflated); past it the connection
    #: closes with 1009 at once. Compressed data is inflated only this far.
    max_message_size: int = attrs.field(default=1 << 20, validator=_positive_int)
    #: The most frames one message may come in; past it the connection closes with 1009 at
    #: once (empty continuation frames count too).
    max_frames_per_message: int = attrs.field(default=1024, validator=_positive_int)
    #: Send a ping this often (2.x OCPPCommCtrlr.WebSocketPingInterval); 0 disables.
    ping_interval: float = attrs.field(default=60.0, validator=_not_negative)
    #: Close the connection when a ping is not answered within this time.
    ping_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: Offer (client) or accept (server) RFC 7692 permessage-deflate.
    compression: bool = True
    #: Keep the deflate state between messages (better ratio). False asks both sides to
    #: start each message afresh, so no zlib state (about 300 KiB per connection) stays
    #: allocated between messages: for servers holding many connections.
    compression_context_takeover: bool = True
    #: How long the opening handshake may take, counted from the connection's start (the
    #: server: from accept). Past it the server answers 408 to a partial request head and
    #: closes; a connection that sent nothing is closed.
    handshake_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Close with 1001 when nothing at all (not even a pong) arrived for this long after
    #: the handshake; 0 turns it off. With pings on, a silent peer is closed by
    #: ``ping_timeout`` anyway: this bounds silence when pings are off.
    idle_timeout: float = attrs.field(default=0.0, validator=_not_negative)
    #: How long to wait for the peer's answer to our close frame.
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Back-pressure: while more than this many bytes wait to be sent to the peer (it
    #: reads slower than we write, or not at all), nothing more is read from it; reading
    #: resumes once a quarter of it is left. What the peer sends meanwhile stays in the
    #: kernel's buffers, so a peer that does not read cannot make us buffer its answers.
    write_high_water: int = attrs.field(default=64 * 1024, validator=_positive_int)
    #: Past this many bytes waiting to be sent the connection ends at once, with close
    #: code 1008 and without a closing handshake (what is unsent is dropped). With
    #: reading stopped at ``write_high_water`` only our own sends can get here.
    max_write_buffer: int = attrs.field(default=4 * 1024 * 1024, validator=_positive_int)

    @max_write_buffer.validator
    def _above_high_water(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < self.write_high_water:
            raise ValueError(
                f"max_write_buffer ({value}) must be at least write_high_water "
                f"({self.write_high_water})"
            )


def plain_text_frame(text: str) -> bytes:
    """One unfragmented, unmasked text frame (a server's, without extensions)."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


def _unmasked(payload: bytearray, mask: bytearray) -> bytes:
    """A client frame's payload XOR its 4-byte masking key (RFC 6455 §5.3)."""
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


class _BoundedDeflate(PerMessageDeflate):
    """RFC 7692 permessage-deflate that inflates at most ``limit + 1`` bytes of a message
    (enough for the layer to see it is too big: zlib's ``max_length`` bounds the work, not
    only the result) and nothing once ``stop()`` was called, while we close: what still
    arrives then is parsed and dropped, never inflated."""

    def __init__(self, limit: int, *, fresh: bool) -> None:
        super().__init__(client_no_context_takeover=fresh, server_no_context_takeover=fresh)
        self._limit = limit
        self._inflated = 0
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        if self._stopped:
            return b""
        assert self._decompressor is not None
        try:
            out = self._decompressor.decompress(data, self._limit + 1 - self._inflated)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self._limit:
            self._stopped = True  # the layer sees the message is too big and closes
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (fin and self._inbound_is_compressible and self._inbound_compressed):
            return super().frame_inbound_complete(proto, fin)
        # The end of a compressed message: the 4 bytes RFC 7692 §7.2.2 leaves off.
        out = self._inflate(b"\x00\x00\xff\xff")
        self._inflated = 0
        self._inbound_compressed = None
        fresh = self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        if fresh:
            self._decompressor = None
        return out


def _deflate(options: WsOptions) -> _BoundedDeflate | None:
    if not options.compression:
        return None
    fresh = not options.compression_context_takeover
    return _BoundedDeflate(options.max_message_size, fresh=fresh)


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"
    DONE = "done"


# --- events ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Opened:
    """The handshake succeeded; ``version`` is the negotiated OCPP version."""

    version: str
    identity: str


@attrs.frozen(kw_only=True)
class TextReceived:
    text: str


@attrs.frozen(kw_only=True)
class Closed:
    """The WebSocket is over: write what is left, then close the socket.

    ``code`` is the close code that ended it (ours or the peer's; 1006 when the transport
    broke without a close frame); ``status`` the HTTP status when the handshake was refused.
    """

    code: int
    reason: str
    by_peer: bool
    status: int | None = None


WsEvent = Opened | TextReceived | Closed


# --- identity and credentials ------------------------------------------------------------------


def identity_from_target(target: str) -> str:
    """The station identity: the request target's last path segment, percent-decoded
    (OCPP-J, Part 4: the station identity in the URL)."""
    path = urlsplit(target).path
    return unquote(path.rsplit("/", 1)[-1], errors="strict")


def identity_key(identity: str) -> str:
    """The one form station identities are compared in: identities are case-insensitive
    (identifierString), so two spellings with one key are one station. NFKC, full case
    folding, NFKC again: ``CS001``/``cs001``, ``STRAßE``/``STRASSE``, the Kelvin sign and K,
    full-width and plain letters all meet. CSMS sessions are kept by it, a Basic username
    and a certificate's common name are compared with the identity by it."""
    if identity.isascii():
        return identity.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", identity).casefold())


def identity_problem(identity: str, version: str) -> str | None:
    """Why ``identity`` is not a valid station identity under ``version``, or None.

    2.x: identifierString without ':' and at most 48 characters (part 4 §3.1.1). 1.6 sets
    neither a length nor a character set; we still refuse ':' (it breaks HTTP Basic),
    '/', controls and the empty string.
    """
    if not identity:
        return "the URL has no station identity"
    if ":" in identity:
        return "a station identity may not contain ':'"
    if version == "1.6":
        if any(c == "/" or not c.isprintable() for c in identity):
            return "a station identity may not contain '/' or control characters"
        return None
    if len(identity) > MAX_IDENTITY_LENGTH_2X:
        return f"a station identity has at most {MAX_IDENTITY_LENGTH_2X} characters"
    if not _IDENTIFIER.fullmatch(identity):
        return "a station identity is an identifierString (a-z A-Z 0-9 * - _ = + | @ .)"
    return None


def basic_authorization(username: str, password: str | bytes) -> bytes:
    """The value of an HTTP Basic ``Authorization`` header. A bytes password is sent as
    is (1.6 AuthorizationKey as raw bytes); text is encoded as UTF-8."""
    secret = password if isinstance(password, bytes) else password.encode("utf-8")
    return b"Basic " + base64.b64encode(username.encode("utf-8") + b":" + secret)


def parse_basic(header: bytes) -> tuple[str, bytes] | None:
    """(username, password bytes) from a Basic ``Authorization`` header value, or None."""
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
        user, sep, password = decoded.partition(b":")
        return (user.decode("utf-8"), password) if sep else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def password_matches(given: bytes, expected: str | bytes, version: str) -> bool:
    """Constant-time check of a Basic password (A00.FR.204, A00.FR.207).

    1.6: ``expected`` is the AuthorizationKey as hex text; peers send either that text or
    the raw bytes it encodes, so both are accepted.
    """
    secret = expected if isinstance(expected, bytes) else expected.encode("utf-8")
    candidates = [secret]
    if version == "1.6" and isinstance(expected, str):
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(expected))
    # Compare against every candidate, so timing says nothing about which one matched.
    results = [hmac.compare_digest(given, candidate) for candidate in candidates]
    return any(results)


class PasswordTable:
    """Basic passwords by station identity, for ``ServerPolicy.password_for`` (``serve``'s
    ``auth``; a plain mapping given there becomes one): one spelling per identity.

    Two identities with one ``identity_key`` are one station, so a table holding both is
    refused when made (ValueError); and a password opens only the spelling it is
    registered under: registered for ``CS001``, it opens no connection as ``cs001``, which
    would otherwise reach ``CS001``'s session (sessions are kept by identity key).
    """

    def __init__(self, passwords: Mapping[str, str | bytes]) -> None:
        self._by_key: dict[str, tuple[str, str | bytes]] = {}
        for identity, password in passwords.items():
            key = identity_key(identity)
            if key in self._by_key:
                other = self._by_key[key][0]
                raise ValueError(
                    f"{other!r} and {identity!r} are one station identity "
                    "(identities are case-insensitive): give it one password"
                )
            self._by_key[key] = (identity, password)

    def __call__(self, identity: str) -> str | bytes | None:
        registered, password = self._by_key.get(identity_key(identity), ("", None))
        return password if registered == identity else None


#: ``password_for(identity)``: the station's Basic password, or None.
PasswordLookup = Callable[[str], str | bytes | None]


def _password_lookup(
    passwords: Mapping[str, str | bytes] | PasswordLookup | None,
) -> PasswordLookup | None:
    return PasswordTable(passwords) if isinstance(passwords, Mapping) else passwords


#: A client certificate in the form ``ssl.SSLSocket.getpeercert()`` gives it.
Certificate = Mapping[str, Any]
#: ``certificate_check(identity, certificate)``: may this certificate speak for identity?
CertificateCheck = Callable[[str, Certificate], bool]
#: ``speaks_for(spelling)``: would this connection's credentials (its Basic password, its
#: client certificate) open ``spelling`` too? ``anyone`` where none were checked.
SpeaksFor = Callable[[str], bool]


def anyone(spelling: str) -> bool:
    """The ``speaks_for`` of a connection that presented no credentials the CSMS checks
    (no ``password_for``, no client certificate judged): it may be anyone, as anyone."""
    return True


#: ``session_check(identity, version, speaks_for)``: the CSMS's sessions' say on a
#: connection the handshake has authenticated (a refusal, or None to accept it).
SessionCheck = Callable[[str, str, SpeaksFor], HandshakeRefused | None]


def _subject_values(certificate: Certificate, name: str) -> list[str]:
    return [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == name]


def certificate_common_name(certificate: Certificate) -> str | None:
    """The CN of a certificate's subject, or None when it has none or more than one. For a
    station certificate this is the station's serial number (A00.FR.511), which B01.FR.11
    has the CSMS compare with the BootNotification's."""
    names = _subject_values(certificate, "commonName")
    return names[0] if len(names) == 1 else None


def certificate_names_identity(identity: str, certificate: Certificate) -> bool:
    """The default ``certificate_check`` (security profile 3): the certificate's CN, the
    station's serial number (A00.FR.405, A00.FR.511), is the identity it connects as
    (compared by ``identity_key``). Where identities are not serial numbers, use
    ``station_certificate_check(serial_number_of=...)``."""
    common_name = certificate_common_name(certificate)
    return common_name is not None and identity_key(common_name) == identity_key(identity)


def station_certificate_check(
    *,
    serial_number_of: Callable[[str], str | None] | None = None,
    organization: str | None = None,
) -> CertificateCheck:
    """A ``certificate_check`` for a CSMS whose identities are not (only) the serial
    numbers in the certificates' CN (A00.FR.405): the CN must be exactly
    ``serial_number_of(identity)`` (None: no station of that identity), or, without it,
    the identity as in ``certificate_names_identity``. With ``organization``, A00.FR.404
    too: an O of the subject must be that CSO name.
    """

    def check(identity: str, certificate: Certificate) -> bool:
        common_name = certificate_common_name(certificate)
        if common_name is None:
            return False
        if organization is not None and organization not in _subject_values(
            certificate, "organizationName"
        ):
            return False
        if serial_number_of is None:
            return certificate_names_identity(identity, certificate)
        serial_number = serial_number_of(identity)
        return serial_number is not None and common_name == serial_number

    return check


@attrs.frozen(kw_only=True)
class ServerPolicy:
    """What the CSMS accepts during the handshake.

    ``known_identity(identity)`` returns False for a station we do not know (HTTP 404).
    ``password_for(identity)`` turns on HTTP Basic (security profiles 1 and 2): it returns
    the station's password (1.6: the AuthorizationKey as hex text), or None when it has
    none (HTTP 401); a mapping becomes a ``PasswordTable``. Sessions are kept by
    ``identity_key``: where a lookup of your own answers two spellings of one identity
    with different passwords, the server's ``session_check`` lets only the spelling whose
    session it is (or a password that opens it too) reach it.
    ``certificate_check(identity, certificate)`` judges the TLS client certificate, when
    the connection has one (security profile 3): False refuses with HTTP 403 before any
    session is touched; by default ``certificate_names_identity`` (A00.FR.405), None
    turns it off. All three are called with the percent-decoded identity as sent, and must
    be quick: they run during the handshake. ``session_check`` (the server's) then judges
    the authenticated connection against the session it would reach.
    """

    versions: tuple[str, ...] = attrs.field(default=DEFAULT_VERSIONS, converter=check_versions)
    known_identity: Callable[[str], bool] | None = None
    password_for: PasswordLookup | None = attrs.field(default=None, converter=_password_lookup)
    certificate_check: CertificateCheck | None = certificate_names_identity
    session_check: SessionCheck | None = None
    options: WsOptions = WsOptions()


# --- the connection --------------------------------------------------------------------------


class _WebSocket:
    """What both sides share once the handshake is done."""

    #: wsproto: the client's handshake wrapper until the handshake is done, then (both
    #: sides) only its frame connection, so no HTTP machinery stays in memory. A server
    #: without extensions reads and writes complete text frames itself and makes it only
    #: when another frame comes or goes (``_conn``): about 2 KiB less per idle connection.
    _wsproto: wsproto.WSConnection | Connection | None = None
    #: Where whole text messages read on the fast path go instead of ``events()`` (the
    #: driver of the connection, while it is the current one): in order, as they are read.
    on_text: Callable[[str], None] | None = None
    #: (The CSMS side) once the handshake is accepted and until the server has placed the
    #: connection in a session: whether its credentials open another spelling of its
    #: identity.
    speaks_for: SpeaksFor | None = None

    @property
    def _conn(self) -> wsproto.WSConnection | Connection:
        conn = self._wsproto
        if conn is None:  # (a server's: the client's is made with the socket)
            conn = self._wsproto = Connection(wsproto.ConnectionType.SERVER)
        return conn

    @_conn.setter
    def _conn(self, conn: wsproto.WSConnection | Connection) -> None:
        self._wsproto = conn

    def __init__(self, options: WsOptions) -> None:
        self.options = options
        self.phase = Phase.HANDSHAKE
        self.version: str | None = None
        self.identity = ""
        self._out = bytearray()
        self._events: list[WsEvent] = []
        self._parts: list[str] = []
        self._size = 0
        #: Frames of the current message before its last one.
        self._frames = 0
        #: Our permessage-deflate, once offered (client) or accepted (server).
        self._inflater: _BoundedDeflate | None = None
        self._discarding = False
        self._next_ping: float | None = None
        self._pong_due: float | None = None
        self._close_due: float | None = None
        self._handshake_due: float | None = None
        #: When the peer last sent anything (for ``idle_timeout``).
        self._heard = 0.0
        self._ping_count = 0
        #: Server without extensions: a text message is one unmasked frame we build
        #: ourselves (RFC 6455 §5.2), 20 times cheaper than through wsproto.
        self._plain_frames = False
        #: The code and reason of the close we started, reported when it completes.
        self._closing = (NORMAL_CLOSURE, "")

    # --- the adapter's side ---------------------------------------------------------------------

    @property
    def identity_key(self) -> str:
        """``identity_key(self.identity)``: what this station is known by."""
        return identity_key(self.identity)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def events(self) -> list[WsEvent]:
        if not self._events:
            return []
        # A copy, and the list kept (a list swapped in per message would outlive it).
        out = self._events.copy()
        self._events.clear()
        return out

    @property
    def done(self) -> bool:
        """True once the socket should be closed (after writing ``data_to_send()``)."""
        return self.phase is Phase.DONE

    def send_text(self, text: str) -> None:
        """Queue one text message; dropped silently once closing (the peer is leaving)."""
        if self.phase is Phase.OPEN:
            if self._plain_frames:
                self._out += plain_text_frame(text)
            else:
                self._out += self._conn.send(ws.TextMessage(data=text))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "", now: float = 0.0) -> None:
        """Start an orderly close; ``done`` turns True when the peer answered or after
        ``close_timeout``."""
        if self.phase is Phase.OPEN:
            self._send_close(code, reason, now + self.options.close_timeout)
        elif self.phase is Phase.HANDSHAKE:
            self._finish(code, reason, by_peer=False)

    def _send_close(self, code: int, reason: str, due: float) -> None:
        """Send our Close frame and wait for the peer's, until ``due``."""
        self._out += self._conn.send(ws.CloseConnection(code=code, reason=reason))
        self.phase = Phase.CLOSING
        if self._inflater is not None:
            self._inflater.stop()
        self._close_due = due
        self._next_ping = self._pong_due = None
        self._closing = (code, reason)

    def abort(self, code: int = ABNORMAL_CLOSURE, reason: str = "") -> None:
        """The transport is gone or must go now: no more frames either way (what was
        still to be sent is dropped)."""
        if self.phase is not Phase.DONE:
            self._out.clear()
            self._finish(code, reason, by_peer=False)

    def receive_data(self, data: bytes | None, now: float) -> None:
        """Bytes from the socket; None at end of file."""
        self._receive(data, now)

    def _receive(self, data: bytes | None, now: float) -> None:
        if self.done:
            return
        self._heard = now
        try:
            self._conn.receive_data(data)
            for event in self._conn.events():
                self._on_event(event, now)
                if self.done:
                    break
        except WsRemoteError as error:
            self._finish(PROTOCOL_ERROR, str(error), by_peer=True)
        except (WsLocalError, UnicodeError, ValueError) as error:
            self._finish(PROTOCOL_ERROR, f"broken handshake: {error}", by_peer=True)
        if data is None and not self.done:
            self._finish(ABNORMAL_CLOSURE, "the connection was cut", by_peer=True)

    def next_deadline(self) -> float | None:
        due = [
            d
            for d in (self._handshake_due, self._next_ping, self._pong_due, self._close_due)
            if d is not None
        ]
        if self.options.idle_timeout and self.phase is Phase.OPEN:
            due.append(self._heard + self.options.idle_timeout)
        return min(due) if due else None

    def handle_timer(self, now: float) -> None:
        if self._handshake_due is not None and now >= self._handshake_due:
            self._handshake_expired()
            return
        idle = self.options.idle_timeout
        if idle and self.phase is Phase.OPEN and now >= self._heard + idle:
            self._fail(GOING_AWAY, f"nothing received for {idle:g} s")
            return
        if self._close_due is not None and now >= self._close_due:
            code, reason = self._closing
            self._finish(code, reason, by_peer=False)
            return
        if self._pong_due is not None and now >= self._pong_due:
            # The peer is unresponsive: waiting for its close answer would be pointless.
            self._fail(INTERNAL_ERROR, "no pong within the ping timeout")
            return
        if self._next_ping is not None and now >= self._next_ping:
            self._next_ping = now + self.options.ping_interval
            if self._pong_due is None:
                self._ping_count += 1
                self._out += self._conn.send(ws.Ping(payload=b"%d" % self._ping_count))
                self._pong_due = now + self.options.ping_timeout

    # --- inside -----------------------------------------------------------------------------

    def _handshake_expired(self) -> None:
        self._finish(ABNORMAL_CLOSURE, "the handshake took too long", by_peer=False)

    def _opened(self, now: float) -> None:
        conn = self._wsproto
        if isinstance(conn, wsproto.WSConnection) and conn.connection is not None:
            self._conn = conn.connection
        self.phase = Phase.OPEN
        self._handshake_due = None
        self._heard = now
        if self.options.ping_interval > 0:
            self._next_ping = now + self.options.ping_interval

    def _fail(self, code: int, reason: str) -> None:
        """Send a close frame and be done at once (RFC 6455 §7.1.7): no time for a peer that
        floods us or does not answer to go on costing us while we wait for its close."""
        self._out += self._conn.send(ws.CloseConnection(code=code, reason=reason))
        self._finish(code, reason, by_peer=False)

    def _finish(self, code: int, reason: str, *, by_peer: bool, status: int | None = None) -> None:
        self.phase = Phase.DONE
        self._next_ping = self._pong_due = self._close_due = self._handshake_due = None
        self._parts.clear()
        self._events.append(Closed(code=code, reason=reason, by_peer=by_peer, status=status))

    def _on_event(self, event: ws.Event, now: float) -> None:
        if isinstance(event, ws.TextMessage):
            self._on_text(event.data, event.message_finished, event.frame_finished)
        elif isinstance(event, ws.Ping):
            self._out += self._conn.send(event.response())
        elif isinstance(event, ws.Pong):
            self._pong_due = None
        elif isinstance(event, ws.CloseConnection):
            self._on_close(event)
        elif isinstance(event, ws.BytesMessage):
            if not self._discarding:
                self._discarding = True
                self.close(UNSUPPORTED_DATA, "OCPP-J uses text messages only", now)
        else:
            self._on_handshake_event(event, now)

    def _on_text(self, data: str, finished: bool, frame_finished: bool = True) -> None:
        """A message, or a piece of one: a whole frame or the part of it that arrived."""
        message = self._message(data, finished, frame_finished)
        if message is not None:
            self._events.append(TextReceived(text=message))

    def _message(self, data: str, finished: bool, frame_finished: bool = True) -> str | None:
        """The whole message once ``data`` completes one, within the limits."""
        if self.phase is not Phase.OPEN:
            return None
        self._size += len(data) if data.isascii() else len(data.encode("utf-8"))
        if self._size > self.options.max_message_size:
            self._fail(MESSAGE_TOO_BIG, "message too big")
            return None
        if not finished:
            if frame_finished:
                self._frames += 1
                if self._frames >= self.options.max_frames_per_message:
                    limit = self.options.max_frames_per_message
                    self._fail(MESSAGE_TOO_BIG, f"a message in more than {limit} frames")
                    return None
            if data:
                self._parts.append(data)
            return None
        if self._parts:
            self._parts.append(data)
            data = "".join(self._parts)
            self._parts.clear()
        self._size = self._frames = 0
        return data

    def _on_close(self, event: ws.CloseConnection) -> None:
        state = self._conn.state
        if state is ConnectionState.REMOTE_CLOSING:
            self._out += self._conn.send(event.response())
            self._finish(int(event.code), event.reason or "", by_peer=True)
        elif state is ConnectionState.OPEN:
            # wsproto could not parse the peer's frames: tell it why and stop.
            self._out += self._conn.send(ws.CloseConnection(code=event.code, reason=event.reason))
            self._finish(int(event.code), event.reason or "", by_peer=False)
        elif self.phase is Phase.CLOSING:
            code, reason = self._closing
            self._finish(code, reason, by_peer=False)
        else:
            self._finish(int(event.code), event.reason or "", by_peer=True)

    def _on_handshake_event(self, event: ws.Event, now: float) -> None:
        raise NotImplementedError


class ServerWebSocket(_WebSocket):
    """The CSMS side of one connection: judges the upgrade request by ``policy``.

    The request is read by ``_upgrade`` rather than wsproto's h11 handshake (see there why);
    once accepted, wsproto's frame layer takes over.
    """

    def __init__(
        self,
        policy: ServerPolicy,
        now: float,
        *,
        peer_certificate: Callable[[], Certificate | None] | None = None,
        refusal: HandshakeRefused | None = None,
    ) -> None:
        """``now``: when the connection was accepted (the handshake deadline runs from
        it). ``peer_certificate()``: the TLS client certificate, asked for once the request
        head is complete (over TLS the TLS handshake is over by then). ``refusal``: the
        answer to whatever the request is (a server at its connection limit: 503), given
        once the head is read, so the peer reads it rather than a reset."""
        super().__init__(policy.options)
        self.policy = policy
        self._peer_certificate = peer_certificate
        self._refusal = refusal
        self._head = bytearray()
        self._handshake_due = now + policy.options.handshake_timeout
        #: Without extensions, complete masked text frames are read here (``_read_plain``)
        #: and only the other frames reach wsproto, one whole frame at a time.
        self._plain_receive = False
        self._unread = bytearray()
        #: wsproto is in the middle of a fragmented message (no text frame may bypass it).
        self._fragmented = False

    def _receive(self, data: bytes | None, now: float) -> None:
        if self.phase is not Phase.HANDSHAKE:
            if self._plain_receive and data is not None:
                self._heard = now
                self._read_plain(data, now)
            else:
                super()._receive(data, now)
            return
        if data is None:
            self._finish(ABNORMAL_CLOSURE, "the connection was cut", by_peer=True)
            return
        searched = len(self._head)
        self._head += data
        try:
            length = head_length(self._head, searched)
            if length is None:
                return
            if self._refusal is not None:
                raise self._refusal
            request = parse_upgrade_request(bytes(self._head[:length]))
        except HandshakeRefused as refused:
            self._reject(refused)
            return
        rest = bytes(self._head[length:])
        self._head = bytearray()
        self._on_request(request, now)
        if rest and not self.done:
            self.receive_data(rest, now)

    def _read_plain(self, data: bytes, now: float) -> None:
        """RFC 6455 §5.2 for the common case, giving exactly what wsproto would: a
        complete, unfragmented, masked text frame becomes a message here; any other
        frame goes to wsproto whole (it keeps the rules for those); a frame longer than
        the message limit or with a non-minimal length hands the stream to wsproto."""
        buffer = self._unread
        buffer += data
        size = len(buffer)
        at = 0
        while size - at >= 2 and not self.done:
            first, second = buffer[at], buffer[at + 1]
            length = second & 0x7F
            start = at + 2
            minimal = True
            if length >= 126:
                width = 2 if length == 126 else 8
                if size - start < width:
                    break
                length = int.from_bytes(buffer[start : start + width], "big")
                start += width
                minimal = length >= (126 if width == 2 else 1 << 16)
            if not minimal or length > self.options.max_message_size:
                self._plain_receive = False
                rest = bytes(buffer[at:])
                buffer.clear()
                super()._receive(rest, now)
                return
            masked = second & 0x80
            end = start + 4 + length if masked else start + length
            if end > size:
                break
            if first == 0x81 and masked and not self._fragmented:
                try:
                    text = _unmasked(buffer[start + 4 : end], buffer[start : start + 4]).decode()
                except UnicodeDecodeError:
                    super()._receive(bytes(buffer[at:end]), now)  # wsproto closes with 1007
                else:
                    message = self._message(text, True)
                    if message is not None:
                        sink = self.on_text
                        if sink is None:
                            self._events.append(TextReceived(text=message))
                        else:
                            sink(message)  # (the driver's: no event object per message)
            else:
                opcode = first & 0x0F
                if opcode in (1, 2) or (opcode == 0 and first & 0x80):
                    self._fragmented = not first & 0x80
                super()._receive(bytes(buffer[at:end]), now)
            at = end
        del buffer[:at]

    def _handshake_expired(self) -> None:
        if self._head:
            self._reject(HandshakeRefused(408, "the request head took too long"))
        else:
            super()._handshake_expired()

    def _finish(self, code: int, reason: str, *, by_peer: bool, status: int | None = None) -> None:
        super()._finish(code, reason, by_peer=by_peer, status=status)
        # Nothing more is read: keep no bytes, and let ``_receive`` drop what comes.
        self._plain_receive = False
        self._unread.clear()

    def _on_request(self, request: UpgradeRequest, now: float) -> None:
        version = next(
            (v for v in self.policy.versions if SUBPROTOCOLS[v] in request.subprotocols), None
        )
        if version is None:
            # OCPP-J, Part 4: complete the handshake without the header, then close at once.
            self._accept(request, None, now)
            offered = ", ".join(request.subprotocols) or "none"
            reason = f"no common OCPP subprotocol (offered: {offered})"
            self._out += self._conn.send(ws.CloseConnection(code=PROTOCOL_ERROR, reason=reason))
            self._finish(PROTOCOL_ERROR, reason, by_peer=False)
            return
        try:
            identity = identity_from_target(request.target)
        except UnicodeDecodeError:
            self._reject(HandshakeRefused(400, "the station identity is not valid UTF-8"))
            return
        problem = identity_problem(identity, version)
        known = self.policy.known_identity
        if problem is not None or (known is not None and not known(identity)):
            self._reject(HandshakeRefused(404, problem or f"unknown station {identity!r}"))
            return
        check = self.policy.certificate_check
        certificate = self._peer_certificate() if self._peer_certificate is not None else None
        if check is not None and certificate and not check(identity, certificate):
            reason = f"the client certificate is not station {identity!r}'s (A00.FR.405)"
            self._reject(HandshakeRefused(403, reason))
            return
        password = self._password(request, identity)
        password_for = self.policy.password_for

        def checked(spelling: str) -> bool:
            if spelling != identity and check and certificate and not check(spelling, certificate):
                return False
            if password_for is None:
                return True
            expected = password_for(spelling)
            return (
                password is not None
                and expected is not None
                and password_matches(password, expected, version)
            )

        speaks_for = checked if password_for or (check and certificate) else anyone
        if password_for is not None and not speaks_for(identity):
            challenge = (b"WWW-Authenticate", b'Basic realm="OCPP", charset="UTF-8"')
            self._reject(
                HandshakeRefused(401, "HTTP Basic credentials missing or wrong", (challenge,))
            )
            return
        session_check = self.policy.session_check
        refused = session_check(identity, version, speaks_for) if session_check else None
        if refused is not None:
            self._reject(refused)
            return
        self.speaks_for = speaks_for
        self.version = version
        self.identity = identity
        self._accept(request, SUBPROTOCOLS[version], now)
        self._events.append(Opened(version=version, identity=identity))

    def _accept(self, request: UpgradeRequest, subprotocol: str | None, now: float) -> None:
        offered = _deflate(self.policy.options)
        agreed = server_extensions_handshake(request.extensions, [offered]) if offered else None
        if offered is not None and offered.enabled():
            self._inflater = offered
            self._conn = Connection(wsproto.ConnectionType.SERVER, [offered])
        self._plain_frames = self._plain_receive = self._inflater is None
        self._out += accept_response(request.key, subprotocol, agreed)
        self._opened(now)

    def _password(self, request: UpgradeRequest, identity: str) -> bytes | None:
        """The Basic password sent, when its username is the identity (A00.FR.204:
        compared as identities are)."""
        header = request.authorization
        credentials = parse_basic(header) if header is not None else None
        if credentials is None:
            return None
        username, password = credentials
        return password if identity_key(username) == identity_key(identity) else None

    def _reject(self, refused: HandshakeRefused) -> None:
        self._out += reject_response(refused.status, refused.reason, refused.headers)
        self._finish(PROTOCOL_ERROR, refused.reason, by_peer=False, status=refused.status)


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where a station connects: parsed from ``ws://host:port/path/IDENTITY``."""

    secure: bool
    host: str
    port: int
    target: str
    identity: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        secure = parts.scheme == "wss"
        target = quote(parts.path or "/", safe="/%") + (f"?{parts.query}" if parts.query else "")
        return cls(
            secure=secure,
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            target=target,
            identity=identity_from_target(parts.path),
        )

    @property
    def host_header(self) -> str:
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class ClientWebSocket(_WebSocket):
    """The station side of one connection. ``start()`` gives the upgrade request."""

    #: The upgrade request is queued.
    _started = False
    #: A close (``_closing``) was asked for while the upgrade request was unanswered: it
    #: is sent once accepted.
    _close_on_accept = False

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        versions: Sequence[str],
        options: WsOptions,
        password: str | bytes | None = None,
        now: float,
    ) -> None:
        super().__init__(options)
        self._conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.endpoint = endpoint
        self.versions = check_versions(versions)
        self.identity = endpoint.identity
        self._password = password
        self._handshake_due = now + options.handshake_timeout

    def start(self) -> None:
        """Queue the upgrade request, offering our versions in order of preference (none
        once closed)."""
        if self.phase is not Phase.HANDSHAKE:
            return
        self._started = True
        headers = []
        if self._password is not None:
            headers.append((b"Authorization", basic_authorization(self.identity, self._password)))
        self._inflater = _deflate(self.options)
        self._out += self._conn.send(
            ws.Request(
                host=self.endpoint.host_header,
                target=self.endpoint.target,
                subprotocols=[SUBPROTOCOLS[v] for v in self.versions],
                extensions=[self._inflater] if self._inflater is not None else [],
                extra_headers=headers,
            )
        )

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "", now: float = 0.0) -> None:
        """Start an orderly close. While the upgrade request is unanswered, the close waits
        for the answer (within close_timeout) and follows it at once, so that the CSMS sees
        an orderly close, not a dropped socket (1006)."""
        if self.phase is not Phase.HANDSHAKE or not self._started:
            super().close(code, reason, now)
        elif not self._close_on_accept:
            self._close_on_accept = True
            self._closing = (code, reason)
            self._close_due = now + self.options.close_timeout

    def _on_handshake_event(self, event: ws.Event, now: float) -> None:
        if isinstance(event, ws.AcceptConnection):
            self._opened(now)
            if event.subprotocol is None:
                reason = "the CSMS accepted none of our OCPP subprotocols"
                self._out += self._conn.send(ws.CloseConnection(code=PROTOCOL_ERROR, reason=reason))
                self._finish(PROTOCOL_ERROR, reason, by_peer=True)
                return
            if self._close_on_accept:
                assert self._close_due is not None
                self._send_close(*self._closing, self._close_due)
                return
            self.version = VERSION_OF[event.subprotocol]
            self._events.append(Opened(version=self.version, identity=self.identity))
        elif isinstance(event, ws.RejectConnection):
            self._finish(
                PROTOCOL_ERROR,
                f"the CSMS refused the handshake with HTTP {event.status_code}",
                by_peer=True,
                status=event.status_code,
            )
