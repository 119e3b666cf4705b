"""The ASGI adapter: a CSMS as an ASGI application, for uvicorn, hypercorn, or a path in a
Starlette or FastAPI application::

    app = asgi_app(handler, versions=["2.0.1", "1.6"])      # the whole application
    api.mount("/ocpp", asgi_app(handler))                    # or a path of a bigger one

The station identity is the last path segment. The same handlers, flows and options as
``serve()``: the handshake is judged by the same policy (subprotocol in our order of
preference, identity, ``known_identity``, HTTP Basic for security profiles 1 and 2 behind
a TLS-terminating server), and each station's session lives in ``app.sessions`` across
its reconnects. The web server frames the WebSocket and answers pings, so the link's
WebSocket here is message-level; everything else is the skeleton's (``_skeleton``).
Runs under asyncio or trio (through anyio). TLS ends at the web server: a client
certificate it reports in the ASGI TLS extension is judged by ``certificate_check``
(security profile 3) and becomes the session's ``peer_certificate``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

from ocpp_sansio.errors import needs_extra

with needs_extra("asgi", needed_by="ocpp_sansio.adapters.asgi"):
    import anyio
    import anyio.abc

from ocpp_sansio.events import Event

from ._driver import Driver, log
from ._options import ServerOptions
from ._skeleton import Link, LoopCsmsSession, Server
from ._ws import (
    ABNORMAL_CLOSURE,
    DEFAULT_VERSIONS,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    SUBPROTOCOLS,
    UNSUPPORTED_DATA,
    Closed,
    Opened,
    Phase,
    ServerWebSocket,
    SpeaksFor,
    TextReceived,
    WsOptions,
)

__all__ = ["CsmsSession", "OcppAsgi", "asgi_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def asgi_app(
    handler: Any,
    *,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    options: ServerOptions | None = None,
) -> OcppAsgi:
    """An ASGI application serving ``handler`` (as ``serve()`` does) to the stations that
    connect, ``versions`` in our order of preference. ``options.ssl_context`` and
    ``backlog`` belong to the web server here; pings and compression too."""
    return OcppAsgi(handler, versions, options or ServerOptions())


#: Subject attributes by OID, under the names ``ssl.SSLSocket.getpeercert()`` gives them.
_ATTRIBUTE_NAMES = {
    "2.5.4.3": "commonName",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "countryName",
    "2.5.4.7": "localityName",
    "2.5.4.8": "stateOrProvinceName",
    "2.5.4.10": "organizationName",
    "2.5.4.11": "organizationalUnitName",
    "1.2.840.113549.1.9.1": "emailAddress",
}


def scope_certificate(scope: Scope) -> dict[str, Any] | None:
    """The TLS client certificate the web server reports in the ASGI TLS extension (the
    first PEM of ``client_cert_chain``), with its subject and issuer in the form
    ``getpeercert()`` gives (what ``certificate_check`` reads); None when the web server
    reports none (most do not: then no certificate check runs, as over plain TCP)."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if not chain:
        return None
    with needs_extra("crypto", needed_by="client certificates under the ASGI adapter"):
        from cryptography import x509

    parsed = x509.load_pem_x509_certificate(chain[0].encode())

    def names(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
        return tuple(
            tuple(
                (_ATTRIBUTE_NAMES.get(a.oid.dotted_string, a.oid.dotted_string), str(a.value))
                for a in rdn
            )
            for rdn in name.rdns
        )

    return {"subject": names(parsed.subject), "issuer": names(parsed.issuer)}


class _Messages:
    """A link's WebSocket when the web server does the framing: text messages in and out,
    the message size limit, and the close. (Pings and the closing handshake are the web
    server's.)"""

    def __init__(
        self, identity: str, version: str, options: WsOptions, speaks_for: SpeaksFor | None
    ) -> None:
        self.identity = identity
        self.version: str | None = version
        #: The handshake's judgement of its credentials, until the server placed it.
        self.speaks_for = speaks_for
        self.phase = Phase.OPEN
        self._limit = options.max_message_size
        self._out: list[dict[str, Any]] = []
        self._events: list[Any] = []

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def receive_data(self, message: MutableMapping[str, Any] | None, now: float) -> None:
        if self.done:
            return
        if message is None or message["type"] == "websocket.disconnect":
            code = ABNORMAL_CLOSURE if message is None else int(message.get("code", 1005))
            self._finish(code, "the station closed the connection", by_peer=True)
            return
        text = message.get("text")
        if text is None:
            self.close(UNSUPPORTED_DATA, "OCPP-J uses text messages only")
        elif len(text.encode()) > self._limit:
            self.close(MESSAGE_TOO_BIG, "message too big")
        else:
            self._events.append(TextReceived(text=text))

    def send_text(self, text: str) -> None:
        if self.phase is Phase.OPEN:
            self._out.append({"type": "websocket.send", "text": text})

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "", now: float = 0.0) -> None:
        if self.phase is Phase.OPEN:
            self._out.append({"type": "websocket.close", "code": code, "reason": reason})
            self._finish(code, reason, by_peer=False)

    def abort(self, code: int = ABNORMAL_CLOSURE, reason: str = "") -> None:
        if not self.done:
            self._out.clear()
            self._finish(code, reason, by_peer=False)

    def _finish(self, code: int, reason: str, *, by_peer: bool) -> None:
        self.phase = Phase.DONE
        self._events.append(Closed(code=code, reason=reason, by_peer=by_peer))

    def data_to_send(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[Any]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


class _Sender:
    """A link's transport: a task sends the queued ASGI messages and fires the timer."""

    def __init__(
        self,
        send: Send,
        tasks: anyio.abc.TaskGroup,
        certificate: dict[str, Any] | None,
        options: WsOptions,
    ) -> None:
        self._send = send
        self._certificate = certificate
        #: Characters of text queued for a web server that takes them slower than we
        #: make them: above ``write_high_water`` the link stops receiving (``room``);
        #: past ``max_write_buffer`` it ends with 1008.
        self._queued = 0
        self._high_water = options.write_high_water
        self._max_queued = options.max_write_buffer
        self._room = anyio.Event()
        self._room.set()
        #: The connection's task group: its session's handlers run there.
        self.tasks = tasks
        self._out: list[dict[str, Any]] = []
        self._wakeup = anyio.Event()
        self._deadline = math.inf
        self._done = False
        self.finished = anyio.Event()

    def write(self, messages: list[dict[str, Any]]) -> None:
        self._out += messages
        self._queued += sum(len(message.get("text") or "") for message in messages)
        if self._queued > self._high_water and self._room.is_set():
            self._room = anyio.Event()
        self._wakeup.set()

    async def room(self) -> None:
        """Return once at most ``write_high_water`` characters wait to be sent
        (back-pressure: the link receives nothing meanwhile)."""
        await self._room.wait()

    def finish(self) -> None:
        self._done = True
        self._wakeup.set()

    def arm(self, deadline: float | None) -> None:
        self._deadline = math.inf if deadline is None else deadline
        self._wakeup.set()

    def peer_certificate(self) -> dict[str, Any] | None:
        return self._certificate

    async def run(self, link: Link) -> None:
        while True:
            with anyio.move_on_after(max(0.0, self._deadline - anyio.current_time())):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
            if anyio.current_time() >= self._deadline:
                link.timer_fired(anyio.current_time())
            if self._queued > self._max_queued and not self._done:
                reason = f"the peer does not read what we send (over {self._max_queued} wait)"
                link.abort(POLICY_VIOLATION, reason, anyio.current_time())
                self._room.set()
                return
            while self._out:
                message = self._out.pop(0)
                try:
                    await self._send(message)
                except OSError:
                    link.received(None, anyio.current_time())
                    return
                self._queued -= len(message.get("text") or "")
                if self._queued <= self._high_water // 4:
                    self._room.set()
            if self._done:
                self._room.set()
                return


class CsmsSession(LoopCsmsSession):
    """One station as the CSMS sees it, kept across its reconnects. Its handlers and
    ``on_event`` run in the task group of its current connection."""

    _new_event = anyio.Event
    _events_nursery: anyio.abc.TaskGroup | None = None

    def __init__(self, identity: str, driver: Driver, server: OcppAsgi) -> None:
        super().__init__(identity, driver, server)

    def _clock(self) -> float:
        return anyio.current_time()

    @property
    def _nursery(self) -> anyio.abc.TaskGroup:
        assert self.link is not None and isinstance(self.link.transport, _Sender)
        return self.link.transport.tasks

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._nursery.start_soon(function, *args)

    def _deliver(self, events: list[Event]) -> None:
        if self._events_nursery is not self._nursery:
            # The deliverer ended with its connection's task group (perhaps before it
            # started): the events it left go on in the new connection's.
            self._events_nursery = self._nursery
            self._deliverer = None
        super()._deliver(events)

    async def _link_finished(self, link: Link) -> None:
        transport = link.transport
        assert isinstance(transport, _Sender)
        await transport.finished.wait()


class OcppAsgi(Server):
    """The ASGI application ``asgi_app`` returns; ``sessions`` holds the stations by
    ``identity_key``, as ``serve()``'s server does."""

    sessions: dict[str, CsmsSession]

    def __init__(self, handler: Any, versions: Sequence[str], options: ServerOptions) -> None:
        super().__init__(handler, versions, options, anyio.current_time)
        self._judge = ServerWebSocket  # the handshake policy, exactly as ``serve()`` applies it

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            body = b"This is an OCPP-J endpoint: connect with a WebSocket.\n"
            await send({"type": "http.response.start", "status": 426, "headers": []})
            await send({"type": "http.response.body", "body": body})

    async def aclose(self) -> None:
        """Close every station's connection with 1001 (the web server may then stop)."""
        links = self.going_away()
        with anyio.move_on_after(self.policy.options.close_timeout):
            for link in links:
                transport = link.transport
                assert isinstance(transport, _Sender)
                await transport.finished.wait()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _verdict(
        self, scope: Scope, certificate: dict[str, Any] | None
    ) -> tuple[Opened | Closed, SpeaksFor | None]:
        """The handshake policy's verdict on this upgrade request (the web server has
        checked the WebSocket parts of it) and the client certificate the web server
        reports; and, when accepted, whether its credentials open other spellings."""
        target = scope.get("raw_path") or quote(scope["path"]).encode()
        head = [b"GET " + target + b" HTTP/1.1", b"Host: asgi", b"Upgrade: websocket"]
        head += [b"Connection: Upgrade", b"Sec-WebSocket-Version: 13"]
        head.append(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
        if scope.get("subprotocols"):
            head.append(b"Sec-WebSocket-Protocol: " + ", ".join(scope["subprotocols"]).encode())
        head += [b"Authorization: " + v for k, v in scope["headers"] if k == b"authorization"]
        ws = self._judge(self.policy, anyio.current_time(), peer_certificate=lambda: certificate)
        ws.receive_data(b"\r\n".join(head) + b"\r\n\r\n", anyio.current_time())
        (verdict,) = [e for e in ws.events() if isinstance(e, Opened | Closed)]
        return verdict, ws.speaks_for

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        certificate = scope_certificate(scope)
        full = self.at_capacity()
        if full is None:
            verdict, speaks_for = self._verdict(scope, certificate)
        else:
            verdict = Closed(code=1013, reason=full.reason, by_peer=False, status=full.status)
            speaks_for = None
        if isinstance(verdict, Closed):
            await self._refuse(scope, send, verdict)
            return
        await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOLS[verdict.version]})
        ws = _Messages(verdict.identity, verdict.version, self.policy.options, speaks_for)
        async with anyio.create_task_group() as tasks:
            sender = _Sender(send, tasks, certificate, self.policy.options)
            link = Link(ws, self, sender)
            self.links.add(link)
            try:
                link.accepted(anyio.current_time())
                tasks.start_soon(self._read, link, receive)
                await sender.run(link)
            finally:
                self.links.discard(link)
                sender.finished.set()
                tasks.cancel_scope.cancel()

    async def _read(self, link: Link, receive: Receive) -> None:
        sender = link.transport
        assert isinstance(sender, _Sender)
        while not link.ws.done:
            await sender.room()
            if link.ws.done:
                return
            link.received(await receive(), anyio.current_time())

    async def _refuse(self, scope: Scope, send: Send, refused: Closed) -> None:
        log.info("handshake refused: %s", refused.reason)
        if refused.status is None:  # no common subprotocol: open, then close with 1002
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": refused.code, "reason": refused.reason})
        elif "websocket.http.response" in scope.get("extensions", {}):
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            if refused.status == 401:
                headers.append((b"www-authenticate", b'Basic realm="OCPP", charset="UTF-8"'))
            start = {"type": "websocket.http.response.start", "status": refused.status}
            await send({**start, "headers": headers})
            body = refused.reason.encode() + b"\n"
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": refused.reason})
