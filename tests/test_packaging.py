"""What installing parts of the package gives: the core needs only attrs and cattrs; an
optional part used without its extra says which extra to install; the command has a
version."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ocpp_sansio


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def hiding(*modules: str) -> str:
    """Python code that makes ``modules`` fail to import, as if not installed."""
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


OPTIONAL = ("wsproto", "h11", "trio", "anyio", "hypothesis", "cryptography")


def test_the_core_flows_and_apps_import_with_attrs_and_cattrs_only() -> None:
    code = hiding(*OPTIONAL) + (
        "import ocpp_sansio, ocpp_sansio.flows, ocpp_sansio.testing\n"
        "import ocpp_sansio.apps.simulator, ocpp_sansio.apps.demo_csms\n"
        "print('ok')\n"
    )
    result = run_python(code)
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize(
    ("hidden", "module", "extra"),
    [
        ("wsproto", "ocpp_sansio.adapters", "websocket"),
        ("wsproto", "ocpp_sansio.adapters.asyncio", "websocket"),
        ("trio", "ocpp_sansio.adapters.trio", "trio"),
        ("hypothesis", "ocpp_sansio.testing.strategies", "hypothesis"),
        ("anyio", "ocpp_sansio.adapters.transfer", "transfer"),
        ("anyio", "ocpp_sansio.testing.memory", "testing"),
        ("nats", "ocpp_sansio.adapters.cluster.nats_engine", "cluster"),
    ],
)
def test_a_missing_extra_is_named(hidden: str, module: str, extra: str) -> None:
    code = hiding(hidden) + (
        "from ocpp_sansio.errors import MissingExtraError\n"
        "try:\n"
        f"    import {module}\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    result = run_python(code)
    assert f"pip install 'ocpp-sansio[{extra}]'" in result.stdout, result.stderr
    assert f"pip install -e '.[{extra}]'" in result.stdout  # the project is not on an index


def test_from_testing_import_messages_without_hypothesis_names_the_extra() -> None:
    code = hiding("hypothesis") + (
        "from ocpp_sansio.errors import MissingExtraError\n"
        "try:\n"
        "    from ocpp_sansio.testing import messages\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    assert "ocpp-sansio[hypothesis]" in run_python(code).stdout


def test_firmware_signature_checks_without_cryptography_name_the_extra() -> None:
    code = hiding("cryptography") + (
        "from datetime import UTC, datetime\n"
        "from ocpp_sansio.errors import MissingExtraError\n"
        "from ocpp_sansio.firmware_signature import check_signing_certificate\n"
        "try:\n"
        "    check_signing_certificate('', [], datetime.now(UTC))\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    assert "ocpp-sansio[crypto]" in run_python(code).stdout


def test_the_command_without_its_extra_prints_one_line() -> None:
    code = hiding("anyio") + (
        "import sys\nfrom ocpp_sansio.cli import main\nsys.exit(main(['--version']))\n"
    )
    result = run_python(code)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "ocpp-sansio[cli]" in result.stderr


def test_ocpp_sansio_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ocpp_sansio.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == f"ocpp-sansio {ocpp_sansio.__version__}"
