"""Real file transfers: firmware downloads and log or diagnostics uploads.

The station-side flows say *when* to transfer (``FirmwareDownloadDue``, ``UploadDue``) and
own the retries and the retryInterval; this module does one attempt per call, over
http://, https:// (certificates verified), ftp:// and ftps:// (explicit TLS, RFC 4217),
within a time limit and, for downloads, a size limit. Every failure is a ``TransferError``
that says why (``TransferFailure``) and, for uploads, which LogStatus reports it.

``download`` and ``upload`` block (for the threads adapter or any worker thread);
``download_async`` and ``upload_async`` run them in a worker thread through anyio, so they
work under trio and asyncio alike. Only the standard library moves the bytes
(``http.client``, ``ftplib``, ``ssl``): it keeps a socket per transfer within reach, so the
time limit bounds the whole transfer, not each read.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import errno
import ftplib
import http.client
import itertools
import os
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit

from ocpp_sansio.errors import needs_extra

with needs_extra("transfer", needed_by="ocpp_sansio.adapters.transfer"):
    import anyio.to_thread

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "TransferError",
    "TransferFailure",
    "download",
    "download_async",
    "file_chunks",
    "upload",
    "upload_async",
    "upload_url",
]

#: Seconds one transfer may take, connecting included.
DEFAULT_TIMEOUT = 300.0
#: Bytes a download may bring (a station's flash is finite; pass your own).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: Redirects a download follows (uploads follow none: 2.1 N01.FR.30).
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
#: The form field of a POST upload, as in the example of N01.FR.19.
UPLOAD_FIELD = "uploadfile"
USER_AGENT = "ocpp-sansio"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
)


class TransferFailure(enum.Enum):
    """Why a transfer failed."""

    #: Not a location we can use: unknown scheme, no host, bad port, no file name.
    LOCATION = "location"
    #: The host name does not resolve, or there is no route to the host.
    UNREACHABLE = "unreachable"
    #: Nothing listens there: the connection was refused.
    REFUSED = "refused"
    #: The time limit passed.
    TIMEOUT = "timeout"
    #: The TLS handshake failed, or the server's certificate did not verify.
    TLS = "tls"
    #: The server refused the credentials or the permission (HTTP 401/403, FTP 530/532).
    DENIED = "denied"
    #: The server does not support the operation (HTTP 405/501, FTP 502/504).
    UNSUPPORTED = "unsupported"
    #: The server answered with another error status (HTTP 404, FTP 550 …).
    STATUS = "status"
    #: A redirect that may not be followed (any, for an upload; https to http; too many).
    REDIRECT = "redirect"
    #: The file is larger than the size limit.
    TOO_BIG = "too-big"
    #: The server broke its protocol (a reply that is not HTTP or FTP).
    PROTOCOL = "protocol"
    #: The connection closed or was reset in the middle of the transfer.
    BROKEN = "broken"
    #: The local file could not be read or written.
    LOCAL = "local"
    #: The caller cancelled the transfer.
    CANCELLED = "cancelled"


#: How LogStatusNotification reports each failure (N01.FR.10); the others are UploadFailure.
_LOG_STATUS = {
    TransferFailure.DENIED: "PermissionDenied",
    TransferFailure.UNSUPPORTED: "NotSupportedOperation",
    TransferFailure.PROTOCOL: "BadMessage",
}


class TransferError(Exception):
    """One transfer attempt failed. ``location`` has any password masked; ``status`` is the
    server's HTTP status or FTP reply code when it gave one."""

    def __init__(
        self, failure: TransferFailure, location: str, detail: str, *, status: int | None = None
    ) -> None:
        self.failure = failure
        self.location = _masked(location)
        self.detail = detail
        self.status = status
        super().__init__(f"{self.location}: {failure.value}: {detail}")

    @property
    def log_status(self) -> str:
        """The LogStatusNotification status for this failure (N01.FR.10): PermissionDenied,
        NotSupportedOperation, BadMessage (a broken reply or HTTP 400), else UploadFailure.
        1.6 DiagnosticsStatusNotification has UploadFailed only."""
        if self.failure is TransferFailure.STATUS and self.status == 400:
            return "BadMessage"
        return _LOG_STATUS.get(self.failure, "UploadFailure")


# --- the blocking API -------------------------------------------------------------------------


def download(
    location: str,
    destination: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ca_file: str | os.PathLike[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Fetch ``location`` into ``destination`` and return its size in bytes.

    The file appears at ``destination`` only once it is complete; a failed attempt leaves
    nothing behind. HTTP redirects are followed (at most MAX_REDIRECTS, never from https to
    http). ``ca_file`` adds trusted CAs to the system's; ``ssl_context`` replaces both.
    ``cancel``, once set, stops the transfer between two chunks.
    """
    _check_limits(timeout, max_bytes)
    clock = _Clock(timeout, cancel)
    target = Path(destination)
    with _translated(location):
        parts = _parse(location)
        context = _tls_context(parts, ca_file, ssl_context)
        try:
            handle, part_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".part"
            )
        except OSError as exc:
            raise TransferError(
                TransferFailure.LOCAL, location, f"cannot write in {target.parent}: {exc}"
            ) from exc
        part = Path(part_name)
        try:
            with open(handle, "wb") as out:
                sink = _Sink(out, max_bytes, location)
                if parts.scheme in ("http", "https"):
                    size = _http_download(location, sink, clock, context)
                else:
                    size = _ftp_download(parts, location, sink, clock, context)
            clock.remaining()  # a cancel that came during the last chunk still counts
            try:
                os.replace(part, target)
            except OSError as exc:
                raise TransferError(
                    TransferFailure.LOCAL, location, f"cannot write {target}: {exc}"
                ) from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return size


def upload(
    source: str | os.PathLike[str],
    location: str,
    *,
    method: Literal["PUT", "POST"] = "PUT",
    filename: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | os.PathLike[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Send the file ``source`` to ``location`` and return its size in bytes.

    HTTP(S): ``PUT`` sends the bytes as the body; ``POST`` sends them as multipart form data
    with a Content-Type and a Content-Disposition naming ``filename`` (N01.FR.19; default:
    the source's name). Which one a CSMS takes is its choice; it is recommended to take
    both (N01.FR.18). Credentials in the location go as HTTP Basic authentication (2.1
    N01.FR.25). Redirects are not followed (2.1 N01.FR.30). FTP(S): STOR to the path.
    Build ``location`` from a GetLog remoteLocation with ``upload_url``.
    """
    _check_limits(timeout, 0)
    if method not in ("PUT", "POST"):
        raise ValueError(f"method must be PUT or POST, not {method!r}")
    clock = _Clock(timeout, cancel)
    path = Path(source)
    with _translated(location):
        parts = _parse(location)
        context = _tls_context(parts, ca_file, ssl_context)
        try:
            body = path.open("rb")
            size = os.fstat(body.fileno()).st_size
        except OSError as exc:
            raise TransferError(
                TransferFailure.LOCAL, location, f"cannot read {path}: {exc}"
            ) from exc
        with body:
            if parts.scheme in ("http", "https"):
                name = filename if filename is not None else path.name
                _http_upload(parts, location, body, size, method, name, clock, context)
            else:
                _ftp_upload(parts, location, body, size, clock, context)
    return size


def upload_url(location: str, filename: str) -> str:
    """Where to upload ``filename`` for a location from GetLog or GetDiagnostics: a location
    that ends with "/" is a folder and gets the file name appended (N01.FR.21); any other is
    used as it is (2.1 N01.FR.29)."""
    return location + filename if location.endswith("/") else location


def file_chunks(path: str | os.PathLike[str], chunk_size: int = CHUNK) -> Iterator[bytes]:
    """The bytes of a file, a chunk at a time (to verify a signature without reading a
    whole firmware image into memory)."""
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            yield chunk


# --- the async API ------------------------------------------------------------------------------


async def download_async(
    location: str,
    destination: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ca_file: str | os.PathLike[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """``download`` in a worker thread (trio or asyncio, through anyio). Cancelling the
    caller returns at once; the worker stops at its next chunk and removes its partial file.
    """

    def run(cancel: threading.Event) -> int:
        return download(
            location,
            destination,
            timeout=timeout,
            max_bytes=max_bytes,
            ca_file=ca_file,
            ssl_context=ssl_context,
            cancel=cancel,
        )

    return await _in_worker_thread(run)


async def upload_async(
    source: str | os.PathLike[str],
    location: str,
    *,
    method: Literal["PUT", "POST"] = "PUT",
    filename: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | os.PathLike[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """``upload`` in a worker thread (trio or asyncio, through anyio); cancelled like
    ``download_async``."""

    def run(cancel: threading.Event) -> int:
        return upload(
            source,
            location,
            method=method,
            filename=filename,
            timeout=timeout,
            ca_file=ca_file,
            ssl_context=ssl_context,
            cancel=cancel,
        )

    return await _in_worker_thread(run)


async def _in_worker_thread(run: Callable[[threading.Event], int]) -> int:
    cancel = threading.Event()
    try:
        return await anyio.to_thread.run_sync(run, cancel, abandon_on_cancel=True)
    finally:
        cancel.set()


# --- shared pieces ------------------------------------------------------------------------------


class _Cancelled(Exception):
    pass


class _Clock:
    """The one deadline of a transfer; each blocking step gets what is left of it."""

    def __init__(self, timeout: float, cancel: threading.Event | None) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.cancel = cancel

    def remaining(self) -> float:
        if self.cancel is not None and self.cancel.is_set():
            raise _Cancelled
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the time limit of {self.timeout:g} s passed")
        return left


class _Sink:
    """Writes a download, enforcing the size limit."""

    def __init__(self, out: BinaryIO, max_bytes: int, location: str) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self.location = location
        self.size = 0

    def announce(self, size: int | None) -> None:
        """The server told the size in advance: refuse before fetching it."""
        if size is not None and size > self.max_bytes:
            raise self._too_big(f"the server announces {size} bytes")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise self._too_big(f"more than {self.size - len(chunk)} bytes arrived")
        try:
            self.out.write(chunk)
        except OSError as exc:
            raise TransferError(
                TransferFailure.LOCAL, self.location, f"cannot write the file: {exc}"
            ) from exc

    def _too_big(self, what: str) -> TransferError:
        return TransferError(
            TransferFailure.TOO_BIG, self.location, f"{what}; the limit is {self.max_bytes}"
        )


def _check_limits(timeout: float, max_bytes: int) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, not {max_bytes!r}")


def _masked(location: str) -> str:
    """The location without its password (it goes into messages and logs)."""
    try:
        parts = urlsplit(location)
    except ValueError:
        return location
    if parts.password is None:
        return location
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _parse(location: str) -> SplitResult:
    try:
        parts = urlsplit(location)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError as exc:
        raise TransferError(TransferFailure.LOCATION, location, f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https", "ftp", "ftps"):
        raise TransferError(
            TransferFailure.LOCATION,
            location,
            f"scheme {parts.scheme!r} is not one of http, https, ftp, ftps",
        )
    if not parts.hostname:
        raise TransferError(TransferFailure.LOCATION, location, "no host")
    return parts


def _tls_context(
    parts: SplitResult,
    ca_file: str | os.PathLike[str] | None,
    ssl_context: ssl.SSLContext | None,
) -> ssl.SSLContext | None:
    if parts.scheme not in ("https", "ftps"):
        return None
    if ssl_context is not None:
        return ssl_context
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TransferError(
                TransferFailure.LOCAL,
                urlunsplit(parts),
                f"cannot load the CA file {ca_file}: {exc}",
            ) from exc
    return context


@contextlib.contextmanager
def _translated(location: str) -> Iterator[None]:
    """Every way a transfer fails, as a TransferError that says why."""
    try:
        yield
    except TransferError:
        raise
    except _Cancelled:
        raise TransferError(TransferFailure.CANCELLED, location, "cancelled") from None
    except ssl.SSLCertVerificationError as exc:
        detail = f"the server's certificate did not verify: {exc.verify_message}"
        raise TransferError(TransferFailure.TLS, location, detail) from exc
    except ssl.SSLError as exc:
        raise TransferError(TransferFailure.TLS, location, f"TLS failed: {exc}") from exc
    except TimeoutError as exc:
        raise TransferError(TransferFailure.TIMEOUT, location, str(exc) or "timed out") from exc
    except ConnectionRefusedError as exc:
        raise TransferError(TransferFailure.REFUSED, location, "connection refused") from exc
    except socket.gaierror as exc:
        detail = f"the host name does not resolve: {exc.strerror}"
        raise TransferError(TransferFailure.UNREACHABLE, location, detail) from exc
    except (ftplib.error_perm, ftplib.error_temp) as exc:
        raise _ftp_refusal(location, exc) from exc
    except (http.client.IncompleteRead, ConnectionError, EOFError) as exc:
        detail = f"the connection broke: {exc!r}"
        raise TransferError(TransferFailure.BROKEN, location, detail) from exc
    except (http.client.HTTPException, ftplib.error_reply, ftplib.error_proto) as exc:
        detail = f"the server's reply is not valid: {exc!r}"
        raise TransferError(TransferFailure.PROTOCOL, location, detail) from exc
    except OSError as exc:
        if exc.errno in _UNREACHABLE_ERRNOS:
            raise TransferError(TransferFailure.UNREACHABLE, location, str(exc)) from exc
        raise TransferError(TransferFailure.BROKEN, location, str(exc)) from exc


# --- HTTP(S) ------------------------------------------------------------------------------------


def _http_connect(
    parts: SplitResult, clock: _Clock, context: ssl.SSLContext | None
) -> tuple[http.client.HTTPConnection, socket.socket]:
    """A connected HTTP(S) connection and its socket (kept: http.client lets go of it when
    the response says the connection closes)."""
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=clock.remaining(), context=context
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=clock.remaining())
    connection.connect()
    return connection, connection.sock


def _http_headers(parts: SplitResult) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Connection": "close"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return headers


def _request_target(parts: SplitResult) -> str:
    """Path and query (the fragment never goes on the wire)."""
    return urlunsplit(("", "", parts.path or "/", parts.query, ""))


def _http_refusal(location: str, response: http.client.HTTPResponse) -> TransferError:
    status = response.status
    detail = f"HTTP {status} {response.reason}".rstrip()
    if status in (401, 403):
        return TransferError(TransferFailure.DENIED, location, detail, status=status)
    if status in (405, 501):
        return TransferError(TransferFailure.UNSUPPORTED, location, detail, status=status)
    if status in _REDIRECTS:
        where = response.getheader("Location", "nowhere")
        return TransferError(
            TransferFailure.REDIRECT,
            location,
            f"{detail} to {_masked(where)}: an upload follows no redirect (2.1 N01.FR.30)",
            status=status,
        )
    return TransferError(TransferFailure.STATUS, location, detail, status=status)


def _http_download(
    location: str, sink: _Sink, clock: _Clock, context: ssl.SSLContext | None
) -> int:
    current = location
    for _ in range(MAX_REDIRECTS + 1):
        parts = _parse(current)
        connection, sock = _http_connect(parts, clock, context)
        try:
            sock.settimeout(clock.remaining())
            connection.request("GET", _request_target(parts), headers=_http_headers(parts))
            response = connection.getresponse()
            if response.status in _REDIRECTS:
                current = _redirect_target(current, parts, response)
                continue
            if response.status != 200:
                raise _http_refusal(current, response)
            expected = response.length
            sink.announce(expected)
            while True:
                sock.settimeout(clock.remaining())
                chunk = response.read1(CHUNK)
                if not chunk:
                    break
                sink.write(chunk)
            if expected is not None and sink.size < expected:
                raise TransferError(
                    TransferFailure.BROKEN,
                    current,
                    f"the connection closed after {sink.size} of {expected} bytes",
                )
            return sink.size
        finally:
            connection.close()
            sock.close()
    raise TransferError(TransferFailure.REDIRECT, location, f"more than {MAX_REDIRECTS} redirects")


def _redirect_target(current: str, parts: SplitResult, response: http.client.HTTPResponse) -> str:
    where = response.getheader("Location")
    if not where:
        raise TransferError(
            TransferFailure.PROTOCOL, current, f"HTTP {response.status} without a Location"
        )
    target = urljoin(current, where)
    if parts.scheme == "https" and urlsplit(target).scheme != "https":
        raise TransferError(
            TransferFailure.REDIRECT, current, f"refusing a redirect from https to {target}"
        )
    return target


def _http_upload(
    parts: SplitResult,
    location: str,
    body: BinaryIO,
    size: int,
    method: Literal["PUT", "POST"],
    filename: str,
    clock: _Clock,
    context: ssl.SSLContext | None,
) -> None:
    headers = _http_headers(parts)
    head = tail = b""
    if method == "POST":
        boundary = uuid.uuid4().hex
        head, tail = _multipart_frame(boundary, filename)
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    else:
        headers["Content-Type"] = "application/octet-stream"
    headers["Content-Length"] = str(len(head) + size + len(tail))
    connection, sock = _http_connect(parts, clock, context)
    try:
        sock.settimeout(clock.remaining())
        connection.putrequest(method, _request_target(parts), skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        broken: OSError | None = None
        try:
            for piece in itertools.chain((head,), _body_chunks(body, size, location), (tail,)):
                sock.settimeout(clock.remaining())
                connection.send(piece)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError) as exc:
            broken = exc  # the server may have answered before taking it all: read why
        sock.settimeout(clock.remaining())
        try:
            response = connection.getresponse()
        except (OSError, http.client.HTTPException):
            if broken is not None:
                raise broken from None
            raise
        if not 200 <= response.status < 300:
            raise _http_refusal(location, response)
    finally:
        connection.close()
        sock.close()


def _multipart_frame(boundary: str, filename: str) -> tuple[bytes, bytes]:
    """What goes before and after the file in a multipart/form-data body (N01.FR.19)."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    quoted = quoted.replace("\r", "").replace("\n", "")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{UPLOAD_FIELD}"; filename="{quoted}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail


def _body_chunks(body: BinaryIO, size: int, location: str) -> Iterator[bytes]:
    """Exactly ``size`` bytes of the file, its size when the upload began: a log that grows
    meanwhile goes as it was then (the length is announced), one that shrinks fails."""
    left = size
    while left > 0:
        try:
            chunk = body.read(min(CHUNK, left))
        except OSError as exc:
            raise TransferError(
                TransferFailure.LOCAL, location, f"cannot read the file: {exc}"
            ) from exc
        if not chunk:
            raise TransferError(
                TransferFailure.LOCAL,
                location,
                f"the file shrank while it was sent ({size - left} of {size} bytes)",
            )
        left -= len(chunk)
        yield chunk


# --- FTP(S) -------------------------------------------------------------------------------------


def _ftp_refusal(location: str, exc: ftplib.Error) -> TransferError:
    reply = str(exc)
    code = int(reply[:3]) if reply[:3].isdigit() else None
    detail = f"FTP {reply}"
    if code in (530, 532):
        return TransferError(TransferFailure.DENIED, location, detail, status=code)
    if code in (502, 504):
        return TransferError(TransferFailure.UNSUPPORTED, location, detail, status=code)
    return TransferError(TransferFailure.STATUS, location, detail, status=code)


def _ftp_path(parts: SplitResult, location: str) -> str:
    """The file's path after login: relative to the login folder unless the URL's path
    starts with "//" (RFC 1738)."""
    path = unquote(parts.path)[1:]
    if not path or path.endswith("/"):
        raise TransferError(TransferFailure.LOCATION, location, "the URL names no file")
    if "\r" in path or "\n" in path:
        raise TransferError(TransferFailure.LOCATION, location, "line break in the file name")
    return path


def _control(ftp: ftplib.FTP, clock: _Clock) -> ftplib.FTP:
    """The session, its control connection given what is left of the time limit."""
    assert ftp.sock is not None
    ftp.sock.settimeout(clock.remaining())
    return ftp


@contextlib.contextmanager
def _ftp_session(
    parts: SplitResult, clock: _Clock, context: ssl.SSLContext | None
) -> Iterator[ftplib.FTP]:
    """A logged-in FTP session in binary, passive mode (the L01 remarks ask for passive
    FTP); FTPS secures the data connections too."""
    ftp: ftplib.FTP
    if parts.scheme == "ftps":
        ftp = ftplib.FTP_TLS(context=context, timeout=clock.remaining())
    else:
        ftp = ftplib.FTP(timeout=clock.remaining())
    try:
        ftp.connect(parts.hostname or "", parts.port or 21, timeout=clock.remaining())
        user = unquote(parts.username) if parts.username is not None else "anonymous"
        password = unquote(parts.password) if parts.password is not None else "anonymous@"
        _control(ftp, clock).login(user, password)
        if isinstance(ftp, ftplib.FTP_TLS):
            _control(ftp, clock)
            ftp.prot_p()
        ftp.set_pasv(True)
        _control(ftp, clock).voidcmd("TYPE I")
        yield ftp
        with contextlib.suppress(*ftplib.all_errors):
            _control(ftp, clock).quit()
    finally:
        ftp.close()


def _ftp_size(ftp: ftplib.FTP, path: str) -> int | None:
    """The size the server reports, if it implements SIZE (RFC 3659)."""
    try:
        return ftp.size(path)
    except (ftplib.error_perm, ftplib.error_temp, ftplib.error_reply):
        return None


def _ftp_download(
    parts: SplitResult,
    location: str,
    sink: _Sink,
    clock: _Clock,
    context: ssl.SSLContext | None,
) -> int:
    path = _ftp_path(parts, location)
    with _ftp_session(parts, clock, context) as ftp:
        sink.announce(_ftp_size(_control(ftp, clock), path))
        with _control(ftp, clock).transfercmd(f"RETR {path}") as data:
            while True:
                data.settimeout(clock.remaining())
                chunk = data.recv(CHUNK)
                if not chunk:
                    break
                sink.write(chunk)
            if isinstance(data, ssl.SSLSocket):
                data.unwrap()
        _control(ftp, clock).voidresp()
    return sink.size


def _ftp_upload(
    parts: SplitResult,
    location: str,
    body: BinaryIO,
    size: int,
    clock: _Clock,
    context: ssl.SSLContext | None,
) -> None:
    path = _ftp_path(parts, location)
    with _ftp_session(parts, clock, context) as ftp:
        with _control(ftp, clock).transfercmd(f"STOR {path}") as data:
            for chunk in _body_chunks(body, size, location):
                data.settimeout(clock.remaining())
                data.sendall(chunk)
            if isinstance(data, ssl.SSLSocket):
                data.settimeout(clock.remaining())
                data.unwrap()
        _control(ftp, clock).voidresp()
