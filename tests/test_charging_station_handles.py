"""The facade's handles on each adapter (trio, asyncio, threads): the same members,
over a real loopback connection to a scripted CSMS."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import pytest
from _adapterkit import KITS, Kit, Script, until

from ocpp_sansio.adapters import StationOptions
from ocpp_sansio.adapters.charging_station._common import station_options
from ocpp_sansio.charging_station import ChargingStation, NetworkProfile, StationInfo
from ocpp_sansio.flows._base import build

pytestmark = pytest.mark.anyio


class Hardware:
    def __init__(self) -> None:
        self.energy: list[int] = []

    def start_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        self.energy.append(evse_id)

    def stop_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        pass

    def remote_start(self, evse_id: int, id_token: Any, now: float) -> None:
        pass

    def unlock(self, evse_id: int, connector_id: int, now: float) -> bool:
        return True

    def reset(self, evse_id: int | None, now: float) -> None:
        pass

    def set_availability(self, *args: Any) -> None:
        pass

    def set_limit(self, *args: Any) -> None:
        pass

    def read_meter(self, evse_id: int, now: float) -> dict[str, float] | None:
        return {"Energy.Active.Import.Register": 100.0}

    def check_firmware_certificate(self, signing_certificate: str, now: float) -> str | None:
        return None

    def download_firmware(self, *args: Any) -> None:
        pass

    def install_firmware(self, *args: Any) -> None:
        pass

    def upload_log(self, *args: Any) -> None:
        pass


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def anyio_backend(kit: Kit) -> str:
    return kit.backend


@contextlib.asynccontextmanager
async def handle_on(kit: Kit, facade: ChargingStation, **kwargs: Any) -> AsyncIterator[Any]:
    module = importlib.import_module(f"ocpp_sansio.adapters.charging_station.{kit.name}")
    manager = module.run(facade, "CS001", **kwargs)
    if not kit.blocking:
        async with manager as handle:
            yield handle
        return
    handle = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield handle
    finally:
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)


async def test_handle_boots_authorizes_charges_and_transfers_data(kit: Kit) -> None:
    script = Script()
    async with kit.serve(script) as server:
        facade = ChargingStation(
            "2.0.1",
            application=Hardware(),
            info=StationInfo(vendor="ocpp-sansio", model="Handle"),
            identity="CS001",  # its store: SQLite in the default folder
            network_profiles={
                0: NetworkProfile(ocpp_csms_url=f"ws://127.0.0.1:{server.port}/ocpp")
            },
            wall_clock=lambda now: datetime.now(UTC),
        )
        async with handle_on(kit, facade) as handle:
            await until(lambda: "StatusNotification" in script.actions())
            token = build(facade.m.IdToken, id_token="TAG1", type="ISO14443")

            async def run(name: str, *args: Any, **fields: Any) -> Any:
                method = getattr(handle, name)
                if kit.blocking:
                    return await anyio.to_thread.run_sync(lambda: method(*args, **fields))
                result = method(*args, **fields)
                return await result if hasattr(result, "__await__") else result

            assert await run("validate_token", token) is True
            await run("on_session_started", 1, 1)
            await run("on_authorized", 1, 1, token)
            await until(lambda: "TransactionEvent" in script.actions())
            assert await run("get_evse_transaction_id", 1) is not None
            answer = await run("data_transfer", "acme")
            assert answer is not None
            assert await run("get_network_connection_slots") == [0]
            await run("on_external_limits_changed", 10.0, source="EMS", evse_id=1)
            schedule = await run("get_composite_schedule", 1, 60, "A")
            assert [p.limit for p in schedule.periods] == [10.0]
            assert sorted(await run("get_all_composite_schedules", 60, "W")) == [0, 1]
        assert facade.application.energy == [1]  # type: ignore[attr-defined]


def facade_for(port: int) -> ChargingStation:
    return ChargingStation(
        "2.0.1",
        application=Hardware(),
        info=StationInfo(vendor="ocpp-sansio", model="Handle"),
        identity="CS001",  # its store: SQLite in the default folder
        network_profiles={0: NetworkProfile(ocpp_csms_url=f"ws://127.0.0.1:{port}/ocpp")},
        wall_clock=lambda now: datetime.now(UTC),
    )


async def test_handle_takes_station_options_with_the_facades_flows_and_waits(kit: Kit) -> None:
    """``run(..., options=StationOptions(...))``: the caller's options (here a frame
    observer and HTTP Basic) apply; the facade's flows and RetryBackOff* waits join them."""
    script = Script()
    seen: list[str] = []
    options = StationOptions(
        auth="0123456789abcdef", observer=lambda d, i, v, text, t: seen.append(f"{d} {text}")
    )
    async with kit.serve(script, auth={"CS001": "0123456789abcdef"}) as server:
        facade = facade_for(server.port)
        async with handle_on(kit, facade, options=options):
            await until(lambda: "StatusNotification" in script.actions())
        assert any(f.startswith("sent [2,") and "BootNotification" in f for f in seen)
    given = station_options(facade, options)
    assert given.flows == facade.flows and given.observer is options.observer
    assert given.backoff.minimum == facade.network.backoff.wait_minimum


def test_a_handle_refuses_flows_of_its_own() -> None:
    facade = facade_for(9)
    with pytest.raises(TypeError, match="own flows"):
        station_options(facade, StationOptions(flows=lambda core: []))
