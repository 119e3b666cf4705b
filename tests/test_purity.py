"""The core under ocpp_sansio/ stays sans-IO: no module in it may import anything that does
IO, keeps time or runs concurrently. The adapters (installed as ocpp_sansio.adapters, but
living in adapters/) are where those belong.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ocpp_sansio

FORBIDDEN = {
    "socket",
    "ssl",
    "asyncio",
    "trio",
    "anyio",
    "threading",
    "time",
    "wsproto",
    "selectors",
}
CORE = Path(ocpp_sansio.__file__).parent
#: The folders that do IO: links to the top-level adapters/ and cli/.
IO_FOLDERS = {"adapters", "cli"}
MODULES = sorted(
    path for path in CORE.rglob("*.py") if path.relative_to(CORE).parts[0] not in IO_FOLDERS
)


def forbidden_imports(source: str) -> list[str]:
    """Top-level names of forbidden modules that ``source`` imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in FORBIDDEN]
    return found


def test_the_core_has_modules_to_check() -> None:
    assert CORE.name == "ocpp_sansio"
    assert len(MODULES) > 5
    assert all(path.relative_to(CORE).parts[0] not in IO_FOLDERS for path in MODULES)


@pytest.mark.parametrize("folder", sorted(IO_FOLDERS))
def test_io_folders_are_links_to_the_top_level(folder: str) -> None:
    """In a checkout, ocpp_sansio/adapters and ocpp_sansio/cli are links to the top-level
    folders; an sdist or a wheel holds copies of them in their place."""
    assert (CORE / folder / "__init__.py").is_file()
    top = CORE.parent / folder
    if top.is_dir():
        assert (CORE / folder).is_symlink()
        assert (CORE / folder).resolve() == top.resolve()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_nothing_that_does_io(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import os, time",
        "from asyncio import sleep",
        "import trio.lowlevel",
        "def f():\n    import threading",
        "from wsproto.events import Ping",
        "import importlib\nimportlib.import_module('selectors')",
        "__import__('ssl')",
        "from anyio import create_task_group",
    ],
)
def test_the_check_catches_every_way_of_importing(source: str) -> None:
    assert forbidden_imports(source)


def test_the_check_lets_harmless_imports_through() -> None:
    harmless = "import random\nfrom datetime import datetime\nfrom . import time"
    assert forbidden_imports(harmless) == []
