"""Adapters that put the sans-IO core on real sockets: ``ocpp_sansio.adapters.trio``,
``ocpp_sansio.adapters.asyncio`` and ``ocpp_sansio.adapters.threads`` (one shape, see
docs/adapters.md), over the WebSocket glue they share.

How this folder becomes ``ocpp_sansio.adapters``: ``ocpp_sansio/adapters`` is a symbolic
link to this top-level folder. Imports, editable installs, mypy and tracebacks all follow an
ordinary directory; a wheel or an sdist copies the files in. The folder stays at the top so
that everything doing IO (here and ``cli/``) stands apart from the pure ``ocpp_sansio/``.

What they raise and report is defined once, here.
"""

from ._driver import (
    Backoff,
    CallTimeout,
    Connected,
    ConnectFailed,
    ConnectionAttemptFailed,
    ConnectionLost,
    CoreMismatch,
    Disconnected,
    InvalidAnswer,
    MessageDiscarded,
    OcppCallError,
    RequestFailed,
    uuid_ids,
)
from ._ws import DEFAULT_VERSIONS, SUBPROTOCOLS, WsOptions

__all__ = [
    "DEFAULT_VERSIONS",
    "SUBPROTOCOLS",
    "Backoff",
    "CallTimeout",
    "ConnectFailed",
    "Connected",
    "ConnectionAttemptFailed",
    "ConnectionLost",
    "CoreMismatch",
    "Disconnected",
    "InvalidAnswer",
    "MessageDiscarded",
    "OcppCallError",
    "RequestFailed",
    "WsOptions",
    "uuid_ids",
]
