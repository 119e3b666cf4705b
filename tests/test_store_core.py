"""The cores with a store: a station's held transaction messages survive a restart with
their message ids and attempt counts, message ids never repeat, and a CSMS answers a
retried transaction message with its first answer, also after its own restart."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from _corekit import (
    V2,
    VERSIONS,
    CsmsApp,
    StationApp,
    boot_request,
    transaction_message,
    transaction_number,
)

from ocpp_sansio._core import counter_ids
from ocpp_sansio.config import StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import StoreError, StoreMismatch
from ocpp_sansio.events import (
    RegistrationStatus,
    RequestReceived,
    RetryAnswered,
    TransactionMessageDiscarded,
)
from ocpp_sansio.station import StationCore
from ocpp_sansio.store import HeldMessage, MemoryCsmsStore, MemoryStationStore
from ocpp_sansio.testing.pair import TO_CSMS, TO_STATION, InMemoryPair


def station(version: str, store: Any, **config: Any) -> StationCore:
    return StationCore(
        version,
        boot_request(version),
        config=StationConfig(**config),
        rng=random.Random(1),
        store=store,
    )


def pair_with(station_core: StationCore, csms: CsmsCore, csms_app: Any = None) -> InMemoryPair:
    version = station_core.version
    return InMemoryPair(
        station_core,
        csms,
        on_csms_event=csms_app or CsmsApp(version),
        on_station_event=StationApp(version),
    )


def calls(pair: InMemoryPair, direction: str = TO_CSMS) -> list[list[Any]]:
    return [f for f in map(json.loads, pair.frames(direction)) if f[0] == 2]


@pytest.mark.parametrize("version", VERSIONS)
def test_held_messages_go_out_after_a_restart_in_order_with_their_ids(version: str) -> None:
    store = MemoryStationStore("CS1", version)
    first = station(version, store)
    ids = [first.send_request(transaction_message(version, n), 0.0) for n in range(1, 4)]
    first.commit()  # offline: nothing is sent, but the messages are kept
    del first  # the process dies

    again = station(version, store.reopen())
    pair = pair_with(again, CsmsCore(version, "CS1", id_generator=counter_ids("c")))
    pair.connect()
    sent = [f for f in calls(pair) if f[2] != "BootNotification"]
    assert [f[1] for f in sent] == ids
    numbers = [f[3]["seqNo"] if version != "1.6" else f[3]["transactionId"] for f in sent]
    assert numbers == [1, 2, 3]
    assert again.held_requests == []
    assert store.reopen().held_messages() == []  # delivered: released, and committed


@pytest.mark.parametrize("version", V2)
def test_e11_fr_07_transaction_events_held_at_a_crash_go_out_marked_offline(version: str) -> None:
    store = MemoryStationStore("CS1", version)
    first = station(version, store)
    pair = pair_with(first, CsmsCore(version, "CS1"), CsmsApp(version, silent_for={"X"}))
    pair.connect()
    pair.drop = lambda direction, text: direction == TO_CSMS and "TransactionEvent" in text
    first.send_request(transaction_message(version, 0), pair.now)
    pair.flush()  # sent, lost on the way: in flight when the station dies

    again = station(version, store.reopen())
    pair = pair_with(again, CsmsCore(version, "CS1"))
    pair.connect()
    (event,) = [f for f in calls(pair) if f[2] == "TransactionEvent"]
    assert event[3]["offline"] is True


@pytest.mark.parametrize("version", VERSIONS)
def test_e13_attempts_already_made_count_after_a_restart(version: str) -> None:
    store = MemoryStationStore("CS1", version)
    config = {"transaction_message_attempts": 3, "transaction_message_retry_interval": 1.0}
    app = CsmsApp(version, error_for={"MeterValues", "TransactionEvent"})
    first = station(version, store, **config)
    pair = pair_with(first, CsmsCore(version, "CS1"), app)
    pair.connect()
    first.send_request(transaction_message(version, 7), pair.now)
    pair.advance(1.5)  # two attempts refused
    assert len([f for f in calls(pair) if f[2] != "BootNotification"]) == 2

    again = station(version, store.reopen(), **config)
    pair = pair_with(again, CsmsCore(version, "CS1"), app)
    pair.connect()
    pair.advance(5)
    assert len([f for f in calls(pair) if f[2] != "BootNotification"]) == 1  # the third
    (discarded,) = [e for e in pair.station_events if isinstance(e, TransactionMessageDiscarded)]
    assert discarded.attempts == 3
    assert store.reopen().held_messages() == []


@pytest.mark.parametrize("version", VERSIONS)
def test_message_ids_never_repeat_across_power_ups(version: str) -> None:
    store: Any = MemoryStationStore("CS1", version)
    seen: list[str] = []
    for _ in range(3):
        core = station(version, store)
        pair = pair_with(core, CsmsCore(version, "CS1"))
        pair.connect()
        for n in range(3):
            core.send_request(transaction_message(version, n), pair.now)
        pair.flush()
        seen += [f[1] for f in calls(pair)]
        store = store.reopen()
    assert len(seen) == len(set(seen)) == 12
    assert seen[0].startswith("1-") and seen[-1].startswith("3-")


def test_what_was_never_committed_never_left() -> None:
    store = MemoryStationStore("CS1", "2.0.1")
    core = station("2.0.1", store)
    pair = pair_with(core, CsmsCore("2.0.1", "CS1"))
    pair.connect()
    pair.drop = lambda direction, text: True  # nothing arrives any more
    core.send_request(transaction_message("2.0.1", 0), pair.now)
    # The frame was never taken (data_to_send not called): the restart forgets it, and
    # the CSMS never saw it either.
    assert station("2.0.1", store.reopen()).held_requests == []


def test_a_store_of_another_version_is_refused() -> None:
    with pytest.raises(StoreMismatch, match=r"holds OCPP 1\.6 state"):
        station("2.0.1", MemoryStationStore("CS1", "1.6"))


# --- the CSMS core --------------------------------------------------------------------------------


class Counting(CsmsApp):
    """Counts the transaction messages the application is asked to handle."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.seen: list[Any] = []

    def __call__(self, core: CsmsCore, event: Any, now: float) -> None:
        if isinstance(event, RequestReceived) and event.action != "BootNotification":
            self.seen.append(event.request)
        super().__call__(core, event, now)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_retry_with_the_same_message_id_gets_the_first_answer_once(version: str) -> None:
    app = Counting(version)
    csms = CsmsCore(version, "CS1")
    store = MemoryStationStore("CS1", version)
    core = station(version, store)
    pair = pair_with(core, csms, app)
    pair.connect()
    answers: list[str] = []

    def lose_answers(direction: str, text: str) -> bool:
        if direction == TO_STATION and json.loads(text)[0] == 3:
            answers.append(text)
            return True
        return False

    pair.drop = lose_answers
    core.send_request(transaction_message(version, 5), pair.now)
    pair.flush()  # processed at the CSMS; its answer is lost; the station restarts
    pair.drop = lambda d, t: False
    pair.disconnect()
    core = station(version, store.reopen())
    pair = pair_with(core, csms, app)
    pair.connect()
    assert len(app.seen) == 1
    (retry,) = [e for e in pair.csms_events if isinstance(e, RetryAnswered)]
    assert retry.first_message_id == retry.message_id
    second = [t for t in pair.frames(TO_STATION) if json.loads(t)[0] == 3][-1]
    assert json.loads(second)[2] == json.loads(answers[-1])[2]
    assert core.held_requests == []


def test_a_reused_message_id_with_other_content_is_a_new_message() -> None:
    """1.6: only the same request repeats; a station reusing ids (against the rule) is
    still heard."""
    app = Counting("1.6")
    pair = pair_with(station("1.6", None), CsmsCore("1.6", "CS1"), app)
    pair.connect()
    pair.station._new_id = lambda: "same-id"
    for n in (1, 2):
        pair.station.send_request(transaction_message("1.6", n), pair.now)
        pair.flush()
    assert [r.transaction_id for r in app.seen] == [1, 2]


@pytest.mark.parametrize("version", V2)
def test_a_transaction_event_repeated_under_a_new_id_is_known_by_its_seq_no(version: str) -> None:
    app = Counting(version)
    pair = pair_with(station(version, None), CsmsCore(version, "CS1"), app)
    pair.connect()
    for _ in range(2):
        pair.station.send_request(transaction_message(version, 4), pair.now)
        pair.flush()
    assert len(app.seen) == 1
    (retry,) = [e for e in pair.csms_events if isinstance(e, RetryAnswered)]
    assert retry.first_message_id != retry.message_id


def test_a_call_error_is_not_remembered_and_the_retry_is_handled_again() -> None:
    app = CsmsApp("2.0.1", error_for={"TransactionEvent"})
    core = station("2.0.1", None, transaction_message_retry_interval=1.0)
    pair = pair_with(core, CsmsCore("2.0.1", "CS1"), app)
    pair.connect()
    core.send_request(transaction_message("2.0.1", 0), pair.now)
    pair.flush()
    app.error_for.clear()
    pair.advance(2)
    handled = [e for e in pair.csms_events if isinstance(e, RequestReceived)]
    assert [e.action for e in handled].count("TransactionEvent") == 2
    assert not any(isinstance(e, RetryAnswered) for e in pair.csms_events)


@pytest.mark.parametrize("version", VERSIONS)
def test_b04_a_restarted_csms_serves_a_station_that_resumes_without_a_boot(version: str) -> None:
    csms_store = MemoryCsmsStore()
    app = Counting(version)
    csms = CsmsCore(version, "CS1", store=csms_store.station("CS1"))
    core = station(version, None)
    pair = pair_with(core, csms, app)
    pair.connect()
    assert csms.registration is RegistrationStatus.ACCEPTED
    core.send_request(transaction_message(version, 1), pair.now)
    pair.flush()
    pair.disconnect()

    restarted = CsmsCore(version, "cs1", store=csms_store.reopen().station("CS1"))
    assert restarted.registration is RegistrationStatus.ACCEPTED
    assert restarted.heartbeat_interval == 60
    pair = pair_with(core, restarted, app)
    pair.connect()  # the station resumes (B04): no boot, and no SecurityError
    core.send_request(transaction_message(version, 2), pair.now)
    pair.flush()
    assert [transaction_number(version, r) for r in app.seen] == [1, 2]
    assert not any(f[2] == "BootNotification" for f in calls(pair))


def test_a_restarted_csms_still_knows_its_last_answers() -> None:
    csms_store = MemoryCsmsStore()
    app = Counting("2.0.1")
    store = MemoryStationStore("CS1", "2.0.1")
    core = station("2.0.1", store)
    pair = pair_with(core, CsmsCore("2.0.1", "CS1", store=csms_store.station("CS1")), app)
    pair.connect()
    pair.drop = lambda d, t: d == TO_STATION and json.loads(t)[0] == 3
    core.send_request(transaction_message("2.0.1", 3), pair.now)
    pair.flush()  # the answer is lost; then both sides restart
    csms = CsmsCore("2.0.1", "CS1", store=csms_store.reopen().station("CS1"))
    pair = pair_with(station("2.0.1", store.reopen()), csms, app)
    pair.connect()
    assert len(app.seen) == 1
    assert [type(e) for e in pair.csms_events].count(RetryAnswered) == 1


def test_a_csms_store_of_another_station_is_refused() -> None:
    with pytest.raises(StoreMismatch, match="'CS2'"):
        CsmsCore("1.6", "CS1", store=MemoryCsmsStore().station("CS2"))


def test_the_adapters_driver_commits_offline_too() -> None:
    """A transaction message made while offline is committed by the driver's flush (the
    adapters' one way to push a core's output), not only when frames go out."""
    from ocpp_sansio.adapters import StationOptions
    from ocpp_sansio.adapters._driver import StationDriver, posix_wall_clock

    store = MemoryStationStore("CS1", "2.0.1")
    core = station("2.0.1", store)
    driver = StationDriver.for_url(
        "ws://127.0.0.1:9/CS1",
        version=None,
        boot=None,
        core=core,
        options=StationOptions(rng=random.Random(0)),
        wall_clock=posix_wall_clock,
    )

    class Waiter:
        def settle(self, response: Any, error: BaseException | None) -> None: ...

    driver.call(transaction_message("2.0.1", 0), Waiter(), 0.0)
    assert store.reopen().held_messages() == []
    driver.flush()  # no connection: nothing to write, but the store commits
    assert len(store.reopen().held_messages()) == 1


def test_a_held_frame_that_cannot_be_read_back_is_a_store_error() -> None:
    store = MemoryStationStore("CS1", "2.0.1")
    store.hold(HeldMessage("1-1", "TransactionEvent", '[2,"1-1","TransactionEvent",{}]'))
    store.commit()
    with pytest.raises(StoreError, match=r"held message 1-1 \(TransactionEvent\) cannot"):
        station("2.0.1", store.reopen())
