"""Shared pieces for the core tests: boot messages per version, scripted applications."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import attrs

from ocpp_sansio import registry
from ocpp_sansio._core import counter_ids
from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import RequestReceived, TriggerAccepted
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.rules import TRIGGERED_ACTION
from ocpp_sansio.station import StationCore
from ocpp_sansio.testing.builders import minimal
from ocpp_sansio.testing.pair import InMemoryPair

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")
MODULES = {"1.6": v16, "2.0.1": v201, "2.1": v21}
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def boot_request(version: str) -> Any:
    if version == "1.6":
        return v16.BootNotificationRequest(charge_point_vendor="Acme", charge_point_model="X1")
    m = MODULES[version]
    return m.BootNotificationRequest(
        charging_station=m.ChargingStation(model="X1", vendor_name="Acme"),
        reason=m.BootReasonEnum.POWER_UP,
    )


def boot_response(version: str, status: str, interval: int) -> Any:
    cls = registry(version)["BootNotification"].response
    status_type = attrs.fields(cls).status.type
    return cls(status=status_type(status), current_time=NOW, interval=interval)


def request(version: str, action: str, **fields: Any) -> Any:
    return minimal(registry(version)[action].request, **fields)


def response(version: str, action: str, **fields: Any) -> Any:
    return minimal(registry(version)[action].response, **fields)


def status_notification(version: str, connector: int) -> Any:
    if version == "1.6":
        return request(version, "StatusNotification", connector_id=connector)
    return request(version, "StatusNotification", evse_id=connector, connector_id=1, timestamp=NOW)


def transaction_message(version: str, n: int) -> Any:
    """A transaction-related request, distinguishable by ``n``."""
    if version == "1.6":
        return request(version, "MeterValues", connector_id=1, transaction_id=n)
    return request(version, "TransactionEvent", seq_no=n, timestamp=NOW)


def transaction_number(version: str, payload: Any) -> int:
    return int(payload.transaction_id if version == "1.6" else payload.seq_no)


@attrs.define
class CsmsApp:
    """A scripted central system: answers boots by ``boot_status`` and everything else
    with a minimal Accepted answer; ``error_for`` actions get a CALLERROR."""

    version: str
    boot_status: str = "Accepted"
    interval: int = 60
    error_for: set[str] = attrs.field(factory=set)
    silent_for: set[str] = attrs.field(factory=set)

    def __call__(self, core: CsmsCore, event: Any, now: float) -> None:
        if not isinstance(event, RequestReceived):
            return
        if event.action in self.silent_for:
            return
        if event.action in self.error_for:
            core.send_error(event.message_id, "InternalError", "scripted failure")
            return
        if event.action == "BootNotification":
            answer = boot_response(self.version, self.boot_status, self.interval)
        else:
            answer = response(self.version, event.action)
        core.send_response(event.message_id, answer, now)


@attrs.define
class StationApp:
    """A scripted station application: answers CSMS requests minimally and sends the
    messages triggers ask for."""

    version: str

    def __call__(self, core: StationCore, event: Any, now: float) -> None:
        if isinstance(event, RequestReceived):
            core.send_response(event.message_id, response(self.version, event.action), now)
        elif isinstance(event, TriggerAccepted) and event.action == "StatusNotification":
            for target in sorted(t for t in event.targets if t is not None):
                core.send_request(status_notification(self.version, target), now)


#: Every requestedMessage value: the scripted station applications answer them all.
EVERY_TRIGGER = frozenset(TRIGGERED_ACTION)


def make_pair(
    version: str,
    *,
    csms_app: Any = None,
    station_app: Any = None,
    station_config: StationConfig | None = None,
    csms_config: CsmsConfig | None = None,
    connect: bool = True,
    triggers: frozenset[str] = EVERY_TRIGGER,
) -> InMemoryPair:
    """A connected pair; the station declares ``triggers`` as answered by its application
    unless ``station_config`` declares its own."""
    station_config = station_config or StationConfig()
    if not station_config.supported_triggers:
        station_config = attrs.evolve(station_config, supported_triggers=triggers)
    station = StationCore(
        version,
        boot_request(version),
        config=station_config,
        id_generator=counter_ids("s"),
        rng=random.Random(1),
    )
    csms = CsmsCore(version, "CS1", config=csms_config, id_generator=counter_ids("c"))
    pair = InMemoryPair(
        station,
        csms,
        on_csms_event=csms_app if csms_app is not None else CsmsApp(version),
        on_station_event=station_app if station_app is not None else StationApp(version),
    )
    if connect:
        pair.connect()
    return pair


def actions(frames: list[str]) -> list[str]:
    """The action of every CALL among ``frames``."""
    return [msg[2] for msg in map(json.loads, frames) if msg[0] == 2]


def decoded(frames: list[str]) -> list[list[Any]]:
    return [json.loads(text) for text in frames]
