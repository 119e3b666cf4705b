"""Build the API reference, HTML from the docstrings, with pdoc (the ``docs`` extra).

``python tools/api_reference.py [OUT]`` writes it to OUT (default ``build/api``); open
``OUT/index.html``. It covers the modules a user imports; the message classes
(``ocpp_sansio.messages.v16`` / ``v201`` / ``v21``) are generated from the schemas and read
best as the Python files they are. tests/test_api_reference.py builds it in every run, so
a docstring pdoc cannot render fails the suite.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

#: The public modules, in the order of the reference's index (and the adapters' skeleton,
#: where their sessions' and stations' methods are written once).
MODULES = (
    "ocpp_sansio",
    "ocpp_sansio.flows",
    "ocpp_sansio.rules",
    "ocpp_sansio.firmware_signature",
    "ocpp_sansio.testing",
    "ocpp_sansio.testing.strategies",
    "ocpp_sansio.testing.memory",
    "ocpp_sansio.adapters",
    "ocpp_sansio.adapters.trio",
    "ocpp_sansio.adapters.asyncio",
    "ocpp_sansio.adapters.threads",
    "ocpp_sansio.adapters.asgi",
    "ocpp_sansio.adapters.surface",
    "ocpp_sansio.adapters._skeleton",
    "ocpp_sansio.adapters.transfer",
    "ocpp_sansio.adapters.cluster",
)
ROOT = Path(__file__).resolve().parent.parent


def build(out: Path) -> list[str]:
    """Write the reference to ``out``; returns pdoc's warnings (none is the goal)."""
    from ocpp_sansio.errors import needs_extra

    with needs_extra("docs", needed_by="tools/api_reference.py"):
        import pdoc
        import pdoc.render

    import ocpp_sansio.testing

    # The strategies are imported on first use; pdoc reads the module's namespace.
    for name in ocpp_sansio.testing.__all__:
        getattr(ocpp_sansio.testing, name)
    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=out)
    return [str(w.message) for w in caught]


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "api"
    problems = build(out)
    for problem in problems:
        print("warning:", problem, file=sys.stderr)
    print(f"API reference: {out / 'index.html'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
