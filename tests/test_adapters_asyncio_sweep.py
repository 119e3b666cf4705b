"""The asyncio adapter's server keeps a connection's far deadline in one sweep task rather
than in a timer per connection; the sweep must still meet every deadline, never late."""

from __future__ import annotations

import asyncio

import pytest

from ocpp_sansio.adapters.asyncio import _ServerProtocol, _Sweep, _Writes


class _Link:
    """Records when its timer fired (no WebSocket: the protocol takes default options)."""

    ws = None

    def __init__(self) -> None:
        self.fired: list[float] = []

    def timer_fired(self, now: float) -> None:
        self.fired.append(now)


async def _protocol(sweep: _Sweep) -> tuple[_ServerProtocol, _Link]:
    link = _Link()
    writes = _Writes(asyncio.get_running_loop())
    protocol = _ServerProtocol(lambda _: link, memoryview(bytearray(1)), set(), sweep, writes)  # type: ignore[arg-type,return-value]
    return protocol, link


def test_a_far_deadline_waits_in_the_sweep_and_fires_on_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_Sweep, "far", 0.1)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sweep = _Sweep()
        protocol, link = await _protocol(sweep)
        deadline = loop.time() + 0.3
        protocol.arm(deadline)
        assert protocol in sweep.waiting  # no timer of its own yet
        assert protocol._timer is None
        running = asyncio.ensure_future(sweep.run())
        try:
            while not link.fired:
                await asyncio.sleep(0.01)
        finally:
            running.cancel()
        assert link.fired[0] >= deadline  # (a loop timer never fires before its time)
        assert protocol not in sweep.waiting

    asyncio.run(main())


def test_a_near_deadline_gets_a_timer_at_once_and_an_earlier_one_replaces_a_far_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_Sweep, "far", 10.0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sweep = _Sweep()
        protocol, link = await _protocol(sweep)
        protocol.arm(loop.time() + 100.0)
        assert protocol._timer is None and protocol in sweep.waiting
        later = loop.time() + 200.0
        protocol.arm(later)  # the deadline of the moment, kept by the sweep
        assert protocol._timer is None and protocol._timer_at == later
        near = loop.time() + 0.05
        protocol.arm(near)
        assert protocol._timer is not None and protocol._timer_at == near
        assert protocol.arm_if_due(loop.time())  # the sweep lets it go
        while not link.fired:
            await asyncio.sleep(0.01)
        assert link.fired[0] >= near

    asyncio.run(main())


def test_a_timer_for_a_deadline_that_moved_far_away_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handshake's deadline is seconds away; once the station is in, the next one
    (its heartbeat falling overdue) is minutes away: no timer stays armed for the first."""
    monkeypatch.setattr(_Sweep, "far", 10.0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sweep = _Sweep()
        protocol, link = await _protocol(sweep)
        protocol.arm(loop.time() + 0.05)
        assert protocol._timer is not None
        protocol.arm(loop.time() + 600.0)
        assert protocol._timer is None and protocol in sweep.waiting
        await asyncio.sleep(0.1)
        assert link.fired == []

    asyncio.run(main())


def test_a_closed_connection_leaves_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Sweep, "far", 10.0)

    async def main() -> None:
        sweep = _Sweep()
        protocol, _ = await _protocol(sweep)
        protocol.arm(asyncio.get_running_loop().time() + 100.0)
        protocol.finish()
        assert protocol not in sweep.waiting and protocol._timer_at is None

    asyncio.run(main())
