"""Codec corners found by the schema tests: date-times without a UTC form, multipleOf on
large numbers, and the URI format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ocpp_sansio import FrameError, decode_frame, encode_frame
from ocpp_sansio.frames import Call
from ocpp_sansio.messages import v16, v201
from ocpp_sansio.messages._codec import format_datetime, parse_datetime, unstructure_fn


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("0001-01-01T00:00:00.123456+05:00", "0001-01-01T00:00:00.123+05:00"),
        ("9999-12-31T23:59:59.999999-05:00", "9999-12-31T23:59:59.999-05:00"),
        ("0001-01-01T04:00:00.0004+05:00", "0001-01-01T04:00:00+05:00"),
        ("2025-06-01T12:00:00.123456+02:00", "2025-06-01T10:00:00.123Z"),
    ],
)
def test_datetimes_out_keep_to_milliseconds_even_without_a_utc_form(text: str, out: str) -> None:
    # An instant before 0001-01-01T00:00Z or after 9999-12-31T23:59:59Z cannot be written
    # in UTC; it keeps its offset, but still at most three fractional digits (2.x).
    assert format_datetime(parse_datetime(text)) == out


def _limit_frame(limit: float) -> str:
    period = {"startPeriod": 0, "limit": limit}
    schedule = {"chargingRateUnit": "W", "chargingSchedulePeriod": [period]}
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": schedule,
    }
    payload = {"connectorId": 1, "csChargingProfiles": profile}
    return json.dumps([2, "1", "SetChargingProfile", payload])


@pytest.mark.parametrize("limit", [0.3, 16.1, 1234567.8, 123456789.1, 3 * 0.1, 2e20])
def test_multiple_of_accepts_multiples_as_written_and_float_noise(limit: float) -> None:
    decode_frame(_limit_frame(limit), "1.6")


@pytest.mark.parametrize("limit", [0.05, 16.15, 50000000.05, 987654321.25])
def test_multiple_of_refuses_values_between_steps_however_large(limit: float) -> None:
    # A tolerance of 1e-9 times the quotient used to let anything from 5e8 steps up pass.
    with pytest.raises(FrameError) as refused:
        decode_frame(_limit_frame(limit), "1.6")
    assert refused.value.error_code == "PropertyConstraintViolation"
    assert refused.value.details["path"] == (
        "$.csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit"
    )


GOOD_URIS = [
    "https://example.com/firmware.bin",
    "ftp://user:secret@10.0.0.1:21/logs/?day=1#top",
    "ftp://[2001:db8::1]/diag",
    "http://[v1.fe]/",
    "urn:example:firmware",
    "file:///var/log/x",
    "sftp://host:/path",
    "https://example.com/a%20b",
]
BAD_URIS = [
    "",
    "example.com/firmware.bin",
    "1ftp://example.com/",
    "https://exa mple.com/",
    "https://example.com/%zz",
    "https://[::1/",
    "https://[fe80::1%25eth0]/",
    "https://[1.2.3.4]/",
    "https://example.com:port/",
    "https://example.com/a#b#c",
    "https://\u00e9xample.com/",
    "https://example.com/<script>",
]


def _get_diagnostics(location: str) -> str:
    return json.dumps([2, "1", "GetDiagnostics", {"location": location}])


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_rfc_3986_uris_are_accepted(uri: str) -> None:
    decode_frame(_get_diagnostics(uri), "1.6")
    encode_frame(
        Call(
            message_id="1", action="GetDiagnostics", payload=v16.GetDiagnosticsRequest(location=uri)
        )
    )


@pytest.mark.parametrize("uri", BAD_URIS)
def test_other_strings_are_not_uris(uri: str) -> None:
    with pytest.raises(FrameError) as refused:
        decode_frame(_get_diagnostics(uri), "1.6")
    assert refused.value.error_code == "PropertyConstraintViolation"
    assert refused.value.details["path"] == "$.location"


def test_a_response_with_such_an_instant_still_encodes() -> None:
    early = parse_datetime("0001-01-01T00:30:00.5+01:00")
    assert early < datetime(1, 1, 1, 1, tzinfo=UTC)
    response = v201.HeartbeatResponse(current_time=early)
    assert unstructure_fn(v201.HeartbeatResponse)(response) == {
        "currentTime": "0001-01-01T00:30:00.500+01:00"
    }
