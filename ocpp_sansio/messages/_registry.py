"""The per-version table of actions: name, request and response classes, and sender."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs


class Role(enum.Enum):
    """Which side of the connection sends a request."""

    STATION = "station"
    CSMS = "csms"
    EITHER = "either"

    def may_send(self, role: Role) -> bool:
        """Whether a party playing ``role`` may send a request of this sender kind."""
        return self is Role.EITHER or self is role


@attrs.frozen
class ActionSpec:
    name: str
    request: type
    #: None for a 2.1 SEND message, which has no response.
    response: type | None
    sender: Role


class Registry(Mapping[str, ActionSpec]):
    """Actions of one OCPP version, looked up by name or by request/response class."""

    def __init__(self, version: str, specs: Iterable[ActionSpec]) -> None:
        self.version = version
        self._by_name = {spec.name: spec for spec in specs}
        self._by_class: dict[type, ActionSpec] = {}
        for spec in self._by_name.values():
            self._by_class[spec.request] = spec
            if spec.response is not None:
                self._by_class[spec.response] = spec

    def __getitem__(self, name: str) -> ActionSpec:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def for_class(self, cls: type) -> ActionSpec:
        """The action whose request or response class is ``cls``."""
        return self._by_class[cls]

    def for_payload(self, payload: Any) -> ActionSpec:
        return self._by_class[type(payload)]
