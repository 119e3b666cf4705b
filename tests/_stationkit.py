"""A ``ChargingStation`` against a CSMS core in memory, with pretend hardware that records
what it was asked to do. The CSMS answers with the demo CSMS's flows unless a test
overrides an action's answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ocpp_sansio._core import counter_ids
from ocpp_sansio.apps.demo_csms import DemoCsms
from ocpp_sansio.charging_station import (
    ChargingStation,
    FirmwareJob,
    NetworkProfile,
    RebootRequested,
    StationInfo,
    UploadJob,
)
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.events import CallErrorReceived, RequestReceived, ResponseReceived
from ocpp_sansio.flows import FlowHost
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.frames import Call, encode_frame
from ocpp_sansio.store import MemoryStationStore
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION, InMemoryPair

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def wall(now: float) -> datetime:
    return datetime.fromtimestamp(EPOCH.timestamp() + now, UTC)


class Hardware:
    """Pretend hardware: records every call; a meter that counts 2 Wh a second while
    energy flows."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.certificate_verdict: str | None = None
        self.unlocks = True
        self.energy_wh: dict[int, float] = {}
        self.flowing: dict[int, float] = {}

    def start_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        self.calls.append(("start_energy", evse_id))
        self.flowing[evse_id] = now

    def stop_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        self.calls.append(("stop_energy", evse_id))
        self.energy_wh[evse_id] = self._meter(evse_id, now)
        self.flowing.pop(evse_id, None)

    def _meter(self, evse_id: int, now: float) -> float:
        since = self.flowing.get(evse_id)
        base = self.energy_wh.get(evse_id, 0.0)
        return base if since is None else base + 2.0 * (now - since)

    def remote_start(self, evse_id: int, id_token: Any, now: float) -> None:
        self.calls.append(("remote_start", evse_id))

    def unlock(self, evse_id: int, connector_id: int, now: float) -> bool:
        self.calls.append(("unlock", evse_id))
        return self.unlocks

    def reset(self, evse_id: int | None, now: float) -> None:
        self.calls.append(("reset", evse_id))

    def set_availability(
        self, evse_id: int, connector_id: int | None, operative: bool, now: float
    ) -> None:
        self.calls.append(("set_availability", (evse_id, connector_id, operative)))

    def set_limit(self, evse_id: int, limit: Any, now: float) -> None:
        self.calls.append(("set_limit", (evse_id, limit, now)))

    def read_meter(self, evse_id: int, now: float) -> Mapping[str, float] | None:
        return {"Energy.Active.Import.Register": self._meter(evse_id, now)}

    def check_firmware_certificate(self, signing_certificate: str, now: float) -> str | None:
        self.calls.append(("check_firmware_certificate", signing_certificate))
        return self.certificate_verdict

    def download_firmware(self, job: FirmwareJob, now: float) -> None:
        self.calls.append(("download_firmware", job))

    def install_firmware(self, request_id: int | None, now: float) -> None:
        self.calls.append(("install_firmware", request_id))

    def upload_log(self, job: UploadJob, now: float) -> None:
        self.calls.append(("upload_log", job))

    def called(self, name: str) -> list[Any]:
        return [arg for call, arg in self.calls if call == name]


Answer = Callable[[Any], Any]


class Rig:
    """The facade against a CSMS in memory. ``answers[action](request)`` overrides the
    demo CSMS: return a response object, or a str to answer with that CALLERROR code."""

    def __init__(
        self,
        version: str = "2.0.1",
        *,
        evses: int = 1,
        boot_status: str = "Accepted",
        start: bool = True,
        store: Any = None,
        hardware: Hardware | None = None,
        **station_options: Any,
    ) -> None:
        self.version = version
        self.station_options = station_options
        self.m = messages_for(version)
        self.store = store or MemoryStationStore("CS1", version)
        self.hardware = hardware or Hardware()
        self.evse_count = evses
        self.answers: dict[str, Answer] = {}
        self.demo = DemoCsms(boot_status=boot_status, heartbeat_interval=300)
        self.demo.wall_clock = wall
        self.reboots: list[str] = []
        self.lives: list[ChargingStation] = []
        self.station = self._power_up()
        self.csms = CsmsCore(version, "CS1", id_generator=counter_ids("c"))
        self.flows = FlowHost(self.csms, self.demo.flows(self.csms))
        self.pair = InMemoryPair(
            self.station.core,
            self.csms,
            on_csms_event=self._on_csms,
            on_station_event=self._on_station,
        )
        self.transcript_before: list[Any] = []
        if start:
            self.boot()

    def _power_up(self) -> ChargingStation:
        station = ChargingStation(
            self.version,
            application=self.hardware,
            info=StationInfo(vendor="ocpp-sansio", model="Rig", serial_number="CS1"),
            evses=self.evse_count,
            store=self.store,
            network_profiles={1: NetworkProfile(ocpp_csms_url="ws://127.0.0.1/CS1")},
            wall_clock=wall,
            id_generator=counter_ids(f"s{len(self.lives)}-"),
            **self.station_options,
        )
        self.lives.append(station)
        return station

    def boot(self, **start: Any) -> None:
        self.station.start(self.pair.now, **start)
        self.pair.connect()
        self.pair.advance(0.1)

    @property
    def now(self) -> float:
        return self.pair.now

    def _on_csms(self, core: CsmsCore, event: Any, now: float) -> None:
        if isinstance(event, RequestReceived):
            custom = self.answers.get(event.action)
            if custom is not None:
                answer = custom(event.request)
                if answer is None:
                    return  # never answered
                if isinstance(answer, str):
                    core.send_error(event.message_id, answer, "refused by the test")
                else:
                    core.send_response(event.message_id, answer, now)
                return
            assert self.flows.route(event, now), event

    def _on_station(self, core: Any, event: Any, now: float) -> None:
        if isinstance(event, RebootRequested):
            self.reboots.append(event.reason)

    def inject(self, action: str, **fields: Any) -> Any:
        """A CALL the CSMS core would refuse to send (OCTT does it anyway): put straight
        into the station; returns the answer frame."""
        message_id = f"octt-{len(self.pair.transcript)}"
        request = build(self.csms.registry[action].request, **fields)
        text = encode_frame(Call(message_id=message_id, action=action, payload=request))
        self.station.core.receive_text(text, self.now)
        self.pair.flush()
        for sent in self.pair.transcript:
            frame = json.loads(sent.text)
            if frame[0] in (3, 4) and frame[1] == message_id:
                return frame
        raise AssertionError(f"no answer to {action}")

    def reboot(self, *, boot_reason: str | None = None, connect: bool = True) -> ChargingStation:
        """Power the station up again on the same store (what the IO layer does on
        RebootRequested)."""
        if self.pair.connected:
            self.pair.disconnect()
        self.station = self._power_up()
        self.pair.station = self.station.core
        self.station.start(self.now, boot_reason=boot_reason, connect=connect)
        self.pair.connect()
        self.pair.advance(0.1)
        return self.station

    def kill(self, reopen: Callable[[], Any] | None = None) -> ChargingStation:
        """The station process dies between two inputs (nothing more runs in it: not even
        its connection's end) and powers up again on what its store committed: ``reopen``
        opens the store again (default: the memory store's committed view). The CSMS
        notices the connection drop."""
        if self.pair.connected:
            self.pair.connected = False
            self.csms.connection_lost(self.now)
            self.pair.flush()
        self.store = reopen() if reopen is not None else self.store.reopen()
        self.station = self._power_up()
        self.pair.station = self.station.core
        self.station.start(self.now, connect=False)
        return self.station

    def call(self, request: Any, *, then: float = 0.1) -> Any:
        """Send ``request`` from the CSMS; its answer (or the CallErrorReceived)."""
        message_id = self.csms.send_request(request, self.now)
        self.pair.advance(then)
        for event in self.pair.csms_events:
            if isinstance(event, ResponseReceived) and event.message_id == message_id:
                return event.response
            if isinstance(event, CallErrorReceived) and event.message_id == message_id:
                return event
        raise AssertionError(f"no answer to {request!r}")

    def request(self, action: str, **fields: Any) -> Any:
        return self.call(build(self.csms.registry[action].request, **fields))

    def sent(self, action: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the station's CALLs (delivered), optionally one action only."""
        out = []
        for text in self.pair.frames(TO_CSMS):
            frame = json.loads(text)
            if frame[0] == 2 and action in (None, frame[2]):
                out.append(frame[3])
        return out

    def attempts(self, action: str) -> list[dict[str, Any]]:
        """Every CALL of ``action`` the station put on the wire, delivered or not."""
        out = []
        for sent in self.pair.transcript:
            frame = json.loads(sent.text)
            if sent.direction == TO_CSMS and frame[0] == 2 and frame[2] == action:
                out.append(frame[3])
        return out

    def answers_sent(self) -> list[Any]:
        return [json.loads(t) for t in self.pair.frames(TO_STATION)]

    def statuses(self) -> list[tuple[int, str]]:
        key = "status" if self.version == "1.6" else "connectorStatus"
        id_key = "connectorId" if self.version == "1.6" else "evseId"
        return [(p[id_key], p[key]) for p in self.sent("StatusNotification")]

    def last_status(self, evse: int) -> str:
        return [s for e, s in self.statuses() if e == evse][-1]

    def token(self, value: str = "TOKEN1") -> Any:
        if self.version == "1.6":
            return value
        return build(self.m.IdToken, id_token=value, type="ISO14443")

    def plug(self, evse: int = 1) -> None:
        self.station.on_session_started(evse, 1, self.now)
        self.pair.advance(0.1)

    def unplug(self, evse: int = 1) -> None:
        self.station.on_session_finished(evse, 1, self.now)
        self.pair.advance(0.1)

    def authorize(self, evse: int = 1, value: str = "TOKEN1") -> None:
        token = self.token(value)
        self.station.validate_token(token, self.now, evse_id=evse)
        self.pair.advance(0.1)
        self.station.on_authorized(evse, 1, token, self.now)
        self.pair.advance(0.1)

    def charge(self, evse: int = 1) -> None:
        self.plug(evse)
        self.authorize(evse)

    def tx_events(self) -> list[dict[str, Any]]:
        return self.sent("TransactionEvent")
