"""The ``ocpp-sansio`` command (installed as ``ocpp_sansio.cli``).

It lives beside ``adapters/`` at the top of the repository because, like the adapters, it
does IO (a terminal, signals, sockets through the adapters); everything under
``ocpp_sansio/`` stays free of IO. The command is built on the public API only: the
simulator and the demo CSMS are the sans-IO applications in ``ocpp_sansio.apps``.
"""

from .main import main

__all__ = ["main"]
