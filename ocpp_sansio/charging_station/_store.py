"""Where the assembled station keeps what survives a reboot or a crash: one store of
``ocpp_sansio.store`` (SQLite by default), shared by the core, the flows' keeper and the
facade's own documents, so that everything is committed together.

Each piece of state has one owner: the core keeps the held transaction messages, the
``StationKeeper`` the flows' state (transactions and their seqNo, availability, a reset,
reservations, a firmware update, uploads, the local list and the cache), and the facade
the documents in ``RECORDS``, saved when they change. docs/store.md lists them all.
"""

from __future__ import annotations

from ocpp_sansio.store import StationCoreStore

#: What a ``ChargingStation`` keeps its state in: a ``StationCoreStore`` (the store's
#: ``load`` / ``save`` hold the facade's documents next to the core's held messages).
StationStore = StationCoreStore

#: The documents the facade saves itself, and what each holds (all JSON values).
RECORDS: dict[str, str] = {
    "settings": "device-model attribute values (2.x) or configuration keys (1.6) changed "
    "since the factory defaults: {name: value}",
    "network_profiles": "SetNetworkProfile connection data per slot (B09): {slot: profile}",
    "plugged": "connectors with a cable plugged in, as the application last reported",
    "boot_reason": "the 2.x boot reason of the next power-up (B11, B12, L01)",
    "security_events": "critical security events not yet delivered (A04)",
    "charging_profiles": "the charging profiles installed, external limits included "
    "(K01.FR.27): a ProfileStore snapshot",
}
