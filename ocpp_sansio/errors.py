"""The two error families (after h11): our user's misuse, and the peer's violations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class OcppError(Exception):
    """Base of every exception ocpp-sansio raises on purpose."""


class LocalProtocolError(OcppError):
    """Our own application asked for something the protocol forbids.

    Nothing was sent; the message says which rule and which state forbade it.
    """


class InvalidPayloadError(LocalProtocolError, ValueError):
    """An outgoing message does not satisfy its schema (wrong type, too long, naive datetime…)."""

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason
        self.path = path


class SchemaViolation(OcppError, ValueError):
    """A payload breaks its schema. ``kind`` names the broken rule family, ``path`` is the
    JSON path of the offending value (``$.meterValue[0].timestamp``)."""

    #: missing required field, too few or too many list items
    OCCURRENCE = "occurrence"
    #: a value of the wrong JSON type (or a malformed date-time)
    TYPE = "type"
    #: a value of the right type outside its enum, length or range
    PROPERTY = "property"
    #: a property the schema does not allow
    UNKNOWN_PROPERTY = "unknown-property"

    def __init__(self, kind: str, reason: str, segment: str = "") -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self._segments = [segment] if segment else []

    def at(self, segment: str) -> SchemaViolation:
        """Record that the violation lies inside ``segment`` (outermost added last)."""
        self._segments.append(segment)
        return self

    @property
    def path(self) -> str:
        return "$" + "".join(reversed(self._segments))

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class FrameError(OcppError):
    """An incoming OCPP-J frame could not be accepted.

    ``error_code`` is the OCPP error code of the negotiated version; ``message_id`` the id
    when it could be read. ``answer`` is the frame that the rules of the version say to send
    back (a CALLERROR, a 2.1 CALLRESULTERROR), or None when the rules say to stay silent.
    """

    def __init__(
        self,
        error_code: str,
        description: str,
        *,
        message_id: str | None = None,
        message_type: int | None = None,
        details: dict[str, Any] | None = None,
        answer: Any = None,
        action: str | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.message_id = message_id
        self.message_type = message_type
        self.details = details if details is not None else {}
        self.answer = answer
        self.action = action


# --- what a call can end in, and answering with a CALLERROR ----------------------------------


class OcppCallError(OcppError):
    """A CALLERROR, both ways: raise it in a request handler to answer with ``error_code``;
    ``call()`` raises it when the peer answered ours with one."""

    def __init__(
        self, error_code: str, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{error_code}: {description}" if description else error_code)
        self.error_code = error_code
        self.description = description
        self.details = details or {}


class CallFailedError(OcppError):
    """Our request got no usable answer (base of the ones below)."""


class CallTimedOutError(CallFailedError):
    """No answer within the call timeout."""


class CallLostError(CallFailedError):
    """The connection closed before the answer came (or before the request went out)."""


class InvalidResponseError(CallFailedError):
    """The answer broke its schema (2.1: we told the peer with a CALLRESULTERROR)."""


class TransactionMessageDiscardedError(CallFailedError):
    """A transaction-related message failed on every attempt and was dropped (E13.FR.04)."""


class CoreMismatch(ValueError):
    """A core the application supplied does not fit: another version than the one
    negotiated or asked for, another station's identity, or not a core of that side."""


class ConnectFailedError(OcppError):
    """A station's connection attempt failed. ``status`` is the CSMS's HTTP status when it
    refused the handshake (401, 404 …)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class StoreError(OcppError):
    """The durable store cannot be read or written as the station or CSMS needs it."""


class StoreMismatch(StoreError):
    """A store that belongs elsewhere: another station's identity, another OCPP version,
    the other side (a CSMS database opened for a station), or a schema newer than this
    ocpp-sansio knows. Nothing in it was changed."""


class MissingExtraError(ModuleNotFoundError):
    """An optional part was used without the package it needs; the message names the
    extra that installs it (``pip install 'ocpp-sansio[trio]'``)."""


@contextlib.contextmanager
def needs_extra(extra: str, *, needed_by: str) -> Iterator[None]:
    """Wrap the imports of an optional part: a third-party module missing there becomes
    a MissingExtraError that names the extra to install."""
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] == "ocpp_sansio":
            raise
        raise MissingExtraError(
            f"{needed_by} needs {error.name!r}, which is not installed: "
            f"pip install 'ocpp-sansio[{extra}]' (from a checkout: pip install -e '.[{extra}]')",
            name=error.name,
        ) from error
