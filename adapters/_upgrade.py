"""The server's half of the WebSocket opening handshake (RFC 6455 §4.2), read directly.

A CSMS accepts thousands of these in a boot storm, and going through h11 cost about 70 %
of a boot's CPU. The upgrade request is small and its grammar narrow, so it is parsed
here, as strictly as RFC 9112 and RFC 6455 ask, and the open connection is handed to
wsproto's frame layer. Pure: bytes in, a parsed request or a refusal out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from http import HTTPStatus

import attrs

#: The longest request head accepted (h11's default limit too); past it: 431.
MAX_HEAD = 16 * 1024
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/(\d\.\d)")
#: field-name ":" OWS field-value OWS; the value may hold SP, HTAB, VCHAR and obs-text.
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")


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


def head_length(buffer: bytes | bytearray, searched: int = 0) -> int | None:
    """How many bytes of ``buffer`` the request head takes (through its blank line), or None
    while it is incomplete. ``searched``: bytes already known not to hold the end."""
    start = max(0, searched - 2)
    ends = [
        at + len(blank) for blank in (b"\n\n", b"\n\r\n") if (at := buffer.find(blank, start)) >= 0
    ]
    if ends:
        return min(ends)
    if len(buffer) > MAX_HEAD:
        raise HandshakeRefused(431, "the request head is too long")
    return None


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


def parse_upgrade_request(head: bytes) -> UpgradeRequest:
    """The upgrade request in ``head`` (as measured by ``head_length``), or HandshakeRefused."""
    request_line, *lines = head.rstrip(b"\r\n").replace(b"\r\n", b"\n").split(b"\n")
    matched = _REQUEST_LINE.fullmatch(request_line)
    if matched is None:
        raise HandshakeRefused(400, "malformed request line")
    method, target, http_version = matched.groups()
    if http_version != b"1.1":
        raise HandshakeRefused(505, "a WebSocket upgrade needs HTTP/1.1")
    if method != b"GET":
        raise HandshakeRefused(405, "a WebSocket upgrade is a GET", ((b"Allow", b"GET"),))
    fields: dict[bytes, list[bytes]] = {}
    for line in lines:
        field = _FIELD.fullmatch(line)
        if field is None:
            raise HandshakeRefused(400, "malformed header line")
        fields.setdefault(field[1].lower(), []).append(field[2])

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
    """The 101 answer; without ``subprotocol`` it names none (digest §2.1)."""
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
