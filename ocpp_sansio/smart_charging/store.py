"""The profiles a station has installed: replace, clear, query, and a JSON-able snapshot.

The store keeps what it is given; whether a profile may be installed is the validator's
call (``check_profile``). Replacement follows the version: a profile with a known id
replaces that one (K01.FR.05; 1.6 §5.16.3); in 1.6 a profile also replaces the one with the
same stack level and purpose on the same connector (1.6 §3.13.2, §5.16.3; for TxProfiles of
the same transaction, §5.16.2). In 2.x such duplicates are refused before they get here
(K01.FR.06/39/52/53).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

import attrs

from ..errors import LocalProtocolError, SchemaViolation
from ..messages._codec import structure_fn, unstructure_fn
from .model import (
    _MODULES,
    CSO,
    VERSIONS,
    ChargingProfile,
    Purpose,
    profile_from_message,
    profile_to_message,
    purpose_of,
)


@attrs.frozen(kw_only=True)
class InstalledProfile:
    """A profile on an EVSE (0: the station). ``source`` is its chargingLimitSource (CSO
    for the CSMS's, K09; EMS, SO, Other … for external limits, K11.FR.05). A TxProfile's
    ``transaction_id`` is the transaction it limits: its own transactionId, or the one it
    was bound to (a 1.6 profile without id, a remote start's profile, K05)."""

    evse_id: int
    profile: ChargingProfile
    source: str = CSO
    transaction_id: str | int | None = None

    @property
    def id(self) -> int:
        return self.profile.id

    @property
    def purpose(self) -> Purpose:
        return self.profile.purpose


class ProfileStore:
    """Installed profiles of one station, for OCPP ``version``."""

    def __init__(self, version: str, entries: Iterable[InstalledProfile] = ()) -> None:
        if version not in VERSIONS:
            raise LocalProtocolError(f"unknown OCPP version {version!r}")
        self.version = version
        self._entries: dict[int, InstalledProfile] = {}
        for entry in entries:
            self.install(entry)

    def __iter__(self) -> Iterator[InstalledProfile]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self._entries

    def get(self, profile_id: int) -> InstalledProfile | None:
        return self._entries.get(profile_id)

    def replaced_by(self, entry: InstalledProfile) -> list[InstalledProfile]:
        """The installed profiles ``entry`` would replace."""
        out = [e for e in self._entries.values() if e.id == entry.id]
        if self.version == "1.6":
            out += [
                e
                for e in self._entries.values()
                if e.id != entry.id
                and e.evse_id == entry.evse_id
                and e.purpose is entry.purpose
                and e.profile.stack_level == entry.profile.stack_level
                and (e.purpose is not Purpose.TX or e.transaction_id == entry.transaction_id)
            ]
        return out

    def install(self, entry: InstalledProfile) -> list[InstalledProfile]:
        """Install ``entry``; returns what it replaced."""
        replaced = self.replaced_by(entry)
        for old in replaced:
            del self._entries[old.id]
        self._entries[entry.id] = entry
        return replaced

    def remove(self, profile_id: int) -> InstalledProfile | None:
        return self._entries.pop(profile_id, None)

    def remove_where(self, keep: Callable[[InstalledProfile], bool]) -> list[InstalledProfile]:
        """Remove every profile ``keep`` says False for; returns them."""
        gone = [e for e in self._entries.values() if not keep(e)]
        for entry in gone:
            del self._entries[entry.id]
        return gone

    def matching(
        self,
        *,
        evse_id: int | None = None,
        profile_ids: Collection[int] | None = None,
        purpose: Purpose | str | None = None,
        stack_level: int | None = None,
        sources: Collection[str] | None = None,
    ) -> list[InstalledProfile]:
        """Profiles matching every given criterion (logical AND; K09.FR.04-06, K10.FR.04,
        1.6 errata 3.25). ``evse_id`` None means any EVSE, 0 only the station's own."""
        wanted = None if purpose is None else purpose_of(purpose)
        return [
            e
            for e in self._entries.values()
            if (evse_id is None or e.evse_id == evse_id)
            and (profile_ids is None or e.id in profile_ids)
            and (wanted is None or e.purpose is wanted)
            and (stack_level is None or e.profile.stack_level == stack_level)
            and (sources is None or e.source in sources)
        ]

    def drop_transactions(self, transaction_ids: Collection[str | int]) -> list[InstalledProfile]:
        """A transaction ended: its TxProfiles go (K02.FR.05; 1.6 §3.13.1, §7.10)."""
        return self.remove_where(
            lambda e: not (e.purpose is Purpose.TX and e.transaction_id in transaction_ids)
        )

    # --- persistence ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything installed, as plain JSON data (``json.dumps`` takes it as is). Each
        profile is kept in the wire form of the version it came in."""
        return {
            "version": self.version,
            "profiles": [
                {
                    "evse_id": e.evse_id,
                    "source": e.source,
                    "transaction_id": e.transaction_id,
                    "origin": e.profile.origin,
                    "encoding": _encoding(e.profile, self.version),
                    "profile": _wire(e.profile, _encoding(e.profile, self.version)),
                }
                for e in self._entries.values()
            ],
        }

    def restore(self, snapshot: Any) -> None:
        """Replace the contents with a ``snapshot()`` (K01.FR.27: profiles survive a
        reboot). A snapshot that is not one raises LocalProtocolError."""
        try:
            if snapshot["version"] != self.version:
                raise LocalProtocolError(
                    f"snapshot of OCPP {snapshot['version']}, store is {self.version}"
                )
            entries = []
            for item in snapshot["profiles"]:
                encoding = item["encoding"]
                if encoding not in _MODULES:
                    raise LocalProtocolError(f"unknown encoding {encoding!r}")
                cls = _MODULES[encoding].ChargingProfile
                profile = profile_from_message(structure_fn(cls)(item["profile"]))
                origin = item.get("origin", encoding)
                if origin not in (None, *_MODULES):
                    raise LocalProtocolError(f"unknown origin {origin!r}")
                profile = attrs.evolve(profile, origin=origin)
                transaction_id = item["transaction_id"]
                if not isinstance(transaction_id, str | int | None):
                    raise LocalProtocolError("transaction_id must be text or a number")
                entries.append(
                    InstalledProfile(
                        evse_id=int(item["evse_id"]),
                        profile=profile,
                        source=str(item["source"]),
                        transaction_id=transaction_id,
                    )
                )
        except (KeyError, TypeError, ValueError, SchemaViolation) as exc:
            raise LocalProtocolError(f"not a profile store snapshot: {exc!r}") from None
        self._entries = {}
        for entry in entries:
            self._entries[entry.id] = entry


def _encoding(profile: ChargingProfile, version: str) -> str:
    """The version whose wire form holds ``profile``: where it came from, else the
    store's, else 2.1 (a 1.6 station's external limits have no 1.6 purpose)."""
    if profile.origin is not None:
        return profile.origin
    try:
        profile_to_message(profile, version)
    except LocalProtocolError:
        return "2.1"
    return version


def _wire(profile: ChargingProfile, version: str) -> dict[str, Any]:
    message = profile_to_message(profile, version)
    data: dict[str, Any] = json.loads(json.dumps(unstructure_fn(type(message))(message)))
    return data
