"""Kill and restart through the ChargingStation facade on its SQLite store: hypothesis
chooses what the hardware reports (plugs, authorizations, unplugs), how time passes (meter
samples, online and offline), when the link drops, what the CSMS does with transaction
messages (answers, refuses, withholds the answer after handling them) and where the
station or the CSMS dies: during an outage with samples held, mid-send, between an answer
and its arrival, during a retry. Counted at the CSMS by message id, seqNo and content:
every transaction message the station made arrives once and in order, seqNo continues
without a gap or a repeat, and the transactions a kill interrupted end with PowerLoss
(E17.FR.20/21; 1.6 §4.10)."""

from __future__ import annotations

import tempfile
from typing import Any

import attrs
import pytest
from _facade_crashkit import EVSES, FacadeCrashRig, new_rig
from _storekit import ANSWER, REFUSE, WITHHOLD
from hypothesis import example, given, settings
from hypothesis import strategies as st

VERSIONS = ("1.6", "2.0.1", "2.1")


def _step(kind: str) -> st.SearchStrategy[tuple[Any, ...]]:
    if kind in ("plug", "authorize", "unplug"):
        return st.tuples(st.just(kind), st.integers(1, EVSES))
    if kind == "tick":
        return st.tuples(st.just(kind), st.sampled_from([0.5, 3.0, 6.0, 31.0]))
    if kind == "mode":
        return st.tuples(st.just(kind), st.sampled_from([ANSWER, REFUSE, WITHHOLD]))
    if kind == "kill_station":
        return st.tuples(st.just(kind), st.booleans())
    return st.tuples(st.just(kind))


#: The frequent steps listed more often: the hardware reports, the link carries what it
#: can (reconnecting if down), single frames move, time passes (samples are due every
#: 5 s), the CSMS changes its mind, the link drops, a side dies.
KINDS = [
    *["plug", "authorize", "authorize", "unplug"] * 2,
    *["flush"] * 4,
    "to_csms",
    "to_station",
    *["tick"] * 4,
    "mode",
    "mode",
    "disconnect",
    "kill_station",
    "kill_station",
    "kill_csms",
]
STEPS = st.sampled_from(KINDS).flatmap(_step)

#: Connected and booted, a cable in on EVSE 1.
PLUGGED: list[tuple[Any, ...]] = [("flush",), ("plug", 1)]
#: Charging, then the link drops and samples are taken offline, then a kill.
OUTAGE = [
    *PLUGGED,
    ("authorize", 1),
    ("flush",),
    ("disconnect",),
    ("tick", 6.0),
    ("tick", 6.0),
    ("kill_station", False),
]
#: Authorized: the status goes first; once it is answered the Start is on the wire.
START_ON_THE_WIRE: list[tuple[Any, ...]] = [("authorize", 1), ("to_csms",), ("to_station",)]
#: The Start reaches the CSMS, which handles and answers it; the answer never arrives.
ANSWER_LOST = [
    *PLUGGED,
    ("mode", WITHHOLD),
    *START_ON_THE_WIRE,
    ("to_csms",),
    ("kill_station", False),
]
#: The Start is on the wire when the station dies; it arrives all the same.
MID_SEND = [*PLUGGED, *START_ON_THE_WIRE, ("kill_station", True)]
#: The CSMS refuses the Start; the station dies while retrying it.
DURING_RETRY = [
    *PLUGGED,
    ("mode", REFUSE),
    ("authorize", 1),
    ("flush",),
    ("tick", 3.0),
    ("kill_station", False),
]
#: The CSMS dies with the transaction open; the station resumes, the transaction ends.
CSMS_KILLED = [*PLUGGED, ("authorize", 1), ("flush",), ("kill_csms",), ("unplug", 1)]


def run(rig: FacadeCrashRig, steps: list[tuple[Any, ...]]) -> None:
    for step in steps:
        kind = step[0]
        if kind in ("plug", "authorize", "unplug"):
            rig.act(kind, step[1])
        elif kind == "tick":
            rig.tick(step[1])
        elif kind == "mode":
            rig.mode = step[1]
        elif kind == "kill_station":
            rig.kill_station(frames_arrive=step[1])
        elif kind == "to_csms":
            rig.deliver_to_csms()
        elif kind == "to_station":
            rig.deliver_to_station()
        else:
            getattr(rig, kind)()
    rig.settle()


def content(version: str, request: Any) -> Any:
    """What the CSMS must get as made: a 2.x event may be marked offline since
    (E11.FR.07)."""
    return request if version == "1.6" else attrs.evolve(request, offline=None)


def check(rig: FacadeCrashRig) -> None:
    version = rig.version
    created = [(mid, content(version, r)) for mid, r in rig.created_requests()]
    reported = [(mid, content(version, r)) for mid, r in rig.reported]
    assert reported == created  # nothing lost, nothing twice, in order, same ids and content
    assert rig.anomalies == []  # no duplicate seqNo or Start, no unknown transaction, no gap
    assert rig.station.core.held_requests == []
    assert rig.station.store.held_messages() == []
    for message_id, request in rig.reported:
        if message_id in rig.restored and version != "1.6":
            assert request.offline  # E11.FR.07: the restart took the station offline
    if version == "1.6":
        check_16(rig)
    else:
        check_2x(rig)


def check_2x(rig: FacadeCrashRig) -> None:
    by_tx: dict[str, list[Any]] = {}
    for _, request in rig.reported:
        by_tx.setdefault(request.transaction_info.transaction_id, []).append(request)
    running = {e.transaction.transaction_id for e in rig.station.evses.values() if e.transaction}
    for tx_id, events in by_tx.items():
        assert [e.seq_no for e in events] == list(range(len(events)))  # no gap, no repeat
        kinds = [str(e.event_type) for e in events]
        assert kinds[0] == "Started" and "Started" not in kinds[1:]
        if tx_id in running:
            assert "Ended" not in kinds
            continue
        assert kinds[-1] == "Ended" and "Ended" not in kinds[:-1]
        ended = events[-1]
        if str(ended.transaction_info.stopped_reason) == "PowerLoss":
            assert str(ended.trigger_reason) == "AbnormalCondition"  # E17.FR.21
    assert running <= set(by_tx)


def check_16(rig: FacadeCrashRig) -> None:
    starts = [r for _, r in rig.reported if type(r).__name__ == "StartTransactionRequest"]
    stops: dict[int, Any] = {}
    for _, request in rig.reported:
        name = type(request).__name__
        if name == "StopTransactionRequest":
            assert request.transaction_id not in stops  # one Stop per transaction
            stops[request.transaction_id] = request
        elif name == "MeterValuesRequest":
            assert request.transaction_id not in stops  # samples before their Stop
    # The CSMS numbers the Starts 1, 2, 3 …: every Stop is of a Start it saw.
    assert set(stops) <= set(range(1, len(starts) + 1))
    running = [e for e in rig.station.evses.values() if e.transaction is not None]
    assert len(starts) - len(stops) == len(running)


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=100)
@given(steps=st.lists(STEPS, max_size=60))
@example(steps=OUTAGE)
@example(steps=ANSWER_LOST)
@example(steps=MID_SEND)
@example(steps=DURING_RETRY)
@example(steps=CSMS_KILLED)
def test_killed_at_any_point_the_station_delivers_every_transaction_message_once(
    version: str, steps: list[tuple[Any, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        rig = new_rig(version, folder)
        try:
            run(rig, steps)
            check(rig)
        finally:
            rig.close()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("steps", "held", "retried"),
    [(OUTAGE, 2, 0), (ANSWER_LOST, 1, 1), (MID_SEND, 1, 1), (DURING_RETRY, 1, 0)],
    ids=["outage", "answer-lost", "mid-send", "during-retry"],
)
def test_each_kill_point_leaves_what_it_should_for_the_next_power_up(
    version: str, steps: list[tuple[Any, ...]], held: int, retried: int
) -> None:
    """The examples above do what their names say: the kill leaves that many messages held
    (the two offline samples, or the Start), and the CSMS answers that many retries again
    without handing them on."""
    with tempfile.TemporaryDirectory() as folder:
        rig = new_rig(version, folder)
        try:
            run(rig, steps)
            check(rig)
            assert (rig.held_at_power_ups, rig.retries) == ([0, held], retried)
        finally:
            rig.close()
