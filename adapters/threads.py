"""The threads adapter: a CSMS server and a station client on blocking sockets.

Each connection has a reader thread that feeds received bytes through the shared WebSocket
glue into the core and runs the timers between reads. Request handlers run in threads of
their own and ``on_event`` in one thread per session, so a slow handler never holds up the
connection. One lock per server (or station) guards the cores; bytes go out in order
under a per-connection write lock (see docs/adapters.md).
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.errors import ConnectFailedError, OcppCallError
from ocpp_sansio.events import RequestReceived
from ocpp_sansio.flows.host import FlowFactory
from ocpp_sansio.station import StationCore

from ._driver import (
    Backoff,
    CoreFactory,
    CsmsCores,
    Driver,
    SessionView,
    StationDriver,
    csms_setup,
    handler_method,
    log,
)
from ._ws import (
    DEFAULT_VERSIONS,
    GOING_AWAY,
    NORMAL_CLOSURE,
    CertificateCheck,
    ClientWebSocket,
    Closed,
    PasswordLookup,
    ServerPolicy,
    ServerWebSocket,
    WsOptions,
    _WebSocket,
    certificate_names_identity,
)

__all__ = ["CsmsServer", "CsmsSession", "Station", "connect", "serve"]

#: The socket timeout: a reader wakes at least this often to run timers (also those that
#: other threads moved, such as a new call's timeout).
TICK = 0.05


class _Waiter:
    __slots__ = ("done", "error", "response")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: Any = None
        self.error: BaseException | None = None

    def settle(self, response: Any, error: BaseException | None) -> None:
        if not self.done.is_set():
            self.response, self.error = response, error
            self.done.set()


def _not_supported(session: Any, request: Any) -> Any:
    raise OcppCallError("NotSupported", f"no handler for {type(request).__name__}")


def _start_thread(target: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


class _Connection:
    """One socket and its reader thread. State changes happen under ``lock``."""

    def __init__(
        self, owner: _Owner, sock: socket.socket, ws: _WebSocket, lock: threading.RLock
    ) -> None:
        self.owner = owner
        self.sock = sock
        self.ws = ws
        self.lock = lock
        self.session: _Session | None = None
        self.finished = threading.Event()
        self._out = bytearray()
        self._write_lock = threading.Lock()
        self._closed = False
        # One fixed timeout for both threads: the reader wakes every TICK to run timers,
        # the writer retries until close_timeout (see _send).
        sock.settimeout(TICK)

    def run(self) -> None:
        """Read until the WebSocket is done, then close the socket (the reader thread)."""
        try:
            if isinstance(self.ws, ClientWebSocket):
                with self.lock:
                    self.ws.start()
                    self.flush()
                self.write()
            while not self.ws.done:
                try:
                    data: bytes | None = self.sock.recv(65536) or None
                except TimeoutError:
                    self._on_timer()
                    continue
                except OSError:
                    data = None
                with self.lock:
                    self._feed(data)
                self.write()
                self._on_timer()
        finally:
            with self.lock:
                if not self.ws.done:
                    self._feed(None)
            self._close_socket()
            self.finished.set()

    def _deadline(self) -> float | None:
        session = self.session
        return session.driver.next_deadline(self.ws) if session else self.ws.next_deadline()

    def _feed(self, data: bytes | None) -> None:
        now = time.monotonic()
        session = self.session
        if session is not None:
            session.driver.receive(self.ws, data, now)
            session.pump()
        else:
            ws = self.ws
            ws.receive_data(data, now)
            if ws.version is not None:
                self.owner.opened(self, now)
            else:
                self._refused()
        self.flush()

    def _on_timer(self) -> None:
        with self.lock:
            deadline = self._deadline()
            now = time.monotonic()
            if deadline is None or now < deadline:
                return
            session = self.session
            if session is not None:
                session.driver.timer(self.ws, now)
                session.pump()
            else:
                self.ws.handle_timer(now)
                self._refused()
            self.flush()
        self.write()

    def _refused(self) -> None:
        for event in self.ws.events():
            if isinstance(event, Closed):
                self.owner.refused(self, event)

    def flush(self) -> None:
        """Take what the WebSocket has to send (call with the lock held, then ``write``)."""
        self._out += self.ws.data_to_send()

    def write(self) -> None:
        """Send what ``flush`` took, in order; close the socket once the WebSocket is done."""
        with self._write_lock:
            with self.lock:
                data = bytes(self._out)
                self._out.clear()
                done = self.ws.done
            if data and not self._closed:
                try:
                    self._send(data)
                except OSError:
                    with self.lock:
                        self._feed(None)
                    done = True
            if done:
                self._close_socket()

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        give_up = time.monotonic() + self.ws.options.close_timeout
        while view:
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                if time.monotonic() > give_up:
                    raise
                continue
            view = view[sent:]

    def _close_socket(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()

    def close(self, code: int, reason: str) -> None:
        with self.lock:
            now = time.monotonic()
            session = self.session
            if session is not None:
                session.driver.close(self.ws, code, reason, now)
                session.pump()
            else:
                self.ws.close(code, reason, now)
            self.flush()
        self.write()

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        if isinstance(self.sock, ssl.SSLSocket):
            cert: dict[str, Any] | None = self.sock.getpeercert()
            return cert
        return None


class _Owner:
    """Who made a connection: the server, or a station."""

    def opened(self, conn: _Connection, now: float) -> None:
        raise NotImplementedError

    def refused(self, conn: _Connection, closed: Closed) -> None:
        raise NotImplementedError


class _Session(SessionView):
    """One core's life across connections, seen from the application."""

    def __init__(
        self,
        driver: Driver,
        on_request: Callable[[Any, Any], Any],
        on_event: Callable[[Any, Any], None] | None,
        lock: threading.RLock,
    ) -> None:
        self.driver = driver
        self.conn: _Connection | None = None
        self.lock = lock
        self._on_request = on_request
        self._on_event = on_event
        self._events: queue.SimpleQueue[Any] | None = None
        self._changed = threading.Condition(lock)

    def act(self, action: Callable[[float], Any]) -> Any:
        """Run ``action(now)`` on the core or its flows (``transactions.start(...,
        now=now)``) under the lock, then send what it produced; returns what ``action``
        returned."""
        with self.lock:
            result = action(time.monotonic())
            self.pump()
            conn = self.conn
        if conn is not None:
            conn.write()
        return result

    def call(self, request: Any, timeout: float | None = None) -> Any:
        """Send ``request`` and return the typed response. Raises OcppCallError for a
        CALLERROR, CallTimedOutError, CallLostError, InvalidResponseError or
        TransactionMessageDiscardedError (all but the first are CallFailedError); and
        LocalProtocolError at once when the protocol forbids sending it now. A 2.1 SEND
        returns None at once. ``timeout`` bounds the wait (TimeoutError), for example for
        a transaction message held while offline; the request itself stays sent."""
        waiter = _Waiter()
        with self.lock:
            message_id = self.driver.call(request, waiter, time.monotonic())
            self.pump()
            conn = self.conn
        if conn is not None:
            conn.write()
        if message_id is None:
            return None
        if not waiter.done.wait(timeout):
            with self.lock:
                self.driver.forget(message_id)
            raise TimeoutError(f"no outcome for {message_id} within {timeout} s")
        if waiter.error is not None:
            raise waiter.error
        return waiter.response

    def pump(self) -> None:
        """After anything touched the core (lock held): take its frames, start handlers,
        pass events. The caller then writes with ``conn.write()``."""
        driver = self.driver
        driver.flush()
        for generation, request in driver.take_requests():
            _start_thread(self._run_request, generation, request, name="ocpp-request")
        events = driver.take_events()
        if events and self._on_event is not None:
            if self._events is None:
                self._events = queue.SimpleQueue()
                _start_thread(self._deliver_events, self._events, name="ocpp-events")
            for event in events:
                self._events.put(event)
        if self.conn is not None:
            self.conn.flush()
        self._changed.notify_all()

    def _run_request(self, generation: int, event: RequestReceived) -> None:
        try:
            response = self._on_request(self, event.request)
        except Exception as error:
            with self.lock:
                self.driver.answer_exception(generation, event.message_id, error)
                self.pump()
        else:
            with self.lock:
                self.driver.answer(generation, event.message_id, response, time.monotonic())
                self.pump()
        conn = self.conn
        if conn is not None:
            conn.write()

    def _stop_events(self) -> None:
        """Let the event thread finish once it has delivered what is queued."""
        if self._events is not None:
            self._events.put(None)

    def _deliver_events(self, events: queue.SimpleQueue[Any]) -> None:
        assert self._on_event is not None
        while True:
            event = events.get()
            if event is None:
                return
            try:
                self._on_event(self, event)
            except Exception:
                log.exception("on_event failed on %r", event)


# --- the CSMS ----------------------------------------------------------------------------------


class CsmsSession(_Session):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        # A handler with both entries (a Router) gives its blocking one here.
        on_request = (
            handler_method(server.handler, "on_request_sync")
            or handler_method(server.handler, "on_request")
            or _not_supported
        )
        super().__init__(
            driver, on_request, handler_method(server.handler, "on_event"), server.lock
        )
        self.identity = identity
        #: The TLS client certificate of the current connection (security profile 3).
        self.peer_certificate: dict[str, Any] | None = None

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the current connection in order and wait until it is gone."""
        conn = self.conn
        if conn is not None:
            conn.close(code, reason)
            conn.finished.wait()


class CsmsServer(_Owner):
    """A listening CSMS: ``port`` is the bound port, ``sessions`` the stations by
    identity (case-folded)."""

    def __init__(
        self,
        handler: Any,
        *,
        policy: ServerPolicy,
        cores: CsmsCores,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.handler = handler
        self.policy = policy
        self.cores = cores
        self.ssl_context = ssl_context
        self.sessions: dict[str, CsmsSession] = {}
        self.port = 0
        self.lock = threading.RLock()
        self._listener: socket.socket | None = None
        self._connections: set[_Connection] = set()
        self._stopped = threading.Event()
        self._accepting: threading.Thread | None = None

    def _start(self, host: str, port: int, backlog: int) -> None:
        listener = socket.create_server((host, port), backlog=backlog)
        listener.settimeout(TICK)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepting = _start_thread(self._accept, name="ocpp-accept")

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            _start_thread(self._handle, sock, name="ocpp-connection")

    def _handle(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                sock.settimeout(self.policy.options.handshake_timeout)
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as error:
                log.info("TLS handshake failed: %s", error)
                sock.close()
                return
        certificate = getattr(sock, "getpeercert", None)  # TLS: the handshake is done
        ws = ServerWebSocket(self.policy, time.monotonic(), peer_certificate=certificate)
        conn = _Connection(self, sock, ws, self.lock)
        with self.lock:
            self._connections.add(conn)
        try:
            conn.run()
        except Exception:
            log.exception("connection failed")
        finally:
            with self.lock:
                self._connections.discard(conn)

    def opened(self, conn: _Connection, now: float) -> None:
        placed = self.cores.place(self.sessions, conn.ws, now, self._new_session)
        if placed is None:
            return
        session, lingering = placed
        if lingering is not None:
            lingering.flush()
            _start_thread(lingering.write, name="ocpp-close")
        conn.session = session
        session.conn = conn
        session.peer_certificate = conn.peer_certificate
        session.driver.attach(conn.ws, now)
        session.pump()

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def refused(self, conn: _Connection, closed: Closed) -> None:
        log.info("handshake refused: %s", closed.reason)

    def serve_forever(self) -> None:
        """Block until ``stop()`` is called."""
        self._stopped.wait()

    def stop(self) -> None:
        """Stop listening and close every connection with 1001."""
        self._stopped.set()
        if self._accepting is not None:
            self._accepting.join()
        if self._listener is not None:
            self._listener.close()
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close(GOING_AWAY, "the CSMS is shutting down")
        deadline = time.monotonic() + self.policy.options.close_timeout
        for conn in connections:
            if not conn.finished.wait(max(0.0, deadline - time.monotonic())):
                conn._close_socket()
        for session in list(self.sessions.values()):
            session._stop_events()


@contextlib.contextmanager
def serve(
    handler: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    versions: Sequence[str] = DEFAULT_VERSIONS,
    csms_config: CsmsConfig | None = None,
    core_factory: CoreFactory | None = None,
    flows: FlowFactory | None = None,
    auth: PasswordLookup | Mapping[str, str | bytes] | None = None,
    known_identity: Callable[[str], bool] | None = None,
    certificate_check: CertificateCheck | None = certificate_names_identity,
    ssl_context: ssl.SSLContext | None = None,
    ws_options: WsOptions | None = None,
    id_generator: Callable[[], str] | None = None,
    backlog: int = 1024,
) -> Iterator[CsmsServer]:
    """Run a CSMS at ``ws[s]://host:port/.../IDENTITY`` while the block runs.

    ``handler.on_request(session, request)`` answers each station request (a plain
    function, run in its own thread; raise OcppCallError to answer with a CALLERROR);
    ``handler.on_event(session, event)`` gets the rest, in order. ``versions`` in order of
    preference; ``auth(identity)`` returns the station's Basic password (profiles 1, 2);
    ``known_identity(identity)`` False gives 404; ``certificate_check(identity, certificate)``
    False gives 403 (profile 3). ``core_factory(identity, version)`` makes each station's
    CsmsCore (instead of ``csms_config`` / ``id_generator``); ``flows(core)`` the flows that
    see its events first.
    """
    policy, cores = csms_setup(
        versions=versions,
        csms_config=csms_config,
        core_factory=core_factory,
        flows=flows,
        auth=auth,
        known_identity=known_identity,
        certificate_check=certificate_check,
        ws_options=ws_options,
        id_generator=id_generator,
    )
    server = CsmsServer(handler, policy=policy, cores=cores, ssl_context=ssl_context)
    server._start(host, port, backlog)
    try:
        yield server
    finally:
        server.stop()


# --- the station -------------------------------------------------------------------------------


class Station(_Session, _Owner):
    """A charging station connected to its CSMS, reconnecting with back-off (digest §2.4).

    One StationCore for the whole life of the object: after a reconnect, registration and
    held transaction messages resume without a new boot (B04).
    """

    driver: StationDriver

    def __init__(
        self,
        driver: StationDriver,
        *,
        on_request: Callable[[Any, Any], Any] | None,
        on_event: Callable[[Any, Any], None] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(driver, on_request or _not_supported, on_event, threading.RLock())
        self.endpoint = driver.endpoint
        self.identity = driver.endpoint.identity
        self._ssl_context = ssl_context
        self._stopped = threading.Event()
        self._runner: threading.Thread | None = None

    @property
    def failure(self) -> ConnectFailedError | None:
        """Why the station stopped trying, when ``max_attempts`` ran out."""
        return self.driver.failure

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until a connection is open; False on timeout. Raises ConnectFailedError when
        the attempts ran out."""
        with self.lock:
            return bool(self._changed.wait_for(self.driver.is_connected, timeout))

    def wait_registered(self, timeout: float | None = None) -> bool:
        """Wait until the CSMS has accepted the station's boot; False on timeout."""
        with self.lock:
            return bool(self._changed.wait_for(self.driver.is_registered, timeout))

    def _start(self) -> None:
        self._runner = _start_thread(self._run, name="ocpp-station")

    def _run(self) -> None:
        driver = self.driver
        while driver.trying:
            try:
                ws = self._connect_once()
            except ConnectFailedError as error:
                with self.lock:
                    wait = driver.attempt_ended(None, error)
                    self.pump()
            else:
                if ws is None:
                    return  # closed before it started
                with self.lock:
                    wait = driver.attempt_ended(ws)
                    self.pump()
            if wait is None or self._wait_offline(time.monotonic() + wait):
                return

    def _wait_offline(self, until: float) -> bool:
        """Sleep until the next attempt, running the flows' timers; True once stopped."""
        while (wake := self.driver.offline_wake(until)) < until:
            if self._stopped.wait(max(0.0, wake - time.monotonic())):
                return True
            with self.lock:
                self.driver.offline_timer(time.monotonic())
                self.pump()
        return self._stopped.wait(max(0.0, until - time.monotonic()))

    def _connect_once(self) -> _WebSocket | None:
        endpoint = self.endpoint
        try:
            sock = socket.create_connection(
                (endpoint.host, endpoint.port), timeout=self.driver.options.handshake_timeout
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.secure:
                context = self._ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
        except OSError as error:
            raise self.driver.unreachable(error) from error
        with self.lock:
            conn = _Connection(self, sock, self.driver.new_websocket(time.monotonic()), self.lock)
            self.conn = conn
        if self._stopped.is_set():
            conn._close_socket()
            return None
        conn.run()
        return conn.ws

    def opened(self, conn: _Connection, now: float) -> None:
        conn.session = self
        self.driver.attach(conn.ws, now)
        self.pump()

    def refused(self, conn: _Connection, closed: Closed) -> None:
        self.driver.refused(closed)

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection in order and stop reconnecting."""
        self._stopped.set()
        with self.lock:
            ws = self.driver.stop()
            conn = self.conn
        if conn is not None:
            if ws is conn.ws:
                conn.close(code, reason)
                conn.finished.wait(self.driver.options.close_timeout)
            conn._close_socket()  # no answer in time, or still in its handshake
        if self._runner is not None:
            self._runner.join(self.driver.options.handshake_timeout)
        self._stop_events()


@contextlib.contextmanager
def connect(
    url: str,
    *,
    version: str | None = None,
    boot: Any = None,
    core: StationCore | None = None,
    flows: FlowFactory | None = None,
    station_config: StationConfig | None = None,
    on_request: Callable[[Any, Any], Any] | None = None,
    on_event: Callable[[Any, Any], None] | None = None,
    auth: str | bytes | None = None,
    ssl_context: ssl.SSLContext | None = None,
    ws_options: WsOptions | None = None,
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
    max_attempts: int | None = None,
    id_generator: Callable[[], str] | None = None,
) -> Iterator[Station]:
    """Run a station connected to ``url`` (``ws[s]://host:port/.../IDENTITY``).

    The station boots with ``boot`` (or drives the application's own ``core``), answers
    the CSMS with ``on_request(station, request)`` (a plain function, run in its own
    thread; raise OcppCallError for a CALLERROR) and passes other events to
    ``on_event(station, event)``, after the ``flows(core)`` had their turn. ``auth`` is the
    HTTP Basic password (bytes are sent as they are: a 1.6 AuthorizationKey as raw bytes).
    It reconnects with ``backoff`` after each loss; ``max_attempts`` consecutive failures
    end the attempts.
    """
    driver = StationDriver.for_url(
        url,
        version=version,
        boot=boot,
        core=core,
        flows=flows,
        station_config=station_config,
        auth=auth,
        ws_options=ws_options,
        backoff=backoff,
        rng=rng,
        max_attempts=max_attempts,
        id_generator=id_generator,
    )
    station = Station(driver, on_request=on_request, on_event=on_event, ssl_context=ssl_context)
    station._start()
    try:
        yield station
    finally:
        station.close()
