"""Protocol facts both roles use, as tables (after h11's ``_state.py``).

Rule 1: what decides whether a message may go, or what a trigger asks for, lives here.
Rule 2: this module does not know which role we play; the station and CSMS cores ask it.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs


class RegistrationStatus(enum.StrEnum):
    """Where a station stands with its CSMS (B01-B03; 1.6 §4.2). A ``str`` enum: it
    compares equal to its text and to every version's RegistrationStatus enum value."""

    #: No BootNotification answered Accepted or Pending yet (after power-up, or Rejected).
    BOOTING = "Booting"
    PENDING = "Pending"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


BOOTING = RegistrationStatus.BOOTING
PENDING = RegistrationStatus.PENDING
ACCEPTED = RegistrationStatus.ACCEPTED
REJECTED = RegistrationStatus.REJECTED


# --- what the station may send (B01.FR.08, B02.FR.02, B03.FR.02) --------------------------------


class Allowed(enum.Enum):
    """What a registration state lets the station send besides BootNotification."""

    EVERYTHING = "everything"
    #: Messages the CSMS asked for: triggered ones, NotifyReport for GetBaseReport/GetReport.
    REQUESTED = "requested"
    NOTHING = "nothing"


@attrs.frozen
class Gate:
    allowed: Allowed
    #: Why the rest is refused, with the requirement that says so.
    rule: str


STATION_GATES: dict[RegistrationStatus, Gate] = {
    BOOTING: Gate(
        Allowed.NOTHING,
        "nothing but BootNotification goes out before the boot is answered (B01.FR.08)",
    ),
    PENDING: Gate(
        Allowed.REQUESTED,
        "while Pending the station sends only BootNotification, triggered messages and "
        "requested reports (B02.FR.02)",
    ),
    ACCEPTED: Gate(Allowed.EVERYTHING, ""),
    REJECTED: Gate(
        Allowed.NOTHING,
        "while Rejected the station sends nothing until the interval passed (B03.FR.02)",
    ),
}

#: Why a request other than a transaction message cannot wait for the connection.
OFFLINE_RULE = (
    "offline; only transaction-related messages are held until the connection is back "
    "(E04.FR.01, 1.6 §3.7)"
)


def station_gate(status: RegistrationStatus, requested: bool) -> str | None:
    """The rule by which ``status`` forbids the station a request (``requested``: the CSMS
    asked for it), or None when it may go."""
    gate = STATION_GATES[status]
    if gate.allowed is Allowed.EVERYTHING or (gate.allowed is Allowed.REQUESTED and requested):
        return None
    return gate.rule


# --- what the CSMS may send (B02, B03.FR.03) ------------------------------------------------------

#: The remote start and stop actions of each version.
REMOTE_TRANSACTION_ACTIONS: dict[str, tuple[str, str]] = {
    "1.6": ("RemoteStartTransaction", "RemoteStopTransaction"),
    "2.0.1": ("RequestStartTransaction", "RequestStopTransaction"),
    "2.1": ("RequestStartTransaction", "RequestStopTransaction"),
}


def csms_gate(version: str, status: RegistrationStatus | None, action: str) -> str | None:
    """Why the station's registration ``status`` forbids the CSMS to send ``action``, or
    None (``status`` None: never answered a boot of this station)."""
    if status is REJECTED:
        return "the CSMS sends nothing to a Rejected station (B03.FR.03)"
    if status is PENDING and action in REMOTE_TRANSACTION_ACTIONS[version]:
        return "the station is Pending (B02; 1.6 §4.2.1)"
    return None


# --- how a station that is not accepted answers the CSMS (B02.FR.05, B03.FR.08) ------------------


@attrs.frozen
class StationRefusal:
    """A CSMS request the station's registration state refuses: answered with CALLERROR
    ``error_code``, with a CALLRESULT whose status is ``status``, or (both None) not at all."""

    rule: str
    error_code: str | None = None
    status: str | None = None


def station_refusal(version: str, status: RegistrationStatus, action: str) -> StationRefusal | None:
    """How the station refuses the CSMS's ``action`` in ``status``, or None to handle it."""
    if status is REJECTED:
        if version == "1.6":
            return StationRefusal("a Rejected 1.6 station answers nothing (1.6 §4.2)")
        return StationRefusal("the station is Rejected (B03.FR.08)", error_code="SecurityError")
    if status is PENDING and version != "1.6" and action in REMOTE_TRANSACTION_ACTIONS[version]:
        return StationRefusal("a Pending station rejects it (B02.FR.05)", status="Rejected")
    return None


def csms_refusal(
    version: str,
    status: RegistrationStatus | None,
    requested: bool,
    *,
    refuse_unaccepted_1_6: bool,
) -> str | None:
    """Why the CSMS answers a station request other than BootNotification with
    SecurityError (the rule), or None to handle it. ``requested``: the CSMS asked for the
    message (by TriggerMessage, GetBaseReport or GetReport)."""
    if status is ACCEPTED or (version == "1.6" and not refuse_unaccepted_1_6):
        return None
    if status is REJECTED:
        return "the station is Rejected (B03.FR.07)"
    if requested:
        return None
    rule = "B02.FR.09" if status is PENDING else "B01.FR.10"
    return f"the station is not accepted ({rule})"


# --- TriggerMessage (F06; 1.6 §5.17, ExtendedTriggerMessage) --------------------------------------

#: What each requestedMessage value asks for: the action of the message that answers it.
TRIGGERED_ACTION: dict[str, str] = {
    "BootNotification": "BootNotification",
    "Heartbeat": "Heartbeat",
    "StatusNotification": "StatusNotification",
    "MeterValues": "MeterValues",
    "DiagnosticsStatusNotification": "DiagnosticsStatusNotification",
    "FirmwareStatusNotification": "FirmwareStatusNotification",
    "LogStatusNotification": "LogStatusNotification",
    "SignChargePointCertificate": "SignCertificate",
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignV2G20Certificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
    "TransactionEvent": "TransactionEvent",
    "PublishFirmwareStatusNotification": "PublishFirmwareStatusNotification",
}
TRIGGER_ACTIONS = ("TriggerMessage", "ExtendedTriggerMessage")
#: Messages scoped to a connector (1.6) or an EVSE (2.x): a trigger names which.
SCOPED_ACTIONS = frozenset({"StatusNotification", "MeterValues", "TransactionEvent"})


def triggered_action(trigger_action: str, requested_message: str) -> str | None:
    """The action a trigger asks for, or None when the value names nothing we know. In a
    1.6 ExtendedTriggerMessage, FirmwareStatusNotification means the signed one."""
    if trigger_action == "ExtendedTriggerMessage" and requested_message == (
        "FirmwareStatusNotification"
    ):
        return "SignedFirmwareStatusNotification"
    return TRIGGERED_ACTION.get(requested_message)


def trigger_scope(version: str, request: Any) -> int | None:
    """The connector (1.6) or EVSE (2.x) a TriggerMessage names, or None."""
    if version == "1.6":
        connector: int | None = request.connector_id
        return connector
    return request.evse.id if request.evse is not None else None


def scope_of(version: str, action: str, payload: Any) -> int | None:
    """The connector (1.6) or EVSE (2.x) a triggerable message is about."""
    if version == "1.6":
        return getattr(payload, "connector_id", None)
    if action in ("StatusNotification", "MeterValues"):
        return getattr(payload, "evse_id", None)
    if action == "TransactionEvent":
        evse = getattr(payload, "evse", None)
        return evse.id if evse is not None else None
    return None


# --- transaction-related messages (E04, E11-E13; 1.6 §3.7) ---------------------------------------


def is_transaction_message(action: str, payload: Any) -> bool:
    """Transaction-related messages are held while offline or not accepted, and retried
    (E04.FR.01, E13.FR.02; 1.6 §3.7). 1.6 MeterValues count only when tied to a
    transaction."""
    if action in ("StartTransaction", "StopTransaction", "TransactionEvent"):
        return True
    return action == "MeterValues" and getattr(payload, "transaction_id", None) is not None
