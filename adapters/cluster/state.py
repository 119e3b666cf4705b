"""The per-station state that moves with a station from node to node, as JSON: what its
``CsmsCore`` knows (registration as we answered it, heartbeat interval) and the open
transactions of the CSMS transaction flows it hosts. Everything else a node rebuilds
from the station's next messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp_sansio import CsmsCore, CsmsState, RegistrationStatus
from ocpp_sansio.flows import (
    CsmsTransaction2,
    CsmsTransaction16,
    CsmsTransactionEvents,
    CsmsTransactions16,
)


def snapshot(core: CsmsCore, flows: Sequence[Any]) -> dict[str, Any]:
    """The station's state as JSON-ready data."""
    core_state = core.state()
    transactions: list[dict[str, Any]] = []
    for flow in flows:
        if isinstance(flow, CsmsTransactions16):
            transactions += [
                {
                    "transaction_id": tx.transaction_id,
                    "connector_id": tx.connector_id,
                    "id_tag": tx.id_tag,
                    "meter_start": tx.meter_start,
                    "started": tx.started.isoformat(),
                }
                for tx in flow.open_transactions()
            ]
        elif isinstance(flow, CsmsTransactionEvents):
            transactions += [
                {
                    "transaction_id": tx.transaction_id,
                    "seq_nos": sorted(tx.seq_nos),
                    "started_seq_no": tx.started_seq_no,
                    "offline_events": tx.offline_events,
                }
                for tx in flow.open_transactions()
            ]
    registration = core_state.registration
    return {
        "version": core.version,
        "registration": registration.value if registration is not None else None,
        "heartbeat_interval": core_state.heartbeat_interval,
        "transactions": transactions,
    }


def restore(state: dict[str, Any], core: CsmsCore, flows: Sequence[Any]) -> bool:
    """Put ``state`` into a core (not connected yet) and its flows. False, and nothing
    changed, when the state belongs to another OCPP version than the core's: a station
    back with another version starts afresh, as on a single node."""
    if state.get("version") != core.version:
        return False
    registration = state.get("registration")
    core.restore(
        CsmsState(
            RegistrationStatus(registration) if registration is not None else None,
            state.get("heartbeat_interval"),
        )
    )
    transactions = state.get("transactions") or []
    for flow in flows:
        if isinstance(flow, CsmsTransactions16):
            flow.restore(
                [
                    CsmsTransaction16(
                        transaction_id=int(tx["transaction_id"]),
                        connector_id=int(tx["connector_id"]),
                        id_tag=str(tx["id_tag"]),
                        meter_start=int(tx["meter_start"]),
                        started=datetime.fromisoformat(tx["started"]),
                    )
                    for tx in transactions
                ]
            )
        elif isinstance(flow, CsmsTransactionEvents):
            flow.restore(
                [
                    CsmsTransaction2(
                        transaction_id=str(tx["transaction_id"]),
                        seq_nos=set(tx["seq_nos"]),
                        started_seq_no=tx["started_seq_no"],
                        offline_events=int(tx["offline_events"]),
                    )
                    for tx in transactions
                ]
            )
    return True
