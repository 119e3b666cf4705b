"""A ``ChargingStation`` on asyncio: ``async with run(facade, identity) as handle``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ocpp_sansio.adapters import asyncio as adapter
from ocpp_sansio.adapters._options import StationOptions
from ocpp_sansio.charging_station import ChargingStation
from ocpp_sansio.errors import CallFailedError, LocalProtocolError

from ._common import Reports, TokenWaiters, station_options, station_url


class Handle(Reports):
    """The facade's members for asyncio code; ``validate_token`` and ``data_transfer``
    wait for their answers."""

    def __init__(self, facade: ChargingStation, station: Any, waiters: TokenWaiters) -> None:
        self.facade = facade
        self.station = station
        self._waiters = waiters

    def _act(self, action: Callable[[float], Any]) -> Any:
        return self.station.act(action)

    async def validate_token(self, id_token: Any, *, evse_id: int | None = None) -> bool:
        done = asyncio.Event()
        verdict: list[bool] = []

        def settle(accepted: bool) -> None:
            verdict.append(accepted)
            done.set()

        self._waiters.wait(self.facade, id_token, settle)
        known = self._act(lambda now: self.facade.validate_token(id_token, now, evse_id=evse_id))
        if known is not None:
            return bool(known)
        await done.wait()
        return verdict[0]

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None
    ) -> Any:
        """The CSMS's answer, or None when offline or the call failed."""
        request = self.facade.m.DataTransferRequest(
            vendor_id=vendor_id, message_id=message_id, data=data
        )
        try:
            return await self.station.call(request)
        except (CallFailedError, LocalProtocolError):
            return None


@contextlib.asynccontextmanager
async def run(
    facade: ChargingStation,
    identity: str,
    *,
    url: str | None = None,
    on_event: Callable[[Handle, Any], Awaitable[None]] | None = None,
    options: StationOptions | None = None,
) -> AsyncIterator[Handle]:
    """Start the facade and keep it connected to ``url`` (default: its first network
    profile) with the RetryBackOff* waits and ``options`` (TLS, HTTP Basic ...: a
    ``StationOptions`` without flows, the facade brings its own); events the facade
    leaves for the application go to ``on_event(handle, event)``."""
    waiters = TokenWaiters()
    handle: Handle | None = None

    async def events(_station: Any, event: Any) -> None:
        waiters.seen(facade, event)
        if on_event is not None and handle is not None:
            await on_event(handle, event)

    facade.start(asyncio.get_running_loop().time(), connect=False)
    async with adapter.connect(
        url or station_url(facade, identity),
        core=facade.core,
        on_event=events,
        options=station_options(facade, options),
    ) as station:
        handle = Handle(facade, station, waiters)
        yield handle
        handle._act(lambda now: facade.stop(now))


__all__ = ["Handle", "run"]
