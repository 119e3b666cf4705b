"""The role-free protocol facts (ocpp_sansio.rules) and ``StationCore.may_send``, which asks
them before a request is queued."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from _corekit import VERSIONS, CsmsApp, make_pair, request, status_notification
from hypothesis import given, settings
from hypothesis import strategies as st

import ocpp_sansio
from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.rules import (
    ACCEPTED,
    BOOTING,
    PENDING,
    REJECTED,
    RegistrationStatus,
    csms_gate,
    csms_refusal,
    station_gate,
    station_refusal,
    triggered_action,
)

CORE = Path(ocpp_sansio.__file__).parent


@pytest.mark.parametrize("module", [v16, v201, v21], ids=["1.6", "2.0.1", "2.1"])
def test_registration_status_equals_the_message_enums_and_text(module: Any) -> None:
    enum = module.RegistrationStatus if module is v16 else module.RegistrationStatusEnum
    for status in (ACCEPTED, PENDING, REJECTED):
        assert status == enum(status.value)
        assert status == status.value
        assert RegistrationStatus(enum(status.value)) is status


@pytest.mark.parametrize(
    ("status", "requested", "rule"),
    [
        (BOOTING, False, "B01.FR.08"),
        (BOOTING, True, "B01.FR.08"),
        (PENDING, False, "B02.FR.02"),
        (PENDING, True, None),
        (REJECTED, True, "B03.FR.02"),
        (ACCEPTED, False, None),
    ],
)
def test_station_gate_table(status: RegistrationStatus, requested: bool, rule: str | None) -> None:
    found = station_gate(status, requested)
    assert (found is None) if rule is None else (found is not None and rule in found)


def test_B03_FR_03_the_csms_sends_nothing_to_a_rejected_station() -> None:
    for version in VERSIONS:
        assert "B03.FR.03" in (csms_gate(version, REJECTED, "GetVariables") or "")
        assert csms_gate(version, ACCEPTED, "Reset") is None


def test_the_csms_sends_no_remote_start_to_a_pending_station() -> None:
    assert csms_gate("1.6", PENDING, "RemoteStartTransaction") is not None
    assert csms_gate("2.0.1", PENDING, "RequestStopTransaction") is not None
    assert csms_gate("2.1", PENDING, "GetVariables") is None


def test_B03_FR_08_and_1_6_rejected_station_answers() -> None:
    silent = station_refusal("1.6", REJECTED, "Reset")
    assert silent is not None and silent.error_code is None and silent.status is None
    for version in ("2.0.1", "2.1"):
        refusal = station_refusal(version, REJECTED, "Reset")
        assert refusal is not None and refusal.error_code == "SecurityError"
        assert "B03.FR.08" in refusal.rule


def test_B02_FR_05_pending_station_rejects_remote_start() -> None:
    refusal = station_refusal("2.0.1", PENDING, "RequestStartTransaction")
    assert refusal is not None and refusal.status == "Rejected"
    assert station_refusal("1.6", PENDING, "RemoteStartTransaction") is None
    assert station_refusal("2.0.1", ACCEPTED, "RequestStartTransaction") is None


@pytest.mark.parametrize(
    ("version", "status", "requested", "rule"),
    [
        ("2.0.1", BOOTING, False, "B01.FR.10"),
        ("2.0.1", None, False, "B01.FR.10"),
        ("2.0.1", PENDING, False, "B02.FR.09"),
        ("2.0.1", PENDING, True, None),
        ("2.1", REJECTED, True, "B03.FR.07"),
        ("2.0.1", ACCEPTED, False, None),
    ],
)
def test_csms_refusal_table(
    version: str, status: RegistrationStatus | None, requested: bool, rule: str | None
) -> None:
    found = csms_refusal(version, status, requested, refuse_unaccepted_1_6=True)
    assert (found is None) if rule is None else (found is not None and rule in found)


def test_1_6_unaccepted_refusal_is_a_choice() -> None:
    assert csms_refusal("1.6", PENDING, False, refuse_unaccepted_1_6=False) is None
    assert csms_refusal("1.6", PENDING, False, refuse_unaccepted_1_6=True) is not None


def test_extended_trigger_for_firmware_status_means_the_signed_one() -> None:
    trigger = "ExtendedTriggerMessage"
    assert triggered_action(trigger, "FirmwareStatusNotification") == (
        "SignedFirmwareStatusNotification"
    )
    assert triggered_action("TriggerMessage", "FirmwareStatusNotification") == (
        "FirmwareStatusNotification"
    )
    assert triggered_action("TriggerMessage", "SignV2GCertificate") == "SignCertificate"
    assert triggered_action("TriggerMessage", "CustomTrigger") is None


# --- may_send says what send_request will do ---------------------------------------------------


def _candidates(version: str) -> list[Any]:
    out = [status_notification(version, 1), request(version, "Heartbeat")]
    if version == "1.6":
        out.append(request(version, "MeterValues", connector_id=1, transaction_id=7))
    else:
        out.append(request(version, "NotifyReport", request_id=3, seq_no=0))
    return out


@settings(max_examples=60, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    boot_status=st.sampled_from(["Accepted", "Pending", "Rejected"]),
    steps=st.lists(st.sampled_from(["advance", "disconnect", "connect", "send"]), max_size=8),
    pick=st.integers(0, 2),
)
def test_may_send_agrees_with_send_request(
    version: str, boot_status: str, steps: list[str], pick: int
) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, boot_status=boot_status, interval=5))
    for step in steps:
        if step == "advance":
            pair.advance(3)
        elif step == "disconnect" and pair.station.connected:
            pair.disconnect()
        elif step == "connect" and not pair.station.connected:
            pair.connect()
        else:
            payload = _candidates(version)[pick]
            reason = pair.station.may_send(payload)
            if reason is None:
                pair.station.send_request(payload, pair.now)
            else:
                with pytest.raises(LocalProtocolError) as raised:
                    pair.station.send_request(payload, pair.now)
                assert str(raised.value) == reason


def test_may_send_names_the_rule() -> None:
    silent = CsmsApp("2.0.1", silent_for={"BootNotification"})
    pair = make_pair("2.0.1", connect=False, csms_app=silent)
    status = status_notification("2.0.1", 1)
    assert "E04.FR.01" in (pair.station.may_send(status) or "")
    pair.connect()
    assert "B01.FR.08" in (pair.station.may_send(status) or "")
    accepted = make_pair("2.0.1")
    assert accepted.station.may_send(status) is None
    assert pair.station.may_send(request("2.0.1", "BootNotification")) is not None
    assert pair.station.may_send(v16.HeartbeatRequest()) is not None  # not a 2.0.1 message


# --- the house: who may import whom ----------------------------------------------------------


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.add("." * node.level + module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_station_and_csms_cores_do_not_import_each_other() -> None:
    assert not any("csms" in name for name in _imports(CORE / "station.py"))
    assert not any("station" in name for name in _imports(CORE / "csms.py"))


#: The core (top-level modules, messages/) and the flows: they know nothing built on them.
LOWER_FLOORS = sorted(
    [*CORE.glob("*.py"), *(CORE / "messages").glob("*.py"), *(CORE / "flows").glob("*.py")]
)


@pytest.mark.parametrize("path", LOWER_FLOORS, ids=lambda p: str(p.relative_to(CORE)))
def test_core_and_flows_import_no_adapters_apps_or_cli(path: Path) -> None:
    for name in _imports(path):
        parts = set(name.lstrip(".").split("."))
        assert not parts & {"adapters", "apps", "cli"}, f"{path.name} imports {name}"
