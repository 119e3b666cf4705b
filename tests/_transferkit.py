"""Real file servers on 127.0.0.1 for the transfer tests: an HTTP(S) server (stdlib
http.server in a thread) and an FTP(S) server (pyftpdlib in a thread), each with the
misbehaviours a station meets in the field. Everything is bounded: servers stop at the end
of their ``with`` block and no handler waits longer than HANG seconds.
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trustme
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

#: The longest any test server stalls a client (the tests' time limits are far shorter).
HANG = 5.0
USER, PASSWORD = "station", "s3cret"


class HttpFiles:
    """What the HTTP server serves and what it received."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        #: path -> (method, headers, body) of each upload
        self.received: dict[str, tuple[str, dict[str, str], bytes]] = {}
        self.release = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes (the first path segment says how the server behaves):

    /files/NAME         GET: the file, or 404
    /chunked/NAME       GET: the file in chunked encoding (no Content-Length)
    /drip/N             GET: N bytes announced, one every 0.05 s
    /short/NAME         GET: announces the file's size, sends a tenth, closes
    /stall/NAME         GET: announces the file's size, sends nothing until released
    /redirect/TARGET    GET/PUT: 302 to /TARGET (may be a full URL after "url=")
    /upload/NAME        PUT/POST: stored; 201
    /private/NAME       PUT/POST: 401 without Basic station:s3cret, else stored
    /readonly/NAME      PUT/POST: 403
    /early/NAME         PUT/POST: 413 at once, without reading the body, then close
    /no-put/NAME        PUT/POST: 405
    """

    server: _HttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> tuple[str, str]:
        _, kind, rest = self.path.split("/", 2) if self.path.count("/") >= 2 else ("", "", "")
        return kind, rest

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self) -> None:
        files = self.server.files
        kind, rest = self._route()
        if kind == "redirect":
            target = rest[4:] if rest.startswith("url=") else "/" + rest
            self._reply(302, headers={"Location": target})
        elif kind == "drip":
            size = int(rest)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size):
                if files.release.wait(0.05):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
            self.close_connection = True
        elif rest not in files.files:
            self._reply(404, b"no such file")
        elif kind == "files":
            self._reply(200, files.files[rest])
        elif kind == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = files.files[rest]
            for start in range(0, len(data), 4096):
                piece = data[start : start + 4096]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
        elif kind in ("short", "stall"):
            data = files.files[rest]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if kind == "short":
                self.wfile.write(data[: len(data) // 10])
            else:
                self.wfile.flush()
                files.release.wait(HANG)
            self.close_connection = True
        else:
            self._reply(404)

    def _store(self) -> None:
        kind, rest = self._route()
        length = int(self.headers.get("Content-Length", "0"))
        if kind == "redirect":
            self._reply(307, headers={"Location": "/upload/" + rest})
        elif kind == "early":
            self._reply(413, b"too large")
        elif kind == "readonly":
            self._reply(403)
        elif kind == "no-put":
            self._reply(405, headers={"Allow": "GET"})
        elif kind == "private" and self.headers.get("Authorization") != _basic(USER, PASSWORD):
            self._reply(401, headers={"WWW-Authenticate": 'Basic realm="logs"'})
        elif kind in ("upload", "private"):
            body = self.rfile.read(length)
            self.server.files.received[rest] = (self.command, dict(self.headers.items()), body)
            self._reply(201)
        else:
            self._reply(404)

    do_PUT = _store
    do_POST = _store


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: HttpFiles, context: ssl.SSLContext | None) -> None:
        self.files = files
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.settimeout(HANG)
        if self.context is not None:
            # The handshake runs in the handler's thread, on its first read.
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up or refuses our certificate is part of the tests


@contextlib.contextmanager
def http_server(files: HttpFiles, context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``files``; yields the base URL (http://127.0.0.1:PORT or https://…)."""
    server = _HttpServer(files, context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    scheme = "https" if context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        files.release.set()
        server.shutdown()
        server.server_close()
        thread.join(HANG)


def server_tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@contextlib.contextmanager
def ftp_server(
    root: Path,
    *,
    tls_certfile: Path | None = None,
    without_size: bool = False,
) -> Iterator[str]:
    """An FTP server (explicit TLS when ``tls_certfile`` is given) on ``root``: user
    station/s3cret may read and write, anonymous may only read. ``without_size`` makes the
    server unaware of SIZE, so a download's size is learned only while it arrives.
    Yields ftp://127.0.0.1:PORT (ftps://… with TLS)."""
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmw")
    authorizer.add_anonymous(str(root))
    base: type[FTPHandler] = TLS_FTPHandler if tls_certfile is not None else FTPHandler
    attributes: dict[str, Any] = {
        "authorizer": authorizer,
        "timeout": HANG,
        "auth_failed_timeout": 0,
    }
    if tls_certfile is not None:
        attributes.update(
            certfile=str(tls_certfile), tls_control_required=True, tls_data_required=True
        )
    if without_size:
        attributes["proto_cmds"] = {k: v for k, v in base.proto_cmds.items() if k != "SIZE"}
    handler = type("Handler", (base,), attributes)
    # An IO loop of its own: pyftpdlib's default is one per process, and two servers
    # driving it from two threads garble each other's TLS streams.
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.ioloop.loop(0.05, blocking=False)  # serve_forever would log each turn
        server.close_all()

    thread = threading.Thread(target=serve)
    thread.start()
    scheme = "ftps" if tls_certfile is not None else "ftp"
    try:
        yield f"{scheme}://127.0.0.1:{server.address[1]}"
    finally:
        stop.set()
        thread.join(HANG)


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens (bound, so nobody else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that takes connections (into the backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def multipart_file(headers: dict[str, str], body: bytes) -> tuple[str | None, str | None, bytes]:
    """(field name, file name, content) of the one file in a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body
    )
    (part,) = message.iter_parts()  # type: ignore[attr-defined]
    disposition = part.get("Content-Disposition")
    return disposition.params.get("name"), part.get_filename(), part.get_payload(decode=True)


def elapsed(start: float) -> float:
    return time.monotonic() - start
