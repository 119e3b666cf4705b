"""One socket owned by one thread, for the threads adapter: the owner sleeps in a
selector until the socket is readable (or writable, while bytes wait), another thread
wakes it through a socket pair, or the link's next deadline comes; it alone reads and
writes the socket (an SSL socket must not be used from two threads). Other threads change
the core under the link's lock and only queue bytes, move the deadline and wake it."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import threading
import time
from typing import Any

from ._skeleton import Link
from ._ws import POLICY_VIOLATION, WsOptions

_READ_SIZE = 65536
#: What a non-blocking socket raises when it must wait (TLS may need to read to write).
WAIT = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Wakeup:
    """What another thread signals to wake a selector: ``fd`` becomes readable. An
    eventfd where the system has one (one descriptor), else a socket pair. Waking after
    ``close()`` does nothing (the descriptor's number may already belong to another file)."""

    def __init__(self) -> None:
        self._pending = False
        self._lock = threading.Lock()
        self._closed = False
        self._pair: tuple[socket.socket, socket.socket] | None = None
        if hasattr(os, "eventfd"):
            self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - not Linux
            self._pair = socket.socketpair()
            for end in self._pair:
                end.setblocking(False)
            self.fd = self._pair[0].fileno()

    def wake(self) -> None:
        if self._pending:
            return
        with self._lock, contextlib.suppress(OSError):
            if not self._closed:
                self._pending = True
                if self._pair is None:
                    os.eventfd_write(self.fd, 1)
                else:  # pragma: no cover
                    self._pair[1].send(b"\0")

    def clear(self) -> None:
        """Drain, then allow the next wake-up: a wake-up skipped meanwhile changed state
        the owner looks at before it sleeps again."""
        with contextlib.suppress(OSError):
            if self._pair is None:
                os.eventfd_read(self.fd)
            else:  # pragma: no cover
                while self._pair[0].recv(256):
                    pass
        self._pending = False

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pair is None:
                os.close(self.fd)
            else:  # pragma: no cover
                for end in self._pair:
                    end.close()


class OwnedSocket:
    """One socket and the thread that owns it. The link's transport: ``write``,
    ``finish`` and ``arm`` run under ``lock`` in any thread, and only queue and wake."""

    link: Link

    def __init__(self, sock: socket.socket, lock: threading.RLock, options: WsOptions) -> None:
        self.sock = sock
        self.lock = lock
        self.finished = threading.Event()
        self._close_timeout = options.close_timeout
        self._high_water = options.write_high_water
        self._max_buffer = options.max_write_buffer
        #: Reading stopped: more than ``write_high_water`` bytes wait for the peer.
        self._holding = False
        #: The connection ends without flushing (it overflowed ``max_write_buffer``).
        self._dropping = False
        self._out = bytearray()
        self._sending = memoryview(b"")
        self._deadline: float | None = None
        self._done = False
        self._aborted = False
        self._owner: int | None = None
        self._wakeup = Wakeup()

    def write(self, data: bytes) -> None:
        self._out += data
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def arm(self, deadline: float | None) -> None:
        self._deadline = deadline
        self._wake()

    def abort(self) -> None:
        """Stop now, whatever is unsent (from any thread)."""
        self._aborted = True
        self._wakeup.wake()

    def peer_certificate(self) -> dict[str, Any] | None:
        if isinstance(self.sock, ssl.SSLSocket):
            cert: dict[str, Any] | None = self.sock.getpeercert()
            return cert
        return None

    def _wake(self) -> None:
        if threading.get_ident() != self._owner:
            self._wakeup.wake()

    def run(self) -> None:
        """The owner thread: serve the link until its WebSocket is done."""
        self._owner = threading.get_ident()
        self.sock.setblocking(False)
        # poll(2), not epoll: no descriptor of its own per connection.
        selector = selectors.PollSelector()
        selector.register(self._wakeup.fd, selectors.EVENT_READ)
        selector.register(self.sock, selectors.EVENT_READ)
        try:
            with self.lock:
                self.link.begin()
            self._serve(selector)
        finally:
            with self.lock:
                if not self.link.ws.done:
                    self.link.received(None, time.monotonic())
            selector.close()
            self._close()

    def _serve(self, selector: selectors.BaseSelector) -> None:
        sock = self.sock
        watching = selectors.EVENT_READ
        give_up: float | None = None
        while not self._aborted:
            if not self._flush():
                with self.lock:
                    self.link.received(None, time.monotonic())
                return
            if not self._done and self._back_pressure():
                continue
            if self._done:
                give_up = give_up or time.monotonic() + self._close_timeout
                if self._dropping or not self._sending or time.monotonic() >= give_up:
                    return
            reading = 0 if self._holding else selectors.EVENT_READ
            wanted = reading | (selectors.EVENT_WRITE if self._sending else 0)
            if wanted != watching:
                selector.modify(sock, wanted)
                watching = wanted
            due = give_up if self._done else self._deadline
            timeout = None if due is None else max(0.0, due - time.monotonic())
            # Decrypted bytes an SSL socket holds do not make it readable to select().
            buffered = not self._holding and isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            ready = selector.select(0 if buffered else timeout)
            readable = buffered
            for key, mask in ready:
                if key.fd == self._wakeup.fd:
                    self._wakeup.clear()
                elif mask & selectors.EVENT_READ:
                    readable = True
            if readable and not self._done and not self._holding:
                data = self._receive()
                if data is not False:
                    with self.lock:
                        self.link.received(data, time.monotonic())
            deadline = self._deadline
            if deadline is not None and not self._done and time.monotonic() >= deadline:
                with self.lock:
                    self.link.timer_fired(time.monotonic())

    def _back_pressure(self) -> bool:
        """Stop reading while more than ``write_high_water`` bytes wait for the peer,
        resume once a quarter is left; past ``max_write_buffer`` end the connection at
        once (True: it was ended)."""
        waiting = len(self._sending) + len(self._out)
        if waiting > self._max_buffer:
            self._dropping = True
            reason = f"the peer does not read what we send (over {self._max_buffer} bytes wait)"
            with self.lock:
                self.link.abort(POLICY_VIOLATION, reason, time.monotonic())
            return True
        if waiting > self._high_water:
            self._holding = True
        elif waiting <= self._high_water // 4:
            self._holding = False
        return False

    def _receive(self) -> bytes | bool | None:
        """What the socket has (None: end of file; False: nothing after all)."""
        sock = self.sock
        try:
            data = sock.recv(_READ_SIZE)
            if isinstance(sock, ssl.SSLSocket):
                while data and sock.pending():
                    data += sock.recv(sock.pending())
        except WAIT:
            return False
        except OSError:
            return None
        return data or None

    def _flush(self) -> bool:
        """Send what is queued, as far as the socket takes it; False when it broke."""
        if not self._sending:
            with self.lock:
                if not self._out:
                    return True
                self._sending = memoryview(bytes(self._out))
                self._out.clear()
        try:
            while self._sending:
                self._sending = self._sending[self.sock.send(self._sending) :]
        except WAIT:
            pass
        except OSError:
            self._sending = memoryview(b"")
            return False
        return True

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._wakeup.close()
        self.finished.set()


def transport_of(link: Link) -> OwnedSocket:
    transport = link.transport
    assert isinstance(transport, OwnedSocket)
    return transport
