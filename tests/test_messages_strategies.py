"""The hypothesis strategies users fuzz their handlers with (ocpp_sansio.testing).

Valid frames decode back to what was drawn; invalid frames of every kind are refused with
the code the strategy promises; ``st.from_type`` knows every message class; importing
ocpp_sansio never imports hypothesis.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ocpp_sansio.testing
from ocpp_sansio import CallResult, FrameError, Role, decode_frame, encode_frame, registry
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.messages._codec import unstructure_fn
from ocpp_sansio.messages._model import is_message_class
from ocpp_sansio.testing import strategies

VERSIONS = ("1.6", "2.0.1", "2.1")


def examples(n: int) -> settings:
    """n examples under the ci profile, proportionally more under thorough."""
    return settings(max_examples=max(1, n * settings.default.max_examples // 100))


def response_to(version: str, frame: Any) -> str | None:
    if isinstance(frame, CallResult):
        return registry(version).for_payload(frame.payload).name
    return None


@pytest.mark.parametrize("version", VERSIONS)
@examples(20)
@given(data=st.data())
def test_valid_frame_objects_survive_the_wire(version: str, data: st.DataObject) -> None:
    frame = data.draw(strategies.frame_objects(version))
    text = encode_frame(frame)
    assert decode_frame(text, version, response_to=response_to(version, frame)) == frame


@pytest.mark.parametrize("version", VERSIONS)
@examples(15)
@given(data=st.data())
def test_valid_frame_texts_decode(version: str, data: st.DataObject) -> None:
    decode_frame(data.draw(strategies.frames(version)), version)


@examples(30)
@given(frame=strategies.frame_objects("2.0.1", kinds=["call", "callresult"], sent_by=Role.STATION))
def test_sent_by_keeps_what_that_role_sends(frame: Any) -> None:
    spec = registry("2.0.1").for_payload(frame.payload)
    if isinstance(frame, CallResult):  # answers a request of the CSMS
        assert spec.sender.may_send(Role.CSMS)
    else:
        assert spec.sender.may_send(Role.STATION)


@examples(10)
@given(frame=strategies.frame_objects("1.6", kinds=["call"], actions=["Heartbeat", "Reset"]))
def test_kinds_and_actions_narrow_the_frames(frame: Any) -> None:
    assert frame.action in ("Heartbeat", "Reset")


@examples(10)
@given(frame=strategies.frame_objects("2.1", kinds=["send", "callresulterror"]))
def test_2_1_has_send_and_callresulterror_frames(frame: Any) -> None:
    text = encode_frame(frame)
    assert text.startswith(("[5,", "[6,"))
    assert decode_frame(text, "2.1") == frame


def test_filters_that_match_nothing_are_refused() -> None:
    with pytest.raises(ValueError, match="no"):
        strategies.frame_objects("1.6", kinds=["send"])
    with pytest.raises(ValueError, match="not OCPP"):
        strategies.frame_objects("2.0.1", actions=["NoSuchThing"])
    with pytest.raises(ValueError):
        strategies.frame_objects("3.0")


@pytest.mark.parametrize("kind", strategies.INVALID_FRAME_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
@examples(15)
@given(data=st.data())
def test_invalid_frames_are_refused_with_their_code(
    version: str, kind: str, data: st.DataObject
) -> None:
    text, code = data.draw(strategies.invalid_frames(version, kind))
    assert code == strategies.expected_error_code(version, kind)
    with pytest.raises(FrameError) as refused:
        decode_frame(text, version)
    assert refused.value.error_code == code
    # Every one of these is answered (a CALL, or a frame we cannot tell from one), except
    # the error frames that wrong_element_type and wrong_arity may break.
    if refused.value.message_type in (None, 2):
        assert refused.value.answer is not None
        assert refused.value.answer.error_code == code
        encode_frame(refused.value.answer)


@pytest.mark.parametrize("version", VERSIONS)
@examples(30)
@given(data=st.data())
def test_invalid_frames_of_any_kind(version: str, data: st.DataObject) -> None:
    text, code = data.draw(strategies.invalid_frames(version))
    with pytest.raises(FrameError) as refused:
        decode_frame(text, version)
    assert refused.value.error_code == code


def test_expected_codes_per_version() -> None:
    code = strategies.expected_error_code
    assert code("1.6", "not_json") == "FormationViolation"
    assert code("2.0.1", "not_json") == code("2.1", "bad_message_id") == "RpcFrameworkError"
    assert code("1.6", "payload_not_object") == "FormationViolation"
    assert code("2.1", "payload_not_object") == "FormatViolation"
    assert code("2.0.1", "unknown_action") == "NotImplemented"
    assert code("1.6", "extra_property") == "FormationViolation"
    assert code("2.1", "extra_property") == "ProtocolError"
    with pytest.raises(ValueError):
        code("1.6", "sloppy")


def test_mutation_kinds_follow_the_class() -> None:
    assert strategies.mutation_kinds(v16.HeartbeatRequest) == ("extra_property",)
    assert set(strategies.mutation_kinds(v201.BootNotificationRequest)) == {
        "missing_required",
        "wrong_type",
        "too_long",
        "out_of_range",
        "extra_property",
    }
    assert "item_count" in strategies.mutation_kinds(v16.MeterValuesRequest)
    with pytest.raises(ValueError, match="cannot be broken"):
        strategies.invalid_payloads(v16.HeartbeatRequest, "too_long")
    with pytest.raises(ValueError, match="unknown"):
        strategies.invalid_payloads(v16.HeartbeatRequest, "sloppy")


def _classes() -> list[type]:
    return [
        obj
        for module in (v16, v201, v21)
        for obj in vars(module).values()
        if is_message_class(obj) and obj.__module__ == module.__name__
    ]


@examples(100)
@given(data=st.data())
def test_from_type_knows_every_message_class(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(_classes()))
    obj = data.draw(st.from_type(cls))
    assert type(obj) is cls
    unstructure_fn(cls)(obj)  # valid, or this raises


@examples(20)
@given(request=st.from_type(v201.SetChargingProfileRequest))
def test_from_type_respects_limits(request: v201.SetChargingProfileRequest) -> None:
    profile = request.charging_profile
    assert 1 <= len(profile.charging_schedule) <= 3
    assert profile.transaction_id is None or len(profile.transaction_id) <= 36


def test_register_strategies_is_idempotent() -> None:
    strategies.register_strategies()

    @examples(5)
    @given(st.from_type(v16.BootNotificationRequest))
    def drawn(request: Any) -> None:
        assert isinstance(request, v16.BootNotificationRequest)

    drawn()


def test_messages_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        strategies.messages(dict)


def test_the_package_exports_the_strategies_lazily() -> None:
    assert ocpp_sansio.testing.frames is strategies.frames
    assert ocpp_sansio.testing.messages is strategies.messages
    with pytest.raises(AttributeError):
        ocpp_sansio.testing.no_such_name  # noqa: B018
    code = (
        "import sys, ocpp_sansio, ocpp_sansio.testing\n"
        "from ocpp_sansio import decode_frame, encode_frame\n"
        "from ocpp_sansio.messages import v16, v201, v21\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'\n"
        "from ocpp_sansio.testing import frames\n"
        "assert 'hypothesis' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
