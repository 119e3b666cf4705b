"""The ``ocpp-sansio`` command: a demo CSMS, simulated stations, a load generator and a
self-contained demo, each on the trio, asyncio or threads adapter.

The same application code runs everywhere: ``DemoCsms``'s flows answer for the CSMS and
``SimulatedStation`` is the station (both free of IO); what differs per adapter is only
the few lines that open a server or a station connection, here. Frames reach the console
through the adapters' frame observer. SIGINT and SIGTERM are a requested stop on every
adapter: every connection closes in order, the command prints one line and its summary
and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import signal
import ssl
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

import attrs

from ocpp_sansio.errors import MissingExtraError, needs_extra

with needs_extra("cli", needed_by="the ocpp-sansio command"):
    import anyio

from ocpp_sansio import __version__
from ocpp_sansio.adapters import (
    DEFAULT_VERSIONS,
    Backoff,
    Connected,
    ConnectFailed,
    Disconnected,
    OcppCallError,
    ServerOptions,
    StationOptions,
    WsOptions,
    uuid_ids,
)
from ocpp_sansio.adapters._ws import Endpoint  # (parses the URL whose identity `load` numbers)
from ocpp_sansio.apps.demo_csms import BOOT_STATUSES, EXERCISE, BootAnswered, DemoCsms
from ocpp_sansio.apps.simulator import RebootRequested, SimulatedStation
from ocpp_sansio.cli.transfers import RealTransfers
from ocpp_sansio.events import (
    Event,
    ProtocolViolation,
    RegistrationChanged,
    RequestRefused,
)
from ocpp_sansio.frames import VERSIONS
from ocpp_sansio.store import open_csms_store, open_station_store

from .console import FrameLog, Progress, percentiles

ADAPTERS = ("trio", "asyncio", "threads")
#: Pause between the demo CSMS's requests to one station (s).
EXERCISE_PAUSE = 0.6
DEMO_VERSIONS = ("1.6", "2.0.1", "2.1")


# --- what every command shares -------------------------------------------------------------------


def _adapter(name: str) -> Any:
    return importlib.import_module(f"ocpp_sansio.adapters.{name}")


def _wall_clock(adapter: str) -> Callable[[float], datetime]:
    """The adapter's own wall clock (its clock read as UTC); call it under that adapter."""
    clock: Callable[[float], datetime] = _adapter(adapter).wall_clock()
    return clock


def _system_wall_clock(_now: float) -> datetime:
    """The demo CSMS's wall clock: the system's, whatever the adapter's clock reads."""
    return datetime.now(UTC)


def _frame_observer(log: FrameLog | None) -> Any:
    """A station's frame observer printing each frame, or None without a console."""
    if log is None:
        return None

    def observe(direction: str, identity: str, version: str, text: str, _: datetime) -> None:
        log.frame(identity, "station" if direction == "sent" else "csms", text)

    return observe


def _note_event(log: FrameLog | None, identity: str, event: Event) -> None:
    """A line for the events that are not frames (frames are logged as they cross)."""
    if log is None:
        return
    if isinstance(event, Connected):
        log.note(identity, f"connected (OCPP {event.version})")
    elif isinstance(event, Disconnected):
        reason = f" {event.reason}" if event.reason else ""
        log.note(identity, f"disconnected ({event.code}{reason})")
    elif isinstance(event, ConnectFailed):
        retry = "" if event.error is None else f": {event.error}"
        log.note(identity, f"connection attempt failed{retry}")
    elif isinstance(event, RegistrationChanged):
        log.note(identity, f"registration {event.status.value} (interval {event.interval:g} s)")
    elif isinstance(event, RebootRequested):
        log.note(identity, f"rebooting ({event.reason})")
    elif isinstance(event, ProtocolViolation):
        answered = "answered" if event.answered else "not answered"
        log.note(identity, f"protocol violation ({answered}): {event.error}")
    elif isinstance(event, RequestRefused):
        code = event.error_code or "no answer"
        log.note(identity, f"refused {event.action} ({code}): {event.rule}")


def _ssl_context(cafile: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=cafile) if cafile else None


class _StopRequested(Exception):
    """SIGINT or SIGTERM while a threads-adapter command runs."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _run_async(adapter: str, main: Callable[[], Awaitable[None]]) -> str | None:
    """Run ``main`` under ``adapter`` until it returns or SIGINT/SIGTERM stops it: then it
    is cancelled, which closes every connection in order. The signal's name, if any."""
    stopped: list[str] = []

    async def guarded() -> None:
        async with anyio.create_task_group() as tasks:

            async def watch() -> None:
                with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                    async for number in signals:
                        stopped.append(signal.Signals(number).name)
                        tasks.cancel_scope.cancel()
                        return

            tasks.start_soon(watch)
            await main()
            tasks.cancel_scope.cancel()

    try:
        anyio.run(guarded, backend=adapter, backend_options=_backend_options(adapter))
    except* KeyboardInterrupt:  # Ctrl-C before the signal receiver was in place
        stopped.append("SIGINT")
    return stopped[0] if stopped else None


def _backend_options(adapter: str) -> dict[str, Any]:
    """asyncio runs on uvloop when it is installed (the ``fast`` extra): the same
    protocols and transports, a quarter less CPU per message for a CSMS."""
    if adapter != "asyncio":
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def _tune_collector() -> None:
    """For a CSMS holding thousands of stations, once it listens: what start-up made
    (modules, classes: ~100,000 objects) is never garbage, so ``gc.freeze()`` takes it
    out of the collector's full passes; every connection adds ~35 objects that live as
    long as it does, and a first threshold ten times the default lets far fewer passes
    run while a storm of stations connects (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 10, 10)


def _run_blocking(main: Callable[[], None]) -> str | None:
    """Run ``main`` (threads adapter) until it returns or SIGINT/SIGTERM stops it: the
    signal unwinds ``main``'s ``with`` blocks, which close in order. The signal's name."""

    def stop(number: int, _frame: Any) -> NoReturn:
        raise _StopRequested(signal.Signals(number).name)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        main()
    except _StopRequested as requested:
        return str(requested)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return None


def _notes(args: argparse.Namespace, out: TextIO) -> TextIO:
    """Where the closing lines go: stdout, or stderr when stdout carries only JSON lines."""
    return sys.stderr if getattr(args, "json_log", False) else out


def _stopped_by(out: TextIO, name: str | None) -> None:
    if name is not None:
        out.write(f"stopping ({name}): closing the connections\n")
        out.flush()


# --- the CSMS ------------------------------------------------------------------------------------


class _CsmsApp:
    """What the CSMS glue of every adapter shares: DemoCsms answers through its flows, a
    line per event, and the demonstration started once per station after its first
    accepted boot."""

    def __init__(self, demo: DemoCsms, log: FrameLog | None, exercise: bool) -> None:
        self.demo = demo
        self.log = log
        self.exercise = exercise
        self._exercised: set[str] = set()
        self._lock = threading.Lock()

    @property
    def listens(self) -> bool:
        """Whether any event matters: logged, or starting the demonstration."""
        return self.log is not None or self.exercise

    def seen(self, session: Any, event: Any) -> bool:
        """Log ``event``; True when it is time to exercise the station."""
        _note_event(self.log, session.identity, event)
        if not (self.exercise and isinstance(event, BootAnswered) and event.status == "Accepted"):
            return False
        with self._lock:
            key = session.identity.casefold()
            first = key not in self._exercised
            self._exercised.add(key)
        return first

    def step(self, session: Any, index: int) -> Any:
        """The request of demonstration step ``index``, or None to skip it."""
        return EXERCISE[index](self.demo, session.identity, session.version)

    def failed(self, session: Any, request: Any, error: Exception) -> None:
        """A CALLERROR is a frame (logged as it crossed); anything else gets a line."""
        if self.log is not None and not isinstance(error, OcppCallError):
            self.log.note(session.identity, f"{type(request).__name__} failed: {error}")


class _AsyncCsmsHandler(_CsmsApp):
    """The handler for the trio and asyncio adapters (run under anyio)."""

    def __init__(
        self, demo: DemoCsms, log: FrameLog | None, exercise: bool, tasks: anyio.abc.TaskGroup
    ) -> None:
        super().__init__(demo, log, exercise)
        self.tasks = tasks

    async def on_event(self, session: Any, event: Any) -> None:
        if self.seen(session, event):
            self.tasks.start_soon(self._exercise, session)

    async def _exercise(self, session: Any) -> None:
        for index in range(len(EXERCISE)):
            await anyio.sleep(EXERCISE_PAUSE)
            request = self.step(session, index)
            if request is not None:
                try:
                    await session.call(request)
                except Exception as error:
                    self.failed(session, request, error)


class _ThreadCsmsHandler(_CsmsApp):
    """The handler for the threads adapter: the same answers, blocking calls."""

    def on_event(self, session: Any, event: Any) -> None:
        if self.seen(session, event):
            threading.Thread(target=self._exercise, args=(session,), daemon=True).start()

    def _exercise(self, session: Any) -> None:
        for index in range(len(EXERCISE)):
            time.sleep(EXERCISE_PAUSE)
            request = self.step(session, index)
            if request is not None:
                try:
                    session.call(request)
                except Exception as error:
                    self.failed(session, request, error)


@attrs.frozen
class Deadlines:
    """When the demo CSMS closes a silent station: a ping every ``ping_interval`` seconds
    left unanswered for 30 s (0: no pings), or no BootNotification within
    ``boot_timeout`` seconds of connecting (0: no limit)."""

    ping_interval: float = 60.0
    boot_timeout: float = 60.0


def _serve(
    adapter: str,
    handler: _CsmsApp,
    demo: DemoCsms,
    host: str,
    port: int,
    deadlines: Deadlines = Deadlines(),
) -> Any:
    """The adapter's server hosting the demo's cores (with their store) and flows, its
    frames on the demo's console; a silent station is closed (``deadlines``). A handler no
    event matters to (``--quiet`` without ``--exercise``) is not given to the server: no
    session then keeps a task and a queue to pass events on (~5 KiB per station)."""
    options = ServerOptions(
        core_factory=demo.core,
        flows=demo.flows,
        observer=demo.observe if demo.log is not None else None,
        ws_options=WsOptions(ping_interval=deadlines.ping_interval),
        backlog=4096,
        boot_timeout=deadlines.boot_timeout,
    )
    return _adapter(adapter).serve(
        handler if handler.listens else _Quiet(), host, port, options=options
    )


class _Quiet:
    """A handler with nothing to hear: the flows answer every request."""


def _deadlines(args: argparse.Namespace) -> Deadlines:
    return Deadlines(ping_interval=args.ping_interval, boot_timeout=args.boot_timeout)


@contextlib.asynccontextmanager
async def _async_csms(
    adapter: str,
    demo: DemoCsms,
    log: FrameLog | None,
    host: str,
    port: int,
    *,
    exercise: bool,
    deadlines: Deadlines = Deadlines(),
) -> AsyncIterator[Any]:
    async with anyio.create_task_group() as tasks:
        handler = _AsyncCsmsHandler(demo, log, exercise, tasks)
        async with _serve(adapter, handler, demo, host, port, deadlines) as server:
            yield server
        tasks.cancel_scope.cancel()


def _listening(args: argparse.Namespace, out: TextIO, port: int, cluster: str = "") -> None:
    """Where the CSMS listens: a readable line, or with ``--json-log`` a JSON object like
    every other line on stdout (so the output stays one JSON object per line)."""
    url = f"ws://{args.host}:{port}/"
    if getattr(args, "json_log", False):
        where = {"listening": url, "adapter": args.adapter, "versions": list(DEFAULT_VERSIONS)}
        if args.cluster is not None:
            where |= {"cluster": args.cluster, "node": args.node}
        line = json.dumps(where)
    else:
        versions = ", ".join(DEFAULT_VERSIONS)
        line = (
            f"CSMS listening on {url}<station identity> (adapter {args.adapter};"
            f" OCPP {versions}){cluster}"
        )
    out.write(line + "\n")
    out.flush()


def _demo_csms(
    args: argparse.Namespace, log: FrameLog | None, transaction_ids: Any = None
) -> DemoCsms:
    return DemoCsms(
        boot_status=BOOT_STATUSES[args.boot],
        heartbeat_interval=args.heartbeat_interval,
        log=log,
        wall_clock=_system_wall_clock,
        store=open_csms_store(args.store) if args.store else None,
        transaction_ids=transaction_ids,
    )


def _cluster_misuse(args: argparse.Namespace) -> str | None:
    """Why ``csms --cluster`` cannot run with these options, or None."""
    if args.cluster is None:
        return "--node needs --cluster" if args.node is not None else None
    if args.node is None:
        return "--cluster needs --node NAME (this node's name in the cluster)"
    if args.adapter == "threads":
        return "--cluster runs on the trio or asyncio adapter, not threads"
    if args.store:
        return "--store and --cluster do not combine: a cluster keeps stations' state in its engine"
    return None


def run_csms(args: argparse.Namespace, out: TextIO, log: FrameLog | None) -> int:
    misuse = _cluster_misuse(args)
    if misuse is not None:
        print(f"ocpp-sansio csms: {misuse}", file=sys.stderr)
        return 2
    if args.cluster is not None:
        return _run_cluster_csms(args, out, log)
    demo = _demo_csms(args, log)
    deadlines = _deadlines(args)
    started = time.monotonic()
    seen: list[Any] = []
    if args.adapter == "threads":
        handler = _ThreadCsmsHandler(demo, log, exercise=args.exercise)

        def serve_blocking() -> None:
            with _serve("threads", handler, demo, args.host, args.port, deadlines) as server:
                seen.append(server)
                _listening(args, out, server.port)
                _tune_collector()
                if args.duration is None:
                    server.serve_forever()
                else:
                    time.sleep(args.duration)

        stopped = _run_blocking(serve_blocking)
    else:

        async def main() -> None:
            async with _async_csms(
                args.adapter,
                demo,
                log,
                args.host,
                args.port,
                exercise=args.exercise,
                deadlines=deadlines,
            ) as server:
                seen.append(server)
                _listening(args, out, server.port)
                _tune_collector()
                if args.duration is None:
                    await anyio.sleep_forever()
                await anyio.sleep(args.duration)

        stopped = _run_async(args.adapter, main)
    return _csms_stopped(args, out, stopped, seen, started)


def _csms_stopped(
    args: argparse.Namespace, out: TextIO, stopped: str | None, seen: list[Any], started: float
) -> int:
    notes = _notes(args, out)
    _stopped_by(notes, stopped)
    stations = len(seen[0].sessions) if seen else 0
    elapsed = time.monotonic() - started
    notes.write(f"CSMS stopped after {elapsed:.1f} s; {stations} stations seen\n")
    return 0


def _run_cluster_csms(args: argparse.Namespace, out: TextIO, log: FrameLog | None) -> int:
    """``csms --cluster URL --node NAME``: the demo CSMS as one node of a cluster (its 1.6
    transaction ids unique across the cluster); one line and status 1 when the engine
    cannot be reached."""
    from .cluster import cluster_modules, joined, node_of

    try:
        cluster_modules()
    except MissingExtraError as missing:
        print(f"ocpp-sansio csms: {missing}", file=sys.stderr)
        return 2
    started = time.monotonic()
    seen: list[Any] = []
    unreachable: list[BaseException] = []
    where = f" as node {args.node} of the cluster at {args.cluster}"

    from ocpp_sansio.adapters.cluster import ClusterError

    async def main() -> None:
        try:
            async with joined(args.adapter, args.cluster, args.node) as cluster:
                demo = _demo_csms(args, log, transaction_ids=cluster.ids.next_id)
                async with (
                    _async_csms(
                        args.adapter,
                        demo,
                        log,
                        args.host,
                        args.port,
                        exercise=args.exercise,
                        deadlines=_deadlines(args),
                    ) as server,
                    node_of(cluster, server),
                ):
                    seen.append(server)
                    _listening(args, out, server.port, where)
                    _tune_collector()
                    if args.duration is None:
                        await anyio.sleep_forever()
                    await anyio.sleep(args.duration)
        except* ClusterError as failed:  # (trio's nurseries wrap it in groups)
            if seen:
                raise
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            unreachable.append(first)

    stopped = _run_async(args.adapter, main)
    if unreachable:
        print(
            f"ocpp-sansio csms: cannot join the cluster at {args.cluster}: {unreachable[0]}",
            file=sys.stderr,
        )
        return 1
    return _csms_stopped(args, out, stopped, seen, started)


# --- stations ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _async_station(
    adapter: str,
    url: str,
    core: Any,
    on_event: Callable[[Any, Event], Any],
    *,
    password: str | None,
    ssl_context: ssl.SSLContext | None,
    backoff: Backoff,
    observer: Any = None,
    flows: Any = None,
) -> AsyncIterator[Any]:
    """The adapter's station driving ``core`` (the simulator brings its own). A station
    life ends by cancellation; ``connect`` then closes in order (1000) on either loop."""
    options = StationOptions(
        auth=password, ssl_context=ssl_context, backoff=backoff, observer=observer, flows=flows
    )
    async with _adapter(adapter).connect(
        url, core=core, on_event=on_event, options=options
    ) as station:
        yield station


def _thread_station(
    url: str,
    core: Any,
    on_event: Callable[[Any, Event], Any],
    *,
    password: str | None,
    ssl_context: ssl.SSLContext | None,
    backoff: Backoff,
    observer: Any = None,
    flows: Any = None,
) -> contextlib.AbstractContextManager[Any]:
    options = StationOptions(
        auth=password, ssl_context=ssl_context, backoff=backoff, observer=observer, flows=flows
    )
    return _adapter("threads").connect(  # type: ignore[no-any-return]
        url, core=core, on_event=on_event, options=options
    )


class _StationLife:
    """One simulated station across its reboots, on any adapter."""

    def __init__(
        self,
        args: argparse.Namespace,
        identity: str,
        url: str,
        log: FrameLog | None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.args = args
        self.identity = identity
        self.url = url
        self.log = log
        self.backoff = backoff or Backoff()
        self.failed_attempts = 0
        self.stations: list[SimulatedStation] = []

    def first(self, wall_clock: Callable[[float], datetime]) -> SimulatedStation:
        station = SimulatedStation(
            self.identity,
            self.args.version,
            connectors=self.args.connectors,
            wall_clock=wall_clock,
            id_generator=uuid_ids,
            transfers=RealTransfers(self.identity),
            store=self._store(),
        )
        self.stations.append(station)
        return station

    def _store(self) -> Any:
        """``station --store PATH``: the station's SQLite file (docs/store.md)."""
        path = getattr(self.args, "store", None)
        return open_station_store(path, self.identity, self.args.version) if path else None

    def next(self, station: SimulatedStation) -> SimulatedStation:
        station = station.rebooted()
        self.stations.append(station)
        return station

    def seen(self, event: Event) -> None:
        if isinstance(event, ConnectFailed):
            self.failed_attempts += 1
        _note_event(self.log, self.identity, event)

    async def run_async(self, adapter: str) -> None:
        """Run until cancelled, rebooting when the simulator asks to."""
        station = self.first(_wall_clock(adapter))
        reboot = anyio.Event()

        async def on_event(_session: Any, event: Event) -> None:
            self.seen(event)
            if isinstance(event, RebootRequested):
                reboot.set()

        while True:
            async with _async_station(
                adapter,
                self.url,
                station.core,
                on_event,
                password=self.args.password,
                ssl_context=_ssl_context(self.args.cafile),
                backoff=self.backoff,
                observer=_frame_observer(self.log),
                flows=station.flows,
            ):
                await reboot.wait()
            reboot = anyio.Event()
            station = self.next(station)

    def run_blocking(self, stop: threading.Event) -> None:
        station = self.first(_wall_clock("threads"))
        reboot = threading.Event()

        def on_event(_session: Any, event: Event) -> None:
            self.seen(event)
            if isinstance(event, RebootRequested):
                reboot.set()

        while not stop.is_set():
            with _thread_station(
                self.url,
                station.core,
                on_event,
                password=self.args.password,
                ssl_context=_ssl_context(self.args.cafile),
                backoff=self.backoff,
                observer=_frame_observer(self.log),
                flows=station.flows,
            ):
                while not (reboot.is_set() or stop.wait(0.05)):
                    pass
            if reboot.is_set():
                reboot.clear()
                station = self.next(station)


def run_station(args: argparse.Namespace, out: TextIO, log: FrameLog | None) -> int:
    identity = Endpoint.from_url(args.url).identity
    life = _StationLife(args, identity, args.url, log)
    started = time.monotonic()
    stopped = _run_lives(args.adapter, [life], args.duration)
    notes = _notes(args, out)
    _stopped_by(notes, stopped)
    accepted = any(station.accepted_at is not None for station in life.stations)
    notes.write(
        f"station {identity} stopped after {time.monotonic() - started:.1f} s; "
        f"{'accepted' if accepted else 'never accepted'}, "
        f"{life.failed_attempts} failed connection attempts\n"
    )
    return 0 if accepted or args.duration is None or stopped else 1


def _run_lives(
    adapter: str,
    lives: Sequence[_StationLife],
    duration: float | None,
    *,
    ramp: float = 0.0,
    progress: Callable[[], None] | None = None,
) -> str | None:
    """Run every station for ``duration`` seconds (None: until SIGINT or SIGTERM, whose
    name is returned)."""
    if adapter == "threads":
        stop = threading.Event()
        threads: list[threading.Thread] = []

        def run_threads() -> None:
            try:
                for index, life in enumerate(lives):
                    if ramp:
                        time.sleep(ramp / len(lives) if index else 0)
                    thread = threading.Thread(target=life.run_blocking, args=(stop,), daemon=True)
                    thread.start()
                    threads.append(thread)
                deadline = None if duration is None else time.monotonic() + duration
                while deadline is None or time.monotonic() < deadline:
                    if progress is not None:
                        progress()
                    time.sleep(0.25)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(10)

        return _run_blocking(run_threads)

    async def main() -> None:
        with anyio.move_on_after(duration if duration is not None else float("inf")):
            async with anyio.create_task_group() as tasks:
                if progress is not None:
                    tasks.start_soon(_show_progress, progress)
                for index, life in enumerate(lives):
                    if ramp and index:
                        await anyio.sleep(ramp / len(lives))
                    tasks.start_soon(life.run_async, adapter)

    return _run_async(adapter, main)


async def _show_progress(progress: Callable[[], None]) -> None:
    while True:
        progress()
        await anyio.sleep(0.25)


# --- load ----------------------------------------------------------------------------------------


def run_load(args: argparse.Namespace, out: TextIO, log: FrameLog | None) -> int:
    endpoint = Endpoint.from_url(args.url)
    prefix = args.url.rstrip("/")
    width = len(str(args.stations))
    backoff = Backoff(minimum=1.0, random_range=2.0, repeat_times=3)
    lives = [
        _StationLife(
            args,
            f"{endpoint.identity}-{n:0{width}d}",
            f"{prefix}-{n:0{width}d}",
            None,
            backoff=backoff,
        )
        for n in range(1, args.stations + 1)
    ]
    bar = Progress(sys.stderr, args.stations)
    started = time.monotonic()

    def progress() -> None:
        connected = sum(1 for life in lives if any(s.first_connected_at for s in life.stations))
        accepted = sum(1 for life in lives if any(s.accepted_at for s in life.stations))
        failed = sum(life.failed_attempts for life in lives)
        bar.show(accepted, f"accepted, {connected} connected, {failed} failed attempts")

    stopped = _run_lives(args.adapter, lives, args.duration, ramp=args.ramp, progress=progress)
    progress()
    bar.finish()
    _stopped_by(out, stopped)
    elapsed = time.monotonic() - started
    status = _summary(out, lives, elapsed)
    return 0 if stopped else status


def _summary(out: TextIO, lives: Sequence[_StationLife], elapsed: float) -> int:
    stations = [s for life in lives for s in life.stations]
    connected = sum(1 for life in lives if any(s.first_connected_at for s in life.stations))
    accepted = sum(1 for life in lives if any(s.accepted_at for s in life.stations))
    boots = [
        s.accepted_at - s.first_connected_at
        for s in stations
        if s.accepted_at is not None and s.first_connected_at is not None
    ]
    latencies = [sample for s in stations for sample in s.latencies]
    failed_attempts = sum(life.failed_attempts for life in lives)
    boot_p = percentiles(boots, (50, 90, 99))
    call_p = percentiles(latencies, (50, 90, 99))
    out.write(
        f"stations: {len(lives)}  connected: {connected}  accepted: {accepted}  "
        f"never accepted: {len(lives) - accepted}  failed connection attempts: "
        f"{failed_attempts}\n"
        f"boot (connect to Accepted) ms: p50 {boot_p[0] * 1e3:.1f}  p90 {boot_p[1] * 1e3:.1f}"
        f"  p99 {boot_p[2] * 1e3:.1f}\n"
        f"requests answered: {len(latencies)} in {elapsed:.1f} s "
        f"({len(latencies) / max(elapsed, 1e-9):.1f}/s); latency ms: p50 {call_p[0] * 1e3:.1f}"
        f"  p90 {call_p[1] * 1e3:.1f}  p99 {call_p[2] * 1e3:.1f}\n"
    )
    out.flush()
    return 0 if accepted == len(lives) else 1


# --- demo ----------------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace, out: TextIO, log: FrameLog | None) -> int:
    demo = DemoCsms(heartbeat_interval=args.heartbeat_interval, wall_clock=_system_wall_clock)
    host = "127.0.0.1"
    _notes(args, out).write(
        f"Demo: a CSMS and {args.stations} simulated stations on the {args.adapter} adapter, "
        f"for {args.duration:g} s. The CSMS answers every station request and, once a station "
        "is accepted, reads its configuration, triggers a status, starts and stops a "
        "transaction remotely and sends a DataTransfer nobody knows.\n"
    )
    out.flush()

    def lives_for(port: int) -> list[_StationLife]:
        lives = []
        for n in range(1, args.stations + 1):
            version = DEMO_VERSIONS[(n - 1) % len(DEMO_VERSIONS)]
            station_args = argparse.Namespace(
                version=version, connectors=1, password=None, cafile=None
            )
            identity = f"CS{n}-{version.replace('.', '')}"
            url = f"ws://{host}:{port}/ocpp/{identity}"
            lives.append(_StationLife(station_args, identity, url, log))
        return lives

    if args.adapter == "threads":
        handler = _ThreadCsmsHandler(demo, None, exercise=True)
        with _serve("threads", handler, demo, host, 0) as server:
            stopped = _run_lives("threads", lives_for(server.port), args.duration)
    else:

        async def main() -> None:
            async with _async_csms(args.adapter, demo, None, host, 0, exercise=True) as server:
                with anyio.move_on_after(args.duration):
                    async with anyio.create_task_group() as tasks:
                        for life in lives_for(server.port):
                            tasks.start_soon(life.run_async, args.adapter)

        stopped = _run_async(args.adapter, main)
    notes = _notes(args, out)
    _stopped_by(notes, stopped)
    notes.write("demo finished\n")
    return 0


# --- the parser ----------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _not_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _station_url(text: str) -> str:
    """A ws:// or wss:// URL ending in a station identity (the CSMS needs one)."""
    try:
        endpoint = Endpoint.from_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not endpoint.identity:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no station identity: end it with /<identity>, "
            "e.g. ws://127.0.0.1:9000/CS001"
        )
    return text


class _Parser(argparse.ArgumentParser):
    """A mistake on the command line (an unknown option, a bad value) is one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cluster_url(text: str) -> str:
    from .cluster import cluster_url

    return cluster_url(text)


def run_call(args: argparse.Namespace, out: TextIO, log: FrameLog | None) -> int:
    from .cluster import run_call as call

    return call(args, out)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be within 0..65535, got {text}")
    return value


def _add_adapter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapter",
        choices=ADAPTERS,
        default="trio",
        help="the IO adapter to run on (default: %(default)s)",
    )


def _add_logging(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json-log",
        action="store_true",
        help="print one JSON object per frame (time, station, from, type, id, action, "
        "payload) instead of readable lines",
    )
    group.add_argument("--quiet", action="store_true", help="do not log frames")


def _add_station_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        required=True,
        choices=VERSIONS,
        help="the OCPP version to speak (the only subprotocol offered)",
    )
    parser.add_argument(
        "--connectors",
        type=_positive_int,
        default=1,
        metavar="N",
        help="1.6: connectors 1..N; 2.0.1/2.1: EVSEs 1..N with one connector (id 1) each "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--password",
        help="HTTP Basic password (security profiles 1 and 2); the username is the identity",
    )
    parser.add_argument(
        "--cafile",
        metavar="PEM",
        help="certificates to trust for wss:// URLs (default: the system's)",
    )
    _add_adapter(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ocpp-sansio",
        description="OCPP-J 1.6, 2.0.1 and 2.1 on a sans-IO core: run a demo central "
        "system, simulated charging stations, a load test, or a self-contained demo.",
        epilog="Run 'ocpp-sansio COMMAND --help' for a command's options. Documentation: "
        "docs/ in the source repository.",
    )
    parser.add_argument("--version", action="version", version=f"ocpp-sansio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    csms = commands.add_parser(
        "csms",
        help="run a demo central system",
        description="A demo central system at ws://HOST:PORT/<station identity> offering "
        "ocpp2.1, ocpp2.0.1 and ocpp1.6. It answers BootNotification with --boot and "
        "--heartbeat-interval, and every other station request sensibly: Authorize accepts "
        "every identifier, 1.6 transactions get ids, notifications are acknowledged, "
        "DataTransfer for an unknown vendor gets UnknownVendorId. It logs one line per "
        "frame. Stop it with Ctrl-C.",
    )
    csms.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    csms.add_argument(
        "--port",
        type=_port,
        default=9000,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    csms.add_argument(
        "--boot",
        choices=tuple(BOOT_STATUSES),
        default="accept",
        help="answer BootNotification with Accepted, Pending or Rejected (default: %(default)s)",
    )
    csms.add_argument(
        "--heartbeat-interval",
        type=int,
        default=300,
        metavar="SECONDS",
        help="interval in the BootNotification answer: the heartbeat interval when accepted, "
        "the wait before the next boot otherwise (default: %(default)s)",
    )
    csms.add_argument(
        "--exercise",
        action="store_true",
        help="once a station is accepted, read its configuration, trigger a status, start "
        "and stop a transaction remotely and send an unknown DataTransfer (as the demo does)",
    )
    csms.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until interrupted)",
    )
    csms.add_argument(
        "--ping-interval",
        type=_not_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="ping each station this often and close it when a pong is 30 s late; 0 turns "
        "pings off (default: %(default)s)",
    )
    csms.add_argument(
        "--boot-timeout",
        type=_not_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="close a station that sent no BootNotification within this many seconds of "
        "connecting (one back on a session the CSMS knows has none); 0: no limit "
        "(default: %(default)s)",
    )
    csms.add_argument(
        "--store",
        metavar="PATH",
        help="keep the stations' registrations, answers and open transactions in this SQLite "
        "file, so a restarted CSMS serves stations that resume without a boot (default: "
        "in memory)",
    )
    csms.add_argument(
        "--cluster",
        metavar="URL",
        type=_cluster_url,
        help="run as one node of the CSMS cluster whose engine is at URL (nats://HOST:PORT): "
        "stations may connect to any node and move between nodes; `ocpp-sansio call` "
        "reaches them from any process (docs/cluster.md; trio or asyncio adapter)",
    )
    csms.add_argument(
        "--node", metavar="NAME", help="this node's name in the cluster (with --cluster)"
    )
    _add_adapter(csms)
    _add_logging(csms)
    csms.set_defaults(run=run_csms)

    call = commands.add_parser(
        "call",
        help="send one CSMS-initiated call to a station of a cluster",
        description="Sends ACTION with the JSON payload to the station IDENTITY through the "
        "cluster at --cluster, wherever the station is connected, and prints the answer's "
        "payload as JSON. Exit status: 0 answered; 2 usage (bad JSON, unknown action, a "
        "payload that breaks the schema, a version the station does not speak); 3 the "
        "station is not connected; 4 the station answered with a CALLERROR; 5 no answer in "
        "time; 6 the call was lost (its node or connection went away: it may have reached "
        "the station, and is not sent again); 7 the protocol forbids the call now; 8 the "
        "answer broke its schema; 9 the cluster engine cannot be reached; 1 another "
        "failure on the node.",
    )
    call.add_argument(
        "--cluster",
        metavar="URL",
        type=_cluster_url,
        required=True,
        help="the cluster's engine (nats://HOST:PORT)",
    )
    call.add_argument("identity", metavar="IDENTITY", help="the station identity")
    call.add_argument("action", metavar="ACTION", help="the OCPP action, e.g. Reset")
    call.add_argument(
        "payload", metavar="JSON", help='the request payload, e.g. \'{"type": "Soft"}\''
    )
    call.add_argument(
        "--version",
        choices=VERSIONS,
        default="",
        help="the OCPP version the payload is written for; checked here before sending "
        "(default: the version the station speaks)",
    )
    call.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the answer (default: %(default)s)",
    )
    call.set_defaults(run=run_call)

    station = commands.add_parser(
        "station",
        help="run one simulated charging station",
        description="A simulated charging station built on the protocol flows. It boots and "
        "obeys registration (Pending, Rejected, retries), heartbeats, reports connector "
        "status, reconnects with back-off without a new boot, and answers what the CSMS asks: "
        "TriggerMessage, configuration (1.6) or variables and reports (2.x), remote start and "
        "stop, reset (it reboots), firmware update with its notification sequence, "
        "diagnostics and logs, availability, unlock, local list and cache, reservations, "
        "data transfer. It logs one line per frame.",
    )
    station.add_argument(
        "--url",
        required=True,
        type=_station_url,
        help="ws:// or wss:// URL of the CSMS ending in the station identity, "
        "e.g. ws://127.0.0.1:9000/CS001",
    )
    _add_station_options(station)
    station.add_argument(
        "--store",
        metavar="PATH",
        help="keep the station's state in this SQLite file (a folder: IDENTITY.sqlite3 in "
        "it): killed and started again with the same PATH it delivers what it held, once "
        "(default: in memory, gone when it exits)",
    )
    station.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="exit after this many seconds (default: run until interrupted); the exit "
        "status is 1 when the station was never accepted",
    )
    _add_logging(station)
    station.set_defaults(run=run_station)

    load = commands.add_parser(
        "load",
        help="run many simulated stations at once",
        description="N simulated stations at once against one CSMS: identities are the URL's "
        "last segment with -1, -2, … appended. Shows a progress bar on stderr and prints a "
        "summary: connected, accepted, failures, boot time and request latency percentiles. "
        "The exit status is 1 when a station was never accepted (0 when stopped by "
        "SIGINT or SIGTERM).",
    )
    load.add_argument(
        "--url",
        required=True,
        type=_station_url,
        help="URL prefix, e.g. ws://127.0.0.1:9000/LOAD gives LOAD-1 … LOAD-N",
    )
    load.add_argument(
        "--stations", type=_positive_int, required=True, metavar="N", help="how many stations"
    )
    _add_station_options(load)
    load.add_argument(
        "--duration",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how long to run (default: %(default)s)",
    )
    load.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="spread the stations' first connections over this time (default: all at once)",
    )
    load.set_defaults(run=run_load)

    demo = commands.add_parser(
        "demo",
        help="run a CSMS and a few stations in this process and print their exchange",
        description="Starts the demo CSMS on a free loopback port and a few simulated "
        "stations (1.6, 2.0.1 and 2.1 in turn), lets the CSMS exercise each one, prints every "
        "frame, and stops after --duration.",
    )
    demo.add_argument(
        "--stations",
        type=_positive_int,
        default=3,
        metavar="N",
        help="how many stations (default: %(default)s)",
    )
    demo.add_argument(
        "--duration",
        type=_positive_float,
        default=8.0,
        metavar="SECONDS",
        help="how long to run (default: %(default)s)",
    )
    demo.add_argument(
        "--heartbeat-interval",
        type=int,
        default=3,
        metavar="SECONDS",
        help="heartbeat interval the CSMS gives the stations (default: %(default)s)",
    )
    demo.add_argument(
        "--json-log", action="store_true", help="print one JSON object per frame instead"
    )
    _add_adapter(demo)
    demo.set_defaults(run=run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = None
    if not getattr(args, "quiet", False) and args.command not in ("load", "call"):
        log = FrameLog(sys.stdout, json_lines=args.json_log)
    failure: BaseException | None = None
    try:
        try:
            return int(args.run(args, sys.stdout, log))
        except* OSError as failed:  # a port in use, no permission: one line, no traceback
            failure = failed.exceptions[0]
        print(f"ocpp-sansio: {failure}", file=sys.stderr)
        return 1
    finally:
        if log is not None:
            log.close()
