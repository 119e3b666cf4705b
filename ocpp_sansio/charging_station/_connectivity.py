"""The facade's side of the network (B09, B10): connection requests for the IO layer from
the ``NetworkPlanner``, SetNetworkProfile, NetworkConfigurationPriority, and the profiles
kept in the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ocpp_sansio.events import RequestReceived

from ._events import ConnectRequested
from ._network import ConnectionPlan, NetworkProfile

if TYPE_CHECKING:
    from ._facade import ChargingStation

#: The highest configuration slot NetworkConfigurationPriority can name.
MAX_SLOT = 9


class Connectivity:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        self.network = station.network

    def _request(self, plan: ConnectionPlan) -> ConnectRequested:
        return ConnectRequested(slot=plan.slot, profile=plan.profile, at=plan.at)

    def connect(self, now: float, slot: int | None) -> None:
        self.station.router.emit(self._request(self.network.plan(now, slot=slot)))

    def connect_failed(self, now: float) -> ConnectRequested:
        return self._request(self.network.failed(now))

    def network_disconnected(self, now: float) -> None:
        """The network went away: lose the connection, or ask for a new one at once."""
        station = self.station
        if station.core.connected:
            station.core.connection_lost(now)
        elif self.network.configured:
            station.router.emit(self._request(self.network.lost(now)))
            station.router.settle(now)

    def connected(self, now: float) -> None:
        if self.station.first_connected_at is None:
            self.station.first_connected_at = now
        self.network.connected()

    def disconnected(self, now: float) -> None:
        station = self.station
        if station.reboots.rebooting:
            return
        if station.started and self.network.configured:
            station.router.emit(self._request(self.network.lost(now)))

    # --- SetNetworkProfile, NetworkConfigurationPriority

    def set_network_profile(self, event: RequestReceived, now: float) -> None:
        """B09: store the profile in its slot; Rejected for a slot NetworkConfigurationPriority
        cannot name (B09.FR.05) or a lower security profile (B09.FR.04)."""
        station = self.station
        request = event.request
        slot = request.configuration_slot
        profile = NetworkProfile.from_message(request.connection_data)
        current = station.setting.integer("SecurityCtrlr.SecurityProfile", 1)
        if not 0 <= slot <= MAX_SLOT or profile.security_profile < current:
            station.router.answer(event, now, status="Rejected")
            return
        active = self.network.connected_slot
        if active is not None and slot == active:
            station.router.answer(event, now, status="Rejected")  # never overwrite the slot in use
            return
        self.network.profiles[slot] = profile
        self.save()
        station.router.answer(event, now, status="Accepted")
        station.security.send("ReconfigurationOfSecurityParameters", now)

    def refuse_priority(self, value: str) -> str | None:
        """B10.FR.02: every slot of a new NetworkConfigurationPriority holds a profile."""
        slots = _slots(value)
        if not slots or any(s not in self.network.profiles for s in slots):
            return "InvalidValue"
        return None

    def apply_priority(self) -> None:
        priority = self.station.setting.text("OCPPCommCtrlr.NetworkConfigurationPriority")
        usable = [s for s in _slots(priority or "") or () if s in self.network.profiles]
        if usable:
            self.network.set_priority(usable)

    # --- the store

    def save(self) -> None:
        self.station.store.save(
            "network_profiles",
            {str(slot): p.to_json() for slot, p in self.network.profiles.items()},
        )

    def restore(self, provisioned: Mapping[int, NetworkProfile]) -> None:
        """The provisioned profiles, overridden by those the CSMS set (record
        ``network_profiles``), in NetworkConfigurationPriority order."""
        station = self.station
        stored = station.store.load("network_profiles") or {}
        profiles = dict(provisioned)
        for slot, data in stored.items():
            profiles[int(slot)] = NetworkProfile.from_json(data)
        self.network.profiles = profiles
        if station.version == "1.6":
            if profiles:
                self.network.priority = sorted(profiles)
            return
        priority = station.setting.text("OCPPCommCtrlr.NetworkConfigurationPriority")
        slots = _slots(priority or "") or []
        usable = [s for s in slots if s in profiles] or sorted(profiles)
        if usable:
            self.network.priority = usable


def _slots(value: str) -> list[int] | None:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        return None
