"""Stores in memory, for tests: they behave like the SQLite ones, commits included.

What survives a simulated crash is the ``MemoryDisk``: writes reach it only at commit.
Drop the store with the cores and flows, then open a new one on the same disk (or call
``reopen()``): it sees exactly what was committed, as a restarted process would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs

from ._api import SCHEMA_VERSION, AnsweredMessage, HeldMessage, Json, check_owner, dump

_Op = tuple[Any, ...]


@attrs.define
class _Tables:
    """One owner's data: a station's, or what a CSMS keeps about one station."""

    power_ups: int = 0
    held: dict[str, HeldMessage] = attrs.field(factory=dict)
    state: dict[str, str] = attrs.field(factory=dict)
    answers: dict[str, AnsweredMessage] = attrs.field(factory=dict)

    def copy(self) -> _Tables:
        return _Tables(self.power_ups, dict(self.held), dict(self.state), dict(self.answers))

    def apply(self, op: _Op) -> None:
        kind = op[0]
        if kind == "hold":
            message: HeldMessage = op[1]
            self.held[message.message_id] = message
        elif kind == "attempt":
            held = self.held.get(op[1])
            if held is not None:
                self.held[op[1]] = attrs.evolve(held, attempts=op[2])
        elif kind == "release":
            self.held.pop(op[1], None)
        elif kind == "save":
            if op[2] is None:
                self.state.pop(op[1], None)
            else:
                self.state[op[1]] = op[2]
        elif kind == "power":
            self.power_ups = op[1]
        elif kind == "remember":
            answer: AnsweredMessage = op[1]
            self.answers.pop(answer.message_id, None)
            self.answers[answer.message_id] = answer
        elif kind == "forget":
            self.answers.pop(op[1], None)


@attrs.define
class MemoryDisk:
    """What a store committed: give the same disk to the store of the next "process"."""

    meta: dict[str, str] = attrs.field(factory=dict)
    tables: dict[str, _Tables] = attrs.field(factory=dict)


class _MemoryStore:
    """Writes go to a working copy and a journal; ``commit`` replays the journal on the
    disk. Values are kept as JSON text, as SQLite keeps them, so what is saved must be
    JSON and comes back as a fresh copy."""

    def __init__(self, disk: MemoryDisk, owner: str, journal: list[tuple[str, _Op]]) -> None:
        self._disk = disk
        self._owner = owner
        self._journal = journal
        disk.tables.setdefault(owner, _Tables())
        self._view = disk.tables[owner].copy()

    def _write(self, op: _Op) -> None:
        self._view.apply(op)
        self._journal.append((self._owner, op))

    def load(self, key: str) -> Json:
        text = self._view.state.get(key)
        return None if text is None else json.loads(text)

    def save(self, key: str, value: Json) -> None:
        self._write(("save", key, None if value is None else dump(value)))

    def items(self, prefix: str) -> list[tuple[str, Json]]:
        return [
            (key, json.loads(text))
            for key, text in sorted(self._view.state.items())
            if key.startswith(prefix)
        ]


class _Committer:
    """The commit shared by the stores on one disk (a CSMS's stations share one). A
    commit runs the hooks of the store committing and of every store with writes in it,
    so no owner's writes become durable without its flows' state."""

    def __init__(self, disk: MemoryDisk) -> None:
        self.disk = disk
        self.journal: list[tuple[str, _Op]] = []
        self.hooks: dict[str, list[Callable[[], None]]] = {}

    def commit(self, owner: str) -> None:
        owners = {owner} | {o for o, _ in self.journal}
        for name in sorted(owners):
            for hook in self.hooks.get(name, ()):
                hook()
        if not self.journal:
            return
        for name, op in self.journal:
            self.disk.tables[name].apply(op)
        self.journal.clear()


class MemoryStationStore(_MemoryStore):
    """A ``StationCoreStore`` in memory. ``disk`` is what survives a simulated crash."""

    def __init__(self, identity: str, version: str, *, disk: MemoryDisk | None = None) -> None:
        disk = disk if disk is not None else MemoryDisk()
        if disk.meta:
            check_owner(
                disk.meta, role="station", identity=identity, version=version, where="the disk"
            )
        else:
            disk.meta.update(
                schema=str(SCHEMA_VERSION), role="station", identity=identity, version=version
            )
        self._committer = _Committer(disk)
        super().__init__(disk, "", self._committer.journal)
        self._identity = identity
        self._version = version

    @property
    def disk(self) -> MemoryDisk:
        return self._disk

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def version(self) -> str:
        return self._version

    def reopen(self) -> MemoryStationStore:
        """The store a restarted process opens: only what was committed."""
        return MemoryStationStore(self._identity, self._version, disk=self._disk)

    def begin_power_up(self) -> int:
        self._committer.hooks.clear()
        number = self._view.power_ups + 1
        self._write(("power", number))
        return number

    def held_messages(self) -> list[HeldMessage]:
        return list(self._view.held.values())

    def hold(self, message: HeldMessage) -> None:
        self._write(("hold", message))

    def count_attempt(self, message_id: str, attempts: int) -> None:
        self._write(("attempt", message_id, attempts))

    def release(self, message_id: str) -> None:
        self._write(("release", message_id))

    def before_commit(self, hook: Callable[[], None]) -> None:
        self._committer.hooks.setdefault(self._owner, []).append(hook)

    def commit(self) -> None:
        self._committer.commit(self._owner)


class MemoryCsmsStore:
    """A CSMS's stores in memory, one per station (``station(identity)``), on one disk."""

    def __init__(self, *, disk: MemoryDisk | None = None) -> None:
        disk = disk if disk is not None else MemoryDisk()
        if disk.meta:
            check_owner(disk.meta, role="csms", identity="", version=None, where="the disk")
        else:
            disk.meta.update(schema=str(SCHEMA_VERSION), role="csms")
        self.disk = disk
        self._committer = _Committer(disk)
        self._stations: dict[str, MemoryCsmsStationStore] = {}

    def reopen(self) -> MemoryCsmsStore:
        """The store a restarted CSMS opens: only what was committed."""
        return MemoryCsmsStore(disk=self.disk)

    def station(self, identity: str) -> MemoryCsmsStationStore:
        """The store of one station (identities compare case-insensitively): the same
        object each time, so the core and the flows' keeper share it."""
        key = identity.casefold()
        store = self._stations.get(key)
        if store is None:
            store = self._stations[key] = MemoryCsmsStationStore(self, identity)
        return store


class MemoryCsmsStationStore(_MemoryStore):
    """A ``CsmsCoreStore`` in memory; its commit commits the whole CSMS store."""

    def __init__(self, owner: MemoryCsmsStore, identity: str) -> None:
        self._committer = owner._committer
        super().__init__(owner.disk, identity.casefold(), self._committer.journal)
        self._identity = identity

    @property
    def identity(self) -> str:
        return self._identity

    def answers(self) -> list[AnsweredMessage]:
        return list(self._view.answers.values())

    def remember(self, answer: AnsweredMessage) -> None:
        self._write(("remember", answer))

    def forget(self, message_id: str) -> None:
        self._write(("forget", message_id))

    def before_commit(self, hook: Callable[[], None]) -> None:
        self._committer.hooks.setdefault(self._owner, []).append(hook)

    def commit(self) -> None:
        self._committer.commit(self._owner)
