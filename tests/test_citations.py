"""Code, docs and error messages cite the specification (requirement IDs, OCPP-J part and
section), never a private summary of it that users do not have."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRIVATE_CITATION = re.compile(r"digest\s*§|OCPP_RULES|\bthe digest\b", re.IGNORECASE)
SCANNED = ("ocpp_sansio", "adapters", "cli", "docs", "examples", "benchmarks", "tools", "tests")


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for folder in SCANNED:
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.suffix in (".py", ".md") and path != Path(__file__).resolve()
        ]
    return files


def test_no_private_citations() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in scanned_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_CITATION.search(line)
    ]
    assert offenders == []


def test_the_check_finds_a_private_citation() -> None:
    assert PRIVATE_CITATION.search("the reconnect waits (digest §2.4)")
    assert not PRIVATE_CITATION.search("hmac.compare_digest(given, expected)")
