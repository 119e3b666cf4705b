"""The device model (2.x) and configuration keys (1.6) of the assembled station: the
flows' own variables plus every variable the device-model appendix marks required for
the functional blocks this station implements, and those the facade obeys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ocpp_sansio.flows.configuration import default_configuration
from ocpp_sansio.flows.device_model import (
    MEASURANDS,
    READ_ONLY,
    READ_WRITE,
    DeviceVariable,
    standard_variables,
    variable,
)

_RO, _RW = READ_ONLY, READ_WRITE
_TX_POINTS = (
    "ParkingBayOccupancy",
    "EVConnected",
    "Authorized",
    "DataSigned",
    "PowerPathClosed",
    "EnergyTransfer",
)
#: The facade's station-level variables beyond ``standard_variables``. Only what the
#: facade obeys is writable; the rest (the adapter's ping, the clock source) reads only:
#: (component, variable, instance, data type, mutability, value, characteristics).
_FACADE: tuple[tuple[str, str, str | None, str, str, str, dict[str, Any]], ...] = (
    ("ChargingStation", "Available", None, "boolean", _RO, "true", {}),
    ("ChargingStation", "SupplyPhases", None, "integer", _RO, "3", {}),
    ("ChargingStation", "Model", None, "string", _RO, "", {}),
    ("ChargingStation", "VendorName", None, "string", _RO, "", {}),
    ("ClockCtrlr", "DateTime", None, "dateTime", _RO, "", {}),
    (
        "ClockCtrlr",
        "TimeSource",
        None,
        "SequenceList",
        _RO,
        "Heartbeat",
        {
            "values_list": (
                "Heartbeat",
                "NTP",
                "GPS",
                "RealTimeClock",
                "MobileNetwork",
                "RadioTimeTransmitter",
            )
        },
    ),
    ("AuthCtrlr", "MasterPassGroupId", None, "string", _RW, "", {}),
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None, "boolean", _RW, "false", {}),
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes", None, "integer", _RW, "5", {}),
    ("OCPPCommCtrlr", "RetryBackOffRandomRange", None, "integer", _RW, "10", {"unit": "s"}),
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum", None, "integer", _RW, "10", {"unit": "s"}),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority", None, "string", _RW, "0", {}),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", None, "integer", _RW, "3", {}),
    ("OCPPCommCtrlr", "MessageTimeout", "Default", "integer", _RO, "30", {"unit": "s"}),
    ("OCPPCommCtrlr", "ResetRetries", None, "integer", _RO, "0", {}),
    ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", None, "boolean", _RW, "true", {}),
    ("OCPPCommCtrlr", "WebSocketPingInterval", None, "integer", _RO, "30", {"unit": "s"}),
    (
        "OCPPCommCtrlr",
        "FileTransferProtocols",
        None,
        "MemberList",
        _RO,
        "HTTP,HTTPS,FTP,FTPS",
        {"values_list": ("FTP", "FTPS", "HTTP", "HTTPS", "SFTP")},
    ),
    ("SecurityCtrlr", "CertificateEntries", None, "integer", _RO, "0", {}),
    ("SecurityCtrlr", "OrganizationName", None, "string", _RW, "ocpp-sansio", {}),
    ("SecurityCtrlr", "SecurityProfile", None, "integer", _RO, "1", {}),
    (
        "TxCtrlr",
        "TxStartPoint",
        None,
        "MemberList",
        _RW,
        "PowerPathClosed",
        {"values_list": _TX_POINTS},
    ),
    (
        "TxCtrlr",
        "TxStopPoint",
        None,
        "MemberList",
        _RW,
        "EVConnected,Authorized",
        {"values_list": _TX_POINTS},
    ),
    ("SampledDataCtrlr", "TxEndedInterval", None, "integer", _RW, "0", {"unit": "s"}),
    (
        "SampledDataCtrlr",
        "TxEndedMeasurands",
        None,
        "MemberList",
        _RW,
        "Energy.Active.Import.Register",
        {"values_list": MEASURANDS},
    ),
    ("ChargingStation", "AllowNewSessionsPendingFirmwareUpdate", None, "boolean", _RW, "false", {}),
    ("SmartChargingCtrlr", "Available", None, "boolean", _RO, "true", {}),
    ("SmartChargingCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    (
        "SmartChargingCtrlr",
        "Entries",
        "ChargingProfiles",
        "integer",
        _RO,
        "0",
        {"max_limit": 100},
    ),
    ("SmartChargingCtrlr", "ExternalControlSignalsEnabled", None, "boolean", _RW, "true", {}),
    (
        "SmartChargingCtrlr",
        "LimitChangeSignificance",
        None,
        "decimal",
        _RW,
        "0",
        {"unit": "Percent"},
    ),
    ("SmartChargingCtrlr", "NotifyChargingLimitWithSchedules", None, "boolean", _RW, "false", {}),
    ("SmartChargingCtrlr", "PeriodsPerSchedule", None, "integer", _RO, "24", {}),
    ("SmartChargingCtrlr", "ProfileStackLevel", None, "integer", _RO, "10", {}),
    (
        "SmartChargingCtrlr",
        "RateUnit",
        None,
        "MemberList",
        _RO,
        "A,W",
        {"values_list": ("A", "W")},
    ),
)


def station_variables(
    evses: Mapping[int, Sequence[str]],
    *,
    vendor: str,
    model: str,
    max_power_w: float,
    identity: str,
) -> list[DeviceVariable]:
    """Every variable of the facade's device model, with defaults (``evses``: EVSE id ->
    the types of its connectors, numbered from 1). SecurityCtrlr.Identity reads only: the
    station's store belongs to its identity (docs/store.md)."""
    out = {item.key(): item for item in standard_variables(evses=evses)}
    found = variable(
        "SecurityCtrlr", "Identity", identity, data_type="string", mutability=_RO, max_limit=48
    )
    out[found.key()] = found
    for comp, name, inst, kind, mut, value, extra in _FACADE:
        if comp == "ChargingStation" and name == "Model":
            value = model
        elif comp == "ChargingStation" and name == "VendorName":
            value = vendor
        item = variable(comp, name, value, instance=inst, data_type=kind, mutability=mut, **extra)
        out[item.key()] = item
    for evse_id, types in sorted(evses.items()):
        for item in (
            variable(
                "EVSE", "Available", "true", data_type="boolean", mutability=_RO, evse_id=evse_id
            ),
            variable(
                "EVSE", "SupplyPhases", "3", data_type="integer", mutability=_RO, evse_id=evse_id
            ),
            variable(
                "EVSE",
                "Power",
                "0",
                data_type="decimal",
                mutability=_RO,
                evse_id=evse_id,
                unit="W",
                max_limit=max_power_w,
            ),
        ):
            out[item.key()] = item
        for connector_id in range(1, len(types) + 1):
            for name, value, kind in (
                ("Available", "true", "boolean"),
                ("SupplyPhases", "3", "integer"),
            ):
                item = variable(
                    "Connector",
                    name,
                    value,
                    data_type=kind,
                    mutability=_RO,
                    evse_id=evse_id,
                    connector_id=connector_id,
                )
                out[item.key()] = item
    return list(out.values())


#: 1.6 feature profiles the facade implements.
PROFILES_1_6 = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "RemoteTrigger",
    "SmartCharging",
)


def station_keys(connectors: int) -> dict[str, str]:
    """The 1.6 configuration keys of the facade, with defaults."""
    return default_configuration(connectors=connectors, profiles=PROFILES_1_6)
