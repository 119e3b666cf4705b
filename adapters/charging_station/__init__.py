"""Handles on a ``ChargingStation`` for each IO style: ``trio``, ``asyncio`` (async) and
``threads`` (blocking). Each is a thin layer over that adapter's ``connect``: the same
method names as the facade, without ``now`` (the handle supplies the adapter's clock)."""
