"""Network connection profiles and the reconnect plan (2.x B09, B10; Part 4 §5.3).

Pure bookkeeping: which slot to try next, how long to wait before the attempt, when a
slot has failed often enough to try the next one. The IO layer opens the connections.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import attrs

from ocpp_sansio.errors import LocalProtocolError


@attrs.frozen(kw_only=True)
class NetworkProfile:
    """One configuration slot's connection data (2.x NetworkConnectionProfileType)."""

    ocpp_csms_url: str
    security_profile: int = 1
    message_timeout: int = 30
    ocpp_interface: str = "Wired0"
    ocpp_version: str = "OCPP20"
    ocpp_transport: str = "JSON"

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkProfile:
        return cls(**{f.name: data[f.name] for f in attrs.fields(cls) if f.name in data})

    @classmethod
    def from_message(cls, data: Any) -> NetworkProfile:
        """From a SetNetworkProfile ``connectionData``."""
        return cls(
            ocpp_csms_url=data.ocpp_csms_url,
            security_profile=data.security_profile,
            message_timeout=data.message_timeout,
            ocpp_interface=str(data.ocpp_interface),
            ocpp_version=str(data.ocpp_version),
            ocpp_transport=str(data.ocpp_transport),
        )


@attrs.frozen(kw_only=True)
class RetryBackOff:
    """OCPPCommCtrlr.RetryBackOffWaitMinimum / RandomRange / RepeatTimes (Part 4 §5.3):
    the first wait is the minimum plus a random part of the range; each later one doubles
    the previous (at most RepeatTimes times) and adds a new random part."""

    wait_minimum: float = 10.0
    random_range: float = 10.0
    repeat_times: int = 5


@attrs.frozen(kw_only=True)
class ConnectionPlan:
    """The next connection attempt: to ``slot``'s ``profile``, not before ``at``."""

    slot: int
    profile: NetworkProfile
    at: float


class NetworkPlanner:
    """Slots in NetworkConfigurationPriority order, NetworkProfileConnectionAttempts
    attempts per slot (B10.FR.03), back to the first slot after a reboot or a change of
    priority (B10.FR.04), and back to the slot that last worked once every slot failed
    (B10.FR.07)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.profiles: dict[int, NetworkProfile] = {}
        self.priority: list[int] = []
        self.attempts_per_slot = 3
        self.backoff = RetryBackOff()
        self._index = 0
        self._failures = 0
        self._doublings = 0
        self._fallback: int | None = None
        self.last_good: int | None = None
        self.connected_slot: int | None = None

    def set_priority(self, slots: list[int]) -> None:
        missing = [slot for slot in slots if slot not in self.profiles]
        if missing or not slots:
            raise LocalProtocolError(f"no network profile in slot(s) {missing or slots}")
        self.priority = list(slots)
        self.restart()

    def restart(self) -> None:
        """Begin again at the first entry of the priority list (B10.FR.04)."""
        self._index = 0
        self._failures = 0
        self._fallback = None
        self._doublings = 0

    @property
    def current_slot(self) -> int:
        if self._fallback is not None:
            return self._fallback
        if not self.priority:
            raise LocalProtocolError("no network connection profile is configured")
        return self.priority[self._index % len(self.priority)]

    def plan(self, now: float, *, slot: int | None = None, wait: float = 0.0) -> ConnectionPlan:
        if slot is not None:
            if slot not in self.profiles:
                raise LocalProtocolError(f"no network profile in slot {slot}")
            if slot in self.priority:
                self._index = self.priority.index(slot)
                self._fallback = None
            else:
                self._fallback = slot
        chosen = self.current_slot
        return ConnectionPlan(slot=chosen, profile=self.profiles[chosen], at=now + wait)

    def failed(self, now: float) -> ConnectionPlan:
        """An attempt failed: the next one, after the back-off wait."""
        self._failures += 1
        if self._failures >= self.attempts_per_slot and self._fallback is None:
            self._failures = 0
            self._index += 1
            if self._index % len(self.priority) == 0 and self.last_good is not None:
                # B10.FR.07: every slot failed; go back to the one that last worked.
                self._fallback = self.last_good
        elif self._fallback is not None and self._failures >= self.attempts_per_slot:
            self._fallback = None
            self._failures = 0
        return self.plan(now, wait=self._next_wait())

    def _next_wait(self) -> float:
        b = self.backoff
        wait = float(b.wait_minimum * 2**self._doublings + self._rng.uniform(0, b.random_range))
        self._doublings = min(self._doublings + 1, b.repeat_times)
        return wait

    @property
    def configured(self) -> bool:
        return bool(self.priority)

    def connected(self) -> None:
        """A connection is open (to the current slot; None when the IO layer connected
        without a profile)."""
        self.connected_slot = self.current_slot if self.priority else None
        self.last_good = self.connected_slot
        self._failures = 0
        self._doublings = 0

    def lost(self, now: float) -> ConnectionPlan:
        """The connection dropped: reconnect at once to the same slot."""
        self.connected_slot = None
        return self.plan(now)
