"""Adapters that put the sans-IO core on real sockets: ``ocpp_sansio.adapters.trio``,
``ocpp_sansio.adapters.asyncio``, ``ocpp_sansio.adapters.threads`` and
``ocpp_sansio.adapters.asgi`` (one shape, declared in ``ocpp_sansio.adapters.surface``; see
docs/adapters.md), over one IO-free skeleton (``_skeleton``) and the WebSocket layer.

How this folder becomes ``ocpp_sansio.adapters``: ``ocpp_sansio/adapters`` is a symbolic
link to this top-level folder. Imports, editable installs, mypy and tracebacks all follow an
ordinary directory; a wheel or an sdist copies the files in. The folder stays at the top so
that everything doing IO (here and ``cli/``) stands apart from the pure ``ocpp_sansio/``.

What they raise and report is defined in ``ocpp_sansio.errors`` and ``ocpp_sansio.events``
(the in-memory harness raises and reports the same) and re-exported here.
"""

from ocpp_sansio.errors import (
    CallFailedError,
    CallLostError,
    CallTimedOutError,
    ConnectFailedError,
    CoreMismatch,
    InvalidResponseError,
    OcppCallError,
    TransactionMessageDiscardedError,
    needs_extra,
)
from ocpp_sansio.events import Connected, ConnectFailed, Disconnected

with needs_extra("websocket", needed_by="ocpp_sansio.adapters"):
    from ._driver import uuid_ids
    from ._options import (
        Backoff,
        CoreFactory,
        Direction,
        FrameObserver,
        ServerOptions,
        StationOptions,
        WallClock,
    )
    from ._ws import (
        DEFAULT_VERSIONS,
        SUBPROTOCOLS,
        PasswordTable,
        WsOptions,
        certificate_common_name,
        certificate_names_identity,
        identity_key,
        station_certificate_check,
    )

__all__ = [
    "DEFAULT_VERSIONS",
    "SUBPROTOCOLS",
    "Backoff",
    "CallFailedError",
    "CallLostError",
    "CallTimedOutError",
    "ConnectFailed",
    "ConnectFailedError",
    "Connected",
    "CoreFactory",
    "CoreMismatch",
    "Direction",
    "Disconnected",
    "FrameObserver",
    "InvalidResponseError",
    "OcppCallError",
    "PasswordTable",
    "ServerOptions",
    "StationOptions",
    "TransactionMessageDiscardedError",
    "WallClock",
    "WsOptions",
    "certificate_common_name",
    "certificate_names_identity",
    "identity_key",
    "station_certificate_check",
    "uuid_ids",
]
