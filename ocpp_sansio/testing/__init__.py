"""Helpers for testing applications built on ocpp-sansio.

``InMemoryPair`` wires a station core and a CSMS core through memory on a virtual clock;
``minimal(cls)`` builds any message with its required fields filled. The hypothesis
strategies live in ``ocpp_sansio.testing.strategies`` (they need the ``hypothesis`` extra);
their names are also available here, imported on first use, so importing this package
never imports hypothesis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .builders import minimal
from .pair import TO_CSMS, TO_STATION, InMemoryPair, Sent, VirtualClock

if TYPE_CHECKING:
    from .strategies import (
        FRAME_KINDS,
        INVALID_FRAME_KINDS,
        PAYLOAD_KINDS,
        PayloadMutation,
        expected_error_code,
        frame_objects,
        frames,
        invalid_frames,
        invalid_payloads,
        json_values,
        message_ids,
        messages,
        mutation_kinds,
        register_strategies,
    )

__all__ = [
    "FRAME_KINDS",
    "INVALID_FRAME_KINDS",
    "PAYLOAD_KINDS",
    "TO_CSMS",
    "TO_STATION",
    "InMemoryPair",
    "PayloadMutation",
    "Sent",
    "VirtualClock",
    "expected_error_code",
    "frame_objects",
    "frames",
    "invalid_frames",
    "invalid_payloads",
    "json_values",
    "message_ids",
    "messages",
    "minimal",
    "mutation_kinds",
    "register_strategies",
]
_STRATEGIES = frozenset(
    {
        "FRAME_KINDS",
        "INVALID_FRAME_KINDS",
        "PAYLOAD_KINDS",
        "PayloadMutation",
        "expected_error_code",
        "frame_objects",
        "frames",
        "invalid_frames",
        "invalid_payloads",
        "json_values",
        "message_ids",
        "messages",
        "mutation_kinds",
        "register_strategies",
    }
)


def __getattr__(name: str) -> Any:
    if name in _STRATEGIES:
        value = getattr(importlib.import_module(".strategies", __name__), name)
        globals()[name] = value  # the next lookup is an ordinary one
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
