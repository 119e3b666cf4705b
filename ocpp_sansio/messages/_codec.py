"""Per-class structure (decode + validate) and unstructure (validate + encode) functions.

Like cattrs, we generate specialised Python source for each message class on first use and
compile it. Each structure function validates and builds in one pass, exactly as strictly
as the official JSON schema; each unstructure function checks what the user built, omits
None fields and renders datetimes as UTC with ``Z``. Violations raise ``SchemaViolation``
with the JSON path of the offending value; the path is only assembled on the error path.
"""

from __future__ import annotations

import enum
import ipaddress
import json.encoder
import linecache
import math
import re
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from ..errors import SchemaViolation
from ._model import LIMITS, Limits, is_message_class

_MISSING = object()
_NO_LIMITS = Limits()

StructureFn = Callable[[Any], Any]
UnstructureFn = Callable[[Any], dict[str, Any]]
TextFn = Callable[[Any], str | None]

_structure_fns: dict[type, StructureFn] = {}
_unstructure_fns: dict[type, UnstructureFn] = {}


def structure_fn(cls: type) -> StructureFn:
    """The validating decode function of message class ``cls``: dict in, instance out."""
    fn = _structure_fns.get(cls)
    if fn is None:
        fn = _structure_fns[cls] = _Generator(cls, decode=True).build()
    return fn


def unstructure_fn(cls: type) -> UnstructureFn:
    """The validating encode function of message class ``cls``: instance in, dict out."""
    fn = _unstructure_fns.get(cls)
    if fn is None:
        fn = _unstructure_fns[cls] = _Generator(cls, decode=False).build()
    return fn


_text_fns: dict[type, TextFn | None] = {}


def text_fn(cls: type) -> TextFn | None:
    """A shortcut for encoding message class ``cls`` straight to JSON text, or None when
    the class has a required field that is not a plain value (a nested object, a list).

    The function returns the compact JSON text of an instance, exactly as encoding the
    dict of ``unstructure_fn(cls)`` would, or None whenever the instance is not one it is
    sure of (a value of another class, out of its limits, an optional nested object that
    is set): the caller then takes the general path, which also reports any error.
    """
    try:
        return _text_fns[cls]
    except KeyError:
        pass
    fn = _text_fns[cls] = _TextWriter(cls).build()
    return fn


def unstructure(obj: Any) -> dict[str, Any]:
    return unstructure_fn(type(obj))(obj)


# --- helpers called by the generated code (error paths are kept out of it) -------------

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _wrong_type(value: Any, expected: str, segment: str = "") -> SchemaViolation:
    return SchemaViolation(
        SchemaViolation.TYPE, f"expected {expected}, got {_json_type(value)}", segment
    )


def _missing(segment: str) -> SchemaViolation:
    return SchemaViolation(SchemaViolation.OCCURRENCE, "required property missing", segment)


def _unknown_properties(obj: dict[str, Any], known: frozenset[str]) -> SchemaViolation:
    extra = sorted(str(key) for key in obj if key not in known)
    return SchemaViolation(SchemaViolation.UNKNOWN_PROPERTY, "property not allowed", "." + extra[0])


def _too_long(value: str, limit: int, segment: str) -> SchemaViolation:
    return SchemaViolation(
        SchemaViolation.PROPERTY, f"{len(value)} characters, at most {limit} allowed", segment
    )


def _out_of_range(value: Any, limits: Limits, segment: str) -> SchemaViolation:
    return SchemaViolation(
        SchemaViolation.PROPERTY,
        f"{value!r} outside [{limits.minimum}, {limits.maximum}]"
        + (f" or not a multiple of {limits.multiple_of}" if limits.multiple_of else ""),
        segment,
    )


def _not_in_enum(value: Any, enum_cls: type[enum.Enum], segment: str) -> SchemaViolation:
    if not isinstance(value, str):
        return _wrong_type(value, "string", segment)
    return SchemaViolation(
        SchemaViolation.PROPERTY, f"{value!r} is not a {enum_cls.__name__}", segment
    )


def _item_count(value: list[Any], limits: Limits, segment: str) -> SchemaViolation:
    return SchemaViolation(
        SchemaViolation.OCCURRENCE,
        f"{len(value)} items, allowed {limits.min_items or 0}..{limits.max_items or 'any'}",
        segment,
    )


def _in_list(error: SchemaViolation, items: Any, item_fn: Any, segment: str) -> SchemaViolation:
    """Locate which item of ``items`` failed, for the error path."""
    for index, item in enumerate(items):
        try:
            item_fn(item)
        except SchemaViolation as found:
            return found.at(f"[{index}]").at(segment)
    return error.at(segment)


def _integral(value: Any, segment: str) -> int:
    """Draft-6 schemas count a float with no fractional part as an integer."""
    if value.__class__ is float and value.is_integer():
        return int(value)
    raise _wrong_type(value, "integer", segment)


def _is_multiple(value: float, step: float) -> bool:
    try:
        quotient = value / step
    except OverflowError:  # an integer beyond float range: refused, as jsonschema does
        return False
    # Binary floats make the quotient inexact (0.3 / 0.1 is 2.9999999999999996): allow
    # 1e-9, and for large quotients the error of a double's ~16 significant digits. (A
    # tolerance of 1e-9 of the quotient would pass any value from 5e8 steps up.)
    return math.isfinite(quotient) and abs(quotient - round(quotient)) <= max(
        1e-9, abs(quotient) * 1e-12
    )


# RFC 3986 "URI": scheme ":" hier-part [ "?" query ] [ "#" fragment ].
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_PATH_ABEMPTY = rf"(?:/{_PCHAR}*)*"
_AUTHORITY = (
    rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?"  # userinfo
    rf"(?:\[(?P<ip>[^\[\]/?#@]*)\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)"  # host
    r"(?::[0-9]*)?"  # port
)
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:"
    rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|/(?:{_PCHAR}+{_PATH_ABEMPTY})?|{_PCHAR}+{_PATH_ABEMPTY}|)"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?\Z"
)
_IP_FUTURE = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+\Z")
_DATETIME = re.compile(
    r"\d{4}-[01]\d-[0-3]\d[Tt][0-2]\d:[0-5]\d:[0-5]\d(?:\.\d+)?(?:[Zz]|[+-][0-2]\d:[0-5]\d)\Z"
)


_fromisoformat = datetime.fromisoformat
#: The JSON encoder's own string writer (ASCII, escapes), as encode_frame uses it.
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_TWO_DIGITS = [f"{n:02d}" for n in range(100)]
_THREE_DIGITS = [f"{n:03d}" for n in range(1000)]


def _is_uri(value: str) -> bool:
    match = _URI.match(value)
    if match is None:
        return False
    literal = match.group("ip")
    if literal is None:
        return True
    if _IP_FUTURE.match(literal):
        return True
    if "%" in literal:  # RFC 3986 has no zone ids
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def parse_datetime(value: Any, segment: str = "") -> datetime:
    """An RFC 3339 date-time (``Z`` or an offset, with or without fraction) to an aware
    datetime."""
    if value.__class__ is str and (
        value[4:19:3] == "--T::"
        and (value[19:] == "Z" or (len(value) == 24 and value[19] == "." and value[23] == "Z"))
    ):
        # The form everyone sends: YYYY-MM-DDTHH:MM:SS[.fff]Z. With the separators in
        # place, fromisoformat accepts only ASCII digits between them and only values in
        # range, which the pattern of parse_datetime_any accepts too: the same datetime,
        # without the regular expression. Anything it refuses takes the general path.
        try:
            return _fromisoformat(value)
        except ValueError:
            pass
    return parse_datetime_any(value, segment)


def parse_datetime_any(value: Any, segment: str = "") -> datetime:
    """parse_datetime without its shortcut: the reference for what the shortcut gives."""
    if value.__class__ is not str:
        raise _wrong_type(value, "date-time string", segment)
    if _DATETIME.match(value) is None:
        raise SchemaViolation(
            SchemaViolation.TYPE, f"{value!r} is not an RFC 3339 date-time", segment
        )
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise SchemaViolation(
            SchemaViolation.TYPE, f"{value!r} is not a valid date-time", segment
        ) from None


def format_datetime(value: Any, segment: str = "") -> str:
    """An aware datetime as RFC 3339 in UTC with ``Z``, to the millisecond at most (2.x
    allows no more than three fractional digits)."""
    if value.__class__ is datetime and value.tzinfo is UTC and value.year >= 1000:
        # The common case, written from the fields: isoformat() costs three times as much.
        text = (
            f"{value.year}-{_TWO_DIGITS[value.month]}-{_TWO_DIGITS[value.day]}"
            f"T{_TWO_DIGITS[value.hour]}:{_TWO_DIGITS[value.minute]}:"
            f"{_TWO_DIGITS[value.second]}"
        )
        if value.microsecond >= 1000:
            return f"{text}.{_THREE_DIGITS[value.microsecond // 1000]}Z"
        return text + "Z"
    return format_datetime_any(value, segment)


def format_datetime_any(value: Any, segment: str = "") -> str:
    """format_datetime without its shortcut: the reference for what the shortcut gives."""
    if not isinstance(value, datetime):
        raise _wrong_type(value, "datetime", segment)
    moment: datetime = value
    offset = moment.utcoffset()
    if offset is None:
        raise SchemaViolation(SchemaViolation.TYPE, "naive datetime (no timezone)", segment)
    if offset:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # no UTC form within years 1-9999: keep the offset
            spec = "milliseconds" if moment.microsecond >= 1000 else "seconds"
            return moment.isoformat(timespec=spec)
    spec = "milliseconds" if moment.microsecond >= 1000 else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _enum_out(value: Any, members: dict[str, Any], enum_cls: type, segment: str) -> Any:
    """Accept a member or its plain string value on the way out."""
    member = members.get(value) if isinstance(value, str) else None
    if member is None:
        raise _not_in_enum(value, enum_cls, segment)
    return member


_HELPERS = {
    "_MISSING": _MISSING,
    "_wrong_type": _wrong_type,
    "_missing": _missing,
    "_unknown_properties": _unknown_properties,
    "_too_long": _too_long,
    "_out_of_range": _out_of_range,
    "_not_in_enum": _not_in_enum,
    "_item_count": _item_count,
    "_in_list": _in_list,
    "_integral": _integral,
    "_is_multiple": _is_multiple,
    "_is_uri": _is_uri,
    "_parse_datetime": parse_datetime,
    "_fromisoformat": _fromisoformat,
    "_format_datetime": format_datetime,
    "_enum_out": _enum_out,
    "_SchemaViolation": SchemaViolation,
    "_new": object.__new__,
}

# --- the generator ----------------------------------------------------------------------


def _unwrap_optional(tp: Any) -> Any:
    if isinstance(tp, types.UnionType):
        args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return args[0]
    return tp


def _out_of_range_conditions(var: str, limits: Limits) -> list[str]:
    """Generated conditions, each true when ``var`` breaks one of ``limits``."""
    conditions = []
    if limits.minimum is not None:
        conditions.append(f"{var} < {limits.minimum!r}")
    if limits.maximum is not None:
        conditions.append(f"{var} > {limits.maximum!r}")
    if limits.multiple_of is not None:
        conditions.append(f"not _is_multiple({var}, {limits.multiple_of!r})")
    return conditions


class _Generator:
    """Writes the source of one structure or unstructure function."""

    def __init__(self, cls: type, *, decode: bool) -> None:
        self.cls = cls
        self.decode = decode
        self.namespace: dict[str, Any] = dict(_HELPERS)
        self.lines: list[str] = []
        self.counter = 0
        self.draft = getattr(cls, "__ocpp_draft__", 6)

    def name_for(self, obj: Any, hint: str) -> str:
        self.counter += 1
        name = f"_{hint}_{self.counter}"
        self.namespace[name] = obj
        return name

    def build(self) -> Any:
        kind = "structure" if self.decode else "unstructure"
        fn_name = f"{kind}_{self.cls.__name__}"
        if self.decode:
            self.write_structure()
        else:
            self.write_unstructure()
        source = f"def {fn_name}(d):\n" + "\n".join(self.lines) + "\n"
        filename = f"<ocpp_sansio {kind} {self.cls.__module__}.{self.cls.__qualname__}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.namespace)
        fn: Any = self.namespace[fn_name]
        return fn

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    # structure ----------------------------------------------------------------------

    def write_structure(self) -> None:
        cls = self.cls
        fields = attrs.fields(cls)
        is_open = getattr(cls, "__ocpp_open__", False)
        wire_names = {f.name: _wire_name(f) for f in fields if f.name != "extra" or not is_open}
        known = self.name_for(frozenset(wire_names.values()), "known")
        self.emit(1, "if d.__class__ is not dict:")
        self.emit(2, 'raise _wrong_type(d, "object")')
        if not is_open:
            self.emit(1, f"if not {known}.issuperset(d):")
            self.emit(2, f"raise _unknown_properties(d, {known})")
        args = []
        for f in fields:
            if is_open and f.name == "extra":
                self.emit(1, f"extra = {{k: v for k, v in d.items() if k not in {known}}}")
                args.append("extra=extra")
                continue
            wire = wire_names[f.name]
            var = f"f_{f.name}"
            limits = f.metadata.get(LIMITS, _NO_LIMITS)
            required = f.default is attrs.NOTHING
            # "in" then d[...] beats d.get(): no method calls, present or absent.
            if required:
                self.emit(1, f"if {wire!r} not in d:")
                self.emit(2, f"raise _missing({'.' + wire!r})")
                self.emit(1, f"{var} = d[{wire!r}]")
                self.check_in(1, var, _unwrap_optional(f.type), limits, "." + wire)
            else:
                self.emit(1, f"if {wire!r} in d:")
                self.emit(2, f"{var} = d[{wire!r}]")
                self.check_in(2, var, _unwrap_optional(f.type), limits, "." + wire)
                self.emit(1, "else:")
                self.emit(2, f"{var} = None")
            args.append(f"{f.name}={var}")
        cls_name = self.name_for(cls, "cls")
        setters = slot_setters(cls)
        if setters is None:
            self.emit(1, f"return {cls_name}({', '.join(args)})")
            return
        # attrs' __init__ costs about twice what setting the slots does, and for these
        # classes (no validators, converters or hooks) it does nothing more.
        self.emit(1, f"o = _new({cls_name})")
        for arg, setter in zip(args, setters, strict=True):
            value = arg.split("=", 1)[1]
            self.emit(1, f"{self.name_for(setter, 'set')}(o, {value})")
        self.emit(1, "return o")

    def check_in(self, ind: int, var: str, tp: Any, limits: Limits, seg: str) -> None:
        """Emit code validating ``var`` (raw JSON) against ``tp`` and converting it."""
        origin = typing.get_origin(tp)
        if origin is list:
            (item_tp,) = typing.get_args(tp)
            self.emit(ind, f"if {var}.__class__ is not list:")
            self.emit(ind + 1, f'raise _wrong_type({var}, "array", {seg!r})')
            self.item_count_check(ind, var, limits, seg)
            item_fn = self.item_function(item_tp, limits)
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{var} = [{item_fn}(x) for x in {var}]")
            self.emit(ind, "except _SchemaViolation as e:")
            self.emit(ind + 1, f"raise _in_list(e, {var}, {item_fn}, {seg!r}) from None")
            return
        if is_message_class(tp):
            fn = self.name_for(structure_fn(tp), "structure")
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{var} = {fn}({var})")
            self.emit(ind, "except _SchemaViolation as e:")
            self.emit(ind + 1, f"raise e.at({seg!r}) from None")
            return
        self.scalar_in(ind, var, tp, limits, seg)

    def scalar_in(self, ind: int, var: str, tp: Any, limits: Limits, seg: str) -> None:
        emit = self.emit
        if tp is str:
            emit(ind, f"if {var}.__class__ is not str:")
            emit(ind + 1, f'raise _wrong_type({var}, "string", {seg!r})')
            if limits.max_length is not None:
                emit(ind, f"if len({var}) > {limits.max_length}:")
                emit(ind + 1, f"raise _too_long({var}, {limits.max_length}, {seg!r})")
            if limits.uri:
                emit(ind, f"if not _is_uri({var}):")
                emit(
                    ind + 1,
                    f'raise _SchemaViolation("property", "not a URI", {seg!r})',
                )
        elif tp is int:
            emit(ind, f"if {var}.__class__ is not int:")
            if self.draft >= 6:
                emit(ind + 1, f"{var} = _integral({var}, {seg!r})")
            else:
                emit(ind + 1, f'raise _wrong_type({var}, "integer", {seg!r})')
            self.range_check(ind, var, limits, seg)
        elif tp is float:
            emit(ind, f"if {var}.__class__ is not float and {var}.__class__ is not int:")
            emit(ind + 1, f'raise _wrong_type({var}, "number", {seg!r})')
            self.range_check(ind, var, limits, seg)
        elif tp is bool:
            emit(ind, f"if {var}.__class__ is not bool:")
            emit(ind + 1, f'raise _wrong_type({var}, "boolean", {seg!r})')
        elif tp is datetime:
            # parse_datetime's quick case, inlined: a call costs as much as the parse.
            quick = f'{var}[4:19:3] == "--T::" and {var}[19:] == "Z"'
            emit(ind, f"if {var}.__class__ is str and {quick}:")
            emit(ind + 1, "try:")
            emit(ind + 2, f"{var} = _fromisoformat({var})")
            emit(ind + 1, "except ValueError:")
            emit(ind + 2, f"{var} = _parse_datetime({var}, {seg!r})")
            emit(ind, "else:")
            emit(ind + 1, f"{var} = _parse_datetime({var}, {seg!r})")
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            members = self.name_for(dict(tp._value2member_map_), "members")
            enum_name = self.name_for(tp, "enum")
            emit(ind, "try:")  # free in 3.11 unless it raises
            emit(ind + 1, f"{var} = {members}[{var}]")
            emit(ind, "except (KeyError, TypeError):")  # TypeError: unhashable JSON
            emit(ind + 1, f"raise _not_in_enum({var}, {enum_name}, {seg!r}) from None")
        elif tp is Any:
            emit(ind, "pass")  # any JSON value; a block must not be left empty
        else:  # pragma: no cover - the generator only produces the types above
            raise TypeError(f"cannot generate a check for {tp!r}")

    def range_check(self, ind: int, var: str, limits: Limits, seg: str) -> None:
        conditions = _out_of_range_conditions(var, limits)
        if conditions:
            lim = self.name_for(limits, "limits")
            self.emit(ind, f"if {' or '.join(conditions)}:")
            self.emit(ind + 1, f"raise _out_of_range({var}, {lim}, {seg!r})")

    def item_count_check(self, ind: int, var: str, limits: Limits, seg: str) -> None:
        conditions = []
        if limits.min_items is not None:
            conditions.append(f"len({var}) < {limits.min_items}")
        if limits.max_items is not None:
            conditions.append(f"len({var}) > {limits.max_items}")
        if conditions:
            lim = self.name_for(limits, "limits")
            self.emit(ind, f"if {' or '.join(conditions)}:")
            self.emit(ind + 1, f"raise _item_count({var}, {lim}, {seg!r})")

    def item_function(self, item_tp: Any, limits: Limits) -> str:
        """A one-argument function converting a list item, named in the namespace."""
        if self.decode and is_message_class(item_tp):
            return self.name_for(structure_fn(item_tp), "structure")
        if not self.decode and is_message_class(item_tp):
            return self.name_for(_checked_unstructure(item_tp), "unstructure")
        sub = _Generator(self.cls, decode=self.decode)
        sub.draft = self.draft
        sub.namespace = self.namespace
        sub.counter = self.counter + 1000
        if self.decode:
            sub.scalar_in(1, "d", item_tp, limits, "")
        else:
            sub.scalar_out(1, "d", item_tp, limits, "")
        sub.emit(1, "return d")
        self.counter = sub.counter
        hint = "item_in" if self.decode else "item_out"
        name = self.name_for(None, hint)
        source = f"def {name}(d):\n" + "\n".join(sub.lines) + "\n"
        exec(
            compile(source, f"<ocpp_sansio {hint} {self.cls.__qualname__}>", "exec"), self.namespace
        )
        return name

    # unstructure --------------------------------------------------------------------

    def write_unstructure(self) -> None:
        cls = self.cls
        is_open = getattr(cls, "__ocpp_open__", False)
        self.emit(1, f"if d.__class__ is not {self.name_for(cls, 'cls')}:")
        self.emit(2, f"raise _wrong_type(d, {cls.__name__!r})")
        self.emit(1, "o = d")
        self.emit(1, "d = {**o.extra}" if is_open else "d = {}")
        for f in attrs.fields(cls):
            if is_open and f.name == "extra":
                continue
            wire = _wire_name(f)
            limits = f.metadata.get(LIMITS, _NO_LIMITS)
            var = f"f_{f.name}"
            self.emit(1, f"{var} = o.{f.name}")
            if f.default is attrs.NOTHING:
                self.emit(1, f"if {var} is None:")
                self.emit(2, f"raise _missing({'.' + wire!r})")
                self.check_out(1, var, _unwrap_optional(f.type), limits, "." + wire)
                self.emit(1, f"d[{wire!r}] = {var}")
            else:
                self.emit(1, f"if {var} is not None:")
                self.check_out(2, var, _unwrap_optional(f.type), limits, "." + wire)
                self.emit(2, f"d[{wire!r}] = {var}")
        self.emit(1, "return d")

    def check_out(self, ind: int, var: str, tp: Any, limits: Limits, seg: str) -> None:
        origin = typing.get_origin(tp)
        if origin is list:
            (item_tp,) = typing.get_args(tp)
            self.emit(ind, f"if {var}.__class__ is not list and {var}.__class__ is not tuple:")
            self.emit(ind + 1, f'raise _wrong_type({var}, "list", {seg!r})')
            self.item_count_check(ind, var, limits, seg)
            item_fn = self.item_function(item_tp, limits)
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{var} = [{item_fn}(x) for x in {var}]")
            self.emit(ind, "except _SchemaViolation as e:")
            self.emit(ind + 1, f"raise _in_list(e, {var}, {item_fn}, {seg!r}) from None")
            return
        if is_message_class(tp):
            fn = self.name_for(_checked_unstructure(tp), "unstructure")
            self.emit(ind, "try:")
            self.emit(ind + 1, f"{var} = {fn}({var})")
            self.emit(ind, "except _SchemaViolation as e:")
            self.emit(ind + 1, f"raise e.at({seg!r}) from None")
            return
        self.scalar_out(ind, var, tp, limits, seg)

    def scalar_out(self, ind: int, var: str, tp: Any, limits: Limits, seg: str) -> None:
        emit = self.emit
        if tp is str:
            emit(ind, f"if {var}.__class__ is not str and not isinstance({var}, str):")
            emit(ind + 1, f'raise _wrong_type({var}, "str", {seg!r})')
            if limits.max_length is not None:
                emit(ind, f"if len({var}) > {limits.max_length}:")
                emit(ind + 1, f"raise _too_long({var}, {limits.max_length}, {seg!r})")
            if limits.uri:
                emit(ind, f"if not _is_uri({var}):")
                emit(ind + 1, f'raise _SchemaViolation("property", "not a URI", {seg!r})')
        elif tp is int:
            emit(ind, f"if {var}.__class__ is not int:")
            emit(ind + 1, f'raise _wrong_type({var}, "int", {seg!r})')
            self.range_check(ind, var, limits, seg)
        elif tp is float:
            emit(ind, f"if {var}.__class__ is not float and {var}.__class__ is not int:")
            emit(ind + 1, f'raise _wrong_type({var}, "float", {seg!r})')
            emit(ind, f"if {var} - {var}:  # nan or an infinity")
            emit(ind + 1, f'raise _SchemaViolation("type", "not a finite number", {seg!r})')
            self.range_check(ind, var, limits, seg)
        elif tp is bool:
            emit(ind, f"if {var}.__class__ is not bool:")
            emit(ind + 1, f'raise _wrong_type({var}, "bool", {seg!r})')
        elif tp is datetime:
            emit(ind, f"{var} = _format_datetime({var}, {seg!r})")
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            members = self.name_for(dict(tp._value2member_map_), "members")
            enum_name = self.name_for(tp, "enum")
            emit(ind, f"if {var}.__class__ is not {enum_name}:")
            emit(ind + 1, f"{var} = _enum_out({var}, {members}, {enum_name}, {seg!r})")
        elif tp is Any:
            pass
        else:  # pragma: no cover
            raise TypeError(f"cannot generate a check for {tp!r}")


_SCALARS = (str, int, float, bool, datetime)


def _is_scalar(tp: Any) -> bool:
    return tp in _SCALARS or (
        isinstance(tp, type) and issubclass(tp, enum.Enum) and issubclass(tp, str)
    )


class _TextWriter:
    """Writes the source of one text function (see ``text_fn``)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.namespace: dict[str, Any] = {
            "_quote": _quote,
            "_datetime": datetime,
            "_UTC": UTC,
            "_D2": _TWO_DIGITS,
            "_D3": _THREE_DIGITS,
            "_is_uri": _is_uri,
            "_is_multiple": _is_multiple,
        }
        self.lines: list[str] = []
        self.listed = False

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def build(self) -> TextFn | None:
        cls = self.cls
        if getattr(cls, "__ocpp_open__", False):
            return None
        fields = attrs.fields(cls)
        for f in fields:
            if f.default is attrs.NOTHING and not _is_scalar(_unwrap_optional(f.type)):
                return None
        self.namespace["_cls"] = cls
        self.emit(1, "if o.__class__ is not _cls:")
        self.emit(2, "return None")
        # Without optional plain values the members are known: one concatenation.
        self.listed = any(
            f.default is not attrs.NOTHING and _is_scalar(_unwrap_optional(f.type)) for f in fields
        )
        if self.listed:
            self.emit(1, "p = []")
        members = []
        for f in fields:
            tp = _unwrap_optional(f.type)
            var = f"f_{f.name}"
            self.emit(1, f"{var} = o.{f.name}")
            if f.default is attrs.NOTHING:
                members.append(self.value(1, var, tp, f))
            elif _is_scalar(tp):
                self.emit(1, f"if {var} is not None:")
                self.value(2, var, tp, f)
            else:
                self.emit(1, f"if {var} is not None:")
                self.emit(2, "return None")
        if self.listed:
            self.emit(1, "return '{' + ','.join(p) + '}'")
        elif members:
            self.emit(1, "return '{' + " + " + ',' + ".join(members) + " + '}'")
        else:
            self.emit(1, "return '{}'")
        fn_name = f"text_{cls.__name__}"
        source = f"def {fn_name}(o):\n" + "\n".join(self.lines) + "\n"
        filename = f"<ocpp_sansio text {cls.__module__}.{cls.__qualname__}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.namespace)
        fn: TextFn = self.namespace[fn_name]
        return fn

    def value(self, ind: int, var: str, tp: Any, f: attrs.Attribute[Any]) -> str:
        """Emit code putting ``"wire":value`` of ``var`` into ``t_<field>`` (and into the
        list ``p`` if the class has one), or returning None; return the variable's name."""
        limits = f.metadata.get(LIMITS, _NO_LIMITS)
        key = _quote(_wire_name(f)) + ":"
        out = f"t_{f.name}"
        emit = self.emit
        if tp is str:
            conditions = [f"{var}.__class__ is not str"]
            if limits.max_length is not None:
                conditions.append(f"len({var}) > {limits.max_length}")
            if limits.uri:
                conditions.append(f"not _is_uri({var})")
            emit(ind, f"if {' or '.join(conditions)}:")
            emit(ind + 1, "return None")
            emit(ind, f"{out} = {key!r} + _quote({var})")
        elif tp is int or tp is float:
            if tp is int:
                emit(ind, f"if {var}.__class__ is not int:")
            else:  # a float field takes an int as it is; NaN and infinities are refused
                emit(ind, f"if {var}.__class__ is not int and ({var}.__class__ is not float")
                emit(ind + 1, f"or {var} - {var}):")
            emit(ind + 1, "return None")
            conditions = _out_of_range_conditions(var, limits)
            if conditions:
                emit(ind, f"if {' or '.join(conditions)}:")
                emit(ind + 1, "return None")
            # repr is what the JSON encoder writes for exact ints and floats
            emit(ind, f"{out} = {key!r} + repr({var})")
        elif tp is bool:
            emit(ind, f"if {var} is True:")
            emit(ind + 1, f"{out} = {key + 'true'!r}")
            emit(ind, f"elif {var} is False:")
            emit(ind + 1, f"{out} = {key + 'false'!r}")
            emit(ind, "else:")
            emit(ind + 1, "return None")
        elif tp is datetime:
            # format_datetime's quick case, inlined (digits and separators: nothing to
            # escape); other zones, naive or odd datetimes take the general path.
            v = var
            emit(ind, f"if {v}.__class__ is not _datetime or {v}.tzinfo is not _UTC or (")
            emit(ind + 1, f"{v}.year < 1000")
            emit(ind, "):")
            emit(ind + 1, "return None")
            emit(ind, f"{out} = (")
            emit(ind + 1, f"{key + chr(34)!r}")
            emit(ind + 1, f"f'{{{v}.year}}-{{_D2[{v}.month]}}-{{_D2[{v}.day]}}'")
            emit(ind + 1, f"f'T{{_D2[{v}.hour]}}:{{_D2[{v}.minute]}}:{{_D2[{v}.second]}}'")
            emit(ind, ")")
            emit(ind, f"if {v}.microsecond >= 1000:")
            emit(ind + 1, f"{out} += f'.{{_D3[{v}.microsecond // 1000]}}Z\"'")
            emit(ind, "else:")
            emit(ind + 1, f"{out} += 'Z\"'")
        else:  # an enum: each member's text, computed once
            texts = {member: key + _quote(member.value) for member in tp}
            self.namespace[f"_texts_{f.name}"] = texts
            self.namespace[f"_enum_{f.name}"] = tp
            emit(ind, f"if {var}.__class__ is not _enum_{f.name}:")
            emit(ind + 1, "return None")
            emit(ind, f"{out} = _texts_{f.name}[{var}]")
        if self.listed:
            emit(ind, f"p.append({out})")
        return out


def slot_setters(cls: type) -> list[Callable[[Any, Any], None]] | None:
    """The slot setters of ``cls``'s fields, in field order, when building an instance by
    setting its slots is equivalent to calling its __init__; else None."""
    if any(hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")):
        return None
    setters = []
    for f in attrs.fields(cls):
        slot = cls.__dict__.get(f.name)
        if f.validator is not None or f.converter is not None or slot is None:
            return None
        if not isinstance(slot, types.MemberDescriptorType):
            return None
        setters.append(slot.__set__)
    return setters


def _checked_unstructure(cls: type) -> UnstructureFn:
    """Unstructure for a nested value (each unstructure function checks the class itself)."""
    return unstructure_fn(cls)


def _wire_name(f: attrs.Attribute[Any]) -> str:
    limits = f.metadata.get(LIMITS)
    if limits is not None and limits.name is not None:
        return str(limits.name)
    head, *rest = f.name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
