"""ocpp-sansio: OCPP-J 1.6, 2.0.1 and 2.1 without IO.

Text and the current time go in; typed events and outgoing frames come out. This is the one
import place for the cores, their configuration, the ``Router``, every core event and every
exception; the flows are in ``ocpp_sansio.flows``, the message classes in
``ocpp_sansio.messages`` and the adapters that put it all on sockets in
``ocpp_sansio.adapters``.
"""

from importlib.metadata import PackageNotFoundError, version

from .calls import SupportsBlockingCall, SupportsCall
from .charging_station import ChargingStation, StationApplication, StationStore
from .config import CsmsConfig, StationConfig
from .csms import CsmsCore, CsmsState
from .errors import (
    CallFailedError,
    CallLostError,
    CallTimedOutError,
    ConnectFailedError,
    CoreMismatch,
    FrameError,
    InvalidPayloadError,
    InvalidResponseError,
    LocalProtocolError,
    MissingExtraError,
    OcppCallError,
    OcppError,
    SchemaViolation,
    StoreError,
    StoreMismatch,
    TransactionMessageDiscardedError,
)
from .events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    ClockReport,
    Connected,
    ConnectFailed,
    Disconnected,
    Event,
    HeartbeatOverdue,
    InvalidResponse,
    MessageReceived,
    ProtocolViolation,
    Reconnected,
    RegistrationChanged,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    RetryAnswered,
    TransactionMessageDiscarded,
    TriggerAccepted,
    UnmatchedResponse,
    VersionChanged,
)
from .frames import (
    VERSIONS,
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Send,
    decode_frame,
    encode_frame,
    make_converter,
    registry,
)
from .messages._model import Request
from .messages._registry import ActionSpec, Registry, Role
from .router import Router
from .rules import RegistrationStatus
from .station import StationCore

try:
    __version__ = version("ocpp-sansio")
except PackageNotFoundError:  # (run from a source tree that was never installed)
    __version__ = "0+unknown"

__all__ = [
    "VERSIONS",
    "ActionSpec",
    "Call",
    "CallError",
    "CallErrorReceived",
    "CallFailedError",
    "CallLost",
    "CallLostError",
    "CallResult",
    "CallResultError",
    "CallTimedOut",
    "CallTimedOutError",
    "ChargingStation",
    "ClockReport",
    "ConnectFailed",
    "ConnectFailedError",
    "Connected",
    "CoreMismatch",
    "CsmsConfig",
    "CsmsCore",
    "CsmsState",
    "Disconnected",
    "Event",
    "Frame",
    "FrameError",
    "HeartbeatOverdue",
    "InvalidPayloadError",
    "InvalidResponse",
    "InvalidResponseError",
    "LocalProtocolError",
    "MessageReceived",
    "MissingExtraError",
    "OcppCallError",
    "OcppError",
    "ProtocolViolation",
    "Reconnected",
    "RegistrationChanged",
    "RegistrationStatus",
    "Registry",
    "Request",
    "RequestReceived",
    "RequestRefused",
    "ResponseReceived",
    "RetryAnswered",
    "Role",
    "Router",
    "SchemaViolation",
    "Send",
    "StationApplication",
    "StationConfig",
    "StationCore",
    "StationStore",
    "StoreError",
    "StoreMismatch",
    "SupportsBlockingCall",
    "SupportsCall",
    "TransactionMessageDiscarded",
    "TransactionMessageDiscardedError",
    "TriggerAccepted",
    "UnmatchedResponse",
    "VersionChanged",
    "__version__",
    "decode_frame",
    "encode_frame",
    "make_converter",
    "registry",
]
