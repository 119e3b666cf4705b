"""The adapter examples in examples/ run, and docs/adapters.md shows them exactly as they
are (each ```python block under an ``<!-- example: PATH -->`` marker is a copy of PATH)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
from pathlib import Path
from types import ModuleType

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "adapters.md"
PAIR = [
    "csms: CS001: Connected",
    "csms: the station says Accepted",
]
#: What each example prints (among other lines).
EXPECTED = {
    "asyncio_pair.py": PAIR,
    "trio_pair.py": PAIR,
    "threads_pair.py": PAIR,
    "trio_flows.py": ["csms: TransactionReport", "station: the CSMS answered seqNo 0"],
    "fastapi_csms.py": [
        "stations: {'CS001': {'version': '2.0.1', 'connected': True}}",
        "the station says Accepted",
    ],
}
EXAMPLES = list(EXPECTED)
TIMEOUT = 15


def load(name: str) -> ModuleType:
    path = ROOT / "examples" / name
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_asyncio(module: ModuleType) -> None:
    asyncio.run(asyncio.wait_for(module.main(), TIMEOUT))


def run_trio(module: ModuleType) -> None:
    async def bounded() -> None:
        with trio.fail_after(TIMEOUT):
            await module.main()

    trio.run(bounded)


def run_threads(module: ModuleType) -> None:
    failures: list[BaseException] = []

    def target() -> None:
        try:
            module.main()
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the example did not finish in time"
    assert failures == []


RUNNERS = {
    "asyncio_pair.py": run_asyncio,
    "trio_pair.py": run_trio,
    "threads_pair.py": run_threads,
    "trio_flows.py": run_trio,
    "fastapi_csms.py": run_asyncio,
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    RUNNERS[name](load(name))
    lines = capsys.readouterr().out.splitlines()
    for expected in EXPECTED[name]:
        assert expected in lines
    if EXPECTED[name] is PAIR:
        assert any(line.startswith("station: CSMS time ") for line in lines)


def documented_examples() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- example: (\S+) -->\s*```python\n(.*?)```", text, re.DOTALL)
    return dict(blocks)


def test_the_doc_shows_every_example() -> None:
    assert sorted(documented_examples()) == sorted(f"examples/{name}" for name in EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_doc_copy_is_the_example(name: str) -> None:
    path = f"examples/{name}"
    assert documented_examples()[path] == (ROOT / path).read_text(encoding="utf-8")
