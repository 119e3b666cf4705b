"""Build valid message objects with the least effort: every required field gets a simple
value, optional ones stay None. Handy for default answers in tests and simulators."""

from __future__ import annotations

import enum
import types
import typing
from datetime import UTC, datetime
from typing import Any

import attrs

from ..messages._model import LIMITS, Limits, is_message_class

_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
#: Enum values preferred when an enum field has to be filled.
_PREFERRED = ("Accepted", "Available", "Idle")


def minimal(cls: type, **overrides: Any) -> Any:
    """An instance of message class ``cls`` with every required field filled.

    Enums take "Accepted" (or another friendly member) where they have one, strings "x"
    cut to their limit, numbers their minimum or 0, datetimes 2025-01-01T00:00:00Z,
    lists one item; ``overrides`` win.
    """
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name in overrides or field.default is not attrs.NOTHING:
            continue
        values[field.name] = _value(field.type, field.metadata.get(LIMITS, Limits()))
    values.update(overrides)
    return cls(**values)


def _value(tp: Any, limits: Limits) -> Any:
    if isinstance(tp, types.UnionType):
        tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return [_value(item, limits)] * max(1, limits.min_items or 1)
    if is_message_class(tp):
        return minimal(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for preferred in _PREFERRED:
            if preferred in tp._value2member_map_:
                return tp(preferred)
        return next(iter(tp))
    if tp is str:
        return "https://example.com/x" if limits.uri else "x"
    if tp is bool:
        return False
    if tp in (int, float):
        return tp(limits.minimum) if limits.minimum is not None and limits.minimum > 0 else tp(0)
    if tp is datetime:
        return _EPOCH
    return {}
