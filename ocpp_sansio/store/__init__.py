"""Durable state for stations and CSMSs: what a crash or a power cut must not lose.

``StationCore(..., store=...)`` keeps its held transaction messages there and takes them
back at the next start; ``CsmsCore(..., store=...)`` keeps the registration it answered and
the answers to recent transaction messages; ``StationKeeper`` and ``CsmsKeeper`` save and
restore the flows' state through the same store. ``ocpp_sansio.store.sqlite`` is the
default store (one SQLite file per station); ``ocpp_sansio.store.memory`` is for tests.
docs/store.md says what is kept, where, and at which durability.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._api import (
    SCHEMA_VERSION,
    AnsweredMessage,
    CsmsCoreStore,
    HeldMessage,
    Json,
    StateStore,
    StationCoreStore,
)
from .memory import MemoryCsmsStore, MemoryDisk, MemoryStationStore

if TYPE_CHECKING:
    from .sqlite import SqliteCsmsStore, SqliteStationStore


def open_station_store(
    path: str | os.PathLike[str], identity: str, version: str, *, synchronous: str = "FULL"
) -> SqliteStationStore:
    """The SQLite store of station ``identity`` at ``path`` (created with its folder when
    absent; StoreMismatch when the file is another station's, version's or a CSMS's)."""
    from .sqlite import open_station_store as open_sqlite

    return open_sqlite(path, identity, version, synchronous=synchronous)


def open_csms_store(
    path: str | os.PathLike[str], *, synchronous: str = "NORMAL"
) -> SqliteCsmsStore:
    """The SQLite store of a CSMS at ``path``; ``.station(identity)`` gives each core's.
    NORMAL by default: all stations commit to this one file (docs/store.md)."""
    from .sqlite import SqliteCsmsStore

    return SqliteCsmsStore(path, synchronous=synchronous)


__all__ = [
    "SCHEMA_VERSION",
    "AnsweredMessage",
    "CsmsCoreStore",
    "HeldMessage",
    "Json",
    "MemoryCsmsStore",
    "MemoryDisk",
    "MemoryStationStore",
    "StateStore",
    "StationCoreStore",
    "open_csms_store",
    "open_station_store",
]
