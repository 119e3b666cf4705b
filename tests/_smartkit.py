"""Building charging profiles for the smart-charging tests in a line each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ocpp_sansio.smart_charging import (
    ChargingProfile,
    ChargingSchedule,
    InstalledProfile,
    SchedulePeriod,
)

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def schedule(
    periods: Sequence[tuple[int, float] | tuple[int, float, int | None]],
    *,
    unit: str = "A",
    start: datetime | None = None,
    duration: int | None = None,
    min_rate: float | None = None,
    schedule_id: int | None = 1,
    **extra: Any,
) -> ChargingSchedule:
    return ChargingSchedule(
        id=schedule_id,
        rate_unit=unit,
        periods=[
            SchedulePeriod(
                start_period=p[0], limit=p[1], number_phases=p[2] if len(p) > 2 else None
            )
            for p in periods
        ],
        start_schedule=start,
        duration=duration,
        min_charging_rate=min_rate,
        **extra,
    )


def profile(
    profile_id: int,
    purpose: str,
    periods: Sequence[tuple[int, float] | tuple[int, float, int | None]],
    *,
    stack: int = 0,
    kind: str = "Absolute",
    start: datetime | None = T0,
    duration: int | None = None,
    unit: str = "A",
    recurrency: str | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    transaction_id: str | int | None = None,
    min_rate: float | None = None,
    schedule_id: int | None = 1,
    **extra: Any,
) -> ChargingProfile:
    return ChargingProfile(
        id=profile_id,
        stack_level=stack,
        purpose=purpose,
        kind=kind,
        schedules=[
            schedule(
                periods,
                unit=unit,
                start=None if kind == "Relative" else start,
                duration=duration,
                min_rate=min_rate,
                schedule_id=schedule_id,
                **extra,
            )
        ],
        recurrency=recurrency,
        valid_from=valid_from,
        valid_to=valid_to,
        transaction_id=transaction_id,
    )


def on(evse_id: int, item: ChargingProfile, **fields: Any) -> InstalledProfile:
    return InstalledProfile(evse_id=evse_id, profile=item, **fields)


def limits(schedule: Any) -> list[tuple[int, float]]:
    """A composite schedule's periods as (startPeriod, limit)."""
    return [(p.start_period, p.limit) for p in schedule.periods]
