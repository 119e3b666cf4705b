"""A ``ChargingStation`` on asyncio: ``async with run(facade, identity) as handle``."""

from __future__ import annotations

import asyncio

from ocpp_sansio.adapters import asyncio as adapter

from ._common import AsyncHandle, async_runner


class Handle(AsyncHandle):
    """The facade's members for asyncio code; ``validate_token`` and ``data_transfer``
    wait for their answers."""

    _new_event = asyncio.Event


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


run = async_runner(adapter.connect, Handle, _loop_time)

__all__ = ["Handle", "run"]
