"""The whole charging station behind one object: ``ChargingStation`` (after libocpp's
ChargePointInterface), its hardware interface, its store, its network profiles."""

from ._application import ChargingLimit, FirmwareJob, StationApplication, UploadJob
from ._dispatch import SUPPORTED_TRIGGERS
from ._events import (
    ConnectRequested,
    DataTransferAnswered,
    DisconnectRequested,
    RebootRequested,
    TokenValidated,
)
from ._facade import ChargingStation
from ._network import ConnectionPlan, NetworkPlanner, NetworkProfile, RetryBackOff
from ._reboot import StationInfo
from ._security import CRITICAL_SECURITY_EVENTS, CRITICAL_SECURITY_EVENTS_1_6
from ._store import RECORDS, StationStore

__all__ = [
    "CRITICAL_SECURITY_EVENTS",
    "CRITICAL_SECURITY_EVENTS_1_6",
    "RECORDS",
    "SUPPORTED_TRIGGERS",
    "ChargingLimit",
    "ChargingStation",
    "ConnectRequested",
    "ConnectionPlan",
    "DataTransferAnswered",
    "DisconnectRequested",
    "FirmwareJob",
    "NetworkPlanner",
    "NetworkProfile",
    "RebootRequested",
    "RetryBackOff",
    "StationApplication",
    "StationInfo",
    "StationStore",
    "TokenValidated",
    "UploadJob",
]
