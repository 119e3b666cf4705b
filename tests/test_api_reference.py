"""The API reference builds from the docstrings without a warning (tools/api_reference.py,
pdoc) and documents what a user imports first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_reference_builds_cleanly(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "tools/api_reference.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.build(tmp_path) == []
    top = (tmp_path / "ocpp_sansio.html").read_text(encoding="utf-8")
    for name in ("Router", "Router.on", "SupportsCall", "StationCore", "RegistrationChanged"):
        assert f'id="{name}"' in top, name
    assert "request handlers, by request class" in top  # the Router's docstring
    memory = (tmp_path / "ocpp_sansio" / "testing" / "memory.html").read_text(encoding="utf-8")
    for name in ("serve", "connect", "VirtualClock.run_for", "CsmsSession.wait_registered"):
        assert f'id="{name}"' in memory, name
    trio = (tmp_path / "ocpp_sansio" / "adapters" / "trio.html").read_text(encoding="utf-8")
    for name in ("serve", "connect", "CsmsSession.call", "CsmsSession.wait_registered"):
        assert f'id="{name}"' in trio, name
    for module in ("flows", "adapters/asgi", "adapters/threads", "testing/strategies"):
        assert (tmp_path / "ocpp_sansio" / f"{module}.html").is_file(), module
