"""Flows hosted by the adapter (here trio): the CSMS's transaction flow answers
TransactionEvents, and a station driving its own core sends them through its flow."""

import random
from datetime import UTC, datetime

import trio

from ocpp_sansio import CsmsConfig, CsmsCore, Event, Router, StationConfig, StationCore
from ocpp_sansio.adapters import ServerOptions, StationOptions
from ocpp_sansio.adapters.trio import CsmsSession, Station, connect, serve
from ocpp_sansio.flows import (
    CsmsTransactionEvents,
    DataTransferRouter,
    TransactionEventAnswered,
    TransactionEvents,
    uuid_transaction_ids,
)
from ocpp_sansio.messages import v201


def wall_clock(now: float) -> datetime:
    """Flows date their messages with this (``now`` is the adapter's monotonic time)."""
    return datetime.now(UTC)


router = Router()  # only what no flow answered reaches it


@router.on(v201.BootNotificationRequest)
async def boot(
    session: CsmsSession, request: v201.BootNotificationRequest
) -> v201.BootNotificationResponse:
    return v201.BootNotificationResponse(
        current_time=datetime.now(UTC),
        interval=300,
        status=v201.RegistrationStatusEnum.ACCEPTED,
    )


class Csms:
    def __init__(self) -> None:
        self.on_request = router.on_request

    async def on_event(self, session: CsmsSession, event: Event) -> None:
        print(f"csms: {type(event).__name__}")  # the core's events and the flows' own


def csms_core(identity: str, version: str) -> CsmsCore:
    """One core per station, with this CSMS's configuration, kept across reconnects."""
    return CsmsCore(version, identity, config=CsmsConfig(call_timeout=20))


def csms_flows(core: CsmsCore) -> list[object]:
    return [CsmsTransactionEvents(core), DataTransferRouter(core)]


def station_flows(core: StationCore) -> list[object]:
    ids = uuid_transaction_ids(random.Random())
    return [TransactionEvents(core, transaction_ids=ids, clock=wall_clock)]


async def main() -> None:
    options = ServerOptions(core_factory=csms_core, flows=csms_flows)
    async with serve(Csms(), "127.0.0.1", 0, options=options) as server:
        boot = v201.BootNotificationRequest(
            charging_station=v201.ChargingStation(model="Demo", vendor_name="Example"),
            reason=v201.BootReasonEnum.POWER_UP,
        )
        core = StationCore("2.0.1", boot, config=StationConfig(call_timeout=20))
        answered = trio.Event()

        async def on_event(station: Station, event: Event) -> None:
            if isinstance(event, TransactionEventAnswered):
                print("station: the CSMS answered seqNo", event.seq_no)
                answered.set()

        url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
        station_options = StationOptions(flows=station_flows)
        async with connect(url, core=core, on_event=on_event, options=station_options) as station:
            await station.wait_registered()
            (transactions,) = station.flows
            token = v201.IdToken(id_token="TAG-1", type=v201.IdTokenEnum.CENTRAL)
            station.act(
                lambda now: transactions.start(
                    trigger_reason="Authorized", now=now, evse_id=1, id_token=token
                )
            )
            await answered.wait()


if __name__ == "__main__":
    trio.run(main)
