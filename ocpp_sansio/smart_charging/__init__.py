"""Smart charging, pure: charging profiles in one shape for every version, the validator,
the profile store and the composite schedule (2.x functional block K; 1.6 §3.13). The
flows in ``ocpp_sansio.flows.smart_charging`` (station) and
``ocpp_sansio.flows.smart_charging_csms`` put them on the wire."""

from .composite import Session, composite_schedule, convert, limit_in_force, limits_in_force
from .config import EvseLimits, SmartChargingConfig
from .model import (
    CSO,
    STATION_OWNED_PURPOSES,
    ChargingProfile,
    ChargingSchedule,
    CompositePeriod,
    CompositeSchedule,
    Kind,
    Purpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
    composite_from_message,
    profile_from_message,
    profile_to_message,
)
from .store import InstalledProfile, ProfileStore
from .validate import Rejection, check_profile, profile_problems

__all__ = [
    "CSO",
    "STATION_OWNED_PURPOSES",
    "ChargingProfile",
    "ChargingSchedule",
    "CompositePeriod",
    "CompositeSchedule",
    "EvseLimits",
    "InstalledProfile",
    "Kind",
    "ProfileStore",
    "Purpose",
    "RateUnit",
    "Recurrency",
    "Rejection",
    "SchedulePeriod",
    "Session",
    "SmartChargingConfig",
    "check_profile",
    "composite_from_message",
    "composite_schedule",
    "convert",
    "limit_in_force",
    "limits_in_force",
    "profile_from_message",
    "profile_problems",
    "profile_to_message",
]
