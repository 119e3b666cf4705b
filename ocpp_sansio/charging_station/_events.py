"""What the assembled station tells its IO layer and its application, as events."""

from __future__ import annotations

from typing import Any

import attrs

from ocpp_sansio.events import Event

from ._network import NetworkProfile


@attrs.frozen(kw_only=True)
class RebootRequested(Event):
    """The station reboots now: close its connection and power up a new
    ``ChargingStation`` on the same store. ``reason`` is the 2.x boot reason that follows
    (RemoteReset, ScheduledReset, FirmwareUpdate)."""

    reason: str


@attrs.frozen(kw_only=True)
class ConnectRequested(Event):
    """Open a connection to ``profile`` (configuration slot ``slot``) at core time ``at``
    (the reconnect back-off of Part 4 §5.3 already applied)."""

    slot: int
    profile: NetworkProfile
    at: float


@attrs.frozen(kw_only=True)
class DisconnectRequested(Event):
    """Close the connection (``stop``, ``disconnect``, or a move to another slot)."""

    reason: str


@attrs.frozen(kw_only=True)
class TokenValidated(Event):
    """The outcome of ``validate_token`` once known: on acceptance the application calls
    ``on_authorized`` for the EVSE where the token was presented."""

    id_token: Any
    accepted: bool
    source: str
    info: Any
    evse_id: int | None


@attrs.frozen(kw_only=True)
class DataTransferAnswered(Event):
    """The CSMS answered our DataTransfer ``message_id``; ``response`` None when it
    failed (CALLERROR, timeout, connection lost)."""

    message_id: str
    response: Any
