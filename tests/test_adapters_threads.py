"""The threads adapter's own concerns: busy TLS connections stay up (one thread owns each
socket; before, a TLS socket was used from two threads and busy connections dropped), idle
connections cost no CPU (no polling), and a failing accept() pauses and resumes."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme

from ocpp_sansio.adapters import ServerOptions, StationOptions, WsOptions
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.events import Disconnected
from ocpp_sansio.messages import v201

BOOT_TIME = datetime(2026, 1, 1, tzinfo=UTC)
QUIET = WsOptions(ping_interval=0, close_timeout=1, handshake_timeout=5)
BOOT = v201.BootNotificationRequest(
    charging_station=v201.ChargingStation(model="M", vendor_name="V"),
    reason=v201.BootReasonEnum.POWER_UP,
)


class Csms:
    def __init__(self) -> None:
        self.disconnects: list[tuple[str, int]] = []
        self.heartbeats = 0

    def on_request(self, session: Any, request: Any) -> Any:
        now = BOOT_TIME
        if isinstance(request, v201.BootNotificationRequest):
            accepted = v201.RegistrationStatusEnum.ACCEPTED
            return v201.BootNotificationResponse(current_time=now, interval=300, status=accepted)
        self.heartbeats += 1
        return v201.HeartbeatResponse(current_time=now)

    def on_event(self, session: Any, event: Any) -> None:
        if isinstance(event, Disconnected):
            self.disconnects.append((session.identity, event.code))


def test_busy_tls_connections_stay_up() -> None:
    """Four stations heartbeat every 50 ms over TLS for 5 s; none drops, every heartbeat
    is answered. (Before one thread owned each socket, all four dropped within 20 s.)"""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    csms = Csms()
    answered = [0] * 4
    failures: list[BaseException] = []
    drops: list[Any] = []
    running = [True] * 4

    def station(index: int, port: int) -> None:
        options = StationOptions(ssl_context=client_context, ws_options=QUIET, max_attempts=1)

        def on_event(_station: Any, event: Any) -> None:
            if isinstance(event, Disconnected) and running[index]:
                drops.append(event)

        url = f"wss://127.0.0.1:{port}/ocpp/TLS{index}"
        try:
            with threads_adapter.connect(
                url, version="2.0.1", boot=BOOT, on_event=on_event, options=options
            ) as st:
                assert st.wait_registered(10)
                until = time.monotonic() + 5.0
                while time.monotonic() < until:
                    st.call(v201.HeartbeatRequest(), timeout=5)
                    answered[index] += 1
                    time.sleep(0.05)
                running[index] = False
        except BaseException as error:
            failures.append(error)

    options = ServerOptions(ssl_context=server_context, ws_options=QUIET)
    with threads_adapter.serve(csms, options=options) as server:
        threads = [
            threading.Thread(target=station, args=(index, server.port)) for index in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert drops == []
    assert failures == []
    # Each station left on its own, in order, once its five seconds were over.
    assert sorted(csms.disconnects) == [(f"TLS{index}", 1000) for index in range(4)]
    assert all(count >= 40 for count in answered), answered
    assert csms.heartbeats == sum(answered)


def test_idle_connections_cost_no_cpu() -> None:
    """50 idle stations and their server in one process: the threads sleep until data or
    a deadline, so two seconds of idleness cost almost no CPU (polling every 50 ms, as
    before, woke 100 threads 20 times a second)."""
    options = StationOptions(ws_options=QUIET)
    with threads_adapter.serve(Csms(), options=ServerOptions(ws_options=QUIET)) as server:
        stations = [
            threads_adapter.connect(
                f"ws://127.0.0.1:{server.port}/ocpp/IDLE{index}",
                version="2.0.1",
                boot=BOOT,
                options=options,
            )
            for index in range(50)
        ]
        entered = [manager.__enter__() for manager in stations]
        try:
            assert all(st.wait_registered(10) for st in entered)
            time.sleep(0.2)
            started = time.process_time()
            time.sleep(2.0)
            spent = time.process_time() - started
        finally:
            for manager in stations:
                manager.__exit__(None, None, None)
    assert spent < 0.1, f"{spent:.3f} s of CPU for 2 s of idle connections"


CHILD = textwrap.dedent(
    """
    import os, resource, sys, time
    from ocpp_sansio.adapters import ServerOptions, WsOptions
    from ocpp_sansio.adapters import threads

    class Csms:
        def on_request(self, session, request):
            from datetime import UTC, datetime
            from ocpp_sansio.messages import v201
            return v201.BootNotificationResponse(
                current_time=datetime.now(UTC), interval=300, status="Accepted"
            )

    options = ServerOptions(ws_options=WsOptions(ping_interval=0, handshake_timeout=60))
    with threads.serve(Csms(), options=options) as server:
        used = len(os.listdir("/proc/self/fd"))
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 10, hard))
        print(server.port, flush=True)
        sys.stdin.read()
    """
)


def test_the_accept_loop_pauses_when_out_of_descriptors_and_resumes() -> None:
    """A server out of file descriptors (EMFILE) keeps listening: once descriptors are
    free again, a new station is served."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        port = int(child.stdout.readline())
        hogs = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        time.sleep(1.0)  # the server accepts what it can, then accept() fails with EMFILE
        for hog in hogs:
            hog.close()
        with threads_adapter.connect(
            f"ws://127.0.0.1:{port}/ocpp/AFTER",
            version="2.0.1",
            boot=BOOT,
            options=StationOptions(ws_options=QUIET),
        ) as station:
            assert station.wait_registered(15)
        assert child.poll() is None
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(20)
        errors = child.stderr.read() if child.stderr else ""
    assert "accept failed" in errors and "Too many open files" in errors, errors
    assert os.name == "posix"


def _blocked_signals(thread: threading.Thread) -> set[signal.Signals]:
    """The signals ``thread`` blocks, read from Linux's /proc."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        mask = next(int(line.split()[1], 16) for line in status if line.startswith("SigBlk:"))
    return {number for number in signal.Signals if mask & (1 << (number - 1))}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_the_adapter_threads_leave_stop_signals_to_the_main_thread() -> None:
    """SIGINT and SIGTERM reach the main thread, where Python runs their handlers: every
    thread the adapter starts (accept, connection, request, event, station) blocks them.
    Before, a busy adapter thread could take a SIGTERM meant for a main thread blocked in
    ``serve_forever()``, which then slept on (the demo CSMS ignored one SIGTERM in five
    under load)."""
    held = threading.Event()
    seen: dict[str, threading.Thread] = {}

    class Holding(Csms):
        def on_request(self, session: Any, request: Any) -> Any:
            if isinstance(request, v201.HeartbeatRequest):
                held.wait(10)
            return super().on_request(session, request)

        def on_event(self, session: Any, event: Any) -> None:
            seen.setdefault("event", threading.current_thread())

    main_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    options = StationOptions(ws_options=QUIET)
    with threads_adapter.serve(Holding(), options=ServerOptions(ws_options=QUIET)) as server:
        url = f"ws://127.0.0.1:{server.port}/ocpp/SIGNALS"
        with threads_adapter.connect(url, version="2.0.1", boot=BOOT, options=options) as st:
            assert st.wait_registered(10)
            caller = threading.Thread(target=st.call, args=(v201.HeartbeatRequest(), 10))
            caller.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                t.name == "ocpp-request" for t in threading.enumerate()
            ):
                time.sleep(0.01)
            for thread in threading.enumerate():
                if thread.name.startswith("ocpp-"):
                    seen.setdefault(thread.name, thread)
            try:
                assert {"ocpp-accept", "ocpp-connection", "ocpp-request", "ocpp-station"} <= set(
                    seen
                ), sorted(seen)
                for name, thread in seen.items():
                    if thread.is_alive():
                        assert {signal.SIGINT, signal.SIGTERM} <= _blocked_signals(thread), name
            finally:
                held.set()
                caller.join(10)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == main_mask
