"""The facade's records as JSON values (for ``StationStore``), and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp_sansio.flows._base import WallClock, core_time
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
        "id_token": token if version == "1.6" else unstructure(token),
        "group": reservation.group,
        "target": reservation.target,
        "connector_type": reservation.connector_type,
        "targets": list(reservation.targets),
    }


def reservation_from_json(version: str, data: Any, clock: WallClock) -> Reservation:
    """The reservation, its expiry turned back into core time of the new life (the wall
    clock at core time 0 is the reference)."""
    expiry = datetime.fromisoformat(data["expiry"])
    if version == "1.6":
        token: Any = data["id_token"]
    else:
        token = structure_fn(registry(version)["Authorize"].request)(
            {"idToken": data["id_token"]}
        ).id_token
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
