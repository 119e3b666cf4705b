"""A ``ChargingStation`` on threads: ``with run(facade, identity) as handle`` (blocking)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ocpp_sansio.adapters import threads as adapter
from ocpp_sansio.adapters._options import StationOptions
from ocpp_sansio.charging_station import ChargingStation
from ocpp_sansio.errors import CallFailedError, LocalProtocolError

from ._common import Reports, TokenWaiters, station_options, station_url


class Handle(Reports):
    """The facade's members for blocking code; ``validate_token`` and ``data_transfer``
    block until their answer (at most ``timeout`` seconds)."""

    def __init__(self, facade: ChargingStation, station: Any, waiters: TokenWaiters) -> None:
        self.facade = facade
        self.station = station
        self._waiters = waiters

    def _act(self, action: Callable[[float], Any]) -> Any:
        return self.station.act(action)

    def validate_token(
        self, id_token: Any, *, evse_id: int | None = None, timeout: float | None = None
    ) -> bool | None:
        """The verdict; None when it did not come within ``timeout``."""
        done = threading.Event()
        verdict: list[bool] = []

        def settle(accepted: bool) -> None:
            verdict.append(accepted)
            done.set()

        self._waiters.wait(self.facade, id_token, settle)
        known = self._act(lambda now: self.facade.validate_token(id_token, now, evse_id=evse_id))
        if known is not None:
            return bool(known)
        return verdict[0] if done.wait(timeout) else None

    def data_transfer(
        self,
        vendor_id: str,
        message_id: str | None = None,
        data: Any = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """The CSMS's answer, or None when offline, failed or not within ``timeout``."""
        request = self.facade.m.DataTransferRequest(
            vendor_id=vendor_id, message_id=message_id, data=data
        )
        try:
            return self.station.call(request, timeout)
        except (CallFailedError, LocalProtocolError, TimeoutError):
            return None


@contextlib.contextmanager
def run(
    facade: ChargingStation,
    identity: str,
    *,
    url: str | None = None,
    on_event: Callable[[Handle, Any], None] | None = None,
    options: StationOptions | None = None,
) -> Iterator[Handle]:
    """Start the facade and keep it connected to ``url`` (default: its first network
    profile) with the RetryBackOff* waits and ``options`` (TLS, HTTP Basic ...: a
    ``StationOptions`` without flows, the facade brings its own); events the facade
    leaves for the application go to ``on_event(handle, event)`` (on the adapter's thread)."""
    waiters = TokenWaiters()
    handle: Handle | None = None

    def events(_station: Any, event: Any) -> None:
        waiters.seen(facade, event)
        if on_event is not None and handle is not None:
            on_event(handle, event)

    facade.start(time.monotonic(), connect=False)
    with adapter.connect(
        url or station_url(facade, identity),
        core=facade.core,
        on_event=events,
        options=station_options(facade, options),
    ) as station:
        handle = Handle(facade, station, waiters)
        yield handle
        handle._act(lambda now: facade.stop(now))


__all__ = ["Handle", "run"]
