"""The example in docs/store.md runs, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "store.md"


def test_the_restart_example_in_docs_store_md_runs() -> None:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    exec(compile(block, str(DOC), "exec"), {"__name__": "docs_store_example"})
