"""The ``ocpp-sansio`` command (installed as ``ocpp_sansio.cli``).

It lives beside ``adapters/`` at the top of the repository because, like the adapters, it
does IO (a terminal, signals, sockets through the adapters); everything under
``ocpp_sansio/`` stays free of IO. The command is built on the public API only: the
simulator and the demo CSMS are the sans-IO applications in ``ocpp_sansio.apps``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ocpp_sansio.errors import MissingExtraError


def main(argv: Sequence[str] | None = None) -> int:
    """The command's entry point; an extra that is not installed is one line, not a
    traceback."""
    try:
        from .commands import main as run
    except MissingExtraError as error:
        print(f"ocpp-sansio: {error}", file=sys.stderr)
        return 2
    return run(argv)


__all__ = ["main"]
