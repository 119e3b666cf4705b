"""OCPP 1.6 configuration keys: GetConfiguration and ChangeConfiguration on the station
(1.6 §5.3, §5.8, §9; security whitepaper §7).

Values live in a ``ConfigurationStore`` (the in-memory one here, or your own); what a key
is (its type, whether it is read-only, whether a change needs a reboot) comes from a
``KeyDefinition``. A key present in the store is supported; an optional key left out of the
store is reported unknown, which is how 1.6 says a feature is absent (§9).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from ..events import Event, RequestReceived
from ._base import Emitter, FlowEvent
from ._store import messages_for

#: Typed as a module: attribute access is Any, so the generated classes build under mypy.
v16 = messages_for("1.6")


class KeyType(enum.Enum):
    BOOLEAN = "boolean"
    INTEGER = "integer"
    STRING = "string"
    #: comma-separated list
    CSL = "CSL"


@attrs.frozen(kw_only=True)
class KeyDefinition:
    """What one configuration key is. ``allowed`` limits a CSL's items (or a string's value);
    ``measurands`` marks CSLs of measurands (§3.16.4); ``max_items_key`` names the key that
    holds a CSL's maximum number of items."""

    name: str
    type: KeyType
    readonly: bool = False
    #: 'W' keys (AuthorizationKey): accepted by ChangeConfiguration, never reported.
    write_only: bool = False
    reboot_required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    allowed: Callable[[str], bool] | None = None
    measurands: bool = False
    max_items_key: str | None = None
    #: Further check of a new value against the current one (None when unset).
    check: Callable[[str, str | None], bool] | None = None


_MEASURANDS = frozenset(m.value for m in v16.Measurand)
_PHASES = frozenset(p.value for p in v16.Phase)


def _hex_key(new: str, _old: str | None) -> bool:
    """AuthorizationKey: 16 to 20 bytes written as hex (A00.FR.205)."""
    return re.fullmatch(r"(?:[0-9A-Fa-f]{2}){16,20}", new) is not None


def _only_higher(new: str, old: str | None) -> bool:
    """SecurityProfile can only be raised (A05.FR.01)."""
    return old is None or int(new) > int(old)


def _key(name: str, kind: KeyType, **fields: Any) -> KeyDefinition:
    return KeyDefinition(name=name, type=kind, **fields)


_B, _I, _S, _L = KeyType.BOOLEAN, KeyType.INTEGER, KeyType.STRING, KeyType.CSL
_NON_NEGATIVE = {"minimum": 0}

#: The keys standardised by OCPP 1.6 §9 (all profiles) and the security whitepaper §7.
STANDARD_KEYS: Mapping[str, KeyDefinition] = {
    definition.name: definition
    for definition in (
        # 9.1 Core
        _key("AllowOfflineTxForUnknownId", _B),
        _key("AuthorizationCacheEnabled", _B),
        _key("AuthorizeRemoteTxRequests", _B),
        _key("BlinkRepeat", _I, **_NON_NEGATIVE),
        _key("ClockAlignedDataInterval", _I, **_NON_NEGATIVE),
        _key("ConnectionTimeOut", _I, **_NON_NEGATIVE),
        _key("ConnectorPhaseRotation", _L, max_items_key="ConnectorPhaseRotationMaxLength"),
        _key("ConnectorPhaseRotationMaxLength", _I, readonly=True),
        _key("GetConfigurationMaxKeys", _I, readonly=True),
        _key("HeartbeatInterval", _I, **_NON_NEGATIVE),
        _key("LightIntensity", _I, minimum=0, maximum=100),
        _key("LocalAuthorizeOffline", _B),
        _key("LocalPreauthorize", _B),
        _key("MaxEnergyOnInvalidId", _I, **_NON_NEGATIVE),
        _key(
            "MeterValuesAlignedData",
            _L,
            measurands=True,
            max_items_key="MeterValuesAlignedDataMaxLength",
        ),
        _key("MeterValuesAlignedDataMaxLength", _I, readonly=True),
        _key(
            "MeterValuesSampledData",
            _L,
            measurands=True,
            max_items_key="MeterValuesSampledDataMaxLength",
        ),
        _key("MeterValuesSampledDataMaxLength", _I, readonly=True),
        _key("MeterValueSampleInterval", _I, **_NON_NEGATIVE),
        _key("MinimumStatusDuration", _I, **_NON_NEGATIVE),
        _key("NumberOfConnectors", _I, readonly=True),
        _key("ResetRetries", _I, **_NON_NEGATIVE),
        _key("StopTransactionOnEVSideDisconnect", _B),
        _key("StopTransactionOnInvalidId", _B),
        _key(
            "StopTxnAlignedData",
            _L,
            measurands=True,
            max_items_key="StopTxnAlignedDataMaxLength",
        ),
        _key("StopTxnAlignedDataMaxLength", _I, readonly=True),
        _key(
            "StopTxnSampledData",
            _L,
            measurands=True,
            max_items_key="StopTxnSampledDataMaxLength",
        ),
        _key("StopTxnSampledDataMaxLength", _I, readonly=True),
        _key(
            "SupportedFeatureProfiles",
            _L,
            readonly=True,
            max_items_key="SupportedFeatureProfilesMaxLength",
        ),
        _key("SupportedFeatureProfilesMaxLength", _I, readonly=True),
        _key("TransactionMessageAttempts", _I, **_NON_NEGATIVE),
        _key("TransactionMessageRetryInterval", _I, **_NON_NEGATIVE),
        _key("UnlockConnectorOnEVSideDisconnect", _B),
        # A negative ping interval is Rejected (§9.1.34).
        _key("WebSocketPingInterval", _I, **_NON_NEGATIVE),
        # 9.2 Local Auth List Management
        _key("LocalAuthListEnabled", _B),
        _key("LocalAuthListMaxLength", _I, readonly=True),
        _key("SendLocalListMaxLength", _I, readonly=True),
        # 9.3 Reservation
        _key("ReserveConnectorZeroSupported", _B, readonly=True),
        # 9.4 Smart Charging
        _key("ChargeProfileMaxStackLevel", _I, readonly=True),
        _key(
            "ChargingScheduleAllowedChargingRateUnit",
            _L,
            readonly=True,
            allowed=frozenset({"Current", "Power"}).__contains__,
        ),
        _key("ChargingScheduleMaxPeriods", _I, readonly=True),
        _key("ConnectorSwitch3to1PhaseSupported", _B, readonly=True),
        _key("MaxChargingProfilesInstalled", _I, readonly=True),
        # Security whitepaper §7
        _key("AdditionalRootCertificateCheck", _B, readonly=True),
        _key("AuthorizationKey", _S, write_only=True, check=_hex_key),
        _key("CertificateSignedMaxChainSize", _I, readonly=True),
        _key("CertificateStoreMaxLength", _I, readonly=True),
        _key("CpoName", _S),
        _key("SecurityProfile", _I, minimum=0, maximum=3, check=_only_higher),
        _key("SupportedFileTransferProtocols", _L, readonly=True),
    )
}


def default_configuration(
    *,
    connectors: int = 1,
    profiles: Iterable[str] = ("Core", "LocalAuthListManagement", "Reservation", "RemoteTrigger"),
) -> dict[str, str]:
    """Values for every key 1.6 requires of ``profiles``, with everyday defaults."""
    profiles = tuple(profiles)
    values = {
        "AuthorizeRemoteTxRequests": "false",
        "ClockAlignedDataInterval": "0",
        "ConnectionTimeOut": "60",
        "ConnectorPhaseRotation": "Unknown",
        "GetConfigurationMaxKeys": "100",
        "HeartbeatInterval": "300",
        "LocalAuthorizeOffline": "true",
        "LocalPreauthorize": "false",
        "MeterValuesAlignedData": "Energy.Active.Import.Register",
        "MeterValuesSampledData": "Energy.Active.Import.Register",
        "MeterValuesSampledDataMaxLength": "10",
        "MeterValuesAlignedDataMaxLength": "10",
        "MeterValueSampleInterval": "60",
        "NumberOfConnectors": str(connectors),
        "ResetRetries": "1",
        "StopTransactionOnEVSideDisconnect": "true",
        "StopTransactionOnInvalidId": "true",
        "StopTxnAlignedData": "",
        "StopTxnSampledData": "",
        "SupportedFeatureProfiles": ",".join(profiles),
        "SupportedFeatureProfilesMaxLength": str(max(len(profiles), 1)),
        "TransactionMessageAttempts": "3",
        "TransactionMessageRetryInterval": "60",
        "UnlockConnectorOnEVSideDisconnect": "true",
        "AuthorizationCacheEnabled": "true",
        "AllowOfflineTxForUnknownId": "false",
    }
    if "LocalAuthListManagement" in profiles:
        values |= {
            "LocalAuthListEnabled": "true",
            "LocalAuthListMaxLength": "1000",
            "SendLocalListMaxLength": "100",
        }
    if "Reservation" in profiles:
        values["ReserveConnectorZeroSupported"] = "false"
    if "SmartCharging" in profiles:
        values |= {
            "ChargeProfileMaxStackLevel": "10",
            "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
            "ChargingScheduleMaxPeriods": "24",
            "MaxChargingProfilesInstalled": "10",
        }
    return values


class ConfigurationStore(Protocol):
    """Where key values live. ``read`` returns None for a key the station does not have."""

    def read(self, key: str) -> str | None: ...

    def write(self, key: str, value: str) -> None: ...

    def names(self) -> Iterable[str]: ...


class InMemoryConfiguration:
    """A ``ConfigurationStore`` in a dict (values are lost with the process)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def read(self, key: str) -> str | None:
        return self._values.get(key)

    def write(self, key: str, value: str) -> None:
        self._values[key] = value

    def names(self) -> Iterator[str]:
        return iter(list(self._values))


@attrs.frozen(kw_only=True)
class ConfigurationChanged(FlowEvent):
    """A ChangeConfiguration was applied. Act on it (new heartbeat interval, reconnect with
    a new AuthorizationKey or SecurityProfile…); ``reboot_required`` means it takes effect
    after the next reboot."""

    key: str
    value: str
    previous: str | None
    reboot_required: bool


_STATUS = v16.ConfigurationStatus


class Configuration16(Emitter):
    """The station side of 1.6 configuration. Feed it the core's events; it answers
    GetConfiguration and ChangeConfiguration and reports applied changes as events.

    ``supported_measurands`` (None: all of 1.6's) bounds the measurand lists a CSMS may
    set. ``approve(key, value)`` may veto a change the rules allow (prerequisites the library
    cannot see, such as installed certificates for SecurityProfile 2 and 3, A05.FR.02-04).
    Keys in the store without a definition are vendor keys: read-write strings.
    """

    def __init__(
        self,
        core: Any,
        store: ConfigurationStore,
        *,
        definitions: Mapping[str, KeyDefinition] = STANDARD_KEYS,
        supported_measurands: Iterable[str] | None = None,
        approve: Callable[[str, str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.store = store
        self.definitions = dict(definitions)
        self._measurands = (
            _MEASURANDS if supported_measurands is None else frozenset(supported_measurands)
        )
        self._approve = approve

    # --- Settings -------------------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        key = self._canonical(name)
        return None if key is None else self.store.read(key)

    def _canonical(self, name: str) -> str | None:
        """Keys are CiString (case-insensitive): the store's spelling of ``name``."""
        if self.store.read(name) is not None:
            return name
        folded = name.casefold()
        return next((k for k in self.store.names() if k.casefold() == folded), None)

    def _definition(self, key: str) -> KeyDefinition:
        return self.definitions.get(key) or KeyDefinition(name=key, type=KeyType.STRING)

    # --- the CSMS's requests --------------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        """Answer GetConfiguration and ChangeConfiguration; True when ``event`` was one."""
        if not isinstance(event, RequestReceived):
            return False
        if event.action == "GetConfiguration":
            self.core.send_response(event.message_id, self.get_configuration(event.request), now)
            return True
        if event.action == "ChangeConfiguration":
            response = self.change_configuration(event.request)
            self.core.send_response(event.message_id, response, now)
            return True
        return False

    def get_configuration(self, request: Any) -> Any:
        """Known keys with their values and read-only flags; unknown ones listed as such
        (§5.8). Without keys: every key the station has. Write-only keys show no value."""
        requested = request.key if request.key else list(self.store.names())
        found: list[Any] = []
        unknown: list[str] = []
        for name in requested:
            key = self._canonical(name)
            if key is None:
                unknown.append(name)
                continue
            definition = self._definition(key)
            value = None if definition.write_only else self.store.read(key)
            found.append(v16.KeyValue(key=key, readonly=definition.readonly, value=value))
        return v16.GetConfigurationResponse(
            configuration_key=found or None, unknown_key=unknown or None
        )

    def change_configuration(self, request: Any) -> Any:
        """Apply one key change and say how it went (§5.3)."""
        key = self._canonical(request.key)
        if key is None:
            return v16.ChangeConfigurationResponse(status=_STATUS.NOT_SUPPORTED)
        definition = self._definition(key)
        previous = self.store.read(key)
        value = _normalise(definition, request.value)
        if (
            definition.readonly
            or value is None
            or not self._valid(definition, value, previous)
            or (self._approve is not None and not self._approve(key, value))
        ):
            return v16.ChangeConfigurationResponse(status=_STATUS.REJECTED)
        self.store.write(key, value)
        self._emit(
            ConfigurationChanged(
                key=key,
                value=value,
                previous=previous,
                reboot_required=definition.reboot_required,
            )
        )
        status = _STATUS.REBOOT_REQUIRED if definition.reboot_required else _STATUS.ACCEPTED
        return v16.ChangeConfigurationResponse(status=status)

    def _valid(self, definition: KeyDefinition, value: str, previous: str | None) -> bool:
        if definition.type is KeyType.INTEGER:
            number = int(value)
            if definition.minimum is not None and number < definition.minimum:
                return False
            if definition.maximum is not None and number > definition.maximum:
                return False
        items = (value.split(",") if value else []) if definition.type is KeyType.CSL else [value]
        if definition.measurands and not all(self._measurand(item) for item in items):
            return False  # an unsupported measurand: Rejected, nothing changed (§3.16.4)
        if definition.allowed is not None and not all(map(definition.allowed, items)):
            return False
        if definition.max_items_key is not None:
            limit = self.store.read(definition.max_items_key)
            if limit is not None and limit.isdigit() and len(items) > int(limit):
                return False
        return definition.check is None or definition.check(value, previous)

    def _measurand(self, item: str) -> bool:
        """A measurand, optionally with a phase suffix: ``Voltage.L1`` (§9.1.17)."""
        if item in self._measurands:
            return True
        head, _, phase = item.rpartition(".")
        return head in self._measurands and phase in _PHASES


def _normalise(definition: KeyDefinition, value: str) -> str | None:
    """The value as stored, or None when it does not parse as the key's type."""
    if definition.type is KeyType.BOOLEAN:
        lowered = value.strip().lower()
        return lowered if lowered in ("true", "false") else None
    if definition.type is KeyType.INTEGER:
        text = value.strip()
        return str(int(text)) if re.fullmatch(r"[+-]?\d+", text) else None
    if definition.type is KeyType.CSL:
        return ",".join(item.strip() for item in value.split(",") if item.strip())
    return value
