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
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._api import (
    SCHEMA_VERSION,
    AnsweredMessage,
    CsmsCoreStore,
    CsmsStore,
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
    """The SQLite store of station ``identity`` at ``path``, or in the folder ``path`` as
    ``IDENTITY.sqlite3`` (created with its folder when absent; StoreMismatch when the file
    is another station's, version's or a CSMS's)."""
    from .sqlite import open_station_store as open_sqlite

    return open_sqlite(path, identity, version, synchronous=synchronous)


#: The environment variable that names the folder of the stations' default stores.
STATE_DIR_VARIABLE = "OCPP_SANSIO_STATE_DIR"


def default_store_folder() -> Path:
    """Where a station keeps its store when nobody said: ``$OCPP_SANSIO_STATE_DIR`` if
    set, else the platform's folder for application state that must outlive a reboot
    (never a temporary folder, which a reboot empties): ``$XDG_STATE_HOME/ocpp-sansio/
    stations`` (``~/.local/state/...``) on Linux and other POSIX systems,
    ``~/Library/Application Support/ocpp-sansio/stations`` on macOS,
    ``%LOCALAPPDATA%\\ocpp-sansio\\stations`` on Windows."""
    chosen = os.environ.get(STATE_DIR_VARIABLE)
    if chosen:
        return Path(chosen)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "ocpp-sansio" / "stations"


def open_default_station_store(identity: str, version: str) -> SqliteStationStore:
    """Station ``identity``'s SQLite store in ``default_store_folder()``, named after it
    (``station_store_path``): what a ``ChargingStation`` opens when given no store."""
    from .sqlite import station_store_path

    return open_station_store(
        station_store_path(default_store_folder(), identity), identity, version
    )


def open_csms_store(
    path: str | os.PathLike[str], *, synchronous: str = "NORMAL"
) -> SqliteCsmsStore:
    """The SQLite store of a CSMS at ``path``; ``.station(identity)`` gives each core's.
    NORMAL by default: all stations commit to this one file (docs/store.md)."""
    from .sqlite import SqliteCsmsStore

    return SqliteCsmsStore(path, synchronous=synchronous)


__all__ = [
    "SCHEMA_VERSION",
    "STATE_DIR_VARIABLE",
    "AnsweredMessage",
    "CsmsCoreStore",
    "CsmsStore",
    "HeldMessage",
    "Json",
    "MemoryCsmsStore",
    "MemoryDisk",
    "MemoryStationStore",
    "StateStore",
    "StationCoreStore",
    "default_store_folder",
    "open_csms_store",
    "open_default_station_store",
    "open_station_store",
]
