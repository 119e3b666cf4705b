"""Reservations end to end (1.6 §5.1, §5.13; 2.x H01-H04): ReserveNow answers by
connector state, replacement, connector 0 / unspecified EVSE, connector types, expiry on
the virtual clock with ReservationStatusUpdate, cancellation and use by a transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows.reservations import (
    CsmsReservations,
    ReservationAccepted,
    ReservationEnded,
    Reservations,
    ReservationStatusReported,
    ReservedTargetsChanged,
)

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")


class Settings:
    def __init__(self, **values: str) -> None:
        self.values = values

    def setting(self, name: str) -> str | None:
        return self.values.get(name)


def setup(
    version: str, connectors: Any = 2, **values: str
) -> tuple[Rig, Reservations, CsmsReservations]:
    rig = Rig(version, connectors=2)
    flow = Reservations(rig.station, connectors=connectors, settings=Settings(**values))
    csms = CsmsReservations(rig.csms)
    rig.station_flows.append(flow)
    rig.csms_flows.append(csms)
    return rig, flow, csms


def token(rig: Rig, value: str) -> Any:
    if rig.version == "1.6":
        return value
    kind = rig.m.IdTokenEnum.ISO14443 if rig.version == "2.0.1" else "ISO14443"
    return rig.m.IdToken(id_token=value, type=kind)


def reserve(
    rig: Rig,
    reservation_id: int,
    target: int | None,
    *,
    seconds: float = 600,
    tag: str = "TAG1",
    group: str | None = None,
    connector_type: str | None = None,
) -> str:
    m = rig.m
    expiry = wall(rig.now) + timedelta(seconds=seconds)
    if rig.version == "1.6":
        request = m.ReserveNowRequest(
            connector_id=0 if target is None else target,
            expiry_date=expiry,
            id_tag=tag,
            reservation_id=reservation_id,
            parent_id_tag=group,
        )
    else:
        kind = connector_type
        if kind is not None and rig.version == "2.0.1":
            kind = m.ConnectorEnum(kind)
        request = m.ReserveNowRequest(
            id=reservation_id,
            expiry_date_time=expiry,
            id_token=token(rig, tag),
            evse_id=target,
            connector_type=kind,
            group_id_token=token(rig, group) if group else None,
        )
    rig.csms_sends(request)
    return str(rig.answers("station->csms")[-1]["status"])


def cancel(rig: Rig, reservation_id: int) -> str:
    rig.csms_sends(rig.m.CancelReservationRequest(reservation_id=reservation_id))
    return str(rig.answers("station->csms")[-1]["status"])


def ended(flow: Reservations) -> list[tuple[int, str, tuple[int, ...]]]:
    return [
        (e.reservation.reservation_id, e.reason, e.released)
        for e in flow.events()
        if isinstance(e, ReservationEnded)
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_h01_fr_03_23_reserve_an_available_connector(version: str) -> None:
    rig, flow, _ = setup(version)
    assert reserve(rig, 1, 2) == "Accepted"
    (made,) = [e for e in flow.events() if isinstance(e, ReservationAccepted)]
    assert made.newly_reserved == (2,)  # report connector/EVSE 2 as Reserved
    assert flow.reserved_for(2) is made.reservation


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("state", "expected"),
    [("Occupied", "Occupied"), ("Faulted", "Faulted"), ("Unavailable", "Unavailable")],
)
def test_h01_fr_11_12_14_reserve_answers_by_state(version: str, state: str, expected: str) -> None:
    rig, flow, _ = setup(version)
    flow.set_status(1, state, rig.now)
    assert reserve(rig, 1, 1) == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_h01_fr_11_reserved_for_another_reservation_is_occupied(version: str) -> None:
    rig, _, _ = setup(version)
    assert reserve(rig, 1, 1, tag="A") == "Accepted"
    assert reserve(rig, 2, 1, tag="B") == "Occupied"


@pytest.mark.parametrize("version", VERSIONS)
def test_h01_fr_02_same_id_replaces_the_reservation(version: str) -> None:
    rig, flow, _ = setup(version)
    assert reserve(rig, 1, 1, tag="A") == "Accepted"
    assert reserve(rig, 1, 2, tag="B") == "Accepted"
    assert flow.reserved_for(1) is None
    holder = flow.reserved_for(2)
    assert holder is not None and len(flow.reservations) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_h01_fr_01_reservations_switched_off_are_rejected(version: str) -> None:
    off = (
        {"SupportedFeatureProfiles": "Core,LocalAuthListManagement"}
        if version == "1.6"
        else {"ReservationCtrlr.Enabled": "false"}
    )
    rig, _, _ = setup(version, **off)
    assert reserve(rig, 1, 1) == "Rejected"


def test_16_5_13_connector_0_needs_reserve_connector_zero_supported() -> None:
    rig, flow, _ = setup("1.6")
    assert reserve(rig, 1, None) == "Rejected"
    rig, flow, _ = setup("1.6", ReserveConnectorZeroSupported="true")
    assert reserve(rig, 1, None, tag="A") == "Accepted"
    assert reserve(rig, 2, None, tag="B") == "Accepted"
    # Two reservations on any connector hold both connectors: a third cannot be made,
    # and nobody else may charge (§5.13: one connector stays available for each).
    assert reserve(rig, 3, None, tag="C") == "Occupied"
    assert reserve(rig, 4, 1, tag="C") == "Occupied"
    assert not flow.may_charge(1, "C")
    assert flow.may_charge(1, "A") and flow.may_charge(2, "B")


@pytest.mark.parametrize("version", V2)
def test_h01_fr_18_19_unspecified_evse_needs_non_evse_specific(version: str) -> None:
    rig, _, _ = setup(version)
    assert reserve(rig, 1, None) == "Rejected"  # H01.FR.19
    rig, flow, _ = setup(version, **{"ReservationCtrlr.NonEvseSpecific": "true"})
    assert reserve(rig, 1, None, tag="A") == "Accepted"  # H01.FR.04 / FR.18
    assert flow.may_charge(1, token(rig, "Z"))  # one EVSE left for A (H01.FR.07)
    (made,) = [e for e in flow.events() if isinstance(e, ReservationAccepted)]
    assert made.newly_reserved == ()
    flow.set_status(2, "Occupied", rig.now)
    assert not flow.may_charge(1, token(rig, "Z"))  # now EVSE 1 is A's only one
    (changed,) = [e for e in flow.events() if isinstance(e, ReservedTargetsChanged)]
    assert (changed.reserved, changed.released) == ((1,), ())  # H01.FR.20: show it Reserved
    assert reserve(rig, 2, None, tag="B") == "Occupied"
    flow.set_status(2, "Available", rig.now)
    (changed,) = [e for e in flow.events() if isinstance(e, ReservedTargetsChanged)]
    assert (changed.reserved, changed.released) == ((), (1,))


@pytest.mark.parametrize("version", V2)
def test_h01_fr_06_09_connector_type_reservations(version: str) -> None:
    rig, flow, _ = setup(
        version,
        connectors={1: ("cType2",), 2: ("cCCS2", "cType2")},
        **{"ReservationCtrlr.NonEvseSpecific": "true"},
    )
    assert reserve(rig, 1, None, connector_type="cCCS2") == "Accepted"
    (made,) = [e for e in flow.events() if isinstance(e, ReservationAccepted)]
    assert made.newly_reserved == (2,)  # the only EVSE with that type (H01.FR.24)
    assert reserve(rig, 2, None, connector_type="cCCS2", tag="B") == "Occupied"
    assert reserve(rig, 3, None, connector_type="sType3", tag="B") == "Rejected"
    assert not flow.may_charge(2, token(rig, "Z"))
    assert flow.may_charge(1, token(rig, "Z"))


@pytest.mark.parametrize("version", VERSIONS)
def test_h04_fr_01_expiry_ends_the_reservation(version: str) -> None:
    rig, flow, csms = setup(version)
    assert reserve(rig, 7, 1, seconds=300) == "Accepted"
    flow.events()
    rig.advance(299)
    assert flow.reserved_for(1) is not None
    rig.advance(2)
    assert ended(flow) == [(7, "Expired", (1,))]  # H04.FR.02/03: connector 1 is free again
    updates = rig.calls("ReservationStatusUpdate")
    if version == "1.6":
        assert updates == []
    else:
        assert updates == [{"reservationId": 7, "reservationUpdateStatus": "Expired"}]
        (reported,) = [e for e in csms.events() if isinstance(e, ReservationStatusReported)]
        assert (reported.reservation_id, reported.status, reported.known) == (7, "Expired", True)


@pytest.mark.parametrize("version", V2)
def test_h04_fr_01_expiry_while_offline_is_reported_once_back(version: str) -> None:
    rig, flow, _ = setup(version)
    reserve(rig, 7, 1, seconds=60)
    rig.disconnect()
    rig.advance(120)
    assert ended(flow) == [(7, "Expired", (1,))]
    assert rig.calls("ReservationStatusUpdate") == []
    rig.connect()
    rig.flush()
    assert len(rig.calls("ReservationStatusUpdate")) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_h01_fr_16_17_a_faulted_connector_removes_its_reservation(version: str) -> None:
    rig, flow, _ = setup(version)
    reserve(rig, 3, 2)
    flow.events()
    flow.set_status(2, "Faulted", rig.now)
    rig.flush()
    assert ended(flow) == [(3, "Removed", (2,))]
    expected = (
        [] if version == "1.6" else [{"reservationId": 3, "reservationUpdateStatus": "Removed"}]
    )
    assert rig.calls("ReservationStatusUpdate") == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_h02_cancel_reservation(version: str) -> None:
    rig, flow, _ = setup(version)
    reserve(rig, 5, 1)
    assert cancel(rig, 6) == "Rejected"  # H02.FR.01
    assert cancel(rig, 5) == "Accepted"  # H02.FR.02
    assert ended(flow) == [(5, "Cancelled", (1,))]
    assert rig.calls("ReservationStatusUpdate") == []


@pytest.mark.parametrize("version", VERSIONS)
def test_h03_the_reserved_identifier_or_its_group_uses_the_reservation(version: str) -> None:
    rig, flow, _ = setup(version)
    reserve(rig, 1, 1, tag="OWNER", group="FAMILY")
    assert not flow.may_charge(1, token(rig, "STRANGER"))
    assert flow.may_charge(1, token(rig, "owner"))  # identifiers compare case-insensitively
    assert flow.may_charge(1, token(rig, "SPOUSE"), group="FAMILY")  # H03.FR.04
    assert flow.use(1, token(rig, "STRANGER"), rig.now) is None
    used = flow.use(1, token(rig, "SPOUSE"), rig.now, group="FAMILY")
    assert used is not None and used.reservation_id == 1  # H01.FR.15: put it in the start
    assert ended(flow) == [(1, "Used", (1,))]
    assert flow.reservations == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_expiry_in_the_past_is_rejected(version: str) -> None:
    rig, _, _ = setup(version)
    assert reserve(rig, 1, 1, seconds=-5) == "Rejected"


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_connector_is_rejected_and_status_is_checked(version: str) -> None:
    rig, flow, _ = setup(version)
    assert reserve(rig, 1, 9) == "Rejected"
    with pytest.raises(LocalProtocolError):
        flow.set_status(9, "Available", rig.now)
    with pytest.raises(LocalProtocolError):
        flow.set_status(1, "Sleeping", rig.now)


@pytest.mark.parametrize("version", V2)
def test_csms_flags_status_updates_for_reservations_it_does_not_know(version: str) -> None:
    rig, _, csms = setup(version)
    m = rig.m
    rig.station.send_request(
        m.ReservationStatusUpdateRequest(
            reservation_id=99, reservation_update_status=m.ReservationUpdateStatusEnum.EXPIRED
        ),
        rig.now,
    )
    rig.flush()
    (reported,) = [e for e in csms.events() if isinstance(e, ReservationStatusReported)]
    assert not reported.known


# --- random orders ------------------------------------------------------------------------------


steps = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "reserve_any", "cancel", "status", "use", "wait"]),
        st.integers(1, 3),
        st.sampled_from(["Available", "Occupied", "Faulted", "Unavailable"]),
        st.sampled_from(["A", "B", "C"]),
    ),
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(version=st.sampled_from(VERSIONS), ops=steps)
def test_random_orders_keep_reservations_consistent(version: str, ops: list[Any]) -> None:
    values = (
        {"ReserveConnectorZeroSupported": "true"}
        if version == "1.6"
        else {"ReservationCtrlr.NonEvseSpecific": "true"}
    )
    rig, flow, _ = setup(version, connectors=3, **values)
    next_id = 1
    for op, target, state, tag in ops:
        if op == "reserve":
            status = reserve(rig, next_id, target, tag=tag, seconds=100 * target)
        elif op == "reserve_any":
            status = reserve(rig, next_id, None, tag=tag, seconds=150)
        elif op == "cancel":
            status = cancel(rig, target)
        elif op == "status":
            flow.set_status(target, state, rig.now)
            rig.flush()
            continue
        elif op == "use":
            flow.use(target, token(rig, tag), rig.now)
            continue
        else:
            rig.advance(80)
            continue
        assert status in ("Accepted", "Occupied", "Faulted", "Unavailable", "Rejected")
        next_id += 1
        # Invariants: specific reservations hold distinct, non-faulted targets; reservations
        # on any connector can each still find a free one of their own.
        held = [r.target for r in flow.reservations.values() if r.target is not None]
        assert len(held) == len(set(held))
        assert all(flow.status[t] in ("Available", "Occupied") for t in held)
        assert all(r.expires_at > rig.now for r in flow.reservations.values())
    rig.advance(1000)
    assert flow.reservations == {}
    ends = [e for e in flow.events() if isinstance(e, ReservationEnded)]
    assert len({e.reservation.reservation_id for e in ends if e.reason == "Expired"}) == len(
        [e for e in ends if e.reason == "Expired"]
    )
