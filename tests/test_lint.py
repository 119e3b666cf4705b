"""The house rules as tests: ruff clean, ruff-formatted, mypy --strict clean on the whole
package (ocpp_sansio/ reaches adapters/ and cli/ through its links) and on examples/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_check() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_whole_package() -> None:
    result = run("mypy", "--strict", "ocpp_sansio")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_examples() -> None:
    """What users copy first is typed too, with no explicit Any at all (so none in a
    handler's signature); the library's own Any stays out of it (imports are silent)."""
    result = run(
        "mypy", "--strict", "--disallow-any-explicit", "--follow-imports=silent", "examples"
    )
    assert result.returncode == 0, result.stdout + result.stderr
