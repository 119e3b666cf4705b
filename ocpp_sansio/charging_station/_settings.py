"""Settings that act (issue 12, item 2): reading the device model (2.x) or the
configuration keys (1.6) as typed values, making every writable one take effect when it
changes, and keeping the changed ones in the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._network import RetryBackOff
from ._persist import parse_variable_name, variable_name

if TYPE_CHECKING:
    from ._facade import ChargingStation

_SECURITY_SETTINGS = ("SecurityCtrlr.", "AuthorizationKey", "SecurityProfile", "BasicAuthPassword")


class SettingReader:
    """Typed reads of ``settings.setting(name)`` with a default for absent or malformed
    values: 2.x names are ``Component.Variable[Instance]``, 1.6 names are keys."""

    def __init__(self, settings: Any, version: str) -> None:
        self._settings = settings
        self._v16 = version == "1.6"

    def text(self, name: str) -> str | None:
        value = self._settings.setting(name)
        return None if value is None else str(value)

    def number(self, name: str, default: float) -> float:
        try:
            return float(self.text(name) or "")
        except ValueError:
            return default

    def integer(self, name: str, default: int) -> int:
        try:
            return int(self.text(name) or "")
        except ValueError:
            return default

    def flag(self, name: str, default: bool) -> bool:
        value = (self.text(name) or "").strip().lower()
        return default if value not in ("true", "false") else value == "true"

    def members(self, name: str) -> list[str]:
        """A comma-separated list (MemberList, SequenceList, 1.6 CSL)."""
        return [part.strip() for part in (self.text(name) or "").split(",") if part.strip()]

    def tx_points(self, name: str) -> set[str]:
        """TxCtrlr.TxStartPoint / TxStopPoint (E01, E06); 1.6 has fixed points."""
        if self._v16:
            return {"Authorized", "EVConnected"} if name == "TxStopPoint" else {"PowerPathClosed"}
        return set(self.members(f"TxCtrlr.{name}"))


class SettingEffects:
    """Makes the settings the station obeys take effect, at power-up and on every change
    (by the CSMS or ``set_variables``), and keeps the changed ones in the store."""

    def __init__(self, station: ChargingStation) -> None:
        self.station = station

    def changed(self, name: str, now: float) -> None:
        self.save()
        self.apply(now, changed=name)
        if any(part in name for part in _SECURITY_SETTINGS):
            self.station.security.send("ReconfigurationOfSecurityParameters", now)

    def apply(self, now: float, changed: str | None = None) -> None:
        """The core's timeouts and retries, the heartbeat, the network plan, the meter."""
        station = self.station
        read = station.setting
        v16 = station.version == "1.6"
        config = station.core.config
        attempts = read.integer(
            "TransactionMessageAttempts"
            if v16
            else "OCPPCommCtrlr.MessageAttempts[TransactionEvent]",
            config.transaction_message_attempts,
        )
        interval = read.number(
            "TransactionMessageRetryInterval"
            if v16
            else "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]",
            config.transaction_message_retry_interval,
        )
        timeout = config.call_timeout
        if not v16:
            timeout = read.number("OCPPCommCtrlr.MessageTimeout[Default]", timeout)
        station.core.reconfigure(
            attrs.evolve(
                config,
                transaction_message_attempts=max(1, attempts),
                transaction_message_retry_interval=max(0.0, interval),
                call_timeout=timeout if timeout > 0 else config.call_timeout,
            )
        )
        heartbeat_name = "HeartbeatInterval" if v16 else "OCPPCommCtrlr.HeartbeatInterval"
        if changed == heartbeat_name:
            heartbeat = read.number(heartbeat_name, 0.0)
            if heartbeat > 0:
                station.core.set_heartbeat_interval(heartbeat, now)
        if not v16:
            network = station.network
            network.backoff = RetryBackOff(
                wait_minimum=read.number("OCPPCommCtrlr.RetryBackOffWaitMinimum", 10.0),
                random_range=read.number("OCPPCommCtrlr.RetryBackOffRandomRange", 10.0),
                repeat_times=read.integer("OCPPCommCtrlr.RetryBackOffRepeatTimes", 5),
            )
            network.attempts_per_slot = max(
                1, read.integer("OCPPCommCtrlr.NetworkProfileConnectionAttempts", 3)
            )
            if changed in (None, "OCPPCommCtrlr.NetworkConfigurationPriority"):
                station.connectivity.apply_priority()
        if changed is not None:
            station.meter.reconfigure(now)
            station.smart.reconfigure(now)

    def approve_variable(self, component: Any, variable: Any, value: str) -> str | None:
        """Checks the device model cannot make alone (B10.FR.02: every slot of a new
        NetworkConfigurationPriority must hold a valid profile)."""
        if (
            _fold(component.name) == "ocppcommctrlr"
            and _fold(variable.name) == "networkconfigurationpriority"
        ):
            return self.station.connectivity.refuse_priority(value)
        return None

    def save(self) -> None:
        """The values changed since the factory defaults (record ``settings``)."""
        station = self.station
        if station.version == "1.6":
            keys = station.keys
            values = {key: keys.read(key) for key in keys.names()}
        else:
            values = {}
            for item in station.model.variables():
                for attribute, held in item.attributes.items():
                    if held.mutability != "ReadOnly" and held.value is not None:
                        values[variable_name(item.component, item.variable, attribute)] = held.value
        station.store.save("settings", values)

    def restore(self) -> None:
        station = self.station
        values = station.store.load("settings") or {}
        for name, value in values.items():
            if station.version == "1.6":
                if station.keys.read(name) is not None:
                    station.keys.write(name, value)
                continue
            parsed = parse_variable_name(name)
            if parsed is None:
                continue
            component, variable, attribute = parsed
            found = station.model.lookup(component, variable)
            if found is not None and attribute in found.attributes:
                station.model.write(component, variable, attribute, value)


def _fold(text: str | None) -> str:
    return (text or "").casefold()
