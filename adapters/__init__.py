"""Adapters that put the sans-IO core on real sockets: ``ocpp_sansio.adapters.trio``,
``ocpp_sansio.adapters.asyncio`` and ``ocpp_sansio.adapters.threads`` (one shape, see
docs/adapters.md), over the WebSocket glue they share.

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
    "PasswordTable",
    "RequestFailed",
    "WsOptions",
    "certificate_common_name",
    "certificate_names_identity",
    "identity_key",
    "station_certificate_check",
    "uuid_ids",
]
