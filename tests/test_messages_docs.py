"""The hypothesis example in docs/testing.md runs, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def _example() -> str:
    """The one python block that is not a copy of a file in examples/ (those run there)."""
    text = re.sub(
        r"<!-- example: \S+ -->\s*```python\n.*?```", "", DOC.read_text("utf-8"), flags=re.S
    )
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/testing.md should hold one python example of its own"
    return str(blocks[0])


def _tests() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_testing_example"}
    exec(compile(_example(), str(DOC), "exec"), namespace)
    return {name: fn for name, fn in namespace.items() if name.startswith("test_")}


@pytest.mark.parametrize("name", sorted(_tests()))
def test_docs_example(name: str) -> None:
    # A fifth of the profile's examples: the point is that the example runs.
    examples = max(1, settings.default.max_examples // 5)
    settings(max_examples=examples)(_tests()[name])()
