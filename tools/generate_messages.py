"""Generate ``ocpp_sansio/messages/v16.py``, ``v201.py`` and ``v21.py`` from the official
JSON schemas shipped in the ``ocpp`` package.

Only facts are taken from the schemas: property names, types, enums, limits. Descriptions
are not copied. Run ``python tools/generate_messages.py`` to rewrite the modules, or with
``--check`` to fail when the committed modules are stale.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import keyword
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "ocpp_sansio" / "messages"

# Who sends each request. Facts from the specifications; everything not listed
# under the station or "both" is sent by the CSMS.
STATION_SENDS = {
    "1.6": {
        "Authorize",
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
        "LogStatusNotification",
    },
    "2.0.1": {
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    },
}
STATION_SENDS["2.1"] = STATION_SENDS["2.0.1"] | {
    "BatterySwap",
    "ClosePeriodicEventStream",
    "GetCertificateChainStatus",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPeriodicEventStream",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "OpenPeriodicEventStream",
    "PullDynamicScheduleUpdate",
    "ReportDERControl",
    "VatNumberValidation",
}
BOTH_SEND = {"DataTransfer"}

# Official 1.6 type names for the inline enums and objects of the 1.6 core schemas,
# keyed by (message, property) or by property alone.
V16_NAMES: dict[Any, str] = {
    "idTagInfo": "IdTagInfo",
    "meterValue": "MeterValue",
    "transactionData": "MeterValue",
    "sampledValue": "SampledValue",
    "chargingProfile": "ChargingProfile",
    "csChargingProfiles": "ChargingProfile",
    "chargingSchedule": "ChargingSchedule",
    "chargingSchedulePeriod": "ChargingSchedulePeriod",
    "configurationKey": "KeyValue",
    "localAuthorizationList": "AuthorizationData",
    "chargingProfileKind": "ChargingProfileKindType",
    "chargingProfilePurpose": "ChargingProfilePurposeType",
    "chargingRateUnit": "ChargingRateUnitType",
    "recurrencyKind": "RecurrencyKindType",
    "context": "ReadingContext",
    "format": "ValueFormat",
    "location": "Location",
    "measurand": "Measurand",
    "phase": "Phase",
    "unit": "UnitOfMeasure",
    "reason": "Reason",
    "errorCode": "ChargePointErrorCode",
    "requestedMessage": "MessageTrigger",
    "updateType": "UpdateType",
    ("ChangeAvailabilityRequest", "type"): "AvailabilityType",
    ("ResetRequest", "type"): "ResetType",
    ("AuthorizeResponse", "status"): "AuthorizationStatus",
    ("BootNotificationResponse", "status"): "RegistrationStatus",
    ("CancelReservationResponse", "status"): "CancelReservationStatus",
    ("ChangeAvailabilityResponse", "status"): "AvailabilityStatus",
    ("ChangeConfigurationResponse", "status"): "ConfigurationStatus",
    ("ClearCacheResponse", "status"): "ClearCacheStatus",
    ("ClearChargingProfileResponse", "status"): "ClearChargingProfileStatus",
    ("DataTransferResponse", "status"): "DataTransferStatus",
    ("DiagnosticsStatusNotificationRequest", "status"): "DiagnosticsStatus",
    ("FirmwareStatusNotificationRequest", "status"): "FirmwareStatus",
    ("GetCompositeScheduleResponse", "status"): "GetCompositeScheduleStatus",
    ("RemoteStartTransactionResponse", "status"): "RemoteStartStopStatus",
    ("RemoteStopTransactionResponse", "status"): "RemoteStartStopStatus",
    ("ReserveNowResponse", "status"): "ReservationStatus",
    ("ResetResponse", "status"): "ResetStatus",
    ("SendLocalListResponse", "status"): "UpdateStatus",
    ("SetChargingProfileResponse", "status"): "ChargingProfileStatus",
    ("StatusNotificationRequest", "status"): "ChargePointStatus",
    ("TriggerMessageResponse", "status"): "TriggerMessageStatus",
    ("UnlockConnectorResponse", "status"): "UnlockStatus",
    ("StartTransactionResponse", "status"): "AuthorizationStatus",
    ("StopTransactionResponse", "status"): "AuthorizationStatus",
    ("SendLocalListRequest", "status"): "AuthorizationStatus",
}

VERSIONS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}


def snake(name: str) -> str:
    out = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return out + "_" if keyword.iskeyword(out) else out


def camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def member_name(value: str) -> str:
    words = re.sub(r"[^0-9A-Za-z]+", "_", value)
    out = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", words)
    out = re.sub(r"_+", "_", out).strip("_").upper()
    return out if out and not out[0].isdigit() else "V_" + out


@dataclass
class Enum:
    name: str
    values: list[str]


@dataclass
class Field:
    name: str
    wire: str
    annotation: str
    required: bool
    limits: dict[str, Any]


@dataclass
class Klass:
    name: str
    fields: list[Field]
    draft: int
    open: bool = False
    deps: list[str] = field(default_factory=list)


class Module:
    """Everything one version's module will hold, in definition order."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.enums: dict[str, Enum] = {}
        self.classes: dict[str, Klass] = {}
        self.actions: list[tuple[str, str, str | None]] = []

    def add_enum(self, name: str, values: list[str], owner: str) -> str:
        known = self.enums.get(name)
        if known is not None and known.values != values:
            name = owner + name
            known = self.enums.get(name)
            if known is not None and known.values != values:
                raise SystemExit(f"{self.version}: enum {name} defined twice differently")
        self.enums[name] = Enum(name, list(values))
        return name

    def add_class(self, klass: Klass, owner: str) -> str:
        known = self.classes.get(klass.name)
        if known is not None and known != klass:
            klass.name = owner + klass.name
            known = self.classes.get(klass.name)
            if known is not None and known != klass:
                raise SystemExit(f"{self.version}: class {klass.name} defined twice differently")
        self.classes[klass.name] = klass
        return klass.name


def load_schemas(version: str) -> dict[str, dict[str, Any]]:
    folder = importlib.resources.files("ocpp") / VERSIONS[version] / "schemas"
    return {
        entry.name[: -len(".json")]: json.loads(entry.read_text(encoding="utf-8-sig"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }


def definition_name(key: str, schema: dict[str, Any]) -> str:
    java = schema.get("javaType")
    if java:
        return str(java)
    return key[: -len("Type")] if key.endswith("Type") else key


def v16_name(message: str, prop: str) -> str:
    return V16_NAMES.get((message, prop)) or V16_NAMES.get(prop) or prop[:1].upper() + prop[1:]


class Translator:
    def __init__(self, module: Module, root: dict[str, Any], message: str, draft: int):
        self.module = module
        self.root = root
        self.message = message
        self.draft = draft

    def resolve(self, schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        ref = schema.get("$ref")
        if ref is None:
            return None, schema
        key = ref.rsplit("/", 1)[-1]
        return key, self.root["definitions"][key]

    def type_of(self, prop: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Python annotation and limits for one property schema."""
        key, schema = self.resolve(schema)
        limits: dict[str, Any] = {}
        kind = schema.get("type")
        if kind == "array":
            items_key, items = self.resolve(schema["items"])
            inner, inner_limits = self.type_of(
                prop, {"$ref": schema["items"]["$ref"]} if items_key else items
            )
            limits.update(inner_limits)
            if "minItems" in schema:
                limits["min_items"] = schema["minItems"]
            if "maxItems" in schema:
                limits["max_items"] = schema["maxItems"]
            return f"list[{inner}]", limits
        if "enum" in schema:
            name = definition_name(key, schema) if key else v16_name(self.message, prop)
            return self.module.add_enum(name, schema["enum"], self.message), limits
        if kind == "object":
            name = definition_name(key, schema) if key else v16_name(self.message, prop)
            return self.object(name, schema), limits
        if kind == "string":
            fmt = schema.get("format")
            if fmt == "date-time":
                return "datetime", limits
            if fmt == "uri":
                limits["uri"] = True
            elif fmt is not None:
                raise SystemExit(f"unknown format {fmt}")
            if "maxLength" in schema:
                limits["max_length"] = schema["maxLength"]
            return "str", limits
        if kind in ("integer", "number"):
            for word, limit in (
                ("minimum", "minimum"),
                ("maximum", "maximum"),
                ("multipleOf", "multiple_of"),
            ):
                if word in schema:
                    limits[limit] = schema[word]
            return ("int" if kind == "integer" else "float"), limits
        if kind == "boolean":
            return "bool", limits
        if kind is None and not schema.keys() - {"description", "javaType"}:
            return "Any", limits
        raise SystemExit(f"{self.message}.{prop}: cannot translate {schema}")

    def object(self, name: str, schema: dict[str, Any]) -> str:
        required = set(schema.get("required", ()))
        fields = []
        for prop, sub in schema.get("properties", {}).items():
            annotation, limits = self.type_of(prop, sub)
            python = snake(prop)
            if camel(python) != prop:
                limits["name"] = prop
            fields.append(Field(python, prop, annotation, prop in required, limits))
        is_open = schema.get("additionalProperties") is not False
        if is_open and any(f.name == "extra" for f in fields):
            raise SystemExit(f"{name}: 'extra' is taken")
        klass = Klass(name, fields, self.draft, open=is_open)
        return self.module.add_class(klass, self.message)


def build(version: str) -> Module:
    module = Module(version)
    schemas = load_schemas(version)
    for file_name, schema in schemas.items():
        is_response = file_name.endswith("Response")
        action = file_name[: -len("Response")] if is_response else file_name
        if action.endswith("Request"):
            action = action[: -len("Request")]
        class_name = action + ("Response" if is_response else "Request")
        if action == "NotifyPeriodicEventStream":
            class_name = action
        draft = 4 if "draft-04" in schema.get("$schema", "") else 6
        translator = Translator(module, schema, class_name, draft)
        translator.object(class_name, schema)
        if not is_response:
            module.actions.append((action, class_name, None))
    names = set(module.classes)
    module.actions = [
        (action, request, f"{action}Response" if f"{action}Response" in names else None)
        for action, request, _ in module.actions
    ]
    return module


def sender(version: str, action: str) -> str:
    if action in BOTH_SEND:
        return "Role.EITHER"
    return "Role.STATION" if action in STATION_SENDS[version] else "Role.CSMS"


def dependency_order(classes: dict[str, Klass]) -> list[Klass]:
    done: dict[str, None] = {}

    def visit(name: str) -> None:
        if name in done:
            return
        for f in classes[name].fields:
            inner = f.annotation.removeprefix("list[").removesuffix("]")
            if inner in classes:
                visit(inner)
        done[name] = None

    for name in sorted(classes):
        visit(name)
    return [classes[name] for name in done]


def render_field(f: Field) -> str:
    annotation = f.annotation if f.required else f"{f.annotation} | None"
    args = [] if f.required else ["default=None"]
    for key, value in f.limits.items():
        args.append(f"{key}={value!r}")
    if args == ["default=None"]:
        return f"    {f.name}: {annotation} = None"
    if not args:
        return f"    {f.name}: {annotation}"
    return f"    {f.name}: {annotation} = wire({', '.join(args)})"


def render(module: Module) -> str:
    version = module.version
    any_open = any(klass.open for klass in module.classes.values())
    uses_any = any_open or any(
        "Any" in f.annotation for klass in module.classes.values() for f in klass.fields
    )
    lines = [
        f'"""OCPP {version} messages: every request and response, with the types they use.',
        "",
        "Generated by tools/generate_messages.py from the official JSON schemas; do not edit.",
        '"""',
        "",
        "from datetime import datetime",
        "from enum import StrEnum",
        *(["from typing import Any"] if uses_any else []),
        "",
        f"from ._model import Request, {'extra_properties, ' if any_open else ''}message, wire",
        "from ._registry import ActionSpec, Registry, Role",
        "",
        f'VERSION = "{version}"',
    ]
    for enum in sorted(module.enums.values(), key=lambda e: e.name):
        lines += ["", "", f"class {enum.name}(StrEnum):"]
        seen: set[str] = set()
        for value in enum.values:
            member = member_name(value)
            while member in seen:
                member += "_"
            seen.add(member)
            lines.append(f"    {member} = {value!r}")
    #: request class -> its response class (None: a 2.1 SEND, never answered)
    answered_by = {request: response for _, request, response in module.actions}
    for klass in dependency_order(module.classes):
        args = []
        if klass.draft != 6:
            args.append(f"draft={klass.draft}")
        if klass.open:
            args.append("open=True")
        decorator = f"@message({', '.join(args)})" if args else "@message"
        base = ""
        if klass.name in answered_by:
            response = answered_by[klass.name]
            base = f'(Request["{response}"])' if response else "(Request[None])"
        lines += ["", "", decorator, f"class {klass.name}{base}:"]
        ordered = [f for f in klass.fields if f.required] + [
            f for f in klass.fields if not f.required
        ]
        lines += [render_field(f) for f in ordered]
        if klass.open:
            lines.append("    extra: dict[str, Any] = extra_properties()")
        if not klass.fields and not klass.open:
            lines.append("    pass")
    lines += ["", "", "ACTIONS = Registry(", "    VERSION,", "    ["]
    for action, request, response in sorted(module.actions):
        lines.append(
            f'        ActionSpec("{action}", {request}, {response}, {sender(version, action)}),'
        )
    lines += ["    ],", ")", ""]
    return "\n".join(lines)


def formatted(text: str, path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    args = parser.parse_args()
    stale = []
    for version, module_name in VERSIONS.items():
        path = OUT_DIR / f"{module_name}.py"
        text = formatted(render(build(version)), path)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)}; run python tools/generate_messages.py")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
