"""The facade's records as JSON values (for its store), and back."""

from __future__ import annotations

from typing import Any

from ocpp_sansio.flows.device_model import ComponentKey, VariableKey


def variable_name(component: ComponentKey, variable: VariableKey, attribute: str) -> str:
    """A device-model attribute as one text key of the ``settings`` record."""
    parts = [
        component.name,
        component.instance or "",
        "" if component.evse_id is None else str(component.evse_id),
        "" if component.connector_id is None else str(component.connector_id),
        variable.name,
        variable.instance or "",
        attribute,
    ]
    return "|".join(parts)


def parse_variable_name(name: str) -> tuple[ComponentKey, VariableKey, str] | None:
    parts = name.split("|")
    if len(parts) != 7:
        return None
    comp, comp_instance, evse, connector, var, var_instance, attribute = parts
    return (
        ComponentKey(
            comp,
            comp_instance or None,
            int(evse) if evse else None,
            int(connector) if connector else None,
        ),
        VariableKey(var, var_instance or None),
        attribute,
    )


def activity_key(transaction: Any) -> Any:
    """How the shared Activity knows a transaction (1.6: local until the CSMS numbers it)."""
    return getattr(transaction, "activity_key", None) or transaction.transaction_id
