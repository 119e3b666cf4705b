"""The stores themselves: one contract for the in-memory and the SQLite implementations
(what a commit keeps and a crash loses, order of held messages, JSON values), and the
SQLite file's guards (another station, version or side, a newer layout, a second process)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import StoreError, StoreMismatch
from ocpp_sansio.store import (
    SCHEMA_VERSION,
    STATE_DIR_VARIABLE,
    AnsweredMessage,
    HeldMessage,
    MemoryCsmsStore,
    MemoryStationStore,
    default_store_folder,
    open_csms_store,
    open_default_station_store,
    open_station_store,
)
from ocpp_sansio.store.sqlite import SqliteStationStore, station_store_path

Reopen = Callable[[], Any]


class MemoryFactory:
    """Opens the station's store; ``crash()`` gives what a restarted process would see."""

    def __init__(self, tmp_path: Path) -> None:
        self.store: Any = MemoryStationStore("CS1", "2.0.1")

    def open(self) -> Any:
        return self.store

    def crash(self) -> Any:
        self.store = self.store.reopen()
        return self.store


class SqliteFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "CS1.sqlite3"
        self.store: Any = open_station_store(self.path, "CS1", "2.0.1")

    def open(self) -> Any:
        return self.store

    def crash(self) -> Any:
        self.store.close()  # without a commit: what was not committed is gone
        self.store = open_station_store(self.path, "CS1", "2.0.1")
        return self.store


@pytest.fixture(params=[MemoryFactory, SqliteFactory], ids=["memory", "sqlite"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made = request.param(tmp_path)
    yield made
    if isinstance(made.store, SqliteStationStore):
        made.store.close()


def message(n: int, attempts: int = 0) -> HeldMessage:
    return HeldMessage(
        f"1-{n}", "TransactionEvent", f'[2,"1-{n}","TransactionEvent",{{}}]', attempts
    )


def test_held_messages_keep_their_order_and_attempts_across_a_restart(factory: Any) -> None:
    store = factory.open()
    for n in range(1, 6):
        store.hold(message(n))
    store.release("1-2")
    store.count_attempt("1-1", 2)
    store.commit()
    store = factory.crash()
    assert store.held_messages() == [message(1, 2), message(3), message(4), message(5)]


def test_what_was_not_committed_is_lost_and_nothing_else(factory: Any) -> None:
    store = factory.open()
    store.hold(message(1))
    store.save("a", {"x": [1, 2]})
    store.commit()
    store.hold(message(2))
    store.release("1-1")
    store.save("a", None)
    store.save("b", 3)
    assert [m.message_id for m in store.held_messages()] == ["1-2"]  # seen before commit
    store = factory.crash()
    assert store.held_messages() == [message(1)]
    assert (store.load("a"), store.load("b")) == ({"x": [1, 2]}, None)


def test_power_ups_count_up_once_committed(factory: Any) -> None:
    store = factory.open()
    assert store.begin_power_up() == 1
    store.commit()
    store = factory.crash()
    assert store.begin_power_up() == 2  # not committed: the next start counts 2 again
    store = factory.crash()
    assert store.begin_power_up() == 2


def test_a_new_power_up_drops_the_hooks_of_the_previous_one(factory: Any) -> None:
    """A station rebooted in the same process keeps its store object: the previous
    power-up's objects are gone, their hooks must not write over the new ones' state."""
    store = factory.open()
    ran: list[str] = []
    store.before_commit(lambda: ran.append("old"))
    store.begin_power_up()
    store.before_commit(lambda: ran.append("new"))
    store.commit()
    assert ran == ["new"]


def test_values_are_json_and_come_back_as_copies(factory: Any) -> None:
    store = factory.open()
    value = {"list": [1, "two", None, True], "nested": {"f": 1.5}}
    store.save("k", value)
    value["list"].append(5)
    assert store.load("k") == {"list": [1, "two", None, True], "nested": {"f": 1.5}}
    with pytest.raises(TypeError):
        store.save("bad", {1, 2})


def test_items_lists_a_prefix_in_key_order(factory: Any) -> None:
    store = factory.open()
    for key in ("cache/b", "cache/a", "cachex", "other", "cache/"):
        store.save(key, key)
    store.commit()
    assert [k for k, _ in factory.crash().items("cache/")] == ["cache/", "cache/a", "cache/b"]


def test_hooks_run_before_each_commit_and_their_writes_commit_with_it(factory: Any) -> None:
    store = factory.open()
    calls: list[int] = []

    def hook() -> None:
        calls.append(len(calls))
        store.save("hooked", len(calls))

    store.before_commit(hook)
    store.commit()
    store.commit()
    assert calls == [0, 1]
    assert factory.crash().load("hooked") == 2


STEPS = st.sampled_from(["hold", "release", "attempt", "commit"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["hold", "release", "attempt", "commit"]), st.integers(0, 6))
    )
)
def test_memory_and_sqlite_agree(tmp_path_factory: Any, steps: list[tuple[str, int]]) -> None:
    folder = tmp_path_factory.mktemp("agree")
    memory: Any = MemoryStationStore("CS1", "1.6")
    sqlite = open_station_store(folder / "s.sqlite3", "CS1", "1.6")
    try:
        held: set[int] = set()
        for kind, n in steps:
            for store in (memory, sqlite):
                if kind == "hold" and n not in held:
                    store.hold(message(n))
                elif kind == "release":
                    store.release(f"1-{n}")
                elif kind == "attempt":
                    store.count_attempt(f"1-{n}", n)
                elif kind == "commit":
                    store.commit()
            if kind == "hold":
                held.add(n)
            elif kind == "release":
                held.discard(n)
        assert memory.held_messages() == sqlite.held_messages()
        sqlite.close()
        sqlite = open_station_store(folder / "s.sqlite3", "CS1", "1.6")
        assert memory.reopen().held_messages() == sqlite.held_messages()
    finally:
        sqlite.close()


# --- the CSMS's stores ---------------------------------------------------------------------------


def answer(n: int) -> AnsweredMessage:
    return AnsweredMessage(f"m{n}", "TransactionEvent", f"T/{n}/Updated", "{}", "{}")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_csms_station_stores_share_one_file_and_commit(kind: str, tmp_path: Path) -> None:
    def open_it() -> Any:
        return MemoryCsmsStore(disk=disk) if kind == "memory" else open_csms_store(path)

    path = tmp_path / "csms.sqlite3"
    disk = MemoryCsmsStore().disk
    csms = open_it()
    one, other = csms.station("CS1"), csms.station("cs2")
    assert csms.station("cs1") is one  # the same object for the core and the keeper
    for n in range(3):
        one.remember(answer(n))
    one.forget("m1")
    other.save("registration", {"status": "Accepted", "interval": 300})
    other.commit()  # commits the whole store
    one.remember(answer(9))
    if kind == "sqlite":
        csms.close()
    again = open_it()
    assert again.station("Cs1").answers() == [answer(0), answer(2)]
    assert again.station("CS2").load("registration") == {"status": "Accepted", "interval": 300}
    assert again.station("CS3").answers() == []
    if kind == "sqlite":
        again.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_csms_commit_runs_the_hooks_of_every_station_it_makes_durable(
    kind: str, tmp_path: Path
) -> None:
    csms: Any = MemoryCsmsStore() if kind == "memory" else open_csms_store(tmp_path / "c.db")
    ran: list[str] = []
    for name in ("A", "B", "C"):
        csms.station(name).before_commit(lambda name=name: ran.append(name))
    csms.station("B").save("x", 1)
    csms.station("A").commit()
    assert ran == ["A", "B"]  # C has nothing to commit: its flows are not asked
    if kind == "sqlite":
        csms.close()


# --- the SQLite file's guards --------------------------------------------------------------


def test_a_file_of_another_station_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with open_station_store(path, "CS1", "2.0.1") as store:
        store.hold(message(1))
        store.commit()
    with pytest.raises(StoreMismatch, match="belongs to station 'CS1', not 'CS2'"):
        open_station_store(path, "CS2", "2.0.1")
    with pytest.raises(StoreMismatch, match=r"holds OCPP 2\.0\.1 state"):
        open_station_store(path, "CS1", "1.6")
    with pytest.raises(StoreMismatch, match="is a station store, not a csms one"):
        open_csms_store(path)
    with open_station_store(path, "CS1", "2.0.1") as store:
        assert store.held_messages() == [message(1)]


def test_a_csms_file_is_not_a_station_file(tmp_path: Path) -> None:
    open_csms_store(tmp_path / "c.sqlite3").close()
    with pytest.raises(StoreMismatch, match="is a csms store, not a station one"):
        open_station_store(tmp_path / "c.sqlite3", "CS1", "1.6")


def test_a_file_from_a_newer_ocpp_sansio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    open_station_store(path, "CS1", "1.6").close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    db.close()
    with pytest.raises(StoreMismatch, match=f"layout version {SCHEMA_VERSION + 1}"):
        open_station_store(path, "CS1", "1.6")


def test_a_file_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello " * 1000)
    with pytest.raises(StoreError, match=r"notes\.txt"):
        open_station_store(path, "CS1", "1.6")


def test_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with (
        open_station_store(path, "CS1", "1.6"),
        pytest.raises(StoreError, match="in use by another process"),
    ):
        open_station_store(path, "CS1", "1.6")
    open_station_store(path, "CS1", "1.6").close()  # free again once closed


def test_the_file_is_in_wal_mode_with_the_chosen_synchronous(tmp_path: Path) -> None:
    with open_station_store(tmp_path / "a.db", "CS1", "1.6", synchronous="NORMAL") as store:
        db = store._database.db
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA synchronous").fetchone() == (1,)
    with open_station_store(tmp_path / "b.db", "CS1", "1.6") as store:
        assert store._database.db.execute("PRAGMA synchronous").fetchone() == (2,)
    with pytest.raises(ValueError, match="synchronous must be one of"):
        open_station_store(tmp_path / "c.db", "CS1", "1.6", synchronous="OFF")


def test_the_open_function_makes_the_folder(tmp_path: Path) -> None:
    with open_station_store(tmp_path / "a" / "b" / "CS1.sqlite3", "CS1", "1.6") as store:
        assert Path(store.path).exists()


@pytest.mark.parametrize(
    ("identity", "name"),
    [
        ("CS1", "CS1.sqlite3"),
        ("station 7/a", "station%207%2Fa.sqlite3"),
        ("..", "%2E..sqlite3"),
        ("é", "%C3%A9.sqlite3"),
    ],
)
def test_station_store_path_makes_a_safe_file_name(identity: str, name: str) -> None:
    assert station_store_path("/var/lib/x", identity) == Path("/var/lib/x") / name


def test_the_default_folder_is_the_platforms_state_folder_or_the_one_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(STATE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    if sys.platform not in ("win32", "darwin"):
        assert default_store_folder() == tmp_path / "state" / "ocpp-sansio" / "stations"
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(tmp_path / "chosen"))
    assert default_store_folder() == tmp_path / "chosen"
    with open_default_station_store("CS/1", "2.0.1") as store:
        assert Path(store.path) == tmp_path / "chosen" / "CS%2F1.sqlite3"
        assert store.identity == "CS/1"


def test_a_folder_given_as_the_path_holds_the_file_named_after_the_identity(
    tmp_path: Path,
) -> None:
    with open_station_store(tmp_path, "CS 1", "1.6") as store:
        assert Path(store.path) == tmp_path / "CS%201.sqlite3"
