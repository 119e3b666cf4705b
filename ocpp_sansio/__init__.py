"""ocpp-sansio: OCPP-J 1.6, 2.0.1 and 2.1 without IO.

Text and the current time go in; typed events and outgoing frames come out.
"""

from .errors import (
    FrameError,
    InvalidPayloadError,
    LocalProtocolError,
    OcppError,
    SchemaViolation,
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
from .messages._registry import ActionSpec, Registry, Role

__all__ = [
    "VERSIONS",
    "ActionSpec",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Frame",
    "FrameError",
    "InvalidPayloadError",
    "LocalProtocolError",
    "OcppError",
    "Registry",
    "Role",
    "SchemaViolation",
    "Send",
    "decode_frame",
    "encode_frame",
    "make_converter",
    "registry",
]
