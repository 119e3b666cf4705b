"""The default stores: one SQLite file per station, one per CSMS (the standard library's
sqlite3, write-ahead log).

Durability is SQLite's ``synchronous`` setting. FULL (a station's default) syncs the log to
disk at every commit: a commit survives a power cut. NORMAL (a CSMS's default) syncs only at
checkpoints: a commit survives the process being killed, but a power cut may take back the
last ones. docs/store.md gives the price of each (benchmarks/store.py measures it).

A file is locked to the process that opened it (SQLite's exclusive locking mode), so two
processes can never send the same held messages. A killed process leaves no lock behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._api import SCHEMA_VERSION, AnsweredMessage, HeldMessage, Json, check_owner, dump

SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")

_STATION_TABLES = (
    "CREATE TABLE held (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, "
    "action TEXT NOT NULL, frame TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
_CSMS_TABLES = (
    "CREATE TABLE state (identity TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
    "PRIMARY KEY (identity, key)) WITHOUT ROWID",
    "CREATE TABLE answers (seq INTEGER PRIMARY KEY, identity TEXT NOT NULL, "
    "message_id TEXT NOT NULL, action TEXT NOT NULL, key TEXT NOT NULL, "
    "request TEXT NOT NULL, response TEXT NOT NULL, UNIQUE (identity, message_id))",
)


@contextlib.contextmanager
def _reported(path: str, doing: str) -> Iterator[None]:
    """SQLite's errors as StoreError, naming the file and what we were doing."""
    try:
        yield
    except sqlite3.Error as error:
        if "locked" in str(error) or "busy" in str(error):
            raise StoreError(
                f"{path} is in use by another process (one process per store file)"
            ) from error
        raise StoreError(f"{path}: cannot {doing}: {error}") from error


class _Database:
    """One SQLite file: the connection, its lock, one transaction open between commits."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        role: str,
        identity: str,
        version: str | None,
        tables: tuple[str, ...],
        synchronous: str,
    ) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
        self.path = os.fspath(path)
        self.hooks: dict[str, list[Callable[[], None]]] = {}
        self.dirty: set[str] = set()
        self._in_transaction = False
        with _reported(self.path, "open the store"):
            self.db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            try:
                self._open(role, identity, version, tables, synchronous)
            except BaseException:
                self.db.close()
                raise

    def _open(
        self,
        role: str,
        identity: str,
        version: str | None,
        tables: tuple[str, ...],
        synchronous: str,
    ) -> None:
        db = self.db
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("BEGIN IMMEDIATE")  # takes the lock now, not at the first write
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if exists:
            found = dict(db.execute("SELECT key, value FROM meta").fetchall())
            check_owner(found, role=role, identity=identity, version=version, where=self.path)
        else:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for statement in tables:
                db.execute(statement)
            meta = {"schema": str(SCHEMA_VERSION), "role": role}
            if role == "station":
                meta |= {"identity": identity, "version": version or "", "power_ups": "0"}
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")

    def write(self, owner: str, sql: str, parameters: tuple[Any, ...]) -> None:
        with _reported(self.path, "write"):
            if not self._in_transaction:
                self.db.execute("BEGIN")
                self._in_transaction = True
            self.db.execute(sql, parameters)
        self.dirty.add(owner)

    def read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with _reported(self.path, "read"):
            return self.db.execute(sql, parameters).fetchall()

    def commit(self, owner: str) -> None:
        for name in sorted({owner} | self.dirty):
            for hook in self.hooks.get(name, ()):
                hook()
        self.dirty.clear()
        if self._in_transaction:
            with _reported(self.path, "commit"):
                self.db.execute("COMMIT")
            self._in_transaction = False

    def close(self) -> None:
        """Close without committing: what was not committed is lost, as in a crash."""
        if self._in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            self._in_transaction = False
        self.db.close()


class SqliteStationStore:
    """A ``StationCoreStore`` in one SQLite file, created on first use. Opening a file of
    another station, OCPP version or side raises StoreMismatch."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        identity: str,
        version: str,
        synchronous: str = "FULL",
    ) -> None:
        self._database = _Database(
            path,
            role="station",
            identity=identity,
            version=version,
            tables=_STATION_TABLES,
            synchronous=synchronous,
        )
        self._identity = identity
        self._version = version

    @property
    def path(self) -> str:
        return self._database.path

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def version(self) -> str:
        return self._version

    def begin_power_up(self) -> int:
        self._database.hooks.clear()
        (row,) = self._database.read("SELECT value FROM meta WHERE key = 'power_ups'")
        number = int(row[0]) + 1
        self._write("UPDATE meta SET value = ? WHERE key = 'power_ups'", (str(number),))
        return number

    def held_messages(self) -> list[HeldMessage]:
        rows = self._database.read(
            "SELECT message_id, action, frame, attempts FROM held ORDER BY seq"
        )
        return [HeldMessage(*row) for row in rows]

    def hold(self, message: HeldMessage) -> None:
        self._write(
            "INSERT INTO held (message_id, action, frame, attempts) VALUES (?, ?, ?, ?)",
            (message.message_id, message.action, message.frame, message.attempts),
        )

    def count_attempt(self, message_id: str, attempts: int) -> None:
        self._write("UPDATE held SET attempts = ? WHERE message_id = ?", (attempts, message_id))

    def release(self, message_id: str) -> None:
        self._write("DELETE FROM held WHERE message_id = ?", (message_id,))

    def load(self, key: str) -> Json:
        rows = self._database.read("SELECT value FROM state WHERE key = ?", (key,))
        return _loads(rows[0][0]) if rows else None

    def save(self, key: str, value: Json) -> None:
        if value is None:
            self._write("DELETE FROM state WHERE key = ?", (key,))
        else:
            self._write("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, dump(value)))

    def items(self, prefix: str) -> list[tuple[str, Json]]:
        rows = self._database.read(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        )
        return [(key, _loads(text)) for key, text in rows]

    def before_commit(self, hook: Callable[[], None]) -> None:
        self._database.hooks.setdefault("", []).append(hook)

    def commit(self) -> None:
        self._database.commit("")

    def close(self) -> None:
        self._database.close()

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> None:
        self._database.write("", sql, parameters)

    def __enter__(self) -> SqliteStationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SqliteCsmsStore:
    """A CSMS's stores in one SQLite file: ``station(identity)`` is one station's
    ``CsmsCoreStore`` (identities compare case-insensitively). Every station commits to
    this one file, so the default is NORMAL: FULL would cap the whole CSMS at the disk's
    syncs per second (docs/store.md)."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        self._database = _Database(
            path,
            role="csms",
            identity="",
            version=None,
            tables=_CSMS_TABLES,
            synchronous=synchronous,
        )
        self._stations: dict[str, SqliteCsmsStationStore] = {}

    @property
    def path(self) -> str:
        return self._database.path

    def station(self, identity: str) -> SqliteCsmsStationStore:
        key = identity.casefold()
        store = self._stations.get(key)
        if store is None:
            store = self._stations[key] = SqliteCsmsStationStore(self._database, identity)
        return store

    def commit(self) -> None:
        self._database.commit("")

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> SqliteCsmsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SqliteCsmsStationStore:
    """One station's rows in a CSMS's SQLite file; a commit commits the whole file."""

    def __init__(self, database: _Database, identity: str) -> None:
        self._database = database
        self._identity = identity
        self._key = identity.casefold()

    @property
    def identity(self) -> str:
        return self._identity

    def answers(self) -> list[AnsweredMessage]:
        rows = self._database.read(
            "SELECT message_id, action, key, request, response FROM answers "
            "WHERE identity = ? ORDER BY seq",
            (self._key,),
        )
        return [AnsweredMessage(*row) for row in rows]

    def remember(self, answer: AnsweredMessage) -> None:
        self._write(
            "INSERT OR REPLACE INTO answers (identity, message_id, action, key, request, "
            "response) VALUES (?, ?, ?, ?, ?, ?)",
            (
                self._key,
                answer.message_id,
                answer.action,
                answer.key,
                answer.request,
                answer.response,
            ),
        )

    def forget(self, message_id: str) -> None:
        self._write(
            "DELETE FROM answers WHERE identity = ? AND message_id = ?", (self._key, message_id)
        )

    def load(self, key: str) -> Json:
        rows = self._database.read(
            "SELECT value FROM state WHERE identity = ? AND key = ?", (self._key, key)
        )
        return _loads(rows[0][0]) if rows else None

    def save(self, key: str, value: Json) -> None:
        if value is None:
            self._write("DELETE FROM state WHERE identity = ? AND key = ?", (self._key, key))
        else:
            self._write(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?)", (self._key, key, dump(value))
            )

    def items(self, prefix: str) -> list[tuple[str, Json]]:
        rows = self._database.read(
            "SELECT key, value FROM state WHERE identity = ? AND substr(key, 1, ?) = ? "
            "ORDER BY key",
            (self._key, len(prefix), prefix),
        )
        return [(key, _loads(text)) for key, text in rows]

    def before_commit(self, hook: Callable[[], None]) -> None:
        self._database.hooks.setdefault(self._key, []).append(hook)

    def commit(self) -> None:
        self._database.commit(self._key)

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> None:
        self._database.write(self._key, sql, parameters)


def _loads(text: str) -> Json:
    return json.loads(text)


def _escaped(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match[0].encode())


def station_store_path(folder: str | os.PathLike[str], identity: str) -> Path:
    """Where station ``identity``'s file goes in ``folder``: ``IDENTITY.sqlite3``, with
    every character a file name may not hold written as ``%XX``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", _escaped, identity)
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    return Path(folder) / f"{safe}.sqlite3"


def open_station_store(
    path: str | os.PathLike[str], identity: str, version: str, *, synchronous: str = "FULL"
) -> SqliteStationStore:
    """The store of station ``identity`` at ``path`` (an existing folder: the file
    ``station_store_path`` names in it): created (with its folder) if absent, refused with
    StoreMismatch if it is another station's, version's or side's."""
    if Path(path).is_dir():
        path = station_store_path(path, identity)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStationStore(path, identity=identity, version=version, synchronous=synchronous)
