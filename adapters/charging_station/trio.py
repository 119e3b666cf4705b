"""A ``ChargingStation`` on trio: ``async with run(facade, identity) as handle``."""

from __future__ import annotations

from ocpp_sansio.errors import needs_extra

from ._common import AsyncHandle, async_runner

with needs_extra("trio", needed_by="ocpp_sansio.adapters.charging_station.trio"):
    import trio

    from ocpp_sansio.adapters import trio as adapter


class Handle(AsyncHandle):
    """The facade's members for trio code; ``validate_token`` and ``data_transfer``
    wait for their answers."""

    _new_event = trio.Event


run = async_runner(adapter.connect, Handle, trio.current_time)

__all__ = ["Handle", "run"]
