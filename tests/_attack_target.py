"""A CSMS under attack, in a process of its own (run by tests/_attackkit.py): ``serve()`` of
one adapter with the options the test gives, so the test can read the server's resident
memory, tasks, threads and descriptors while it attacks from outside.

Run: ``python tests/_attack_target.py CONFIG_JSON``. It prints ``port N`` once listening,
then answers one line of JSON per command read from stdin: ``stats``, ``clear`` (empty
``server.sessions``), ``quit``.

CONFIG: ``adapter`` (trio, asyncio, threads), ``server`` (ServerOptions fields), ``ws``
(WsOptions fields), ``tls`` (``{"cert": path, "key": path}``: TLS on), ``nofile`` (lower
RLIMIT_NOFILE to this many descriptors above those open once listening), ``slow``
(action -> seconds its handler sleeps).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import ssl
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp_sansio import registry
from ocpp_sansio.adapters import ServerOptions, WsOptions
from ocpp_sansio.testing.builders import minimal

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def answer(version: str, request: Any) -> Any:
    spec = registry(version).for_payload(request)
    fields: dict[str, Any] = {}
    if spec.name == "BootNotification":
        fields = {"status": "Accepted", "interval": 300, "current_time": NOW}
    elif spec.name == "Heartbeat":
        fields = {"current_time": NOW}
    assert spec.response is not None
    return minimal(spec.response, **fields)


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def main() -> None:
    config = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    adapter = config["adapter"]
    slow: dict[str, float] = config.get("slow", {})
    context = None
    if config.get("tls"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config["tls"]["cert"], config["tls"]["key"])
    options = ServerOptions(
        ws_options=WsOptions(**config.get("ws", {})), ssl_context=context, **config["server"]
    )
    if adapter == "threads":
        run_threads(options, slow, config.get("nofile"))
    else:
        run_async(adapter, options, slow, config.get("nofile"))


def listening(port: int, nofile: int | None) -> None:
    if nofile is not None:
        used = len(os.listdir("/proc/self/fd"))
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + nofile, hard))
    print(f"port {port}", flush=True)


def commands(
    run: Callable[[Callable[[], Any]], Any], server: Any, tasks: Callable[[], int]
) -> None:
    """Answer the test's commands (in a thread of its own); ``run(f)`` runs ``f`` where the
    server lives and returns its result."""

    def stats() -> dict[str, Any]:
        gc.collect()
        return {
            **proc_status(),
            "tasks": tasks(),
            "threads": threading.active_count(),
            "sessions": len(server.sessions),
            "links": len(server.links),
            "fds": len(os.listdir("/proc/self/fd")),
            "cpu": time.process_time(),
        }

    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            result = run(stats)
        elif command == "clear":
            result = run(lambda: server.sessions.clear() or {"cleared": True})
        else:
            break
        print(json.dumps(result), flush=True)


def run_threads(options: ServerOptions, slow: dict[str, float], nofile: int | None) -> None:
    from ocpp_sansio.adapters import threads

    class Csms:
        def on_request(self, session: Any, request: Any) -> Any:
            action = registry(session.version).for_payload(request).name
            if action in slow:
                time.sleep(slow[action])
            return answer(session.version, request)

        def on_event(self, session: Any, event: Any) -> None:
            pass

    with threads.serve(Csms(), options=options) as server:
        listening(server.port, nofile)

        def run(function: Callable[[], Any]) -> Any:
            with server.lock:
                return function()

        commands(run, server, threading.active_count)


def run_async(
    adapter: str, options: ServerOptions, slow: dict[str, float], nofile: int | None
) -> None:
    import anyio
    import anyio.from_thread

    module = __import__(f"ocpp_sansio.adapters.{adapter}", fromlist=["serve"])

    class Csms:
        async def on_request(self, session: Any, request: Any) -> Any:
            action = registry(session.version).for_payload(request).name
            if action in slow:
                await anyio.sleep(slow[action])
            return answer(session.version, request)

        async def on_event(self, session: Any, event: Any) -> None:
            pass

    def tasks() -> int:
        if adapter == "asyncio":
            import asyncio

            return len(asyncio.all_tasks())
        import trio

        def count(task: Any) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        return count(trio.lowlevel.current_root_task())

    async def serve() -> None:
        async with module.serve(Csms(), options=options) as server:
            listening(server.port, nofile)

            def run(function: Callable[[], Any]) -> Any:
                return anyio.from_thread.run_sync(function)

            await anyio.to_thread.run_sync(commands, run, server, tasks)

    anyio.run(serve, backend=adapter)


if __name__ == "__main__":
    main()
