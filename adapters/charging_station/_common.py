"""What the three handles share: the facade's reports without ``now``, the URL and the
connection's options from the facade's network profile, flows and RetryBackOff*
settings, and the events the handles wait on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ocpp_sansio.adapters._options import Backoff, StationOptions
from ocpp_sansio.charging_station import ChargingStation, TokenValidated
from ocpp_sansio.errors import LocalProtocolError


def station_url(facade: ChargingStation, identity: str, slot: int | None = None) -> str:
    """The URL of a network profile: its ocppCsmsUrl (without the identity, as the
    profile holds it) and the station identity."""
    chosen = facade.network.plan(0.0, slot=slot).slot if slot is None else slot
    profile = facade.get_network_connection_profile(chosen)
    if profile is None:
        raise LocalProtocolError(f"no network profile in slot {chosen}")
    return f"{profile.ocpp_csms_url.rstrip('/')}/{identity}"


def backoff(facade: ChargingStation) -> Backoff:
    """The reconnect waits of OCPPCommCtrlr.RetryBackOff* (Part 4 §5.3)."""
    b = facade.network.backoff
    return Backoff(minimum=b.wait_minimum, random_range=b.random_range, repeat_times=b.repeat_times)


def station_options(facade: ChargingStation, options: StationOptions | None) -> StationOptions:
    """The options of the handle's connection: the caller's (TLS, HTTP Basic, WebSocket
    limits, an observer ...) with the facade's flows and its RetryBackOff* waits."""
    options = options or StationOptions()
    if options.flows is not None:
        raise TypeError("the facade hosts its own flows: options.flows must be None")
    return attrs.evolve(options, flows=facade.flows, backoff=backoff(facade))


class TokenWaiters:
    """Who waits for which ``TokenValidated``."""

    def __init__(self) -> None:
        self._waiting: dict[Any, list[Callable[[bool], None]]] = {}

    def wait(self, facade: ChargingStation, token: Any, settle: Callable[[bool], None]) -> None:
        self._waiting.setdefault(facade._token_key(token), []).append(settle)

    def seen(self, facade: ChargingStation, event: Any) -> None:
        if isinstance(event, TokenValidated):
            for settle in self._waiting.pop(facade._token_key(event.id_token), []):
                settle(event.accepted)


class Reports:
    """The facade's methods without ``now``: each runs on the adapter's loop through
    ``_act`` and sends what it produced."""

    facade: ChargingStation

    def _act(self, action: Callable[[float], Any]) -> Any:
        raise NotImplementedError

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.facade, name)
        return self._act(lambda now: method(*args, now=now, **kwargs))

    def on_network_disconnected(self) -> None:
        self._call("on_network_disconnected")

    def on_session_started(self, evse_id: int, connector_id: int) -> None:
        self._call("on_session_started", evse_id, connector_id)

    def on_session_finished(self, evse_id: int, connector_id: int) -> None:
        self._call("on_session_finished", evse_id, connector_id)

    def on_authorized(self, evse_id: int, connector_id: int | None, id_token: Any) -> None:
        self._call("on_authorized", evse_id, connector_id, id_token)

    def on_transaction_started(self, evse_id: int, connector_id: int, **fields: Any) -> Any:
        return self._call("on_transaction_started", evse_id, connector_id, **fields)

    def on_transaction_finished(self, evse_id: int, **fields: Any) -> None:
        self._call("on_transaction_finished", evse_id, **fields)

    def on_meter_value(self, evse_id: int, readings: dict[str, float]) -> None:
        self._call("on_meter_value", evse_id, readings)

    def on_unavailable(self, evse_id: int, connector_id: int | None) -> None:
        self._call("on_unavailable", evse_id, connector_id)

    def on_enabled(self, evse_id: int, connector_id: int | None) -> None:
        self._call("on_enabled", evse_id, connector_id)

    def on_faulted(self, evse_id: int, connector_id: int) -> None:
        self._call("on_faulted", evse_id, connector_id)

    def on_fault_cleared(self, evse_id: int, connector_id: int) -> None:
        self._call("on_fault_cleared", evse_id, connector_id)

    def on_reserved(self, evse_id: int) -> None:
        self._call("on_reserved", evse_id)

    def on_reservation_cleared(self, evse_id: int) -> None:
        self._call("on_reservation_cleared", evse_id)

    def on_reservation_status(self, reservation_id: int, status: str) -> None:
        self._call("on_reservation_status", reservation_id, status)

    def on_charging_state_changed(self, evse_id: int, charging_state: str, **fields: Any) -> None:
        self._call("on_charging_state_changed", evse_id, charging_state, **fields)

    def on_event(self, event_data: list[Any]) -> None:
        self._call("on_event", event_data)

    def on_log_status_notification(self, status: str, request_id: int | None) -> None:
        self._call("on_log_status_notification", status, request_id)

    def on_firmware_update_status_notification(
        self, request_id: int | None, status: str, **fields: Any
    ) -> None:
        self._call("on_firmware_update_status_notification", request_id, status, **fields)

    def on_security_event(self, event_type: str, **fields: Any) -> None:
        self._call("on_security_event", event_type, **fields)

    def on_variable_changed(self, component: str, variable: str, value: str) -> None:
        self._call("on_variable_changed", component, variable, value)

    def on_get_15118_ev_certificate_request(self, request: Any) -> str:
        return str(self._call("on_get_15118_ev_certificate_request", request))

    def on_external_limits_changed(self, limit: Any, **fields: Any) -> None:
        self._call("on_external_limits_changed", limit, **fields)

    def on_external_limits_cleared(self, **fields: Any) -> bool:
        return bool(self._call("on_external_limits_cleared", **fields))

    def get_composite_schedule(self, evse_id: int, duration: int, unit: str | None) -> Any:
        return self._call("get_composite_schedule", evse_id, duration, unit)

    def get_all_composite_schedules(self, duration: int, unit: str | None) -> dict[int, Any]:
        return dict(self._call("get_all_composite_schedules", duration, unit))

    def get_variables(self, items: list[tuple[str, str]]) -> list[str | None]:
        return list(self._call("get_variables", items))

    def set_variables(
        self, items: list[tuple[str, str, str]], *, source: str = "Local"
    ) -> list[str]:
        return list(self._call("set_variables", items, source=source))

    def set_message_queue_resume_delay(self, seconds: float) -> None:
        self.facade.set_message_queue_resume_delay(seconds)

    def get_network_connection_profile(self, slot: int) -> Any:
        return self.facade.get_network_connection_profile(slot)

    def get_priority_from_configuration_slot(self, slot: int) -> int | None:
        return self.facade.get_priority_from_configuration_slot(slot)

    def get_network_connection_slots(self) -> list[int]:
        return self.facade.get_network_connection_slots()

    def get_evse_transaction_id(self, evse_id: int) -> str | int | None:
        return self.facade.get_evse_transaction_id(evse_id)
