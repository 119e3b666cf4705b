"""Kill and restart, in memory: hypothesis chooses what the station does, when the link
drops, what the CSMS does with transaction messages (answers, refuses, withholds the
answer) and where the station or the CSMS dies (during an outage, mid-send, between an
answer and its arrival, during a retry). Counted at the CSMS by seqNo and content: every
transaction message the station made arrives once, in order, and a transaction the crash
interrupted ends with PowerLoss (E17.FR.20/21; 1.6 §4.10)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from _storekit import ANSWER, CONNECTORS, REFUSE, WITHHOLD, CrashRig
from hypothesis import example, given, settings
from hypothesis import strategies as st

VERSIONS = ("1.6", "2.0.1", "2.1")


def _step(kind: str) -> st.SearchStrategy[tuple[Any, ...]]:
    if kind in ("start", "update", "end"):
        return st.tuples(st.just(kind), st.integers(1, CONNECTORS))
    if kind == "tick":
        return st.tuples(st.just(kind), st.sampled_from([0.5, 3.0, 6.0, 30.0]))
    if kind == "mode":
        return st.tuples(st.just(kind), st.sampled_from([ANSWER, REFUSE, WITHHOLD]))
    if kind == "kill_station":
        return st.tuples(st.just(kind), st.booleans())
    return st.tuples(st.just(kind))


#: Steps, the frequent ones listed more often: the driver acts, the link carries what it
#: can (reconnecting if down), single frames move, time passes, the CSMS changes its mind,
#: the link drops, a side dies.
KINDS = [
    *["start", "update", "update", "end"] * 2,
    *["flush"] * 5,
    "to_csms",
    "to_station",
    "tick",
    "tick",
    "mode",
    "mode",
    "disconnect",
    "kill_station",
    "kill_csms",
]
STEPS = st.sampled_from(KINDS).flatmap(_step)


#: Connected, the boot sent and answered.
BOOTED: list[tuple[Any, ...]] = [("connect",), ("to_csms",), ("to_station",)]


def run(rig: CrashRig, steps: list[tuple[Any, ...]]) -> None:
    for step in steps:
        kind = step[0]
        if kind in ("start", "update", "end"):
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
    """What the CSMS must get as sent: a 2.x event may be marked offline since (E11.FR.07)."""
    if version == "1.6":
        return request
    return attrs.evolve(request, offline=None)


def check(rig: CrashRig) -> None:
    version = rig.version
    created = [(mid, content(version, r)) for mid, r in rig.created]
    reported = [(mid, content(version, r)) for mid, r in rig.reported]
    assert reported == created  # nothing lost, nothing twice, same order, same message ids
    # Nothing the driver asked for was lost, even if it waited inside the flow (1.6: for
    # its transactionId) when the station died; each transaction's messages in order.
    assert sorted(rig.readings()) == sorted(rig.intents)
    for connector in range(1, CONNECTORS + 1):
        asked = [(k, v) for c, k, v in rig.intents if c == connector]
        handled = [(k, v) for c, k, v in rig.readings() if c == connector]
        assert sorted(handled, key=lambda kv: kv[1]) == asked
        # Every transaction ends before the next starts: one a crash interrupted was
        # ended at the restart. The last may still run.
        kinds = [k for k, _ in asked if k != "update"]
        assert kinds[: len(kinds) // 2 * 2] == ["start", "end"] * (len(kinds) // 2)
        running = rig.station.running(connector) is not None
        assert running == (len(kinds) % 2 == 1)
    for message_id, request in rig.reported:
        if message_id in rig.restored and version != "1.6":
            assert request.offline  # E11.FR.07: the restart took the station offline
    assert rig.anomalies == []
    assert rig.station.core.held_requests == []
    assert rig.station_store.reopen().held_messages() == []
    if version == "1.6":
        check_16(rig)
    else:
        check_2x(rig)


def check_2x(rig: CrashRig) -> None:
    by_tx: dict[str, list[Any]] = {}
    for _, request in rig.created:
        by_tx.setdefault(request.transaction_info.transaction_id, []).append(request)
    for events in by_tx.values():
        assert [e.seq_no for e in events] == list(range(len(events)))  # no gap, no repeat
        kinds = [str(e.event_type) for e in events]
        assert kinds[0] == "Started" and "Started" not in kinds[1:]
        assert kinds.count("Ended") <= 1 and "Ended" not in kinds[:-1]
        ended = events[-1]
        if kinds[-1] == "Ended" and str(ended.trigger_reason) == "AbnormalCondition":
            assert str(ended.transaction_info.stopped_reason) == "PowerLoss"


def check_16(rig: CrashRig) -> None:
    starts = [r for _, r in rig.created if type(r).__name__ == "StartTransactionRequest"]
    stops = [r for _, r in rig.created if type(r).__name__ == "StopTransactionRequest"]
    ids = [tx.transaction_id for tx in rig.csms.flow.transactions.values()]
    assert len(set(ids)) == len(ids)
    assert len({s.transaction_id for s in stops}) == len(stops)  # one Stop per transaction
    assert len(starts) >= len(stops)


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEPS, max_size=40))
@example(  # killed during an outage with a transaction running: it ends with PowerLoss
    steps=[("start", 1), ("update", 1), ("kill_station", False), ("start", 1)]
)
@example(  # the answer is lost, then the station dies: the retry gets the first answer
    steps=[*BOOTED, ("start", 1), ("to_csms",), ("kill_station", False)]
)
@example(  # the CSMS handles, withholds, dies; the station retries during the outage
    steps=[
        *BOOTED,
        ("mode", WITHHOLD),
        ("start", 2),
        ("to_csms",),
        ("tick", 6.0),
        ("kill_csms",),
        ("end", 2),
        ("connect",),
    ]
)
@example(  # refused, retried, killed mid-send with the frame arriving
    steps=[
        *BOOTED,
        ("mode", REFUSE),
        ("start", 1),
        ("to_csms",),
        ("to_station",),
        ("mode", ANSWER),
        ("tick", 3.0),
        ("kill_station", True),
    ]
)
def test_nothing_lost_nothing_twice_order_kept(version: str, steps: list[tuple[Any, ...]]) -> None:
    rig = CrashRig(version)
    run(rig, steps)
    check(rig)


@pytest.mark.parametrize("version", VERSIONS)
def test_e17_fr_21_an_interrupted_transaction_ends_with_power_loss(version: str) -> None:
    rig = CrashRig(version)
    run(rig, [("connect",), ("start", 1), ("update", 1), ("kill_station", True)])
    check(rig)
    last = rig.reported[-1][1]
    if version == "1.6":
        assert type(last).__name__ == "StopTransactionRequest"
        assert str(last.reason) == "PowerLoss"
    else:
        assert str(last.event_type) == "Ended" and last.seq_no == 2
        assert (str(last.trigger_reason), str(last.transaction_info.stopped_reason)) == (
            "AbnormalCondition",
            "PowerLoss",
        )


def test_16_a_start_unanswered_at_the_crash_is_sent_once_and_its_stop_follows() -> None:
    rig = CrashRig("1.6")
    run(rig, [("start", 1), ("update", 1), ("end", 1), ("kill_station", False)])
    check(rig)
    actions = [type(r).__name__ for _, r in rig.reported]
    assert actions == ["StartTransactionRequest", "MeterValuesRequest", "StopTransactionRequest"]
    assert str(rig.reported[-1][1].reason) == "Local"  # its own Stop, not a second one


@pytest.mark.parametrize("version", VERSIONS)
def test_a_retry_the_csms_already_handled_is_not_reported_twice(version: str) -> None:
    rig = CrashRig(version)
    run(rig, [*BOOTED, ("mode", WITHHOLD), ("start", 1), ("to_csms",), ("tick", 6.0)])
    check(rig)
    assert rig.retries == 1
