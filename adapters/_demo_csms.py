"""The demo central system's answers and its demonstration script, for every adapter.

``DemoCsms.answer`` answers each station request sensibly: BootNotification with the
configured status and interval, Authorize accepts everyone, 1.6 transactions get ids,
notifications are acknowledged, DataTransfer goes through the flow's router (no vendor is
registered, so: UnknownVendorId). ``exercise_steps`` is what the ``demo`` command asks of
each station once it is accepted; the adapters' glue (in ``cli``) runs it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from ocpp_sansio.flows import DataTransferRouter
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows._store import messages_for
from ocpp_sansio.frames import make_converter, registry
from ocpp_sansio.testing.builders import minimal

from ._console import FrameLog
from ._driver import OcppCallError

#: The --boot choices and the registration status each answers with.
BOOT_STATUSES = {"accept": "Accepted", "pending": "Pending", "reject": "Rejected"}
DEMO_ID_TAG = "DEMO-TAG-1"


def _now() -> datetime:
    return datetime.now(UTC)


class DemoCsms:
    """The answers of the demo CSMS, shared by the trio, asyncio and thread glue."""

    def __init__(
        self,
        *,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 300,
        log: FrameLog | None = None,
        wall_clock: Callable[[], datetime] = _now,
    ) -> None:
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self.log = log
        self.wall_clock = wall_clock
        self._transaction_ids = itertools.count(1)
        self._lock = threading.Lock()
        #: The last transaction id per station identity (1.6: ours; 2.x: the station's).
        self.transactions: dict[str, Any] = {}
        self._routers: dict[str, DataTransferRouter] = {}

    def answer(self, identity: str, core: Any, request: Any) -> Any:
        """The response to ``request`` from station ``identity`` (raise OcppCallError to
        answer with a CALLERROR)."""
        version = core.version
        action = registry(version).for_payload(request).name
        self._log(identity, "station", "CALL", version, action, request)
        try:
            response = self._response(identity, core, action, request)
        except OcppCallError as error:
            if self.log is not None:
                self.log.message(
                    identity,
                    "csms",
                    "CALLERROR",
                    action,
                    error.details,
                    error={"code": error.error_code, "description": error.description},
                )
            raise
        self._log(identity, "csms", "CALLRESULT", version, action, response)
        return response

    def _response(self, identity: str, core: Any, action: str, request: Any) -> Any:
        version = core.version
        cls = registry(version)[action].response
        if cls is None:
            raise OcppCallError("NotSupported", f"{action} is never answered")
        m = messages_for(version)
        if action == "BootNotification":
            return build(
                cls,
                status=self.boot_status,
                current_time=self.wall_clock(),
                interval=self.heartbeat_interval,
            )
        if action == "Heartbeat":
            return cls(current_time=self.wall_clock())
        if action == "StartTransaction":
            with self._lock:
                transaction_id = next(self._transaction_ids)
                self.transactions[identity] = transaction_id
            return cls(transaction_id=transaction_id, id_tag_info=_accepted_16(m))
        if action == "StopTransaction":
            return cls(id_tag_info=_accepted_16(m) if request.id_tag is not None else None)
        if action == "TransactionEvent":
            if str(request.event_type) == "Started":
                with self._lock:
                    self.transactions[identity] = request.transaction_info.transaction_id
            if request.id_token is None:
                return cls()
            return cls(id_token_info=build(m.IdTokenInfo, status="Accepted"))
        if action == "DataTransfer":
            reply = self._router(core).route(request, 0.0)
            return build(cls, status=reply.status, data=reply.data)
        if action in ("SignCertificate",):
            return build(cls, status="Rejected")
        if action in ("Get15118EVCertificate", "GetCertificateStatus", "GetCertificateChainStatus"):
            return minimal(cls, status=_member(cls, "Failed"))
        return minimal(cls)

    def _router(self, core: Any) -> DataTransferRouter:
        router = self._routers.get(core.version)
        if router is None:
            router = self._routers[core.version] = DataTransferRouter(core)
        return router

    def _log(
        self, identity: str, sender: str, kind: str, version: str, action: str, message: Any
    ) -> None:
        if self.log is not None:
            payload = make_converter(version).unstructure(message)
            self.log.message(identity, sender, kind, action, payload)

    def logged_call(self, identity: str, version: str, request: Any) -> str:
        """Log a request the CSMS is about to send; returns its action."""
        action = registry(version).for_payload(request).name
        self._log(identity, "csms", "CALL", version, action, request)
        return action

    def logged_outcome(
        self, identity: str, version: str, action: str, response: Any, error: Exception | None
    ) -> None:
        if self.log is None:
            return
        if error is None:
            self._log(identity, "station", "CALLRESULT", version, action, response)
        elif isinstance(error, OcppCallError):
            self.log.message(
                identity,
                "station",
                "CALLERROR",
                action,
                error.details,
                error={"code": error.error_code, "description": error.description},
            )
        else:
            self.log.note(identity, f"{action} failed: {error}")


def _accepted_16(m: Any) -> Any:
    return m.IdTagInfo(status=m.AuthorizationStatus("Accepted"))


def _member(cls: type, value: str) -> Any:
    return attrs.fields(cls).status.type(value)


# --- the demonstration script --------------------------------------------------------------------

Step = Callable[[DemoCsms, str, str], Any]
"""``step(csms, identity, version)``: the request to send, or None to skip this step."""


def _read_heartbeat(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return m.GetConfigurationRequest(key=["HeartbeatInterval", "NumberOfConnectors"])
    return m.GetVariablesRequest(
        get_variable_data=[
            m.GetVariableData(
                component=m.Component(name="OCPPCommCtrlr"),
                variable=m.Variable(name="HeartbeatInterval"),
            )
        ]
    )


def _trigger_status(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return build(
            m.TriggerMessageRequest, requested_message="StatusNotification", connector_id=1
        )
    return build(
        m.TriggerMessageRequest,
        requested_message="StatusNotification",
        evse=m.EVSE(id=1, connector_id=1),
    )


def _remote_start(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return m.RemoteStartTransactionRequest(id_tag=DEMO_ID_TAG, connector_id=1)
    return m.RequestStartTransactionRequest(
        id_token=build(m.IdToken, id_token=DEMO_ID_TAG, type="Central"),
        remote_start_id=1,
        evse_id=1,
    )


def _trigger_meter_values(csms: DemoCsms, identity: str, version: str) -> Any:
    m = messages_for(version)
    if version == "1.6":
        return build(m.TriggerMessageRequest, requested_message="MeterValues", connector_id=1)
    return build(m.TriggerMessageRequest, requested_message="MeterValues", evse=m.EVSE(id=1))


def _remote_stop(csms: DemoCsms, identity: str, version: str) -> Any:
    transaction_id = csms.transactions.get(identity)
    if transaction_id is None:
        return None
    m = messages_for(version)
    if version == "1.6":
        return m.RemoteStopTransactionRequest(transaction_id=transaction_id)
    return m.RequestStopTransactionRequest(transaction_id=transaction_id)


def _unknown_vendor(csms: DemoCsms, identity: str, version: str) -> Any:
    return messages_for(version).DataTransferRequest(
        vendor_id="com.example.unknown", message_id="Ping"
    )


#: What the demo CSMS asks of each accepted station, in order, with a pause between.
EXERCISE: tuple[Step, ...] = (
    _read_heartbeat,
    _trigger_status,
    _remote_start,
    _trigger_meter_values,
    _remote_stop,
    _unknown_vendor,
)
