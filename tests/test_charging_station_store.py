"""The ChargingStation facade on its durable store: SQLite without configuration, named
after the station's identity; what an entry point changed is committed before it returns
(offline meter samples included, E11/E12); a station killed and powered up again on its
store delivers what it held once, with its message ids, and ends the transactions the kill
interrupted with the next seqNo (E17.FR.20/21; 1.6 PowerLoss)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from _stationkit import Hardware, Rig, wall

from ocpp_sansio.charging_station import ChargingStation, StationInfo
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.frames import decode_frame
from ocpp_sansio.store import MemoryStationStore, default_store_folder, open_station_store
from ocpp_sansio.store.sqlite import SqliteStationStore
from ocpp_sansio.testing.pair import TO_CSMS

VERSIONS = ("1.6", "2.0.1", "2.1")
TRANSACTION_ACTIONS = ("TransactionEvent", "StartTransaction", "StopTransaction")
V2 = ("2.0.1", "2.1")


def station(version: str, **options: Any) -> ChargingStation:
    return ChargingStation(
        version,
        application=Hardware(),
        info=StationInfo(vendor="ocpp-sansio", model="Store"),
        wall_clock=wall,
        **options,
    )


# --- the default store ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_station_given_no_store_keeps_its_state_in_sqlite_named_after_its_identity(
    version: str,
) -> None:
    first = station(version, identity="CS/1")
    assert isinstance(first.store, SqliteStationStore)
    assert Path(first.store.path) == default_store_folder() / "CS%2F1.sqlite3"
    name = ("HeartbeatInterval", "") if version == "1.6" else ("OCPPCommCtrlr", "HeartbeatInterval")
    assert first.set_variables([(*name, "123")], 0.0) == ["Accepted"]
    first.store.close()  # the process ends (a kill would do: the change is committed)
    again = station(version, identity="CS/1")
    assert again.get_variables([name], 0.0) == ["123"]
    again.store.close()


@pytest.mark.parametrize("version", V2)
def test_securityctrlr_identity_is_the_stations_identity_and_reads_only(version: str) -> None:
    rig = Rig(version)
    assert rig.station.get_variables([("SecurityCtrlr", "Identity")], rig.now) == ["CS1"]
    status = rig.station.set_variables([("SecurityCtrlr", "Identity", "CS2")], rig.now)
    assert status == ["Rejected"]


def test_a_station_needs_its_identity_or_a_store() -> None:
    with pytest.raises(ValueError, match="identity"):
        station("2.0.1")
    with pytest.raises(ValueError, match="'CS1'"):
        station("2.0.1", identity="CS2", store=MemoryStationStore("CS1", "2.0.1"))


# --- offline meter samples (E11, E12) -----------------------------------------------------------


def _sample_every_5_seconds(rig: Rig) -> None:
    if rig.version == "1.6":
        item = ("MeterValueSampleInterval", "", "5")
    else:
        item = ("SampledDataCtrlr", "TxUpdatedInterval", "5")
    assert rig.station.set_variables([item], rig.now) == ["Accepted"]


def _held(store: Any, version: str) -> list[Any]:
    return [decode_frame(m.frame, version).payload for m in store.held_messages()]  # type: ignore[union-attr]


class Sqlite:
    """A station's SQLite file; ``kill()`` drops what was not committed, as a killed
    process does, and opens the file again."""

    def __init__(self, path: Path, version: str) -> None:
        self.path = path
        self.version = version
        self.store = open_station_store(path, "CS1", version)

    def kill(self) -> SqliteStationStore:
        self.store.close()  # (without a commit: what was not committed is gone)
        self.store = open_station_store(self.path, "CS1", self.version)
        return self.store


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("version", VERSIONS)
def test_E11_E12_samples_taken_offline_are_committed_as_they_are_taken(
    version: str, kind: str, tmp_path: Path
) -> None:
    """Nothing takes the station's frames while it is offline: each sample is committed by
    the timer that took it, so a kill right after loses none."""
    sqlite = Sqlite(tmp_path / "CS1.sqlite3", version) if kind == "sqlite" else None
    rig = Rig(version, store=sqlite.store if sqlite is not None else None)
    _sample_every_5_seconds(rig)
    rig.charge()
    rig.pair.disconnect()
    rig.pair.advance(17)  # samples at 5, 10 and 15 s, taken offline
    held = rig.station.held_messages
    assert len(held) == 3
    after_a_kill = sqlite.kill() if sqlite is not None else rig.store.reopen()
    kept = [without_offline(request, version) for request in _held(after_a_kill, version)]
    assert kept == [without_offline(request, version) for request in held]
    if sqlite is not None:
        sqlite.store.close()


def without_offline(request: Any, version: str) -> Any:
    """A held 2.x TransactionEvent is marked offline once the connection is lost
    (E11.FR.07), the frame in the store is as first made."""
    return request if version == "1.6" else attrs.evolve(request, offline=None)


# --- killed and powered up again -----------------------------------------------------------------


def _transaction_messages(rig: Rig) -> list[tuple[str, str, dict[str, Any]]]:
    """(message id, action, payload) of every transaction message the CSMS received."""
    out = []
    for text in rig.pair.frames(TO_CSMS):
        frame = json.loads(text)
        tied = frame[2] == "MeterValues" and "transactionId" in frame[3]
        if frame[0] == 2 and (tied or frame[2] in TRANSACTION_ACTIONS):
            out.append((frame[1], frame[2], frame[3]))
    return out


@pytest.mark.parametrize("version", V2)
def test_E17_FR_21_a_kill_during_an_outage_delivers_every_sample_once_then_ends_with_PowerLoss(
    version: str,
) -> None:
    rig = Rig(version)
    _sample_every_5_seconds(rig)
    rig.charge()
    rig.pair.disconnect()
    rig.pair.advance(17)
    rig.kill()
    rig.pair.connect()
    rig.pair.advance(5)
    events = [payload for _, action, payload in _transaction_messages(rig)]
    assert [e["seqNo"] for e in events] == list(range(len(events)))  # no gap, no repeat
    kinds = [(e["eventType"], e["triggerReason"]) for e in events]
    assert kinds == [
        ("Started", "Authorized"),
        *[("Updated", "MeterValuePeriodic")] * 3,
        ("Ended", "AbnormalCondition"),
    ]
    assert events[-1]["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert all(e.get("offline") for e in events[1:4])
    ids = [message_id for message_id, _, _ in _transaction_messages(rig)]
    assert len(ids) == len(set(ids))
    assert rig.station.held_messages == [] and rig.store.held_messages() == []


def test_1_6_a_kill_with_the_start_unanswered_sends_it_again_with_its_id_then_stops() -> None:
    """1.6 §4.10: the StartTransaction the kill left unanswered goes again with its message
    id (the CSMS numbers it once); the transaction stops with reason PowerLoss."""
    rig = Rig("1.6")
    rig.answers["StartTransaction"] = lambda request: None  # handled, never answered
    rig.charge()
    (start,) = [m for m in _transaction_messages(rig) if m[1] == "StartTransaction"]
    del rig.answers["StartTransaction"]
    rig.kill()
    rig.pair.connect()
    rig.pair.advance(5)
    sent = _transaction_messages(rig)
    assert [(mid, action) for mid, action, _ in sent] == [
        (start[0], "StartTransaction"),
        (start[0], "StartTransaction"),
        (sent[2][0], "StopTransaction"),
    ]
    assert sent[2][2]["reason"] == "PowerLoss"
    assert sent[2][2]["transactionId"] == 1  # the number the CSMS gave the Start
    assert rig.store.held_messages() == []


def test_1_6_a_hard_reset_stops_the_transaction_after_the_boot_with_HardReset() -> None:
    rig = Rig("1.6")
    rig.charge()
    m = messages_for("1.6")
    assert str(rig.call(m.ResetRequest(type="Hard")).status) == "Accepted"
    rig.pair.advance(1)
    assert rig.reboots == ["RemoteReset"]
    assert [a for _, a, _ in _transaction_messages(rig)] == ["StartTransaction"]
    rig.reboot()
    stops = [p for _, a, p in _transaction_messages(rig) if a == "StopTransaction"]
    assert [s["reason"] for s in stops] == ["HardReset"]
