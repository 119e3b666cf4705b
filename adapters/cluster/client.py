"""CSMS-initiated calls and station events from any process of a cluster."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp_sansio.frames import registry

from .base import ClusterEngine, Deduplicator, StationEvent
from .node import converter

#: What a routed call waits at most unless told otherwise: longer than a core's default
#: call timeout, so the station's own timeout is the one that answers.
DEFAULT_TIMEOUT = 60.0


class ClusterClient:
    """Calls any station of the cluster through ``engine``, wherever it is connected::

        client = ClusterClient(await NatsEngine.connect(url))
        answer = await client.call("CS001", v201.ResetRequest(type="Immediate"), version="2.0.1")

    ``call`` raises ``StationNotConnected`` at once when no node holds the station,
    ``OwnerLost`` when its node goes away before answering (the call is not sent again),
    ``RoutedCallFailed`` for a failure on the node (``kind`` ``call_error`` carries the
    station's CALLERROR), ``ClusterUnavailable`` when the engine cannot be reached.
    """

    def __init__(self, engine: ClusterEngine, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.engine = engine
        self.timeout = timeout

    async def call(
        self, identity: str, request: Any, *, version: str, timeout: float | None = None
    ) -> Any:
        """Send the typed ``request`` (a message of OCPP ``version``) to the station and
        return its typed response."""
        action = registry(version).for_payload(request)
        if action.response is None:
            raise ValueError(f"{action.name} is not a call the CSMS sends and waits for")
        messages = converter(version)
        answer = await self.engine.call(
            identity,
            version,
            action.name,
            messages.unstructure(request),
            timeout if timeout is not None else self.timeout,
        )
        return messages.structure(answer, action.response)

    async def call_json(
        self,
        identity: str,
        action: str,
        payload: dict[str, Any],
        *,
        version: str = "",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send ``action`` with a JSON payload; the answer's JSON payload. ``version`` ""
        sends it in whatever version the station speaks (the owner checks the payload
        against that version's schema)."""
        return await self.engine.call(
            identity, version, action, payload, timeout if timeout is not None else self.timeout
        )

    async def consume(
        self,
        consumer: str,
        handler: Callable[[StationEvent], Awaitable[None]],
        *,
        batch: int = 100,
        wait: float = 1.0,
        once: bool = True,
    ) -> None:
        """Run ``handler(event)`` on the stations' messages for the durable ``consumer``
        until cancelled, acknowledging each once its handler returned (one that raises
        leaves its event unacknowledged: it comes again, and the error goes up). With
        ``once``, a copy delivered again (same de-duplication key) is skipped."""
        seen = Deduplicator() if once else None
        while True:
            for delivery in await self.engine.fetch(consumer, batch, wait):
                if seen is None or seen.first(delivery.event):
                    await handler(delivery.event)
                await delivery.ack()

    async def close(self) -> None:
        await self.engine.close()


async def call_from_json(
    url: str,
    identity: str,
    action: str,
    json_text: str,
    version: str = "",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    prefix: str = "ocpp",
) -> str:
    """One CSMS-initiated call from the command line: the answer as JSON text. Raises
    ValueError for JSON that is not an object, and the ``ClusterClient.call`` errors.
    ``prefix`` names the cluster's buckets and subjects (as its nodes were given it)."""
    try:
        payload = json.loads(json_text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the payload is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError("the payload must be a JSON object")
    engine = await connect_engine(url, prefix=prefix)
    try:
        answer = await ClusterClient(engine, timeout=timeout).call_json(
            identity, action, payload, version=version
        )
    finally:
        await engine.close()
    return json.dumps(answer)


async def connect_engine(url: str, *, node: str = "", **options: Any) -> ClusterEngine:
    """The engine a cluster URL names: ``nats://host:port`` (the only engine so far; see
    docs/cluster.md for Redis)."""
    if url.startswith(("nats://", "tls://")):
        from .nats_engine import NatsEngine

        return await NatsEngine.connect(url, node=node, **options)
    raise ValueError(f"{url!r}: a cluster URL starts with nats:// (no other engine yet)")
