"""The threads adapter: a CSMS server and a station client on blocking code.

Only the threads' side is here: the skeleton (``_skeleton``) does the rest. One thread
owns each socket (``_selector``): it sleeps until data, a wake-up or the link's next
deadline, and is the only one to read or write the socket. Other threads — request
handlers, the application's ``call`` and ``act`` — change the core under the session's
lock, queue the bytes that produced and wake the owner. Handlers run in threads of their own and
``on_event`` in one thread per session while it has events to deliver, so a slow handler
never holds up a connection and an idle session holds no thread.
"""

from __future__ import annotations

import contextlib
import inspect
import selectors
import signal
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ocpp_sansio.events import Event, RegistrationStatus, RequestReceived
from ocpp_sansio.messages._model import Request

from ._driver import Driver, StationDriver, Wire, handler_method, log
from ._options import ServerOptions
from ._selector import WAIT, OwnedSocket, Wakeup, transport_of
from ._skeleton import (
    Link,
    Server,
    Session,
    StationMixin,
    StationSetup,
    Waiter,
    connect_function,
    serve_function,
    wall_clock_for,
)
from ._ws import NORMAL_CLOSURE

__all__ = ["CsmsServer", "CsmsSession", "Station", "connect", "serve", "wall_clock"]

R = TypeVar("R")

#: The longest pause after a failing ``accept()`` (EMFILE, ENFILE, ENOBUFS ...).
MAX_ACCEPT_PAUSE = 1.0
#: How long a session's event thread waits for more events before it ends (a burst of
#: events costs one thread; an idle session holds none).
EVENT_THREAD_LINGER = 1.0


def wall_clock() -> Callable[[float], Any]:
    """The monotonic clock read as UTC (what the flows get by default)."""
    return wall_clock_for(time.monotonic)


#: Python runs signal handlers in the main thread only, but the kernel hands a signal sent
#: to the process to any thread that does not block it, and a main thread asleep in a
#: blocking wait (``serve_forever()``, ``call()``) would sleep on. The adapter's threads
#: block these, so they reach the main thread and end its wait at once. (None on Windows,
#: which has no thread signal masks.)
_MAIN_THREAD_SIGNALS = frozenset(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name) and hasattr(signal, "pthread_sigmask")
)


class _AdapterThread(threading.Thread):
    """A daemon thread that blocks ``_MAIN_THREAD_SIGNALS`` from its first instant: it
    inherits the signal mask of the thread that starts it."""

    def start(self) -> None:
        if not _MAIN_THREAD_SIGNALS or isinstance(threading.current_thread(), _AdapterThread):
            super().start()  # (nothing to block, or already blocked)
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_thread(target: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    thread = _AdapterThread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


class _Threads(Session):
    """The threads' side of a session: the core changes under ``lock`` (the skeleton's
    entry points take it here), requests run in threads, waiters wait on a condition."""

    lock: threading.RLock
    #: Events not yet given to ``on_event``, oldest first; ``_more`` tells its thread.
    _pending: deque[Event] | None = None
    _more: threading.Condition | None = None
    _delivering = False
    _events_stopped = False

    def _new_change(self) -> threading.Condition:
        return threading.Condition(self.lock)

    def _clock(self) -> float:
        return time.monotonic()

    def _changed(self) -> None:
        self._change.notify_all()

    def _start_request(self, generation: int, request: RequestReceived) -> None:
        _start_thread(self._run_request, generation, request, name="ocpp-request")

    def _deliver(self, events: list[Event]) -> None:
        # (under ``lock``, as every entry point that processes the core)
        if self._pending is None:
            self._pending, self._more = deque(), threading.Condition(self.lock)
        self._pending.extend(events)
        if self._delivering:
            assert self._more is not None
            self._more.notify()
        else:
            self._delivering = True
            _start_thread(self._deliver_events, name="ocpp-events")

    def start_call(self, request: Any, waiter: Any) -> str | None:
        with self.lock:
            return super().start_call(request, waiter)

    def act(self, action: Callable[[float], Any]) -> Any:
        with self.lock:
            return super().act(action)

    def answered(
        self, generation: int, message_id: str, response: Any, error: BaseException | None
    ) -> None:
        with self.lock:
            super().answered(generation, message_id, response, error)

    def call(self, request: Request[R], timeout: float | None = None) -> R:
        """The event-loop adapters' ``call()``, blocking. ``timeout`` bounds the wait
        (TimeoutError), for example for a transaction message held while offline; the
        request itself stays sent."""
        waiter = Waiter(threading.Event())
        message_id = self.start_call(request, waiter)
        if message_id is None:
            return None  # type: ignore[return-value]  # (Request[None]: a SEND)
        if not waiter.done.wait(timeout):
            with self.lock:
                self.driver.forget(message_id)
            raise TimeoutError(f"no outcome for {message_id} within {timeout} s")
        response: R = waiter.outcome()
        return response

    def _run_request(self, generation: int, event: RequestReceived) -> None:
        try:
            response = self._on_request(self, event.request)
            if inspect.isawaitable(response):
                with contextlib.suppress(AttributeError):
                    response.close()  # type: ignore[attr-defined]
                raise TypeError("on the threads adapter, on_request must be a plain function")
        except Exception as error:
            self.answered(generation, event.message_id, None, error)
        else:
            self.answered(generation, event.message_id, response, None)

    def _deliver_events(self) -> None:
        on_event, pending, more = self._on_event, self._pending, self._more
        assert on_event is not None and pending is not None and more is not None
        while True:
            with self.lock:
                if not pending and not self._events_stopped:
                    more.wait(EVENT_THREAD_LINGER)
                if not pending:
                    self._delivering = False
                    return
                event = pending.popleft()
            try:
                on_event(self, event)
            except Exception:
                log.exception("on_event failed on %r", event)

    def _stop_events(self) -> None:
        """Let the event thread end once it has delivered what is queued."""
        with self.lock:
            self._events_stopped = True
            if self._more is not None:
                self._more.notify()


# --- the CSMS ----------------------------------------------------------------------------------


class CsmsSession(_Threads):
    """One station as the CSMS sees it, kept across its reconnects."""

    def __init__(self, identity: str, driver: Driver, server: CsmsServer) -> None:
        self.lock = server.lock
        super().__init__(driver, identity, server.on_request, server.on_event)

    def wait_registered(self, timeout: float | None = None) -> bool:
        """Wait until this station's boot was answered Accepted (at once if it already
        was: a station back from an outage resumes without a boot, B04); False on timeout."""
        with self.lock:
            accepted = RegistrationStatus.ACCEPTED
            return bool(self._change.wait_for(lambda: self.registration is accepted, timeout))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the current connection in order and wait until it is gone."""
        with self.lock:
            link = self.start_closing(code, reason, time.monotonic())
        if link is not None:
            transport_of(link).finished.wait()


class CsmsServer(Server):
    """A listening CSMS: ``port`` is the bound port, ``sessions`` the stations by
    ``identity_key``."""

    sessions: dict[str, CsmsSession]

    def __init__(self, handler: Any, versions: Sequence[str], options: ServerOptions) -> None:
        super().__init__(handler, versions, options, time.monotonic)
        # A handler with both entries (a Router) gives its blocking one here.
        self.on_request = handler_method(handler, "on_request_sync") or self.on_request
        self.lock = threading.RLock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._wakeup = Wakeup()
        self._accepting: threading.Thread | None = None

    def _new_session(self, identity: str, driver: Driver) -> CsmsSession:
        return CsmsSession(identity, driver, self)

    def _start(self, host: str, port: int) -> None:
        listener = socket.create_server((host, port), backlog=self.options.backlog)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepting = _start_thread(self._accept, listener, name="ocpp-accept")

    def _accept(self, listener: socket.socket) -> None:
        """Accept until stopped. A failing accept (out of descriptors, of buffers) pauses
        and tries again, doubling the pause up to MAX_ACCEPT_PAUSE: never fatal."""
        selector = selectors.PollSelector()
        selector.register(listener, selectors.EVENT_READ)
        selector.register(self._wakeup.fd, selectors.EVENT_READ)
        pause = 0.0
        with selector:
            while not self._stopped.is_set():
                selector.select()
                try:
                    sock, _ = listener.accept()
                except WAIT:
                    continue
                except OSError as error:
                    pause = min(max(2 * pause, 0.01), MAX_ACCEPT_PAUSE)
                    log.warning("accept failed (%s); trying again in %.2f s", error, pause)
                    self._stopped.wait(pause)
                    continue
                pause = 0.0
                _start_thread(self._handle, sock, time.monotonic(), name="ocpp-connection")

    def _handle(self, sock: socket.socket, accepted: float) -> None:
        """Serve one accepted connection; its handshake deadline (TLS, then the upgrade)
        runs from ``accepted``."""
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        options = self.options
        if options.ssl_context is not None:
            try:
                # (ssl's handshake takes the socket timeout as one deadline for it all)
                due = accepted + options.ws_options.handshake_timeout
                sock.settimeout(max(0.001, due - time.monotonic()))
                sock = options.ssl_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as error:
                log.info("TLS handshake failed: %s", error)
                sock.close()
                return
        transport = OwnedSocket(sock, self.lock, options.ws_options)
        with self.lock:
            transport.link = link = self.new_link(transport, accepted)
        try:
            transport.run()
        except Exception:
            log.exception("connection failed")
        finally:
            with self.lock:
                self.links.discard(link)

    def serve_forever(self) -> None:
        """Block until ``stop()`` is called."""
        self._stopped.wait()

    def stop(self) -> None:
        """Stop listening and close every connection with 1001 (waiting up to
        close_timeout for their answers)."""
        self._stopped.set()
        self._wakeup.wake()
        if self._accepting is not None:
            self._accepting.join()
        self._wakeup.close()
        if self._listener is not None:
            self._listener.close()
        with self.lock:
            transports = [transport_of(link) for link in self.going_away()]
        deadline = time.monotonic() + self.policy.options.close_timeout
        for transport in transports:
            if not transport.finished.wait(max(0.0, deadline - time.monotonic())):
                transport.abort()
        for session in list(self.sessions.values()):
            session._stop_events()


@contextlib.contextmanager
def _serving(
    handler: Any, host: str, port: int, versions: Sequence[str], options: ServerOptions
) -> Iterator[CsmsServer]:
    server = CsmsServer(handler, versions, options)
    server._start(host, port)
    try:
        yield server
    finally:
        server.stop()


serve = serve_function(_serving)


# --- the station -------------------------------------------------------------------------------


class Station(StationMixin, _Threads):
    """A charging station connected to its CSMS, reconnecting with back-off (B04)."""

    driver: StationDriver

    def __init__(self, setup: StationSetup) -> None:
        self.lock = threading.RLock()
        super().__init__(setup)
        self._stopped = threading.Event()
        self._runner: threading.Thread | None = None

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until a connection is open; False on timeout. Raises ConnectFailedError when
        the attempts ran out."""
        with self.lock:
            return bool(self._change.wait_for(self.driver.is_connected, timeout))

    def wait_registered(self, timeout: float | None = None) -> bool:
        """Wait until the CSMS has accepted the station's boot; False on timeout."""
        with self.lock:
            return bool(self._change.wait_for(self.driver.is_registered, timeout))

    def _run(self) -> None:
        driver = self.driver
        while driver.trying:
            ws = error = None
            try:
                ws = self._connect_once()
            except ConnectionError as failed:
                error = driver.unreachable(failed)
            with self.lock:
                wait = driver.attempt_ended(ws, error)
                self.transmit()
            if wait is None or self._wait_offline(time.monotonic() + wait):
                return

    def _wait_offline(self, until: float) -> bool:
        """Sleep until the next attempt, running the flows' timers; True once stopped."""
        while (wake := self.driver.offline_wake(until)) < until:
            if self._stopped.wait(max(0.0, wake - time.monotonic())):
                return True
            with self.lock:
                self.driver.offline_timer(time.monotonic())
                self.transmit()
        return self._stopped.wait(max(0.0, until - time.monotonic()))

    def _connect_once(self) -> Wire:
        endpoint = self.endpoint
        options = self.driver.options
        try:
            sock = socket.create_connection(
                (endpoint.host, endpoint.port), timeout=options.handshake_timeout
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.secure:
                context = self._ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
        except OSError as error:
            raise ConnectionError(error) from error
        transport = OwnedSocket(sock, self.lock, options)
        with self.lock:
            ws = self.driver.new_websocket(time.monotonic())
            transport.link = self.link = Link(ws, self, transport)
        if self._stopped.is_set():
            transport.abort()
        transport.run()
        return ws

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection in order (waiting up to close_timeout for the CSMS's
        answer) and stop reconnecting."""
        self._stopped.set()
        with self.lock:
            self.driver.stop()
            link = self.link
            closing = self.start_closing(code, reason, time.monotonic())
        if link is not None:
            transport = transport_of(link)
            if closing is not None:
                transport.finished.wait(self.driver.options.close_timeout)
            transport.abort()  # no answer in time
        if self._runner is not None:
            self._runner.join(self.driver.options.handshake_timeout)
        self._stop_events()


@contextlib.contextmanager
def _station(setup: StationSetup) -> Iterator[Station]:
    station = Station(setup)
    station._runner = _start_thread(station._run, name="ocpp-station")
    try:
        yield station
    finally:
        station.close()


connect = connect_function(_station, wall_clock)
