"""The server's half of the WebSocket opening handshake (RFC 6455 §4.2), read directly.

A CSMS accepts thousands of these in a boot storm, and going through h11 cost about 70 %
of a boot's CPU. The upgrade request is small and its grammar narrow, so it is parsed
here, as strictly as RFC 9112 and RFC 6455 ask, and the open connection is handed to
wsproto's frame layer. Pure: bytes in, a parsed request or a refusal out.

The head is read before anyone is authenticated, so its cost must not depend on what a
peer puts in it beyond its length: every step below is a bounded number of passes of
``bytes`` methods (find, split, partition, translate, strip, lower) over the head, each
linear in its length, with no regular expression (a backtracking one was quadratic on a
header value holding a long run of spaces). The head, the number of its lines and each
line are also bounded (``MAX_HEAD``, ``MAX_FIELDS``, ``MAX_LINE``). tests/test_adapters_upgrade.py
checks the growth against sizes and checks every refusal of h11 against ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from http import HTTPStatus

import attrs

#: The longest request head accepted, complete or not (h11's default limit for an
#: incomplete head); past it: 431.
MAX_HEAD = 16 * 1024
#: The longest request line (414 past it) or header line (431 past it).
MAX_LINE = 8 * 1024
#: The most header lines a request may have (Apache's default too); past it: 431.
MAX_FIELDS = 100
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: RFC 9110 §5.6.2 tchar.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: RFC 9110 §5.5: what a field value may hold (SP, HTAB, VCHAR, obs-text).
_VALUE_CHARS = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
#: RFC 9112 §3.2 request-target: visible ASCII.
_VCHARS = bytes(range(0x21, 0x7F))
_DIGITS = b"0123456789"


def _only(data: bytes, allowed: bytes) -> bool:
    """True when every byte of ``data`` is one of ``allowed`` (one linear pass in C)."""
    return not data.translate(None, allowed)


class HandshakeRefused(Exception):
    """The upgrade request cannot be accepted: answer with ``status``."""

    def __init__(
        self, status: int, reason: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@attrs.frozen(kw_only=True)
class UpgradeRequest:
    """What the CSMS judges an upgrade request by."""

    target: str
    key: bytes
    subprotocols: tuple[str, ...]
    #: The extension offers, one string each (``permessage-deflate; client_max_window_bits``).
    extensions: tuple[str, ...]
    authorization: bytes | None


def head_length(
    buffer: bytes | bytearray, searched: int = 0, *, max_head: int = MAX_HEAD
) -> int | None:
    """How many bytes of ``buffer`` the request head takes (through its blank line), or None
    while it is incomplete. ``searched``: bytes already known not to hold the end. A head
    longer than ``max_head``, complete or not, is refused with 431."""
    start = max(0, searched - 2)
    ends = [
        at + len(blank) for blank in (b"\n\n", b"\n\r\n") if (at := buffer.find(blank, start)) >= 0
    ]
    length = min(ends) if ends else None
    if (length if length is not None else len(buffer)) > max_head:
        raise HandshakeRefused(431, "the request head is too long")
    return length


def _tokens(values: list[bytes]) -> list[bytes]:
    """The comma-separated elements of every value of one field, blanks dropped."""
    return [item.strip() for value in values for item in value.split(b",") if item.strip()]


def _single(fields: dict[bytes, list[bytes]], name: bytes) -> bytes | None:
    values = fields.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise HandshakeRefused(400, f"more than one {name.decode()} header")
    return values[0]


def _request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """(method, target, version) of ``method SP request-target SP HTTP/d.d`` (RFC 9112 §3)."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HandshakeRefused(400, "malformed request line")
    method, target, version = parts
    if not (
        method
        and _only(method, _TOKEN_CHARS)
        and target
        and _only(target, _VCHARS)
        and len(version) == 8
        and version.startswith(b"HTTP/")
        and version[5] in _DIGITS
        and version[6:7] == b"."
        and version[7] in _DIGITS
    ):
        raise HandshakeRefused(400, "malformed request line")
    return method, target, version[5:]


def parse_upgrade_request(
    head: bytes, *, max_line: int = MAX_LINE, max_fields: int = MAX_FIELDS
) -> UpgradeRequest:
    """The upgrade request in ``head`` (as measured by ``head_length``), or HandshakeRefused.

    Lines end with CRLF or a bare LF (RFC 9112 §2.2). Longer lines than ``max_line`` (414
    for the request line, 431 for a header) and more than ``max_fields`` header lines (431)
    are refused. A header line is ``name: value`` (RFC 9112 §5): obs-fold, whitespace
    before the colon and control bytes other than HTAB are refused with 400.
    """
    request_line, *lines = head.split(b"\n")[:-2]  # the head ends with its empty line
    if len(lines) > max_fields:
        raise HandshakeRefused(431, f"more than {max_fields} header lines")
    request_line = request_line.removesuffix(b"\r")
    if len(request_line) > max_line:
        raise HandshakeRefused(414, "the request line is too long")
    method, target, http_version = _request_line(request_line)
    if http_version != b"1.1":
        raise HandshakeRefused(505, "a WebSocket upgrade needs HTTP/1.1")
    if method != b"GET":
        raise HandshakeRefused(405, "a WebSocket upgrade is a GET", ((b"Allow", b"GET"),))
    fields: dict[bytes, list[bytes]] = {}
    names = []
    for at, line in enumerate(lines):
        if line.endswith(b"\r"):
            line = lines[at] = line[:-1]
        if len(line) > max_line:
            raise HandshakeRefused(431, "a header line is too long")
        name, colon, value = line.partition(b":")
        if not (colon and name):
            raise HandshakeRefused(400, "malformed header line")
        names.append(name)
        fields.setdefault(name.lower(), []).append(value.strip(b" \t"))
    # Checked all at once: names are tokens, and lines (names, colons, values) hold no
    # control byte but HTAB; so no obs-fold (a name starting with whitespace) either.
    if not (_only(b"".join(names), _TOKEN_CHARS) and _only(b"".join(lines), _VALUE_CHARS)):
        raise HandshakeRefused(400, "malformed header line")

    if len(fields.get(b"host", ())) != 1:
        raise HandshakeRefused(400, "a request needs exactly one Host header")
    if b"transfer-encoding" in fields or _single(fields, b"content-length") not in (None, b"0"):
        raise HandshakeRefused(400, "an upgrade request has no body")
    if b"upgrade" not in (t.lower() for t in _tokens(fields.get(b"connection", []))):
        raise HandshakeRefused(400, "missing header 'Connection: Upgrade'")
    if b"websocket" not in (t.lower() for t in _tokens(fields.get(b"upgrade", []))):
        raise HandshakeRefused(400, "missing header 'Upgrade: websocket'")
    version = _single(fields, b"sec-websocket-version")
    if version != b"13":
        status = 400 if version is None else 426
        raise HandshakeRefused(
            status, "WebSocket version 13 is required", ((b"Sec-WebSocket-Version", b"13"),)
        )
    key = _single(fields, b"sec-websocket-key")
    if key is None or not _is_nonce(key):
        raise HandshakeRefused(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    return UpgradeRequest(
        target=target.decode("ascii"),
        key=key,
        subprotocols=tuple(
            t.decode("latin-1") for t in _tokens(fields.get(b"sec-websocket-protocol", []))
        ),
        extensions=tuple(
            t.decode("latin-1") for t in _tokens(fields.get(b"sec-websocket-extensions", []))
        ),
        authorization=_single(fields, b"authorization"),
    )


def _is_nonce(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def accept_token(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())


def accept_response(key: bytes, subprotocol: str | None, extensions: bytes | None) -> bytes:
    """The 101 answer; without ``subprotocol`` it names none (OCPP-J, Part 4: no common
    subprotocol)."""
    head = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept_token(key),
    ]
    if subprotocol is not None:
        head.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode("ascii"))
    if extensions is not None:
        head.append(b"Sec-WebSocket-Extensions: " + extensions)
    return b"\r\n".join(head) + b"\r\n\r\n"


def reject_response(
    status: int, reason: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> bytes:
    """A refusal with ``reason`` as its plain-text body; the connection closes after it."""
    body = reason.encode("utf-8")
    head = [
        b"HTTP/1.1 %d %s" % (status, HTTPStatus(status).phrase.encode("ascii")),
        *(name + b": " + value for name, value in headers),
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body
