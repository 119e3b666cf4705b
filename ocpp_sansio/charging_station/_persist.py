"""The facade's records as JSON values (for ``StationStore``), and back."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any

from ocpp_sansio.flows._base import WallClock, core_time
from ocpp_sansio.flows.authorization import (
    AuthInfo,
    CacheEntry,
    InMemoryCache,
    InMemoryLocalList,
    LocalEntry,
)
from ocpp_sansio.flows.availability import AvailabilitySnapshot
from ocpp_sansio.flows.device_model import ComponentKey, VariableKey
from ocpp_sansio.flows.firmware import FirmwareFamily, FirmwarePhase, FirmwareSnapshot
from ocpp_sansio.flows.reservations import Reservation
from ocpp_sansio.frames import registry
from ocpp_sansio.messages._codec import structure_fn, unstructure

_REQUEST_OF = {
    FirmwareFamily.PLAIN_1_6: "UpdateFirmware",
    FirmwareFamily.SIGNED_1_6: "SignedUpdateFirmware",
    FirmwareFamily.V2: "UpdateFirmware",
}


def firmware_to_json(snapshot: FirmwareSnapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "family": snapshot.family.value,
        "signed": snapshot.signed,
        "request": unstructure(snapshot.request),
        "phase": snapshot.phase.value,
        "reported": snapshot.reported,
        "attempts_made": snapshot.attempts_made,
    }


def firmware_from_json(version: str, data: Any) -> FirmwareSnapshot | None:
    if not data:
        return None
    family = FirmwareFamily(data["family"])
    cls = registry(version)[_REQUEST_OF[family]].request
    return FirmwareSnapshot(
        family=family,
        signed=bool(data["signed"]),
        request=structure_fn(cls)(data["request"]),
        phase=FirmwarePhase(data["phase"]),
        reported=data["reported"],
        attempts_made=int(data["attempts_made"]),
    )


def reservation_to_json(version: str, reservation: Reservation) -> dict[str, Any]:
    token = reservation.id_token
    return {
        "reservation_id": reservation.reservation_id,
        "expiry": reservation.expiry.isoformat(),
        "id_token": token_to_json(version, token),
        "group": reservation.group,
        "target": reservation.target,
        "connector_type": reservation.connector_type,
        "targets": list(reservation.targets),
    }


def reservation_from_json(version: str, data: Any, clock: WallClock) -> Reservation:
    """The reservation, its expiry turned back into core time of the new life (the wall
    clock at core time 0 is the reference)."""
    expiry = datetime.fromisoformat(data["expiry"])
    token = token_from_json(version, data["id_token"])
    return Reservation(
        reservation_id=int(data["reservation_id"]),
        expiry=expiry,
        expires_at=core_time(expiry, 0.0, clock),
        id_token=token,
        group=data["group"],
        target=data["target"],
        connector_type=data["connector_type"],
        targets=tuple(data["targets"]),
    )


def _auth_request(version: str) -> Any:
    return registry(version)["Authorize"].request


def token_to_json(version: str, token: Any) -> Any:
    return token if version == "1.6" else unstructure(token)


def token_from_json(version: str, data: Any) -> Any:
    if version == "1.6":
        return data
    return structure_fn(_auth_request(version))({"idToken": data}).id_token


def _info_class(version: str) -> type:
    response = registry(version)["Authorize"].response
    field = "id_tag_info" if version == "1.6" else "id_token_info"
    found: type = typing.get_type_hints(response)[field]
    return found


def auth_info_to_json(info: AuthInfo) -> dict[str, Any]:
    return {
        "status": info.status,
        "expiry": None if info.expiry is None else info.expiry.isoformat(),
        "group": info.group,
        "raw": None if info.raw is None else unstructure(info.raw),
    }


def auth_info_from_json(version: str, data: Any) -> AuthInfo:
    raw = data.get("raw")
    return AuthInfo(
        status=data["status"],
        expiry=None if data["expiry"] is None else datetime.fromisoformat(data["expiry"]),
        group=data["group"],
        raw=None if raw is None else structure_fn(_info_class(version))(raw),
    )


class StoredLocalList(InMemoryLocalList):
    """The Local Authorization List, saved whole in the store at every change (D01: it
    persists across reboots, TC_D_07_CS)."""

    NAME = "local_list"

    def __init__(self, version: str, store: Any) -> None:
        super().__init__()
        self._version_name = version
        self._store = store
        data = store.load(self.NAME)
        if data:
            entries = {
                key: LocalEntry(
                    token=token_from_json(version, item["token"]),
                    info=auth_info_from_json(version, item["info"]),
                )
                for key, item in data["entries"].items()
            }
            super().replace(int(data["version"]), entries)

    def _save(self) -> None:
        entries = {
            key: {
                "token": token_to_json(self._version_name, entry.token),
                "info": auth_info_to_json(entry.info),
            }
            for key, entry in self._entries.items()
        }
        self._store.save(self.NAME, {"version": self.list_version(), "entries": entries})

    def replace(self, version: int, entries: Any) -> None:
        super().replace(version, entries)
        self._save()

    def apply(self, version: int, upserts: Any, removals: Any) -> None:
        super().apply(version, upserts, removals)
        self._save()


class StoredCache(InMemoryCache):
    """The Authorization Cache, saved in the store at every change (C10: it persists
    across reboots, TC_C_32_CS). Each entry keeps when it was stored and last used as
    wall-clock times, so AuthCacheCtrlr.LifeTime counts across a reboot (C10.FR.08)."""

    NAME = "auth_cache"

    def __init__(self, version: str, store: Any, clock: WallClock, capacity: int = 1000) -> None:
        super().__init__(capacity)
        self._version_name = version
        self._store = store
        self._clock = clock
        for key, item in (store.load(self.NAME) or {}).items():
            self._entries[key] = CacheEntry(
                token=token_from_json(version, item["token"]),
                info=auth_info_from_json(version, item["info"]),
                stored_at=self._core_time(item.get("stored_at")),
                last_used=self._core_time(item.get("last_used")),
            )

    def _core_time(self, wall: str | None) -> float:
        """A saved wall-clock time in this life's core time (the wall clock at core time 0
        is the reference); a record without one counts from that reference."""
        return 0.0 if wall is None else core_time(datetime.fromisoformat(wall), 0.0, self._clock)

    def save(self) -> None:
        """Also after an entry was used: its last use moves its lifetime on."""
        self._store.save(
            self.NAME,
            {
                key: {
                    "token": token_to_json(self._version_name, entry.token),
                    "info": auth_info_to_json(entry.info),
                    "stored_at": self._clock(entry.stored_at).isoformat(),
                    "last_used": self._clock(entry.last_used).isoformat(),
                }
                for key, entry in self._entries.items()
            }
            or None,
        )

    def put(self, key: str, entry: CacheEntry) -> None:
        super().put(key, entry)
        self.save()

    def clear(self) -> None:
        super().clear()
        self.save()


def variable_name(component: ComponentKey, variable: VariableKey, attribute: str) -> str:
    """A device-model attribute as one text key of the ``settings`` record."""
    parts = [
        component.name,
        component.instance or "",
        "" if component.evse_id is None else str(component.evse_id),
        "" if component.connector_id is None else str(component.connector_id),
        variable.name,
        variable.instance or "",
        attribute,
    ]
    return "|".join(parts)


def parse_variable_name(name: str) -> tuple[ComponentKey, VariableKey, str] | None:
    parts = name.split("|")
    if len(parts) != 7:
        return None
    comp, comp_instance, evse, connector, var, var_instance, attribute = parts
    return (
        ComponentKey(
            comp,
            comp_instance or None,
            int(evse) if evse else None,
            int(connector) if connector else None,
        ),
        VariableKey(var, var_instance or None),
        attribute,
    )


def availability_to_json(snapshot: AvailabilitySnapshot) -> list[list[int | None]] | None:
    return sorted(([e, c] for e, c in snapshot.inoperative), key=str) or None


def availability_from_json(data: Any) -> AvailabilitySnapshot | None:
    if not data:
        return None
    return AvailabilitySnapshot(inoperative=frozenset((e, c) for e, c in data))


def activity_key(transaction: Any) -> Any:
    """How the shared Activity knows a transaction (1.6: local until the CSMS numbers it)."""
    return getattr(transaction, "activity_key", None) or transaction.transaction_id
