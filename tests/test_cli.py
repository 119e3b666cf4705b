"""The ``ocpp-sansio`` command: complete help, the demo on every adapter, a CSMS and a
station as separate processes over loopback, and a small load run. Every run is bounded."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ocpp_sansio import registry
from ocpp_sansio.adapters import ServerOptions, WsOptions
from ocpp_sansio.adapters import threads as threads_adapter
from ocpp_sansio.apps.demo_csms import DemoCsms
from ocpp_sansio.cli.commands import build_parser, main
from ocpp_sansio.smart_charging import (
    ChargingProfile,
    ChargingSchedule,
    SchedulePeriod,
    profile_to_message,
)

PROCESS_TIMEOUT = 60
SCRIPT = Path(sys.executable).with_name("ocpp-sansio")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_command_and_option_is_explained() -> None:
    parser = build_parser()
    commands = subparsers(parser)
    assert set(commands) == {"csms", "station", "load", "demo", "call"}
    for name, command in commands.items():
        assert command.description, name
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("csms", ["--host", "--port", "--boot", "--heartbeat-interval", "--adapter", "--json-log"]),
        ("station", ["--url", "--version", "--connectors", "--duration", "--adapter"]),
        ("load", ["--url", "--stations", "--version", "--duration", "--adapter"]),
        ("demo", ["--stations", "--duration", "--adapter"]),
    ],
)
def test_help_lists_the_options(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text
    for choice in ("trio", "asyncio", "threads"):
        assert choice in text


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    for command in ("csms", "station", "load", "demo"):
        assert command in result.stdout


def test_station_needs_a_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["station", "--url", "ws://127.0.0.1:1/CS1"])
    assert exited.value.code == 2
    assert "--version" in capsys.readouterr().err


@pytest.mark.parametrize("adapter", ["trio", "asyncio", "threads"])
def test_demo_prints_a_readable_exchange(adapter: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--adapter", adapter, "--duration", "2.5"]) == 0
    out = capsys.readouterr().out
    for station in ("CS1-16", "CS2-201", "CS3-21"):
        assert f"{station} -> CSMS  BootNotification {{" in out
        assert f'CSMS -> {station}  BootNotification result {{"' in out
        assert f"{station} -> CSMS  StatusNotification" in out
        assert f"CSMS -> {station}  Get" in out  # GetConfiguration / GetVariables
    assert "CSMS -> CS1-16  TriggerMessage" in out


def start_csms(*options: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ocpp_sansio.cli", "csms", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    if "--json-log" in options:  # stdout holds JSON objects only, this one included
        url = json.loads(first)["listening"]
    else:
        assert first.startswith("CSMS listening on ws://127.0.0.1:"), first + process.stderr.read()
        url = first.split()[3]
    port = int(url.split(":")[2].split("/")[0])
    return process, port


def run_station(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ocpp_sansio.cli",
            "station",
            "--url",
            f"ws://127.0.0.1:{port}/ocpp/SIM1",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )


def test_csms_and_station_processes_talk() -> None:
    csms, port = start_csms("--json-log", "--duration", "20", "--heartbeat-interval", "1")
    try:
        station = run_station(
            port,
            "--version",
            "2.0.1",
            "--connectors",
            "2",
            "--duration",
            "3",
            "--adapter",
            "asyncio",
        )
    finally:
        csms.terminate()
        csms_out, _ = csms.communicate(timeout=PROCESS_TIMEOUT)
    assert station.returncode == 0, station.stdout + station.stderr
    assert "CSMS -> SIM1  BootNotification result" in station.stdout
    assert station.stdout.count("SIM1 -> CSMS  StatusNotification") == 2
    assert "SIM1 -> CSMS  Heartbeat" in station.stdout
    records = [json.loads(line) for line in csms_out.splitlines()]
    actions = [(r["from"], r["type"], r["action"]) for r in records if "action" in r]
    assert ("station", "CALL", "BootNotification") in actions
    assert ("csms", "CALLRESULT", "BootNotification") in actions
    assert ("station", "CALL", "Heartbeat") in actions
    assert all(r["station"] == "SIM1" for r in records)


def test_rejected_station_exits_with_failure() -> None:
    csms, port = start_csms(
        "--boot", "reject", "--quiet", "--adapter", "threads", "--duration", "20"
    )
    try:
        station = run_station(port, "--version", "1.6", "--duration", "2", "--adapter", "threads")
    finally:
        csms.terminate()
        csms.communicate(timeout=PROCESS_TIMEOUT)
    assert station.returncode == 1
    assert "BootNotification result" in station.stdout and '"Rejected"' in station.stdout
    assert station.stdout.count("-> CSMS  BootNotification") == 1  # waits the interval


def test_load_summary(capsys: pytest.CaptureFixture[str]) -> None:
    options = WsOptions(ping_interval=0)
    demo = DemoCsms(heartbeat_interval=1)
    with threads_adapter.serve(
        object(), options=ServerOptions(flows=demo.flows, ws_options=options)
    ) as server:
        code = main(
            [
                "load",
                "--url",
                f"ws://127.0.0.1:{server.port}/LOAD",
                "--stations",
                "12",
                "--version",
                "1.6",
                "--duration",
                "2.5",
            ]
        )
        sessions = sorted(server.sessions)
    assert code == 0
    out = capsys.readouterr().out
    assert "stations: 12  connected: 12  accepted: 12  never accepted: 0" in out
    assert "latency ms: p50" in out
    assert sessions == [f"load-{n:02d}" for n in range(1, 13)]
    assert threading.active_count() < 50  # the stations' threads are gone


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_station_process_takes_a_profile_and_answers_the_composite_schedule(version: str) -> None:
    """``ocpp-sansio station`` against a CSMS in this process over loopback: the CSMS sets a
    TxDefaultProfile and reads the composite schedule back (K01, K08; 1.6 §5.16, §5.7)."""
    m = registry(version)
    demo = DemoCsms(heartbeat_interval=300)
    limit = profile_to_message(
        ChargingProfile(
            id=3,
            stack_level=0,
            purpose="TxDefaultProfile",
            kind="Relative",
            schedules=[
                ChargingSchedule(
                    id=1, rate_unit="A", periods=[SchedulePeriod(start_period=0, limit=10.0)]
                )
            ],
        ),
        version,
    )
    options = ServerOptions(flows=demo.flows, ws_options=WsOptions(ping_interval=0))
    with threads_adapter.serve(object(), options=options) as server:
        station = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ocpp_sansio.cli",
                "station",
                "--url",
                f"ws://127.0.0.1:{server.port}/ocpp/sim1",
                "--version",
                version,
                "--duration",
                "6",
                "--adapter",
                "threads",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT / 2
            while "sim1" not in server.sessions or server.sessions["sim1"].registration is None:
                assert time.monotonic() < deadline, "the station never registered"
                time.sleep(0.05)
            session = server.sessions["sim1"]
            if version == "1.6":
                set_request = m["SetChargingProfile"].request(
                    connector_id=1, cs_charging_profiles=limit
                )
                get_request = m["GetCompositeSchedule"].request(
                    connector_id=1, duration=600, charging_rate_unit="A"
                )
            else:
                set_request = m["SetChargingProfile"].request(evse_id=1, charging_profile=limit)
                get_request = m["GetCompositeSchedule"].request(
                    evse_id=1, duration=600, charging_rate_unit="A"
                )
            assert str(session.call(set_request, timeout=10).status) == "Accepted"
            answer = session.call(get_request, timeout=10)
        finally:
            out, err = station.communicate(timeout=PROCESS_TIMEOUT)
    assert station.returncode == 0, out + err
    assert str(answer.status) == "Accepted"
    schedule = answer.charging_schedule if version == "1.6" else answer.schedule
    assert [(p.start_period, p.limit) for p in schedule.charging_schedule_period] == [(0, 10.0)]
    assert "CSMS -> sim1  SetChargingProfile" in out
    assert "CSMS -> sim1  GetCompositeSchedule" in out
