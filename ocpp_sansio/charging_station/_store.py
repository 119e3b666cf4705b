"""What the assembled station keeps across a reboot, behind the smallest interface a
durable store can implement: named JSON documents.

The facade decides the names and the document shapes (``RECORDS`` lists them); a store
only keeps what it is given and hands it back after a power-up. The transaction
messages the core still holds are not here: the core keeps those itself.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Protocol

#: The documents the facade saves, and what each holds (all JSON values).
RECORDS: dict[str, str] = {
    "settings": "device-model attribute values (2.x) or configuration keys (1.6) changed "
    "since the factory defaults: {name: value}",
    "network_profiles": "SetNetworkProfile connection data per slot (B09): {slot: profile}",
    "availability": "targets the CSMS made Inoperative (G03.FR.08, G04.FR.09)",
    "reservations": "reservations not yet used, cancelled or expired (H01)",
    "transactions": "transactions running at the reboot, with their next seqNo (E04.FR.04)",
    "plugged": "connectors with a cable plugged in, as the application last reported",
    "boot_reason": "the 2.x boot reason of the next power-up (B11, B12, L01)",
    "pending_reset": "a Reset accepted OnIdle and not yet done (B12.FR.01)",
    "firmware": "an update in progress (L01, L02): its request and phase",
    "log_upload": "a log or diagnostics upload in progress (N01)",
    "security_events": "critical security events not yet delivered (A04)",
    "local_list": "the Local Authorization List and its version (D01)",
    "auth_cache": "the Authorization Cache (C10)",
    "charging_profiles": "the charging profiles installed, external limits included "
    "(K01.FR.27): a ProfileStore snapshot",
}


class StationStore(Protocol):
    """Where the facade keeps its documents. ``load`` returns what the last ``save`` of
    ``name`` stored (a deep copy is fine), or None; ``save(name, None)`` forgets it.
    Values are JSON values: dicts with string keys, lists, strings, numbers, booleans."""

    def load(self, name: str) -> Any: ...

    def save(self, name: str, value: Any) -> None: ...


class InMemoryStationStore:
    """A ``StationStore`` in a dict: it survives a simulated reboot in the same process.
    Every value goes through JSON on the way in, so what works here works in a file."""

    def __init__(self) -> None:
        self._documents: dict[str, str] = {}

    def load(self, name: str) -> Any:
        text = self._documents.get(name)
        return None if text is None else json.loads(text)

    def save(self, name: str, value: Any) -> None:
        if value is None:
            self._documents.pop(name, None)
        else:
            self._documents[name] = json.dumps(copy.deepcopy(value), sort_keys=True)

    def names(self) -> list[str]:
        return sorted(self._documents)
