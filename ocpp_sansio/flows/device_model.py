"""The OCPP 2.0.1/2.1 device model: GetVariables, SetVariables, GetBaseReport and GetReport
on the station (B05-B08), and the CSMS side that collects NotifyReport parts.

Variables live in a ``DeviceModelStore`` (the in-memory one here, or your own). Names of
components, variables and instances compare case-insensitively (the spec's CaseInsensitive).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from ..errors import LocalProtocolError
from ..events import Event, RequestReceived, ResponseReceived
from ._base import Emitter, FlowEvent, WallClock, WallClocked
from ._store import messages_for

READ_ONLY, WRITE_ONLY, READ_WRITE = "ReadOnly", "WriteOnly", "ReadWrite"
DATA_TYPES = frozenset(
    {"string", "decimal", "integer", "dateTime", "boolean", "OptionList", "SequenceList"}
    | {"MemberList"}
)
REPORT_BASES = frozenset({"ConfigurationInventory", "FullInventory", "SummaryInventory"})
CRITERIA = frozenset({"Active", "Available", "Enabled", "Problem"})
#: Variables whose "true" marks a component in trouble (B07.FR.09, B08.FR.10).
_PROBLEM_VARIABLES = frozenset({"problem", "tripped", "overload", "fallback"})


def _fold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


@attrs.frozen
class ComponentKey:
    """A component as addressed on the wire: name, instance, EVSE and connector."""

    name: str
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    def folded(self) -> tuple[Any, ...]:
        return (_fold(self.name), _fold(self.instance), self.evse_id, self.connector_id)


@attrs.frozen
class VariableKey:
    name: str
    instance: str | None = None

    def folded(self) -> tuple[Any, ...]:
        return (_fold(self.name), _fold(self.instance))


@attrs.define(kw_only=True)
class AttributeValue:
    """One attribute type (Actual, Target, MinSet, MaxSet) of a variable."""

    value: str | None = None
    mutability: str = READ_WRITE
    persistent: bool | None = None
    constant: bool | None = None


@attrs.define(kw_only=True)
class DeviceVariable:
    """A variable of a component with its characteristics and attributes."""

    component: ComponentKey
    variable: VariableKey
    data_type: str = attrs.field(default="string")
    attributes: dict[str, AttributeValue] = attrs.field(factory=dict)
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] | None = None
    #: 2.1: the most members a list may hold.
    max_elements: int | None = None
    supports_monitoring: bool = False
    #: A new value takes effect after a reboot (SetVariables answers RebootRequired).
    reboot_required: bool = False

    @data_type.validator
    def _known_type(self, _attribute: Any, value: str) -> None:
        if value not in DATA_TYPES:
            raise ValueError(f"unknown data type {value!r}")

    def key(self) -> tuple[Any, ...]:
        return self.component.folded() + self.variable.folded()


def variable(
    component: str,
    name: str,
    value: str | None = None,
    *,
    data_type: str = "string",
    mutability: str = READ_WRITE,
    instance: str | None = None,
    component_instance: str | None = None,
    evse_id: int | None = None,
    connector_id: int | None = None,
    **characteristics: Any,
) -> DeviceVariable:
    """A variable with one Actual attribute: the common case, in one call."""
    return DeviceVariable(
        component=ComponentKey(component, component_instance, evse_id, connector_id),
        variable=VariableKey(name, instance),
        data_type=data_type,
        attributes={"Actual": AttributeValue(value=value, mutability=mutability)},
        **characteristics,
    )


class DeviceModelStore(Protocol):
    """Where variables live. ``write`` stores a value the flow has already validated."""

    def variables(self) -> Iterable[DeviceVariable]: ...

    def lookup(self, component: ComponentKey, variable: VariableKey) -> DeviceVariable | None: ...

    def has_component(self, component: ComponentKey) -> bool: ...

    def write(
        self, component: ComponentKey, variable: VariableKey, attribute: str, value: str
    ) -> None: ...


class InMemoryDeviceModel:
    """A ``DeviceModelStore`` in dicts."""

    def __init__(self, variables: Iterable[DeviceVariable] = ()) -> None:
        self._variables: dict[tuple[Any, ...], DeviceVariable] = {}
        self._components: set[tuple[Any, ...]] = set()
        for item in variables:
            self.add(item)

    def add(self, item: DeviceVariable) -> None:
        self._variables[item.key()] = item
        self._components.add(item.component.folded())

    def variables(self) -> Iterator[DeviceVariable]:
        return iter(list(self._variables.values()))

    def lookup(self, component: ComponentKey, variable: VariableKey) -> DeviceVariable | None:
        return self._variables.get(component.folded() + variable.folded())

    def has_component(self, component: ComponentKey) -> bool:
        return component.folded() in self._components

    def write(
        self, component: ComponentKey, variable: VariableKey, attribute: str, value: str
    ) -> None:
        found = self.lookup(component, variable)
        if found is None:
            raise KeyError(f"{component} {variable}")
        found.attributes[attribute].value = value


# --- standard variables -------------------------------------------------------------------

_RO, _RW = READ_ONLY, READ_WRITE
#: Every measurand 2.0.1 names (the valuesList of the measurand variables).
MEASURANDS = tuple(m.value for m in messages_for("2.0.1").MeasurandEnum)
_AVAILABILITY = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
# (component, variable, instance, data type, mutability, default value, characteristics):
# the controller variables the flows in this package read, typed as in the device-model
# appendix.
_STANDARD: tuple[tuple[str, str, str | None, str, str, str, dict[str, Any]], ...] = (
    ("AuthCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    ("AuthCtrlr", "AuthorizeRemoteStart", None, "boolean", _RW, "true", {}),
    ("AuthCtrlr", "LocalAuthorizeOffline", None, "boolean", _RW, "true", {}),
    ("AuthCtrlr", "LocalPreAuthorize", None, "boolean", _RW, "false", {}),
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None, "boolean", _RW, "false", {}),
    ("AuthCacheCtrlr", "Available", None, "boolean", _RO, "true", {}),
    ("AuthCacheCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    ("AuthCacheCtrlr", "LifeTime", None, "integer", _RW, "86400", {"unit": "s"}),
    ("LocalAuthListCtrlr", "Available", None, "boolean", _RO, "true", {}),
    ("LocalAuthListCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    ("LocalAuthListCtrlr", "Entries", None, "integer", _RO, "0", {"max_limit": 1000}),
    ("LocalAuthListCtrlr", "ItemsPerMessage", None, "integer", _RO, "100", {}),
    ("LocalAuthListCtrlr", "BytesPerMessage", None, "integer", _RO, "65536", {}),
    ("LocalAuthListCtrlr", "SupportsExpiryDateTime", None, "boolean", _RO, "false", {}),
    ("ReservationCtrlr", "Available", None, "boolean", _RO, "true", {}),
    ("ReservationCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    ("ReservationCtrlr", "NonEvseSpecific", None, "boolean", _RW, "false", {}),
    ("SampledDataCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    ("SampledDataCtrlr", "TxUpdatedInterval", None, "integer", _RW, "60", {"unit": "s"}),
    ("SampledDataCtrlr", "TxEndedInterval", None, "integer", _RW, "0", {"unit": "s"}),
    ("AlignedDataCtrlr", "Enabled", None, "boolean", _RW, "true", {}),
    ("AlignedDataCtrlr", "Interval", None, "integer", _RW, "900", {"unit": "s"}),
    ("AlignedDataCtrlr", "SendDuringIdle", None, "boolean", _RW, "false", {}),
    ("AlignedDataCtrlr", "TxEndedInterval", None, "integer", _RW, "0", {"unit": "s"}),
    ("TxCtrlr", "StopTxOnInvalidId", None, "boolean", _RW, "true", {}),
    ("TxCtrlr", "StopTxOnEVSideDisconnect", None, "boolean", _RW, "true", {}),
    ("TxCtrlr", "EVConnectionTimeOut", None, "integer", _RW, "60", {"unit": "s"}),
    ("TxCtrlr", "MaxEnergyOnInvalidId", None, "integer", _RW, "0", {"unit": "Wh"}),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetReport", "integer", _RO, "100", {}),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables", "integer", _RO, "50", {}),
    ("DeviceDataCtrlr", "ItemsPerMessage", "SetVariables", "integer", _RO, "50", {}),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetReport", "integer", _RO, "65536", {}),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetVariables", "integer", _RO, "65536", {}),
    ("DeviceDataCtrlr", "BytesPerMessage", "SetVariables", "integer", _RO, "65536", {}),
    ("OCPPCommCtrlr", "MessageTimeout", "Default", "integer", _RO, "30", {"unit": "s"}),
    ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent", "integer", _RW, "3", {}),
    ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent", "integer", _RW, "60", {}),
    ("OCPPCommCtrlr", "HeartbeatInterval", None, "integer", _RW, "300", {"unit": "s"}),
    ("OCPPCommCtrlr", "OfflineThreshold", None, "integer", _RW, "60", {"unit": "s"}),
)
_MEASURAND_LISTS = (
    ("SampledDataCtrlr", "TxStartedMeasurands"),
    ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    ("SampledDataCtrlr", "TxEndedMeasurands"),
    ("AlignedDataCtrlr", "Measurands"),
    ("AlignedDataCtrlr", "TxEndedMeasurands"),
)


def standard_variables(*, evses: Mapping[int, Sequence[str]] | None = None) -> list[DeviceVariable]:
    """A starting device model: the controller variables the flows read, with everyday
    defaults, and ChargingStation / EVSE / Connector availability for ``evses`` (EVSE id ->
    connector types, connector ids counted from 1; default one EVSE with one cType2)."""
    evses = {1: ("cType2",)} if evses is None else evses
    out = [
        variable(comp, name, value, instance=inst, data_type=kind, mutability=mut, **extra)
        for comp, name, inst, kind, mut, value, extra in _STANDARD
    ]
    for comp, name in _MEASURAND_LISTS:
        out.append(
            variable(
                comp,
                name,
                "Energy.Active.Import.Register" if "Ended" not in name else "",
                data_type="MemberList",
                values_list=MEASURANDS,
            )
        )
    out.append(_availability(ComponentKey("ChargingStation")))
    for evse_id, types in sorted(evses.items()):
        out.append(_availability(ComponentKey("EVSE", evse_id=evse_id)))
        for connector_id, connector_type in enumerate(types, start=1):
            connector = ComponentKey("Connector", evse_id=evse_id, connector_id=connector_id)
            out.append(_availability(connector))
            out.append(
                variable(
                    "Connector",
                    "ConnectorType",
                    connector_type,
                    mutability=_RO,
                    evse_id=evse_id,
                    connector_id=connector_id,
                )
            )
    return out


def _availability(component: ComponentKey) -> DeviceVariable:
    return DeviceVariable(
        component=component,
        variable=VariableKey("AvailabilityState"),
        data_type="OptionList",
        values_list=_AVAILABILITY,
        attributes={"Actual": AttributeValue(value="Available", mutability=_RO)},
    )


# --- events -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class VariableChanged(FlowEvent):
    """SetVariables changed an attribute; act on it (``reboot_required``: after a reboot)."""

    component: ComponentKey
    variable: VariableKey
    attribute: str
    value: str
    previous: str | None
    reboot_required: bool


@attrs.frozen(kw_only=True)
class ReportSent(FlowEvent):
    """Station side: the parts of a requested report were queued for sending."""

    request_id: int
    parts: int
    variables: int


@attrs.frozen(kw_only=True)
class ReportReceived(FlowEvent):
    """CSMS side: every part of report ``request_id`` arrived (the last had tbc false)."""

    request_id: int
    report_data: tuple[Any, ...]


@attrs.frozen(kw_only=True)
class ReportAnomaly(FlowEvent):
    """CSMS side: a NotifyReport part that breaks the rules (B07.FR.10, B08.FR.14):
    unknown requestId, seqNo out of order, or a part after the last one."""

    request_id: int
    seq_no: int
    problem: str


# --- the station side ---------------------------------------------------------------------


class DeviceModel(Emitter, WallClocked):
    """The station side of the 2.x device model. Feed it the core's events; it answers
    GetVariables, SetVariables, GetBaseReport and GetReport, and sends the NotifyReport
    parts itself. It is also the ``Settings`` the other flows read.

    ``report_part_size`` is how many variables go in one NotifyReport part.
    ``approve(component, variable, value)`` may veto a change the rules allow, with the
    reasonCode to report (a check only the station can make, B10.FR.02).
    """

    def __init__(
        self,
        core: Any,
        store: DeviceModelStore,
        *,
        clock: WallClock | None = None,
        report_part_size: int = 50,
        supported_bases: Iterable[str] = REPORT_BASES,
        supported_criteria: Iterable[str] = CRITERIA,
        approve: Callable[[ComponentKey, VariableKey, str], str | None] | None = None,
    ) -> None:
        super().__init__()
        if core.version == "1.6":
            raise LocalProtocolError("the device model is OCPP 2.0.1 / 2.1; use Configuration16")
        if report_part_size < 1:
            raise ValueError("report_part_size must be >= 1")
        self.core = core
        self.store = store
        self._own_clock = clock
        self.report_part_size = report_part_size
        self._approve = approve
        self.supported_bases = frozenset(supported_bases)
        self.supported_criteria = frozenset(supported_criteria)
        self._m = messages_for(core.version)

    # --- Settings -------------------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        """``Component.Variable`` or ``Component.Variable[Instance]``: the station-level
        component's Actual value."""
        match = re.fullmatch(r"([^.\[\]]+)\.([^.\[\]]+)(?:\[([^\]]+)\])?", name)
        if match is None:
            return None
        component, name_, instance = match.groups()
        found = self.store.lookup(ComponentKey(component), VariableKey(name_, instance))
        if found is None or "Actual" not in found.attributes:
            return None
        return found.attributes["Actual"].value

    # --- the CSMS's requests --------------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        """Answer the device-model requests; True when ``event`` was one."""
        if not isinstance(event, RequestReceived):
            return False
        action = event.action
        if action in ("GetVariables", "SetVariables"):
            items = (
                event.request.get_variable_data
                if action == "GetVariables"
                else event.request.set_variable_data
            )
            limit = self.setting(f"DeviceDataCtrlr.ItemsPerMessage[{action}]")
            if limit is not None and limit.isdigit() and len(items) > int(limit):
                # B06.FR.16 (and the same for SetVariables): more items than announced.
                self.core.send_error(
                    event.message_id,
                    "OccurrenceConstraintViolation",
                    f"at most {limit} items per {action}",
                )
                return True
            handler = self.get_variables if action == "GetVariables" else self.set_variables
            self.core.send_response(event.message_id, handler(event.request), now)
            return True
        if action in ("GetBaseReport", "GetReport"):
            status, selected = (
                self._select_base(event.request)
                if action == "GetBaseReport"
                else self._select_report(event.request)
            )
            response = self.core.registry[action].response(
                status=self._m.GenericDeviceModelStatusEnum(status)
            )
            # FR.05: the answer goes out before the report parts.
            self.core.send_response(event.message_id, response, now)
            if status == "Accepted":
                self._send_report(event.request.request_id, selected, now)
            return True
        return False

    def get_variables(self, request: Any) -> Any:
        """One result per requested item, in order (B06.FR.01)."""
        m = self._m
        results = []
        for item in request.get_variable_data:
            attribute = str(item.attribute_type or "Actual")  # B06.FR.11
            status, found = self._find(item.component, item.variable, attribute)
            value = None
            if status == "Accepted" and found is not None:
                held = found.attributes[attribute]
                if held.mutability == WRITE_ONLY:
                    status = "Rejected"  # B06.FR.09
                else:
                    value = held.value if held.value is not None else ""  # B06.FR.13
            results.append(
                m.GetVariableResult(
                    attribute_status=m.GetVariableStatusEnum(status),
                    component=item.component,
                    variable=item.variable,
                    attribute_type=m.AttributeEnum(attribute),
                    attribute_value=value,
                )
            )
        return m.GetVariablesResponse(get_variable_result=results)

    def set_variables(self, request: Any) -> Any:
        """One result per item, in order (B05.FR.01); each applied on its own."""
        m = self._m
        results = []
        for item in request.set_variable_data:
            attribute = str(item.attribute_type or "Actual")  # B05.FR.12
            status, found = self._find(item.component, item.variable, attribute)
            reason = None
            if status == "Accepted" and found is not None:
                status, reason = self._apply(found, attribute, item.attribute_value)
            results.append(
                m.SetVariableResult(
                    attribute_status=m.SetVariableStatusEnum(status),
                    component=item.component,
                    variable=item.variable,
                    attribute_type=m.AttributeEnum(attribute),
                    attribute_status_info=(
                        m.StatusInfo(reason_code=reason) if reason is not None else None
                    ),
                )
            )
        return m.SetVariablesResponse(set_variable_result=results)

    def _find(
        self, component: Any, variable: Any, attribute: str
    ) -> tuple[str, DeviceVariable | None]:
        key = _component_key(component)
        found = self.store.lookup(key, VariableKey(variable.name, variable.instance))
        if found is None:
            if not self.store.has_component(key):
                return "UnknownComponent", None  # B05.FR.04, B06.FR.06
            return "UnknownVariable", None  # B05.FR.05, B06.FR.07
        if attribute not in found.attributes:
            return "NotSupportedAttributeType", None  # B05.FR.06, B06.FR.08
        return "Accepted", found

    def _apply(self, found: DeviceVariable, attribute: str, value: str) -> tuple[str, str | None]:
        held = found.attributes[attribute]
        if held.mutability == READ_ONLY or held.constant:
            return "Rejected", "ReadOnly"  # B05.FR.09
        problem = _check_value(found, value)
        if problem is not None:
            return "Rejected", problem  # B05.FR.07 / B05.FR.08
        if self._approve is not None:
            veto = self._approve(found.component, found.variable, value)
            if veto is not None:
                return "Rejected", veto
        size = self.setting("DeviceDataCtrlr.ConfigurationValueSize")
        if size is not None and size.isdigit() and len(value) > int(size):
            return "Rejected", "TooLarge"
        previous = held.value
        self.store.write(found.component, found.variable, attribute, value)
        self._emit(
            VariableChanged(
                component=found.component,
                variable=found.variable,
                attribute=attribute,
                value=value,
                previous=previous,
                reboot_required=found.reboot_required,
            )
        )
        return ("RebootRequired" if found.reboot_required else "Accepted"), None  # B05.FR.10

    # --- reports ----------------------------------------------------------------------------

    def _select_base(self, request: Any) -> tuple[str, list[DeviceVariable]]:
        base = str(request.report_base)
        if base not in self.supported_bases:
            return "NotSupported", []  # B07.FR.02
        variables = list(self.store.variables())
        if base == "ConfigurationInventory":  # B07.FR.07: what the operator can set
            chosen = [
                v
                for v in variables
                if any(a.mutability != READ_ONLY for a in v.attributes.values())
            ]
        elif base == "SummaryInventory":  # B07.FR.09: availability and problems
            chosen = [
                v
                for v in variables
                if _fold(v.variable.name) == "availabilitystate"
                or (_fold(v.variable.name) in _PROBLEM_VARIABLES and _actual(v) == "true")
            ]
        else:
            chosen = variables  # B07.FR.08
        return "Accepted", chosen

    def _select_report(self, request: Any) -> tuple[str, list[DeviceVariable]]:
        criteria = [str(c) for c in request.component_criteria or ()]
        if any(c not in self.supported_criteria for c in criteria):
            return "NotSupported", []  # B08.FR.02
        variables = list(self.store.variables())
        if criteria:
            by_component: dict[tuple[Any, ...], list[DeviceVariable]] = {}
            for v in variables:
                by_component.setdefault(v.component.folded(), []).append(v)
            wanted = {
                key for key, group in by_component.items() if _meets_any(group, criteria)
            }  # B08.FR.07-10, B08.FR.13
            variables = [v for v in variables if v.component.folded() in wanted]
            if not request.component_variable:
                # Without componentVariable the report is the criteria themselves: each
                # chosen component's criterion variables that hold (OCTT TC_B_16_CS).
                folded = {c.casefold() for c in criteria}
                variables = [
                    v
                    for v in variables
                    if v.variable.instance is None
                    and _fold(v.variable.name) in folded
                    and _actual(v) == "true"
                ]
        if request.component_variable:
            variables = [
                v
                for v in variables
                if any(_selects(wanted, v) for wanted in request.component_variable)
            ]  # B08.FR.11, B08.FR.20-25
        if not variables:
            return "EmptyResultSet", []  # B08.FR.15
        return "Accepted", variables

    def report_data(self, item: DeviceVariable) -> Any:
        """One ReportData for ``item``: every attribute type it supports (B07.FR.11) and its
        characteristics (B08.FR.12); WriteOnly values are left out."""
        m = self._m
        evse = None
        if item.component.evse_id is not None:
            evse = m.EVSE(id=item.component.evse_id, connector_id=item.component.connector_id)
        attributes = [
            m.VariableAttribute(
                type=m.AttributeEnum(kind),
                value=None if held.mutability == WRITE_ONLY else held.value,
                mutability=m.MutabilityEnum(held.mutability),
                persistent=held.persistent,
                constant=held.constant,
            )
            for kind, held in item.attributes.items()
        ]
        extra = {} if self.core.version == "2.0.1" else {"max_elements": item.max_elements}
        characteristics = m.VariableCharacteristics(
            data_type=m.DataEnum(item.data_type),
            supports_monitoring=item.supports_monitoring,
            unit=item.unit,
            min_limit=item.min_limit,
            max_limit=item.max_limit,
            values_list=",".join(item.values_list) if item.values_list else None,
            **extra,
        )
        return m.ReportData(
            component=m.Component(
                name=item.component.name, instance=item.component.instance, evse=evse
            ),
            variable=m.Variable(name=item.variable.name, instance=item.variable.instance),
            variable_attribute=attributes,
            variable_characteristics=characteristics,
        )

    def _send_report(self, request_id: int, chosen: list[DeviceVariable], now: float) -> None:
        """NotifyReport parts with the request's requestId (B07.FR.04), seqNo from 0
        (B07.FR.10, B08.FR.14), tbc on every part but the last."""
        data = [self.report_data(item) for item in chosen]
        size = self.report_part_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [[]]
        generated_at = self.clock(now)
        for seq_no, chunk in enumerate(chunks):
            last = seq_no == len(chunks) - 1
            self.core.send_request(
                self._m.NotifyReportRequest(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    report_data=chunk or None,
                    tbc=None if last else True,
                ),
                now,
            )
        self._emit(ReportSent(request_id=request_id, parts=len(chunks), variables=len(data)))


def _component_key(component: Any) -> ComponentKey:
    evse = component.evse
    return ComponentKey(
        component.name,
        component.instance,
        evse.id if evse is not None else None,
        evse.connector_id if evse is not None else None,
    )


def _actual(item: DeviceVariable) -> str | None:
    held = item.attributes.get("Actual")
    return None if held is None or held.value is None else held.value.strip().lower()


def _meets_any(group: list[DeviceVariable], criteria: list[str]) -> bool:
    """A component meets Active/Available/Enabled when that variable is true or absent,
    Problem only when it is true (B08.FR.07-10); any criterion suffices (B08.FR.13)."""
    values = {_fold(v.variable.name): _actual(v) for v in group if v.variable.instance is None}
    for criterion in criteria:
        value = values.get(criterion.casefold())
        if criterion == "Problem":
            if value == "true":
                return True
        elif value is None or value == "true":
            return True
    return False


def _selects(wanted: Any, item: DeviceVariable) -> bool:
    """Whether a requested componentVariable covers ``item``: an absent instance, EVSE,
    connector or variable matches them all (B08.FR.20-25)."""
    component = wanted.component
    if _fold(component.name) != _fold(item.component.name):
        return False
    if component.instance is not None and _fold(component.instance) != _fold(
        item.component.instance
    ):
        return False
    evse = component.evse
    if evse is not None:
        if evse.id != item.component.evse_id:
            return False
        if evse.connector_id is not None and evse.connector_id != item.component.connector_id:
            return False
    requested = wanted.variable
    if requested is None:
        return True
    if _fold(requested.name) != _fold(item.variable.name):
        return False
    return requested.instance is None or _fold(requested.instance) == _fold(item.variable.instance)


def _check_value(item: DeviceVariable, value: str) -> str | None:
    """Why ``value`` does not fit ``item`` (a StatusInfo reasonCode), or None when it does."""
    kind = item.data_type
    if kind == "integer":
        if re.fullmatch(r"[+-]?\d+", value.strip()) is None:
            return "InvalidValue"
        return _in_range(item, float(value))
    if kind == "decimal":
        try:
            number = float(value)
        except ValueError:
            return "InvalidValue"
        return _in_range(item, number)
    if kind == "boolean":
        return None if value.strip().lower() in ("true", "false") else "InvalidValue"
    if kind == "dateTime":
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "InvalidValue"
        return None if parsed.tzinfo is not None else "InvalidValue"
    if kind == "string":
        if item.max_limit is not None and len(value) > item.max_limit:
            return "ValueTooLong"
        return None
    allowed = {v.casefold() for v in item.values_list or ()}
    if kind == "OptionList":
        return None if value.casefold() in allowed or not allowed else "ValueNotInList"
    members = [member.strip() for member in value.split(",") if member.strip()]
    if allowed and any(member.casefold() not in allowed for member in members):
        return "ValueNotInList"
    if item.max_elements is not None and len(members) > item.max_elements:
        return "TooManyElements"
    return None


def _in_range(item: DeviceVariable, number: float) -> str | None:
    low = item.min_limit
    high = item.max_limit
    minimum = item.attributes.get("MinSet")
    maximum = item.attributes.get("MaxSet")
    if minimum is not None and minimum.value not in (None, ""):
        low = float(minimum.value) if low is None else max(low, float(minimum.value))
    if maximum is not None and maximum.value not in (None, ""):
        high = float(maximum.value) if high is None else min(high, float(maximum.value))
    if (low is not None and number < low) or (high is not None and number > high):
        return "ValueOutOfRange"
    return None


# --- the CSMS side ------------------------------------------------------------------------


@attrs.define
class _Report:
    next_seq_no: int = 0
    data: list[Any] = attrs.field(factory=list)


class ReportCollector(Emitter):
    """The CSMS side of GetBaseReport / GetReport: answers every NotifyReport, joins the
    parts of each requested report in seqNo order, and flags parts that break the rules."""

    def __init__(self, core: Any) -> None:
        super().__init__()
        self.core = core
        self._reports: dict[int, _Report] = {}

    def handle_event(self, event: Event, now: float) -> bool:
        if (
            isinstance(event, ResponseReceived)
            and event.action in ("GetBaseReport", "GetReport")
            and str(event.response.status) == "Accepted"
        ):
            self._reports[event.request.request_id] = _Report()
            return True
        if not (isinstance(event, RequestReceived) and event.action == "NotifyReport"):
            return False
        request = event.request
        self.core.send_response(
            event.message_id, self.core.registry["NotifyReport"].response(), now
        )
        report = self._reports.get(request.request_id)
        if report is None:
            self._anomaly(request, "no accepted GetBaseReport/GetReport has this requestId")
            return True
        if request.seq_no != report.next_seq_no:
            self._anomaly(request, f"seqNo {request.seq_no}, expected {report.next_seq_no}")
        report.next_seq_no = request.seq_no + 1
        report.data.extend(request.report_data or ())
        if not request.tbc:
            del self._reports[request.request_id]
            self._emit(
                ReportReceived(request_id=request.request_id, report_data=tuple(report.data))
            )
        return True

    def _anomaly(self, request: Any, problem: str) -> None:
        self._emit(
            ReportAnomaly(request_id=request.request_id, seq_no=request.seq_no, problem=problem)
        )
