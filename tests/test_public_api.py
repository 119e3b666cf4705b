"""One import place: every core event, exception, core and configuration from
``ocpp_sansio``; every flow and flow event from ``ocpp_sansio.flows``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ocpp_sansio
import ocpp_sansio.errors
import ocpp_sansio.events
import ocpp_sansio.flows
from ocpp_sansio.events import Event


def _own_classes(module: object) -> set[str]:
    return {
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and obj.__module__ == module.__name__  # type: ignore[attr-defined]
    }


def test_every_core_event_and_exception_is_exported_at_the_top() -> None:
    wanted = _own_classes(ocpp_sansio.events) | _own_classes(ocpp_sansio.errors)
    assert wanted <= set(ocpp_sansio.__all__)
    for name in ("StationCore", "CsmsCore", "StationConfig", "CsmsConfig", "RegistrationStatus"):
        assert name in ocpp_sansio.__all__


def test_every_flow_and_flow_event_is_exported_from_flows() -> None:
    exported = set(ocpp_sansio.flows.__all__)
    for info in pkgutil.iter_modules(ocpp_sansio.flows.__path__):
        module = importlib.import_module(f"ocpp_sansio.flows.{info.name}")
        for name, obj in vars(module).items():
            if not inspect.isclass(obj) or obj.__module__ != module.__name__:
                continue
            if issubclass(obj, Event) or callable(getattr(obj, "handle_event", None)):
                assert name.startswith("_") or name in exported, f"{info.name}.{name}"


def test_one_event_base_for_core_flow_and_adapter_events() -> None:
    from ocpp_sansio.flows import FlowEvent

    assert issubclass(FlowEvent, Event)
    assert issubclass(ocpp_sansio.Connected, Event)


def test_the_package_has_a_version() -> None:
    assert isinstance(ocpp_sansio.__version__, str) and ocpp_sansio.__version__


def test_the_docs_table_pairs_every_event_with_its_exception() -> None:
    """docs/core.md: one stem per fact; every event that has an exception is in the
    table, with it, and both are exported."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "core.md").read_text("utf-8")
    section = doc.split("### One stem per fact", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| [^|]+ \| `(\w+)` \| `(\w+)`", section, re.M)
    pairs = dict(rows)
    assert pairs["CallErrorReceived"] == "OcppCallError"
    for event, error in pairs.items():
        assert event in ocpp_sansio.__all__ and error in ocpp_sansio.__all__
        assert issubclass(getattr(ocpp_sansio, event), Event)
        assert issubclass(getattr(ocpp_sansio, error), Exception)
        if event != "CallErrorReceived":
            assert error == f"{event}Error"
    events = _own_classes(ocpp_sansio.events)
    paired = {name[: -len("Error")] for name in _own_classes(ocpp_sansio.errors)} & events
    assert paired <= set(pairs)
