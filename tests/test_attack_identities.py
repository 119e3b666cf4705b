"""Issue 16, finding 7: identities minted on a CSMS without auth (the demo CSMS) must cost
nothing once they are gone. Before, every identity ever seen kept a task (asyncio, trio:
its ``on_event`` reader) or an OS thread (threads), and ``server.sessions`` grew without
bound. Each attack runs against a CSMS in a process of its own (``_attackkit``) while a
healthy station times its Heartbeats.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _attackkit import ADAPTERS, HealthyStation, Peer, Target, target

#: Identities minted per attack (the short form run with the suite).
IDENTITIES = 300
#: The most the server's resident memory may grow over an attack (KiB): what stays of
#: ``IDENTITIES`` sessions kept for their keep time, with their cores.
RSS_BOUND_KIB = 6 * 1024
#: Tasks or threads the server may hold above its baseline once the identities left.
SPARE = 2


def mint(port: int, count: int, prefix: str) -> None:
    """``count`` new identities connect, boot and leave, one after the other."""
    for number in range(count):
        peer = Peer(port, f"{prefix}{number:04d}")
        peer.boot()
        peer.close()


def settled(
    attacked: Target, links: int, adapter: str, workers_at_most: int | None = None
) -> dict[str, Any]:
    """The server's stats once it holds ``links`` connections (the closed ones ended) and,
    given ``workers_at_most``, no more tasks or threads than that (a threads session's
    event thread lingers a moment); the last stats read after 10 s."""
    deadline = time.monotonic() + 10.0
    while True:
        stats = attacked.stats()
        done = stats["links"] <= links and (
            workers_at_most is None or workers(stats, adapter) <= workers_at_most
        )
        if done or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def workers(stats: dict[str, Any], adapter: str) -> int:
    """What the adapter spends per identity: tasks (event loops) or threads."""
    return int(stats["threads"] if adapter == "threads" else stats["tasks"])


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_identities_that_left_keep_no_task_or_thread(adapter: str) -> None:
    """No task or thread per idle identity; their sessions are kept for the keep time (a
    station back within it resumes), and the server's memory grows by a bounded amount."""
    with target(adapter) as attacked:
        healthy = HealthyStation(attacked.port)
        before = settled(attacked, 1, adapter)
        mint(attacked.port, IDENTITIES, "MINT")
        after = settled(attacked, 1, adapter, workers(before, adapter) + SPARE)
        worst = healthy.stop()
    assert after["links"] <= 1
    assert workers(after, adapter) <= workers(before, adapter) + SPARE, (before, after)
    assert after["sessions"] == IDENTITIES + 1  # kept for session_keep: they may resume
    grown = after["VmRSS"] - before["VmRSS"]
    assert grown < RSS_BOUND_KIB, f"RSS grew by {grown} KiB"
    print(f"{adapter}: RSS +{grown} KiB, worst Heartbeat {worst * 1e3:.1f} ms")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_sessions_of_identities_gone_past_session_keep_are_evicted(adapter: str) -> None:
    keep = 0.5
    with target(adapter, server={"session_keep": keep}) as attacked:
        healthy = HealthyStation(attacked.port)
        mint(attacked.port, IDENTITIES, "GONE")
        time.sleep(keep + 0.1)
        mint(attacked.port, 1, "LATE")  # the server meets the keep time at its next connection
        after = settled(attacked, 1, adapter)
        healthy.stop()
    assert after["sessions"] <= 2, after  # the healthy station and the late one


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_minted_identities_stop_at_max_kept_sessions(adapter: str) -> None:
    """Without auth anyone may mint identities: past ``max_kept_sessions`` the sessions of the
    identities gone longest are evicted early, so memory stays bounded."""
    cap = 50
    with target(adapter, server={"max_kept_sessions": cap}) as attacked:
        healthy = HealthyStation(attacked.port)
        mint(attacked.port, IDENTITIES, "CAP")
        after = settled(attacked, 1, adapter)
        healthy.stop()
    assert after["sessions"] <= cap + 1, after  # the kept ones and the healthy station


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_clearing_the_sessions_frees_their_tasks_and_threads(adapter: str) -> None:
    with target(adapter) as attacked:
        before = settled(attacked, 0, adapter)
        mint(attacked.port, 50, "CLEAR")
        attacked.clear_sessions()
        after = settled(attacked, 0, adapter, workers(before, adapter) + SPARE)
    assert after["sessions"] == 0
    assert workers(after, adapter) <= workers(before, adapter) + SPARE, (before, after)
