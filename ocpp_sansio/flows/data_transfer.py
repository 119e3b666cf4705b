"""DataTransfer routing, on either side (1.6 §4.3, §5.6; 2.x P01, P02).

Handlers are registered per vendorId, and optionally per messageId. A request for a vendor
nobody registered is answered UnknownVendorId without data; a known vendor with a messageId
no handler takes is answered UnknownMessageId (P01.FR.05/06, P02.FR.06/07).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..errors import LocalProtocolError
from ..events import Event, RequestReceived
from ._store import messages_for


@attrs.frozen
class DataTransferReply:
    """A handler's answer: Accepted or Rejected, with optional data (a string in 1.6, any
    JSON value in 2.x)."""

    status: str = "Accepted"
    data: Any = None


#: ``handler(request, now)``: the DataTransfer request, the time; returns the reply.
DataTransferHandler = Callable[[Any, float], DataTransferReply]


class DataTransferRouter:
    """Answers the peer's DataTransfer requests by vendorId and messageId.

    Vendor ids compare case-sensitively (the spec gives no case rule; reversed DNS names are
    conventionally lower case); a handler registered with ``message_id=None`` takes every
    message of its vendor that no more specific handler takes.
    """

    def __init__(self, core: Any) -> None:
        self.core = core
        self._m = messages_for(core.version)
        self._routes: dict[str, dict[str | None, DataTransferHandler]] = {}

    def register(
        self, vendor_id: str, handler: DataTransferHandler, *, message_id: str | None = None
    ) -> None:
        routes = self._routes.setdefault(vendor_id, {})
        if message_id in routes:
            raise LocalProtocolError(
                f"a handler for {vendor_id!r} / {message_id!r} is already registered"
            )
        routes[message_id] = handler

    def unregister(self, vendor_id: str, *, message_id: str | None = None) -> None:
        routes = self._routes.get(vendor_id, {})
        routes.pop(message_id, None)
        if not routes:
            self._routes.pop(vendor_id, None)

    def route(self, request: Any, now: float) -> DataTransferReply:
        """The reply to ``request``: from its handler, or UnknownVendorId /
        UnknownMessageId."""
        routes = self._routes.get(request.vendor_id)
        if routes is None:
            return DataTransferReply("UnknownVendorId")  # P01.FR.05, no data (1.6 §4.3)
        handler = routes.get(request.message_id) or routes.get(None)
        if handler is None:
            return DataTransferReply("UnknownMessageId")  # P01.FR.06
        return handler(request, now)

    def handle_event(self, event: Event, now: float) -> bool:
        """Answer a DataTransfer request; True when ``event`` was one. A handler's
        exception propagates, with the request left unanswered."""
        if not (isinstance(event, RequestReceived) and event.action == "DataTransfer"):
            return False
        reply = self.route(event.request, now)
        status_type = (
            self._m.DataTransferStatus
            if self.core.version == "1.6"
            else self._m.DataTransferStatusEnum
        )
        data = None if reply.status in ("UnknownVendorId", "UnknownMessageId") else reply.data
        try:
            status = status_type(reply.status)
        except ValueError:
            raise LocalProtocolError(f"{reply.status!r} is not a DataTransfer status") from None
        self.core.send_response(
            event.message_id, self._m.DataTransferResponse(status=status, data=data), now
        )
        return True

    def send(
        self, vendor_id: str, now: float, *, message_id: str | None = None, data: Any = None
    ) -> str:
        """Send our own DataTransfer; the answer arrives as the core's ResponseReceived."""
        request = self._m.DataTransferRequest(vendor_id=vendor_id, message_id=message_id, data=data)
        return str(self.core.send_request(request, now))
