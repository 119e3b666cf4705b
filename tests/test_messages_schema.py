"""Every message class of every version, request and response, against its official schema.

(a) instances drawn from ``ocpp_sansio.testing.strategies`` encode to JSON the official
    schema accepts, and decode back to the same object;
(b) JSON that hypothesis-jsonschema draws from the official schema decodes, and encodes
    again to an equivalent document the schema accepts;
(c) payloads broken in one place are refused by ``decode_frame`` with the version's code
    and the JSON path of the broken value, and the official schema refuses them too.

The schemas are read from the installed ``ocpp`` package. jsonschema checks formats only
with optional packages we do not install, so the date-time and uri checks are written
here, from RFC 3339 section 5.6 and RFC 3986 section 3. jsonschema's multipleOf divides
binary floats (0.3 / 0.1 is not 3); ours divides the numbers as written, with the codec's
tolerance (1e-9, or 1e-12 of the quotient for large ones).
"""

from __future__ import annotations

import enum
import functools
import importlib.resources
import ipaddress
import json
import re
import string
import subprocess
import sys
import typing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from ocpp_sansio import FrameError, decode_frame, registry
from ocpp_sansio.messages._codec import _wire_name, structure_fn, unstructure_fn
from ocpp_sansio.messages._model import LIMITS, Limits, is_message_class
from ocpp_sansio.messages._registry import Role
from ocpp_sansio.testing.strategies import (
    PAYLOAD_KINDS,
    invalid_payloads,
    messages,
    mutation_kinds,
)

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("1.6", "2.0.1", "2.1")
PACKAGES = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
ACTION_COUNTS = {"1.6": 39, "2.0.1": 64, "2.1": 91}

#: The codes the specifications prescribe (OCPP-J; docs/errors.md).
EXPECTED_CODES = {
    "1.6": {
        "missing_required": "OccurenceConstraintViolation",
        "item_count": "OccurenceConstraintViolation",
        "wrong_type": "TypeConstraintViolation",
        "too_long": "PropertyConstraintViolation",
        "out_of_range": "PropertyConstraintViolation",
        "extra_property": "FormationViolation",
    },
    "2.x": {
        "missing_required": "OccurrenceConstraintViolation",
        "item_count": "OccurrenceConstraintViolation",
        "wrong_type": "TypeConstraintViolation",
        "too_long": "PropertyConstraintViolation",
        "out_of_range": "PropertyConstraintViolation",
        "extra_property": "ProtocolError",
    },
}


def examples(n: int) -> settings:
    """n examples under the ci profile, proportionally more under thorough."""
    return settings(max_examples=max(1, n * settings.default.max_examples // 100))


# --- the official schemas ----------------------------------------------------------------


@functools.cache
def schemas(version: str) -> dict[str, dict[str, Any]]:
    folder = importlib.resources.files("ocpp") / PACKAGES[version] / "schemas"
    return {
        entry.name.removesuffix(".json"): json.loads(entry.read_text(encoding="utf-8-sig"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def schema_name(version: str, action: str, response: bool) -> str:
    if response:
        return f"{action}Response"
    return action if action in schemas(version) else f"{action}Request"


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:[Zz]|[+-](\d\d):(\d\d))",
    re.ASCII,
)


def is_rfc3339(text: object) -> bool:
    if not isinstance(text, str):
        return True
    match = _RFC3339.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second, off_h, off_m = (int(g or 0) for g in match.groups())
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return (
        1 <= month <= 12
        and 1 <= day <= month_days[month - 1]
        and hour <= 23
        and minute <= 59
        and second <= 60  # a leap second is RFC 3339; the codec refuses it (docs/errors.md)
        and off_h <= 23
        and off_m <= 59
    )


_URI_CHARS = frozenset(string.ascii_letters + string.digits + "-._~" + ":/?#[]@" + "!$&'()*+,;=%")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*", re.ASCII)


def _ip_literal(literal: str) -> bool:
    if literal[:1] in ("v", "V"):
        return re.fullmatch(r"[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+", literal) is not None
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return "%" not in literal


def is_uri(text: object) -> bool:
    """RFC 3986 ``URI``, taken apart piece by piece."""
    if not isinstance(text, str):
        return True
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme) or not set(rest) <= _URI_CHARS:
        return False
    if re.search(r"%(?![0-9A-Fa-f]{2})", rest):
        return False
    hier, _, fragment = rest.partition("#")
    hier, _, query = hier.partition("?")
    if any(char in fragment + query for char in "#[]"):
        return False
    path = hier
    if hier.startswith("//"):
        authority, slash, path = hier[2:].partition("/")
        path = slash + path
        userinfo, _, hostport = authority.rpartition("@")
        if any(char in userinfo for char in "[]@"):
            return False
        if hostport.startswith("["):
            literal, bracket, port = hostport[1:].partition("]")
            if not bracket or not _ip_literal(literal):
                return False
        else:
            host, colon, port = hostport.partition(":")
            port = colon + port
            if "[" in host or "]" in host:
                return False
        if port and not re.fullmatch(r":[0-9]*", port):
            return False
    return "[" not in path and "]" not in path


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(is_rfc3339)
FORMATS.checks("uri")(is_uri)


def _multiple_of(validator: Any, step: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "number"):
        return
    quotient = Decimal(repr(instance)) / Decimal(repr(step))
    if abs(quotient - quotient.to_integral_value()) > max(Decimal("1e-9"), abs(quotient) / 10**12):
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {step!r}")


@functools.cache
def validator(version: str, name: str) -> Any:
    schema = schemas(version)[name]
    base = jsonschema.validators.validator_for(schema)
    base.check_schema(schema)
    return jsonschema.validators.extend(base, {"multipleOf": _multiple_of})(
        schema, format_checker=FORMATS
    )


# --- the cases: every action of every version, request and response ---------------------


@dataclass(frozen=True)
class Case:
    version: str
    action: str
    response: bool

    @property
    def spec(self) -> Any:
        return registry(self.version)[self.action]

    @property
    def cls(self) -> type:
        cls: type = self.spec.response if self.response else self.spec.request
        return cls

    @property
    def schema_name(self) -> str:
        return schema_name(self.version, self.action, self.response)

    @property
    def validator(self) -> Any:
        return validator(self.version, self.schema_name)

    def frame(self, payload: Any) -> str:
        if self.response:
            return json.dumps([3, "m-1", payload])
        return json.dumps([2 if self.spec.response else 6, "m-1", self.action, payload])

    def __str__(self) -> str:
        return f"{self.version}-{self.schema_name}"


CASES = [
    Case(version, action, response)
    for version in VERSIONS
    for action, spec in registry(version).items()
    for response in (False, True)
    if not response or spec.response is not None
]


def _family(version: str) -> str:
    return "1.6" if version == "1.6" else "2.x"


# --- the registry and the generator ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_registry_has_every_action_of_the_schemas(version: str) -> None:
    actions = registry(version)
    assert len(actions) == ACTION_COUNTS[version]
    from_schemas = {
        name.removesuffix("Request").removesuffix("Response") for name in schemas(version)
    }
    assert set(actions) == from_schemas
    # One schema per request and per response, and none left over.
    used = {case.schema_name for case in CASES if case.version == version}
    assert used == set(schemas(version))


@pytest.mark.parametrize("version", VERSIONS)
def test_registry_entries_have_the_right_classes(version: str) -> None:
    module = sys.modules[registry(version)[next(iter(registry(version)))].request.__module__]
    assert version == module.VERSION
    for name, spec in registry(version).items():
        assert spec.name == name
        assert isinstance(spec.sender, Role)
        assert is_message_class(spec.request) and spec.request.__module__ == module.__name__
        if spec.response is None:  # 2.1's SEND message, which nothing answers
            assert (version, name) == ("2.1", "NotifyPeriodicEventStream")
            assert spec.request.__name__ == name
        else:
            assert spec.request.__name__ == f"{name}Request"
            assert spec.response.__name__ == f"{name}Response"
            assert spec.response.__module__ == module.__name__
            assert registry(version).for_class(spec.response) is spec
        assert registry(version).for_class(spec.request) is spec


@pytest.mark.parametrize("case", CASES, ids=str)
def test_class_fields_are_the_schema_properties(case: Case) -> None:
    """The generated class mirrors its schema all the way down: properties, required ones,
    types, enums, limits and whether extra properties are allowed."""
    root = schemas(case.version)[case.schema_name]
    _same_object(case.cls, root, root, "$")


def _same_object(cls: type, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    schema = _resolve(schema, root)
    assert schema.get("type") == "object", path
    assert getattr(cls, "__ocpp_open__", False) == (schema.get("additionalProperties") is not False)
    fields = {_wire_name(f): f for f in attrs.fields(cls) if f.name != "extra"}
    properties = schema.get("properties", {})
    assert set(fields) == set(properties), path
    required = {wire for wire, f in fields.items() if f.default is attrs.NOTHING}
    assert required == set(schema.get("required", ())), path
    hints = typing.get_type_hints(cls)
    for wire, f in fields.items():
        tp = hints[f.name]
        if f.default is not attrs.NOTHING:  # optional: X | None, default None
            assert f.default is None, (path, wire)
            (tp,) = (arg for arg in typing.get_args(tp) if arg is not type(None))
        limits = f.metadata.get(LIMITS, Limits())
        _same_value(tp, limits, properties[wire], root, f"{path}.{wire}")


def _same_value(
    tp: Any, limits: Limits, schema: dict[str, Any], root: dict[str, Any], path: str
) -> None:
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if kind == "array":
        assert typing.get_origin(tp) is list, path
        assert limits.min_items == schema.get("minItems"), path
        assert limits.max_items == schema.get("maxItems"), path
        # The items' own limits (maxLength...) share the field's Limits.
        item_limits = attrs.evolve(limits, min_items=None, max_items=None)
        items = _resolve(schema["items"], root)
        _same_value(typing.get_args(tp)[0], item_limits, items, root, f"{path}[]")
        return
    assert limits.min_items is None and limits.max_items is None, path
    if "enum" in schema:
        assert isinstance(tp, type) and issubclass(tp, enum.Enum), path
        assert [member.value for member in tp] == schema["enum"], path
    elif kind == "object":
        _same_object(tp, schema, root, path)
    elif kind == "string":
        date_time = schema.get("format") == "date-time"
        assert tp is (datetime if date_time else str), path
        assert limits.uri == (schema.get("format") == "uri"), path
        assert limits.max_length == schema.get("maxLength"), path
    elif kind in ("integer", "number"):
        assert tp is (int if kind == "integer" else float), path
        assert limits.minimum == schema.get("minimum"), path
        assert limits.maximum == schema.get("maximum"), path
        assert limits.multiple_of == schema.get("multipleOf"), path
    elif kind == "boolean":
        assert tp is bool, path
    else:
        assert kind is None and tp is Any, path
    if kind != "string":
        assert limits.max_length is None and not limits.uri, path
    if kind not in ("integer", "number"):
        assert limits.minimum is limits.maximum is limits.multiple_of is None, path


def test_generated_modules_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "tools/generate_messages.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- (a) our instances against the official schema ---------------------------------------

_DATETIME_OUT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
_OFFSET_OUT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d")


@pytest.mark.parametrize("case", CASES, ids=str)
@examples(5)
@given(data=st.data())
def test_a_instances_encode_to_what_the_schema_accepts(case: Case, data: st.DataObject) -> None:
    obj = data.draw(messages(case.cls))
    document = json.loads(json.dumps(unstructure_fn(case.cls)(obj)))
    errors = [f"{e.json_path}: {e.message}" for e in case.validator.iter_errors(document)]
    assert not errors
    assert structure_fn(case.cls)(document) == obj
    # And the same through the frame codec.
    frame = decode_frame(
        case.frame(document), case.version, response_to=case.action if case.response else None
    )
    assert frame.payload == obj


# --- (b) hypothesis-jsonschema's documents through our codec -----------------------------

#: Array cap for hypothesis-jsonschema under the ci profile: some schemas allow 1024 nested
#: items per list, and it draws object trees slowly; capping keeps every drawn document
#: valid under the unmodified schema (which the test validates against).
CI_MAX_ITEMS = 2


def _generation_schema(schema: Any, cap: int | None) -> Any:
    """The schema hypothesis-jsonschema draws from.

    Its ``$id`` is dropped: hypothesis-jsonschema resolves ``#/definitions/...`` against
    the ``$id``, and ``urllib.parse.urljoin`` cannot join onto ``urn:`` ids (it returns the
    bare fragment), so the lookup fails as a "remote reference". Every ``$ref`` in these
    schemas is local, so the ``$id`` changes nothing else. Under ci, arrays are capped.
    """
    if isinstance(schema, list):
        return [_generation_schema(item, cap) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: (
            {name: _generation_schema(sub, cap) for name, sub in value.items()}
            if key in ("properties", "definitions")
            else _generation_schema(value, cap)
        )
        for key, value in schema.items()
        if key != "$id"
    }
    if cap is not None and out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", cap), max(cap, out.get("minItems", 0)))
    return out


def test_every_ref_in_the_schemas_is_local() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for version in VERSIONS:
        for schema in schemas(version).values():
            for ref in refs(schema):
                assert ref.startswith("#/definitions/"), ref


@functools.cache
def generated_documents(case: Case) -> st.SearchStrategy[Any]:
    cap = CI_MAX_ITEMS if settings.get_current_profile_name() == "ci" else None
    return from_schema(_generation_schema(schemas(case.version)[case.schema_name], cap))


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _instant_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.upper())
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: numbers by value, booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(json_equal, a, b))
    return type(a) is type(b) and a == b


def assert_equivalent(
    before: Any, after: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$"
) -> None:
    """``after`` says what ``before`` says: numbers equal in value, date-times the same
    instant to the millisecond, enums by value; an untyped property (2.x
    DataTransfer.data) that is null counts as absent (docs/errors.md)."""
    schema = _resolve(schema, root)
    if schema.get("format") == "date-time":
        assert isinstance(after, str), path
        assert _instant_ms(before) == _instant_ms(after), (path, before, after)
        return
    if isinstance(before, dict) and schema.get("type") == "object":
        properties = schema.get("properties", {})
        present = {
            key
            for key, value in before.items()
            if not (
                value is None
                and key in properties
                and "type" not in _resolve(properties[key], root)
            )
        }
        assert isinstance(after, dict) and set(after) == present, (
            path,
            sorted(present),
            sorted(after),
        )
        for key in present:
            sub = properties.get(key, schema.get("additionalProperties", {}))
            assert_equivalent(
                before[key], after[key], sub if isinstance(sub, dict) else {}, root, f"{path}.{key}"
            )
        return
    if isinstance(before, list) and schema.get("type") == "array":
        assert isinstance(after, list) and len(after) == len(before), path
        for index, (x, y) in enumerate(zip(before, after, strict=True)):
            assert_equivalent(x, y, schema.get("items", {}), root, f"{path}[{index}]")
        return
    assert json_equal(before, after), (path, before, after)


def _datetimes_out(document: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    """Every date-time string in an encoded document."""
    schema = _resolve(schema, root)
    if schema.get("format") == "date-time":
        return [document]
    if isinstance(document, dict):
        properties = schema.get("properties", {})
        return [
            t
            for k, v in document.items()
            if k in properties
            for t in _datetimes_out(v, properties[k], root)
        ]
    if isinstance(document, list):
        return [t for item in document for t in _datetimes_out(item, schema.get("items", {}), root)]
    return []


@pytest.mark.parametrize("case", CASES, ids=str)
@examples(2)
@given(data=st.data())
def test_b_schema_documents_decode_and_encode_to_the_same(case: Case, data: st.DataObject) -> None:
    root = schemas(case.version)[case.schema_name]
    document = data.draw(generated_documents(case))
    assert case.validator.is_valid(document)  # our checkers agree with the generator
    obj = structure_fn(case.cls)(document)
    again = json.loads(json.dumps(unstructure_fn(case.cls)(obj)))
    assert_equivalent(document, again, root, root)
    errors = [f"{e.json_path}: {e.message}" for e in case.validator.iter_errors(again)]
    assert not errors
    for text in _datetimes_out(again, root, root):
        # UTC with Z, at most milliseconds; only an instant without a UTC form in years
        # 1-9999 keeps its offset.
        if not _DATETIME_OUT.fullmatch(text):
            assert _OFFSET_OUT.fullmatch(text), text
            with pytest.raises(OverflowError):
                datetime.fromisoformat(text).astimezone(UTC)
    frame = decode_frame(
        case.frame(document), case.version, response_to=case.action if case.response else None
    )
    assert frame.payload == obj


# --- (c) broken payloads -----------------------------------------------------------------

MUTATION_CASES = [case for case in CASES if mutation_kinds(case.cls)]


def test_every_class_can_be_broken_somehow() -> None:
    # Every payload is a closed object: at the least, an extra property breaks it.
    assert MUTATION_CASES == CASES


@pytest.mark.parametrize("case", MUTATION_CASES, ids=str)
@examples(2)
@given(data=st.data())
def test_c_broken_payloads_are_refused_with_code_and_path(case: Case, data: st.DataObject) -> None:
    expected = EXPECTED_CODES[_family(case.version)]
    for kind in mutation_kinds(case.cls):
        mutation = data.draw(invalid_payloads(case.cls, kind), label=kind)
        assert mutation.kind == kind
        assert mutation.error_code == expected[kind]
        # The official schema refuses it, at that place.
        errors = list(case.validator.iter_errors(mutation.document))
        assert errors, (kind, mutation)
        places = {e.json_path for e in errors}
        if kind in ("missing_required", "extra_property"):
            assert any(mutation.path.startswith(place + ".") for place in places), (
                kind,
                mutation.path,
                places,
            )
        else:
            assert mutation.path in places, (kind, mutation.path, places)
        # And so do we, with the version's code and the same path.
        with pytest.raises(FrameError) as refused:
            decode_frame(
                case.frame(mutation.document),
                case.version,
                response_to=case.action if case.response else None,
            )
        assert refused.value.error_code == expected[kind], (kind, mutation, refused.value)
        assert refused.value.details["path"] == mutation.path, (kind, mutation, refused.value)


def test_payload_kinds_cover_the_issue() -> None:
    assert set(PAYLOAD_KINDS) == set(EXPECTED_CODES["1.6"]) == set(EXPECTED_CODES["2.x"])
