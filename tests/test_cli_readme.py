"""README.md keeps its promises: exactly two commands, the test one the same as .ci/run's,
the three adapter examples run against each other (the trio CSMS serves the asyncio and
threads stations), with the port moved off 9000, and mypy --strict passes on them."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

from ocpp_sansio.adapters.asgi import OcppAsgi

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TIMEOUT = 15


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_exactly_two_commands_and_the_test_one_is_ci_s() -> None:
    commands = [block.strip() for block in blocks("sh")]
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    demo, suite = commands
    assert demo.endswith("ocpp-sansio demo")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert suite in ci


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_adapter_examples_run_against_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    trio_csms, asyncio_station, threads_station, asgi_csms = blocks("python")
    port = str(free_port())
    namespace: dict[str, Any] = {}
    exec(trio_csms.replace("9000", port).replace("trio.run(main)", ""), namespace)
    ready = threading.Event()
    handles: dict[str, Any] = {}

    async def bounded() -> None:
        with trio.move_on_after(TIMEOUT) as scope:
            handles["scope"] = scope
            handles["token"] = trio.lowlevel.current_trio_token()
            ready.set()
            await namespace["main"]()

    server = threading.Thread(target=trio.run, args=(bounded,), daemon=True)
    server.start()
    assert ready.wait(TIMEOUT)
    try:
        for _ in range(100):  # until the trio CSMS listens
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        station_ns: dict[str, Any] = {}
        asyncio_code = asyncio_station.replace("9000", port).replace("asyncio.run(main())", "")
        exec(asyncio_code, station_ns)
        asyncio.run(asyncio.wait_for(station_ns["main"](), TIMEOUT))
        exec(threads_station.replace("9000", port), {})
    finally:
        trio.from_thread.run_sync(handles["scope"].cancel, trio_token=handles["token"])
        server.join(TIMEOUT)
    assert not server.is_alive()
    printed = capsys.readouterr().out
    assert printed.count("HeartbeatResponse(current_time=") == 2
    # The ASGI block mounts the trio example's router in a FastAPI application.
    router = namespace["router"]
    exec(asgi_csms.replace("router = Router()", "pass"), namespace)
    (mount,) = [r for r in namespace["api"].routes if getattr(r, "path", "") == "/ocpp"]
    assert isinstance(mount.app, OcppAsgi) and mount.app.handler is router


def test_the_adapter_examples_pass_mypy_strict(tmp_path: Path) -> None:
    paths = []
    for number, block in enumerate(blocks("python")):
        path = tmp_path / f"readme_example_{number}.py"
        path.write_text(block, encoding="utf-8")
        paths.append(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
