"""What the transaction, metering, configuration, authorization, reservation and data
transfer flows share beyond ``_base``: the message module of a version and the settings
they read from the configuration (1.6 keys or the 2.x device model)."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any, Protocol

from ..errors import LocalProtocolError
from ..events import RegistrationStatus
from ..messages import v16, v21, v201

_MODULES = {"1.6": v16, "2.0.1": v201, "2.1": v21}


def messages_for(version: str) -> ModuleType:
    """The generated message module of ``version``."""
    try:
        return _MODULES[version]
    except KeyError:
        raise LocalProtocolError(f"unknown OCPP version {version!r}") from None


class Settings(Protocol):
    """Where flows read the configuration they obey.

    Names are 1.6 configuration keys (``StopTransactionOnInvalidId``) or 2.x
    ``Component.Variable`` (``TxCtrlr.StopTxOnInvalidId``), with ``[Instance]`` appended
    when the variable has one; the value is the Actual attribute as text, None when absent.
    ``Configuration16`` and ``DeviceModel`` implement it; so can a dict's ``get``.
    """

    def setting(self, name: str) -> str | None: ...


class NoSettings:
    """Every setting absent: flows use their documented defaults."""

    def setting(self, name: str) -> str | None:
        return None


def read_bool(settings: Settings, name: str, default: bool) -> bool:
    value = settings.setting(name)
    if value is None:
        return default
    return value.strip().lower() == "true"


def read_int(settings: Settings, name: str, default: int) -> int:
    value = settings.setting(name)
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError:
        return default


def read_list(settings: Settings, name: str, default: Iterable[str] = ()) -> tuple[str, ...]:
    """A comma-separated list (1.6 CSL, 2.x MemberList/SequenceList)."""
    value = settings.setting(name)
    if value is None:
        return tuple(default)
    return tuple(item.strip() for item in value.split(",") if item.strip())


def is_online(core: Any) -> bool:
    """A station core that can deliver requests now: connected and accepted."""
    return bool(core.connected) and core.registration is RegistrationStatus.ACCEPTED
