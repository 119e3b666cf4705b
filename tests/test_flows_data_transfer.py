"""DataTransfer routing on both sides (1.6 §4.3, §5.6; 2.x P01, P02)."""

from __future__ import annotations

from typing import Any

import pytest
from _flowkit import Rig
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.events import ResponseReceived
from ocpp_sansio.flows.data_transfer import DataTransferReply, DataTransferRouter

VERSIONS = ("1.6", "2.0.1", "2.1")


def echo(request: Any, now: float) -> DataTransferReply:
    return DataTransferReply("Accepted", data=request.data)


def setup(version: str) -> tuple[Rig, DataTransferRouter, DataTransferRouter]:
    rig = Rig(version)
    station = DataTransferRouter(rig.station)
    csms = DataTransferRouter(rig.csms)
    rig.station_flows.append(station)
    rig.csms_flows.append(csms)
    return rig, station, csms


def station_answer(rig: Rig, vendor: str, message_id: str | None = None, data: Any = None) -> Any:
    rig.csms_sends(rig.m.DataTransferRequest(vendor_id=vendor, message_id=message_id, data=data))
    return rig.answers("station->csms")[-1]


@pytest.mark.parametrize("version", VERSIONS)
def test_p01_fr_05_unknown_vendor_gets_unknown_vendor_id_without_data(version: str) -> None:
    rig, _, _ = setup(version)
    assert station_answer(rig, "com.nobody", data="x") == {"status": "UnknownVendorId"}


@pytest.mark.parametrize("version", VERSIONS)
def test_p01_fr_06_known_vendor_unknown_message_gets_unknown_message_id(version: str) -> None:
    rig, station, _ = setup(version)
    station.register("com.acme", echo, message_id="Ping")
    assert station_answer(rig, "com.acme", "Pong") == {"status": "UnknownMessageId"}
    assert station_answer(rig, "com.acme") == {"status": "UnknownMessageId"}
    assert station_answer(rig, "com.acme", "Ping", "hi") == {"status": "Accepted", "data": "hi"}


@pytest.mark.parametrize("version", VERSIONS)
def test_p01_fr_07_vendor_wide_handler_takes_the_rest(version: str) -> None:
    rig, station, _ = setup(version)
    station.register("com.acme", lambda request, now: DataTransferReply("Rejected"))
    station.register("com.acme", echo, message_id="Ping")
    assert station_answer(rig, "com.acme", "Other") == {"status": "Rejected"}
    assert station_answer(rig, "com.acme", "Ping", "x")["status"] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
def test_p02_station_to_csms_routing(version: str) -> None:
    rig, station, csms = setup(version)
    csms.register("com.acme", echo, message_id="Hello")
    station.send("com.acme", rig.now, message_id="Hello", data="42")
    station.send("org.other", rig.now, data="42")
    rig.flush()
    answers = [
        e.response
        for e in rig.pair.station_events
        if isinstance(e, ResponseReceived) and e.action == "DataTransfer"
    ]
    assert [(str(a.status), a.data) for a in answers] == [
        ("Accepted", "42"),
        ("UnknownVendorId", None),  # P02.FR.06
    ]


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_2x_data_may_be_any_json(version: str) -> None:
    rig, station, _ = setup(version)
    station.register("com.acme", echo)
    answer = station_answer(rig, "com.acme", data={"a": [1, 2, {"b": None}]})
    assert answer["data"] == {"a": [1, 2, {"b": None}]}


@pytest.mark.parametrize("version", VERSIONS)
def test_registering_twice_is_refused_and_unregister_restores_the_default(version: str) -> None:
    rig, station, _ = setup(version)
    station.register("com.acme", echo)
    with pytest.raises(LocalProtocolError):
        station.register("com.acme", echo)
    station.unregister("com.acme")
    assert station_answer(rig, "com.acme") == {"status": "UnknownVendorId"}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_handler_status_outside_the_enum_is_refused(version: str) -> None:
    rig, station, _ = setup(version)
    station.register("com.acme", lambda request, now: DataTransferReply("Maybe"))
    with pytest.raises(LocalProtocolError):
        station_answer(rig, "com.acme")


@settings(max_examples=100, deadline=None)
@given(
    registered=st.lists(
        st.tuples(st.sampled_from(["v1", "v2"]), st.sampled_from([None, "m1", "m2"])),
        unique=True,
        max_size=5,
    ),
    vendor=st.sampled_from(["v1", "v2", "v3"]),
    message_id=st.sampled_from([None, "m1", "m2", "m3"]),
)
def test_random_routes_answer_as_the_rules_say(
    registered: list[tuple[str, str | None]], vendor: str, message_id: str | None
) -> None:
    rig = Rig("2.0.1", connect=False)
    router = DataTransferRouter(rig.station)
    for registered_vendor, registered_message in registered:
        router.register(
            registered_vendor,
            lambda request, now, tag=(registered_vendor, registered_message): DataTransferReply(
                "Accepted", data=list(tag)
            ),
            message_id=registered_message,
        )
    reply = router.route(rig.m.DataTransferRequest(vendor_id=vendor, message_id=message_id), 0.0)
    routes = dict.fromkeys(v for v, _ in registered)
    if vendor not in routes:
        assert reply == DataTransferReply("UnknownVendorId")
    elif (vendor, message_id) in registered:
        assert reply.data == [vendor, message_id]
    elif (vendor, None) in registered:
        assert reply.data == [vendor, None]
    else:
        assert reply == DataTransferReply("UnknownMessageId")
