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

from ._common import HandleBase, TokenWaiters, Verdict, station_options, station_url


class Handle(HandleBase):
    """The facade's members for blocking code; ``validate_token`` and ``data_transfer``
    block until their answer (at most ``timeout`` seconds)."""

    def validate_token(
        self, id_token: Any, *, evse_id: int | None = None, timeout: float | None = None
    ) -> bool | None:
        """The verdict; None when it did not come within ``timeout``."""
        verdict = Verdict(threading.Event())
        known = self._ask_token(id_token, evse_id, verdict)
        if known is not None:
            return known
        return verdict.accepted if verdict.done.wait(timeout) else None

    def data_transfer(
        self,
        vendor_id: str,
        message_id: str | None = None,
        data: Any = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """The CSMS's answer, or None when offline, failed or not within ``timeout``."""
        request = self._data_transfer_request(vendor_id, message_id, data)
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
    running: list[Handle] = []

    def events(_station: Any, event: Any) -> None:
        waiters.seen(facade, event)
        if on_event is not None and running:
            on_event(running[0], event)

    facade.start(time.monotonic(), connect=False)
    target = url or station_url(facade, identity)
    given = station_options(facade, options)
    with adapter.connect(target, core=facade.core, on_event=events, options=given) as station:
        running.append(Handle(facade, station, waiters))
        yield running[0]
        running[0]._act(lambda now: facade.stop(now))


__all__ = ["Handle", "run"]
