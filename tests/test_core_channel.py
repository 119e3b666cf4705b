"""The RPC channel inside the cores: automatic answers, correlation, SEND (OCPP-J; 2.1 FR.07)."""

from __future__ import annotations

import pytest
from _corekit import VERSIONS, CsmsApp, decoded, make_pair, request, status_notification

from ocpp_sansio import LocalProtocolError
from ocpp_sansio.events import (
    InvalidResponse,
    MessageReceived,
    ProtocolViolation,
    RequestRefused,
    UnmatchedResponse,
)
from ocpp_sansio.messages import v21
from ocpp_sansio.testing.builders import minimal

RPC = {"1.6": "FormationViolation", "2.0.1": "RpcFrameworkError", "2.1": "RpcFrameworkError"}


@pytest.mark.parametrize("version", VERSIONS)
def test_fr_03_malformed_frame_is_answered_and_reported(version: str) -> None:
    pair = make_pair(version)
    pair.station.receive_text("{not json", pair.now)
    (frame,) = decoded(pair.station.data_to_send())
    assert frame[:3] == [4, "-1", RPC[version]]
    (event,) = pair.station.events()
    assert isinstance(event, ProtocolViolation) and event.answered and event.raw == "{not json"


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_action_is_not_implemented(version: str) -> None:
    pair = make_pair(version)
    pair.station.receive_text('[2,"a","NoSuchThing",{}]', pair.now)
    assert decoded(pair.station.data_to_send())[0][:3] == [4, "a", "NotImplemented"]


@pytest.mark.parametrize("version", VERSIONS)
def test_action_this_role_never_receives_is_not_supported(version: str) -> None:
    pair = make_pair(version)
    pair.station.receive_text('[2,"a","Heartbeat",{}]', pair.now)
    assert decoded(pair.station.data_to_send())[0][:3] == [4, "a", "NotSupported"]
    assert isinstance(pair.station.next_event(), RequestRefused)


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_violation_in_a_call_names_the_path(version: str) -> None:
    pair = make_pair(version)
    pair.station.receive_text('[2,"a","ClearCache",{"bogus":1}]', pair.now)
    frame = decoded(pair.station.data_to_send())[0]
    assert frame[4]["path"] == "$.bogus"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_request_id_still_being_handled_is_refused(version: str) -> None:
    pair = make_pair(version, station_app=lambda core, event, now: None)
    pair.station.receive_text('[2,"dup","ClearCache",{}]', pair.now)
    pair.station.receive_text('[2,"dup","ClearCache",{}]', pair.now)
    frames = decoded(pair.station.data_to_send())
    assert len(frames) == 1 and frames[0][0] == 4


@pytest.mark.parametrize("version", VERSIONS)
def test_unmatched_answer_is_reported_and_not_answered(version: str) -> None:
    pair = make_pair(version)
    pair.station.receive_text('[3,"never-sent",{}]', pair.now)
    pair.station.receive_text('[4,"never-sent","GenericError","",{}]', pair.now)
    assert pair.station.data_to_send() == []
    assert [type(e) for e in pair.station.events()] == [UnmatchedResponse, UnmatchedResponse]


@pytest.mark.parametrize("version", VERSIONS)
def test_invalid_callresult_frees_the_channel(version: str) -> None:
    pair = make_pair(version, csms_app=CsmsApp(version, silent_for={"StatusNotification"}))
    message_id = pair.station.send_request(status_notification(version, 1), pair.now)
    pair.flush()
    pair.station.receive_text(f'[3,"{message_id}",{{"unexpected":true}}]', pair.now)
    answer = pair.station.data_to_send()
    if version == "2.1":
        assert decoded(answer)[0][:3] == [5, message_id, "ProtocolError"]  # FR.06 (2.1)
    else:
        assert answer == []
    assert isinstance(pair.station.next_event(), InvalidResponse)
    assert not pair.station.channel.busy  # type: ignore[union-attr]


@pytest.mark.parametrize("version", VERSIONS)
def test_answering_twice_or_with_the_wrong_class_is_local_misuse(version: str) -> None:
    pair = make_pair(version, station_app=lambda core, event, now: None)
    pair.station.receive_text('[2,"q","ClearCache",{}]', pair.now)
    with pytest.raises(LocalProtocolError, match="answered with"):
        pair.station.send_response("q", request(version, "ClearCache"), pair.now)
    pair.station.send_error("q", "NotSupported")
    with pytest.raises(LocalProtocolError, match="awaits an answer"):
        pair.station.send_error("q", "NotSupported")


def test_send_error_refuses_a_code_of_another_version() -> None:
    pair = make_pair("1.6", station_app=lambda core, event, now: None)
    pair.station.receive_text('[2,"q","ClearCache",{}]', pair.now)
    with pytest.raises(LocalProtocolError, match="FormatViolation"):
        pair.station.send_error("q", "FormatViolation")


def test_fr_07_2_1_send_is_never_answered_and_may_cross_a_call() -> None:
    pair = make_pair("2.1", csms_app=CsmsApp("2.1", silent_for={"StatusNotification"}))
    pair.station.send_request(status_notification("2.1", 1), pair.now)
    pair.flush()
    assert pair.station.channel.busy  # type: ignore[union-attr]
    pair.station.send_request(minimal(v21.NotifyPeriodicEventStream), pair.now)
    pair.flush()
    received = [e for e in pair.csms_events if isinstance(e, MessageReceived)]
    assert len(received) == 1
    assert pair.csms.data_to_send() == []


def test_2_1_a_send_of_a_call_action_is_refused_silently() -> None:
    pair = make_pair("2.1")
    pair.csms.receive_text('[6,"z","Heartbeat",{}]', pair.now)
    assert pair.csms.data_to_send() == []
    assert isinstance(pair.csms.next_event(), ProtocolViolation)
