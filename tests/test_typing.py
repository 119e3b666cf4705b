"""Typed calls, proved with mypy: ``call(request)`` gives the response class of every
action of every version, and ``Router.on`` checks a handler's request and response types
(tests/typing/check_router.py says what mypy must find, line by line)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ocpp_sansio import VERSIONS, registry

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "tests" / "typing" / "check_router.py"
MODULES = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
MARK = re.compile(r"  # (?P<kind>[RE]): (?P<what>\S.*?)\s*$")
FOUND = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): (?P<level>error|note): "
    r"(?:Revealed type is \"(?P<type>.+)\"|.*\[(?P<code>[a-z-]+)\])$"
)


def every_action_source() -> str:
    """A function per action and flavour whose declared return type is the response class:
    under --strict, a call typed Any or as another class fails it."""
    lines = [
        "from ocpp_sansio import SupportsBlockingCall, SupportsCall",
        "from ocpp_sansio.messages import v16, v21, v201",
    ]
    for version in VERSIONS:
        module = MODULES[version]
        for spec in registry(version).values():
            request = f"{module}.{spec.request.__name__}"
            response = f"{module}.{spec.response.__name__}" if spec.response else "None"
            name = f"{module}_{spec.name}"
            lines += [
                f"async def call_{name}(s: SupportsCall, r: {request}) -> {response}:",
                "    return await s.call(r)",
                f"def blocking_{name}(s: SupportsBlockingCall, r: {request}) -> {response}:",
                "    return s.call(r)",
            ]
    return "\n".join(lines) + "\n"


def expected_marks(path: Path) -> set[tuple[int, str, str]]:
    marks = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = MARK.search(line)
        if match is not None:
            marks.add((number, match["kind"], match["what"]))
    return marks


def test_call_and_router_types_as_promised(tmp_path: Path) -> None:
    generated = tmp_path / "check_every_action.py"
    generated.write_text(every_action_source(), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(STATIC), str(generated)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    found: set[tuple[int, str, str]] = set()
    other: list[str] = []
    for line in result.stdout.splitlines():
        match = FOUND.match(line)
        if match is None or Path(match["path"]).resolve() != STATIC:
            if not line.startswith(("Found ", "Success")):
                other.append(line)
            continue
        kind, what = ("R", match["type"]) if match["type"] else ("E", match["code"])
        found.add((int(match["line"]), kind, what))
    assert other == [], "\n".join(other)
    assert found == expected_marks(STATIC)


def test_every_action_is_in_the_generated_check() -> None:
    source = every_action_source()
    count = sum(len(registry(version)) for version in VERSIONS)
    assert source.count("async def call_") == count > 150
