"""What a durable store keeps, as the cores and the flows see it.

The cores call a store object given to them, synchronously: a write is made where the
state changes, and everything written since the last commit becomes durable together when
the core hands out its frames (``data_to_send``) or when ``commit()`` is called. So nothing
leaves on the wire that a restart could forget, and one input's consequences (the core's
queue, a flow's transaction state) are kept or lost as one. docs/store.md says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from ..errors import StoreMismatch

#: The layout version this ocpp-sansio writes; a store of a higher one is refused.
SCHEMA_VERSION = 1

#: A JSON value: what ``load`` returns and ``save`` takes.
Json = Any


@attrs.frozen
class HeldMessage:
    """A transaction-related request the station has not seen answered: its CALL frame as
    first sent (so a message that may have reached the CSMS goes again with the same
    message id), and how many of its attempts failed (E13)."""

    message_id: str
    action: str
    frame: str
    attempts: int = 0


@attrs.frozen
class AnsweredMessage:
    """A transaction-related request the CSMS answered, kept to answer a retry of it the
    same way. ``key`` identifies a retry that comes with another message id (2.x: the
    transaction, seqNo and event type), or is empty; ``request`` and ``response`` are the
    payloads' JSON text."""

    message_id: str
    action: str
    key: str
    request: str
    response: str


class StateStore(Protocol):
    """What both sides' stores offer: JSON values by key, and one commit for all writes."""

    def load(self, key: str) -> Json:
        """The value saved under ``key``, or None."""
        ...

    def save(self, key: str, value: Json) -> None:
        """Keep ``value`` under ``key`` (None removes it) from the next commit on."""
        ...

    def items(self, prefix: str) -> list[tuple[str, Json]]:
        """Every (key, value) whose key starts with ``prefix``, by key."""
        ...

    def before_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` at each commit, before the writes become durable (flow keepers
        save their state there)."""
        ...

    def commit(self) -> None:
        """Make every write so far durable, all or nothing."""
        ...


class StationCoreStore(StateStore, Protocol):
    """One charging station's durable state (one identity, one OCPP version): what
    ``StationCore`` and ``StationKeeper`` need. Its ``load`` / ``save`` make it a
    ``ChargingStation`` facade's ``StationStore`` too."""

    @property
    def identity(self) -> str: ...

    @property
    def version(self) -> str: ...

    def begin_power_up(self) -> int:
        """Count a new power-up of the station; its number (1 for the first). The
        ``before_commit`` hooks registered so far belong to the previous power-up's objects
        and are dropped (a station rebooted in the same process keeps one store object)."""
        ...

    def held_messages(self) -> list[HeldMessage]:
        """The transaction messages not yet delivered, oldest first."""
        ...

    def hold(self, message: HeldMessage) -> None:
        """Keep ``message`` after the ones already held."""
        ...

    def count_attempt(self, message_id: str, attempts: int) -> None:
        """A held message has now failed ``attempts`` times."""
        ...

    def release(self, message_id: str) -> None:
        """A held message was answered, or discarded after its last attempt."""
        ...


class CsmsCoreStore(StateStore, Protocol):
    """A CSMS's durable state about one station, what ``CsmsCore`` and ``CsmsKeeper``
    need: registration, open transactions, and the answers to its latest transaction
    messages."""

    @property
    def identity(self) -> str: ...

    def answers(self) -> list[AnsweredMessage]:
        """The answers remembered, oldest first."""
        ...

    def remember(self, answer: AnsweredMessage) -> None: ...

    def forget(self, message_id: str) -> None: ...


class CsmsStore(Protocol):
    """A CSMS's store (``open_csms_store``, ``MemoryCsmsStore``): one ``CsmsCoreStore``
    per station, the same object each time it is asked for."""

    def station(self, identity: str) -> CsmsCoreStore: ...


def dump(value: Json) -> str:
    """The one text form of a JSON value: compact, keys sorted (so equal values compare
    equal as text)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def check_owner(
    found: dict[str, str], *, role: str, identity: str, version: str | None, where: str
) -> None:
    """Refuse a store written for another side, station or OCPP version, or by a newer
    ocpp-sansio: ``found`` is what the store says about itself."""
    schema = int(found.get("schema", "0"))
    if schema > SCHEMA_VERSION:
        raise StoreMismatch(
            f"{where} has layout version {schema}; this ocpp-sansio reads up to "
            f"{SCHEMA_VERSION}: upgrade ocpp-sansio, or use another file"
        )
    if found.get("role") != role:
        raise StoreMismatch(
            f"{where} is a {found.get('role')} store, not a {role} one: use another file"
        )
    stored_identity = found.get("identity")
    if stored_identity is not None and stored_identity != identity:
        raise StoreMismatch(
            f"{where} belongs to station {stored_identity!r}, not {identity!r}: one station, "
            "one file (docs/store.md says how to move a station's file)"
        )
    stored_version = found.get("version")
    if version is not None and stored_version is not None and stored_version != version:
        raise StoreMismatch(
            f"{where} holds OCPP {stored_version} state (its held messages are "
            f"{stored_version} frames); this station speaks OCPP {version}: deliver or "
            "discard them with the old version first, or start a new file"
        )
