"""One configuration object per role, validated when built (after h2's config)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from .rules import TRIGGERED_ACTION


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _not_negative(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _at_least_one(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _fraction(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _trigger_set(value: Iterable[str] | None) -> frozenset[str]:
    if value is None or isinstance(value, str):
        raise TypeError(
            "supported_triggers is a set of the requestedMessage values the application "
            "sends on TriggerAccepted (None no longer means all: F06.FR.08 wants "
            "NotImplemented for a message no one sends)"
        )
    return frozenset(value)


def _trigger_names(_instance: Any, attribute: attrs.Attribute[Any], value: frozenset[str]) -> None:
    unknown = sorted(value - TRIGGERED_ACTION.keys())
    if unknown:
        raise ValueError(
            f"{attribute.name}: {', '.join(map(repr, unknown))} is no requestedMessage value of "
            "TriggerMessage or ExtendedTriggerMessage"
        )


@attrs.frozen(kw_only=True)
class StationConfig:
    """Knobs of the charging-station core. Times are seconds."""

    #: How long we wait for the answer to a CALL (2.x OCPPCommCtrlr.MessageTimeout).
    call_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: First wait before a boot retry when the CSMS gave interval 0, or the boot failed.
    boot_retry_initial: float = attrs.field(default=10.0, validator=_positive)
    #: The longest such wait; it doubles from the initial one up to here.
    boot_retry_max: float = attrs.field(default=600.0, validator=_positive)
    #: Random part added to every such wait, as a fraction of it.
    boot_retry_jitter: float = attrs.field(default=0.25, validator=_fraction)
    #: Heartbeat interval used until the CSMS gives one (Accepted with interval 0).
    heartbeat_interval: float = attrs.field(default=300.0, validator=_positive)
    #: Restart the heartbeat timer whenever another CALL goes out (1.6 may skip the
    #: heartbeat then; 2.0.1 G02.FR.05 recommends it).
    heartbeat_on_any_traffic: bool = True
    #: Attempts for a transaction-related message (1.6 TransactionMessageAttempts,
    #: 2.x OCPPCommCtrlr.MessageAttempts[TransactionEvent]).
    transaction_message_attempts: int = attrs.field(default=3, validator=_at_least_one)
    #: Base retry wait; attempt n waits n times this (E13.FR.03).
    transaction_message_retry_interval: float = attrs.field(default=60.0, validator=_not_negative)
    #: The most transaction-related messages held while offline or not accepted.
    max_held_messages: int = attrs.field(default=10_000, validator=_at_least_one)
    #: The most other requests waiting for the channel.
    max_queued_requests: int = attrs.field(default=1_000, validator=_at_least_one)
    #: Connectors (1.6, ids 1..N) or EVSEs (2.x, ids 1..N): the scope of "all" triggers.
    connectors: int = attrs.field(default=1, validator=_at_least_one)
    #: TriggerMessage requestedMessage values the application sends itself when a
    #: ``TriggerAccepted`` asks (F06.FR.08: any other is answered NotImplemented). The core
    #: sends BootNotification and Heartbeat itself; flows add the messages they send
    #: (``StationCore.serve_triggers``).
    supported_triggers: frozenset[str] = attrs.field(
        default=frozenset(), converter=_trigger_set, validator=_trigger_names
    )
    #: 2.x F06.FR.12: answer Rejected to a StatusNotification trigger without EVSE/connector.
    reject_unscoped_status_trigger: bool = True
    #: How long an accepted trigger allows its message while Pending.
    trigger_window: float = attrs.field(default=60.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.boot_retry_max < self.boot_retry_initial:
            raise ValueError("boot_retry_max must be >= boot_retry_initial")


@attrs.frozen(kw_only=True)
class CsmsConfig:
    """Knobs of the central-system core, per station connection. Times are seconds."""

    call_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: A station is overdue when nothing arrived for heartbeat interval x this factor.
    heartbeat_tolerance: float = attrs.field(default=2.0, validator=_positive)
    #: Answer SecurityError to requests of a 1.6 station that is not accepted (only
    #: recommended in 1.6, errata OCPP-J §5.6; always done in 2.x).
    refuse_unaccepted_1_6: bool = True
    max_queued_requests: int = attrs.field(default=1_000, validator=_at_least_one)
