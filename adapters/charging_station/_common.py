"""What the three handles share: the facade's reports without ``now``, the URL and the
connection's options from the facade's network profile, flows and RetryBackOff*
settings, the events the handles wait on, and the async handles' ``run`` (trio's and
asyncio's differ only in their adapter, clock and Event)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import attrs

from ocpp_sansio.adapters._options import Backoff, StationOptions
from ocpp_sansio.charging_station import ChargingStation, TokenValidated
from ocpp_sansio.errors import CallFailedError, LocalProtocolError


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


class Verdict:
    """One token validation waiting for the CSMS: ``done`` (an Event of the adapter's
    kind) is set once ``accepted`` holds the answer."""

    def __init__(self, done: Any) -> None:
        self.done = done
        self.accepted = False

    def __call__(self, accepted: bool) -> None:
        self.accepted = accepted
        self.done.set()


class HandleBase(Reports):
    """A running facade: its ``station`` (the adapter's) and the token validations that
    wait for the CSMS."""

    def __init__(self, facade: ChargingStation, station: Any, waiters: TokenWaiters) -> None:
        self.facade = facade
        self.station = station
        self._waiters = waiters

    def _act(self, action: Callable[[float], Any]) -> Any:
        return self.station.act(action)

    def _ask_token(self, id_token: Any, evse_id: int | None, verdict: Verdict) -> bool | None:
        """The facade's verdict on ``id_token`` when it knows one at once; else None, and
        ``verdict`` learns the CSMS's answer."""
        self._waiters.wait(self.facade, id_token, verdict)
        known = self._act(lambda now: self.facade.validate_token(id_token, now, evse_id=evse_id))
        return None if known is None else bool(known)

    def _data_transfer_request(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        return self.facade.m.DataTransferRequest(
            vendor_id=vendor_id, message_id=message_id, data=data
        )


class AsyncHandle(HandleBase):
    """The facade's members for async code (trio, asyncio); ``validate_token`` and
    ``data_transfer`` wait for their answers."""

    #: The adapter's Event class.
    _new_event: Callable[[], Any]

    async def validate_token(self, id_token: Any, *, evse_id: int | None = None) -> bool:
        verdict = Verdict(self._new_event())
        known = self._ask_token(id_token, evse_id, verdict)
        if known is not None:
            return known
        await verdict.done.wait()
        return verdict.accepted

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None
    ) -> Any:
        """The CSMS's answer, or None when offline or the call failed."""
        try:
            return await self.station.call(self._data_transfer_request(vendor_id, message_id, data))
        except (CallFailedError, LocalProtocolError):
            return None


H = TypeVar("H", bound=AsyncHandle)
H_co = TypeVar("H_co", bound=AsyncHandle, covariant=True)


class AsyncRun(Protocol[H_co]):
    """``run(facade, identity, *, url, on_event, options)`` of an async handle module."""

    def __call__(
        self,
        facade: ChargingStation,
        identity: str,
        *,
        url: str | None = ...,
        on_event: Callable[[Any, Any], Awaitable[None]] | None = ...,
        options: StationOptions | None = ...,
    ) -> AbstractAsyncContextManager[H_co]: ...


def async_runner(connect: Any, handle: type[H], clock: Callable[[], float]) -> AsyncRun[H]:
    """The ``run`` of an async handle module: ``connect`` is its adapter's, ``clock()``
    its time."""

    @contextlib.asynccontextmanager
    async def run(
        facade: ChargingStation,
        identity: str,
        *,
        url: str | None = None,
        on_event: Callable[[Any, Any], Awaitable[None]] | None = None,
        options: StationOptions | None = None,
    ) -> AsyncIterator[H]:
        """Start the facade and keep it connected to ``url`` (default: its first network
        profile) with the RetryBackOff* waits and ``options`` (TLS, HTTP Basic ...: a
        ``StationOptions`` without flows, the facade brings its own); events the facade
        leaves for the application go to ``on_event(handle, event)``."""
        waiters = TokenWaiters()
        running: list[H] = []

        async def events(_station: Any, event: Any) -> None:
            waiters.seen(facade, event)
            if on_event is not None and running:
                await on_event(running[0], event)

        facade.start(clock(), connect=False)
        target = url or station_url(facade, identity)
        given = station_options(facade, options)
        async with connect(target, core=facade.core, on_event=events, options=given) as station:
            running.append(handle(facade, station, waiters))
            yield running[0]
            running[0]._act(lambda now: facade.stop(now))

    run.__module__ = handle.__module__
    return run
