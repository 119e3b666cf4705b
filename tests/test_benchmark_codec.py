"""The codec benchmark stays runnable: every contender yields the same JSON for every
message (the benchmark asserts it while setting up), and each timed function runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "codec.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_codec", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


codec = load()


@pytest.mark.parametrize("case", codec.CASES, ids=[case.name for case in codec.CASES])
def test_every_contender_agrees_and_runs(case: object) -> None:
    for contender in (codec.ours, codec.theirs, codec.bare_json):
        for fn in contender(case):
            assert fn() is not None
