"""Adapters that put the sans-IO core on real sockets: ``ocpp_sansio.adapters.trio``,
``ocpp_sansio.adapters.asyncio`` and ``ocpp_sansio.adapters.threads`` (one shape, see
docs/adapters.md), over the WebSocket glue they share.

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
    from ._driver import Backoff, uuid_ids
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
    "CoreMismatch",
    "Disconnected",
    "InvalidResponseError",
    "OcppCallError",
    "PasswordTable",
    "TransactionMessageDiscardedError",
    "WsOptions",
    "certificate_common_name",
    "certificate_names_identity",
    "identity_key",
    "station_certificate_check",
    "uuid_ids",
]
