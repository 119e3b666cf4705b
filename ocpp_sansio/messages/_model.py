"""Building blocks of the message classes: the class decorator and the field helper.

A message class is a frozen, slotted, keyword-only attrs class. Its fields carry the
schema's limits as metadata so that one code generator (``_codec``) can build a validating
structure function and an encoding function for every class, instead of each class carrying
its own checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, dataclass_transform, overload

import attrs

T = TypeVar("T")
#: The response class of a request class (None for a 2.1 SEND, never answered).
ResponseT = TypeVar("ResponseT", covariant=True)

#: Metadata key under which ``wire()`` stores a field's limits.
LIMITS = "ocpp_limits"

_NO_DEFAULT: Any = attrs.NOTHING


@attrs.frozen(kw_only=True)
class Limits:
    """The JSON-schema facts about one field that the annotation cannot express."""

    name: str | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    multiple_of: float | None = None
    uri: bool = False


def wire(
    default: Any = _NO_DEFAULT,
    *,
    name: str | None = None,
    max_length: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    multiple_of: float | None = None,
    uri: bool = False,
) -> Any:
    """A message field with schema limits; ``name`` is the wire name when camelCase of
    the Python name would not give it back."""
    limits = Limits(
        name=name,
        max_length=max_length,
        minimum=minimum,
        maximum=maximum,
        min_items=min_items,
        max_items=max_items,
        multiple_of=multiple_of,
        uri=uri,
    )
    return attrs.field(default=default, metadata={LIMITS: limits})


class Request(Generic[ResponseT]):
    """Base of every request class, parametrized by its response class, so that
    ``call(request: Request[R]) -> R`` gives type checkers the response type of every
    action (``Request[None]``: a 2.1 SEND, which is never answered). Nothing at run time."""

    __slots__ = ()


def extra_properties() -> Any:
    """The catch-all of an object that allows properties beyond its own (2.x CustomData)."""
    return attrs.field(factory=dict)


C = TypeVar("C", bound=type)


@overload
def message(cls: C) -> C: ...
@overload
def message(*, draft: int = 6, open: bool = False) -> Callable[[C], C]: ...
@dataclass_transform(
    frozen_default=True,
    kw_only_default=True,
    field_specifiers=(attrs.field, wire, extra_properties),
)
def message(cls: Any = None, *, draft: int = 6, open: bool = False) -> Any:
    """Make ``cls`` a message class.

    ``draft`` is the JSON-schema draft the class comes from: draft 4 (most 1.6 schemas)
    does not count ``1.0`` as an integer, draft 6 does. ``open`` marks an object that keeps
    unknown properties in its ``extra`` field instead of refusing them.
    """

    def wrap(klass: Any) -> Any:
        made = attrs.frozen(kw_only=True)(klass)
        made.__ocpp_draft__ = draft
        made.__ocpp_open__ = open
        return made

    return wrap if cls is None else wrap(cls)


def is_message_class(cls: Any) -> bool:
    return isinstance(cls, type) and hasattr(cls, "__ocpp_draft__")
