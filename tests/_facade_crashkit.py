"""The ChargingStation facade on its SQLite store and a CSMS in memory, each of which can be
killed between two inputs and powered up again on what its store committed.

Like ``_storekit.CrashRig`` (whose CSMS this reuses), but the station is the whole facade:
the hardware reports plugs, authorizations and unplugs, the facade's own timers take meter
samples (online and offline), and a kill drops the facade with its core and flows, closes
the SQLite file without committing (as a killed process does) and powers a new facade up on
the file. The wire is explicit, so a kill can fall between a send and its arrival, or
between the CSMS's answer and its arrival at the station. The hardware survives a kill.

``created`` is every transaction message the station's store was asked to hold, in order,
across power-ups (each entry point of the facade commits before it returns, so a kill
between two steps loses none); ``reported`` is every one the CSMS application handled as
new, in order. After ``settle()`` the two are the same messages: nothing lost, nothing
twice, order kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from _stationkit import Hardware
from _storekit import ANSWER, CsmsProcess, Wire, clock

from ocpp_sansio.charging_station import ChargingStation, StationInfo
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.frames import decode_frame
from ocpp_sansio.store import HeldMessage, MemoryCsmsStore
from ocpp_sansio.store.sqlite import SqliteStationStore

EVSES = 2
#: The settings every power-up works with (kept in the store by the first one): retries
#: enough for any outage the steps make, retried each second, a sample every 5 s.
SETTINGS = {
    "1.6": [
        ("TransactionMessageAttempts", "", "1000"),
        ("TransactionMessageRetryInterval", "", "1"),
        ("MeterValueSampleInterval", "", "5"),
    ],
    "2.x": [
        ("OCPPCommCtrlr", "MessageAttempts[TransactionEvent]", "1000"),
        ("OCPPCommCtrlr", "MessageAttemptInterval[TransactionEvent]", "1"),
        ("SampledDataCtrlr", "TxUpdatedInterval", "5"),
    ],
}


class GrowingMeter(Hardware):
    """Hardware whose energy register moves on at every reading, so no two 1.6 Starts are
    alike (a CSMS takes a StartTransaction with the same content for a retry)."""

    def __init__(self) -> None:
        super().__init__()
        self.readings = 0

    def read_meter(self, evse_id: int, now: float) -> Mapping[str, float] | None:
        self.readings += 1
        return {"Energy.Active.Import.Register": float(self.readings)}


class RecordingStore(SqliteStationStore):
    """The station's SQLite store, writing down every message it is asked to hold."""

    def __init__(self, path: Path, version: str, created: list[tuple[str, str]]) -> None:
        # NORMAL: a commit survives the process being killed (what these tests do) without
        # waiting for the disk; FULL only adds survival of a power cut (docs/store.md).
        super().__init__(path, identity="CS1", version=version, synchronous="NORMAL")
        self._created = created

    def hold(self, message: HeldMessage) -> None:
        super().hold(message)
        self._created.append((message.message_id, message.frame))


@attrs.define
class FacadeCrashRig(Wire):
    SETTLE_STEP = 0.1

    version: str
    folder: Path
    now: float = 0.0
    mode: str = ANSWER
    connected: bool = False
    created: list[tuple[str, str]] = attrs.field(factory=list)
    reported: list[tuple[str, Any]] = attrs.field(factory=list)
    anomalies: list[Any] = attrs.field(factory=list)
    retries: int = 0
    #: Ids of the messages a power-up took back from the store, not yet reported then.
    restored: set[str] = attrs.field(factory=set)
    kills: int = 0
    #: How many messages each power-up found held in the store.
    held_at_power_ups: list[int] = attrs.field(factory=list)
    withheld: set[str] = attrs.field(factory=set)
    to_csms: list[str] = attrs.field(factory=list)
    to_station: list[str] = attrs.field(factory=list)
    hardware: Hardware = attrs.field(factory=GrowingMeter)
    station: Any = None
    csms_store: Any = None
    csms: Any = None

    def __attrs_post_init__(self) -> None:
        self.station = self._power_up()
        key = "1.6" if self.version == "1.6" else "2.x"
        assert set(self.station.set_variables(SETTINGS[key], self.now)) == {"Accepted"}
        self.csms_store = MemoryCsmsStore()
        self.csms = CsmsProcess(self, self.csms_store)  # type: ignore[arg-type]

    @property
    def path(self) -> Path:
        return self.folder / "CS1.sqlite3"

    def _power_up(self) -> ChargingStation:
        store = RecordingStore(self.path, self.version, self.created)
        held = [m.message_id for m in store.held_messages()]
        self.held_at_power_ups.append(len(held))
        self.restored |= set(held) - {message_id for message_id, _ in self.reported}
        station = ChargingStation(
            self.version,
            application=self.hardware,
            info=StationInfo(vendor="ocpp-sansio", model="Crash"),
            evses=EVSES,
            store=store,
            wall_clock=clock,
        )
        station.start(self.now, connect=False)
        return station

    # --- moving things along

    def pump(self) -> None:
        """Both sides handle their events and put their frames on the wire (the station's
        only while connected: its commits must not depend on frames being taken)."""
        for _ in range(1000):
            moved = False
            station_events = self.station.core.events()  # the application's: none needed
            for event in self.csms.core.events():
                moved = True
                self.csms.handle(event)
            if self.connected:  # offline nobody takes the station's frames: it commits itself
                self.to_csms += self.station.core.data_to_send()
            for text in self.csms.core.data_to_send():
                frame = json.loads(text)
                if frame[1] in self.withheld and frame[0] == 3:
                    self.withheld.discard(frame[1])
                    continue  # handled, answered, and the answer never leaves
                if self.connected:
                    self.to_station.append(text)
            if not moved and not station_events:
                return
        raise RuntimeError("the rig kept talking")

    def disconnect(self) -> None:
        if not self.connected:
            return
        self._cut()
        self.station.core.connection_lost(self.now)
        self.pump()

    # --- what the hardware reports

    def act(self, kind: str, evse_id: int) -> None:
        station, now = self.station, self.now
        evse = station.evses[evse_id]
        if kind == "plug" and not evse.plugged:
            station.on_session_started(evse_id, 1, now)
        elif kind == "unplug" and evse.plugged:
            station.on_session_finished(evse_id, 1, now)
        elif kind == "authorize":
            station.on_authorized(evse_id, 1, self.token(evse_id), now)
        self.pump()

    def token(self, evse_id: int) -> Any:
        value = f"TAG{evse_id}"
        if self.version == "1.6":
            return value
        return build(messages_for(self.version).IdToken, id_token=value, type="ISO14443")

    # --- kills

    def kill_station(self, frames_arrive: bool) -> None:
        """The station process dies between two inputs; the frames it had on the wire
        arrive or not. Nothing more runs in it: its store is closed without a commit."""
        self.kills += 1
        if self.connected and frames_arrive:
            while self.to_csms:
                self.csms.core.receive_text(self.to_csms.pop(0), self.now)
                self.pump()
        self._cut()
        # Every entry point of the facade ended with a commit: nothing is left to lose.
        assert not self.station.store._database._in_transaction
        self.station.store.close()
        self.station = self._power_up()
        self.pump()

    def kill_csms(self) -> None:
        self.kills += 1
        if self.connected:
            self._cut()
            self.station.core.connection_lost(self.now)
        self.csms_store = self.csms_store.reopen()
        self.csms = CsmsProcess(self, self.csms_store)  # type: ignore[arg-type]
        self.pump()

    def _cut(self) -> None:
        """The connection dies: the CSMS notices, the wire empties."""
        if self.connected:
            self.connected = False
            self.to_csms.clear()
            self.to_station.clear()
            self.withheld.clear()
            self.csms.core.connection_lost(self.now)

    # --- the end

    def _waiting(self) -> bool:
        if self.version != "1.6":
            return False
        return any(tx.waiting for tx in self.station.transactions.snapshot().transactions)

    def created_requests(self) -> list[tuple[str, Any]]:
        """(message id, request) of every message the station held, as first made."""
        out = []
        for message_id, text in self.created:
            out.append((message_id, decode_frame(text, self.version).payload))  # type: ignore[union-attr]
        return out

    def close(self) -> None:
        self.station.store.close()


def new_rig(version: str, folder: str | os.PathLike[str]) -> FacadeCrashRig:
    return FacadeCrashRig(version, Path(folder))
