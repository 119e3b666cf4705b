"""What a CSMS cluster engine does, as one async interface (``ClusterEngine``), and the
values that cross it. See docs/cluster.md for the semantics each engine keeps.

An engine handle belongs to one process. A node (a process running ``serve()``) joins with
a lease and claims the stations that connect to it; any process (a node or an API process)
routes CSMS-initiated calls and reads station events through its own handle.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from ocpp_sansio.errors import OcppError

from .._ws import identity_key

# --- errors --------------------------------------------------------------------------------------


class ClusterError(OcppError):
    """Base of what the cluster layer raises."""


class StationNotConnected(ClusterError):
    """No node holds a live connection of this station now: the call was not sent."""


class OwnerLost(ClusterError):
    """The node that held the station went away before it answered. The call may or may
    not have reached the station; it is never sent again by another node."""


class Fenced(ClusterError):
    """A newer claim took the station: this claim may no longer act for it."""


class LeaseLost(ClusterError):
    """This node's lease expired (it could not renew in time): every claim it held is
    void, and another node may hold its stations now."""


class ClusterUnavailable(ClusterError):
    """The engine could not be reached or did not answer in time."""


class RoutedCallFailed(ClusterError):
    """The owning node ran the call and it failed there. ``kind`` says how: ``call_error``
    (the station answered with a CALLERROR: ``error_code``, ``description``, ``details``),
    ``timeout`` (no answer in time), ``connection_lost`` (the connection closed before the
    answer), ``invalid_answer`` (the answer broke its schema), ``refused`` (the protocol
    forbids sending it now), ``bad_request`` (the request does not fit the station's OCPP
    version: unknown action, schema violation, another version), ``node_error`` (the node
    failed on it: see that node's log)."""

    def __init__(
        self,
        kind: str,
        description: str,
        error_code: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        text = f"{kind}: {error_code} {description}" if error_code else f"{kind}: {description}"
        super().__init__(text)
        self.kind = kind
        self.description = description
        self.error_code = error_code
        self.details = details or {}


# --- values ------------------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^a-z0-9_-]")


def station_key(identity: str) -> str:
    """The station's key in the cluster: its ``identity_key`` (as ``server.sessions`` keys
    it, so two spellings of one station are one key), with every other character than
    ``a-z 0-9 _ -`` written as ``=`` and its UTF-8 bytes in hex, so it is a valid KV key
    and subject token on any engine."""
    return _UNSAFE.sub(
        lambda m: "".join(f"={b:02x}" for b in m.group().encode()), identity_key(identity)
    )


@attrs.frozen
class Claim:
    """One node's hold on one station for one connection. ``epoch`` grows with every claim
    of that station, on any node: it fences older claims and names the connection in event
    de-duplication keys."""

    key: str
    node: str
    lease: str
    epoch: int


@attrs.frozen
class Admission:
    """What a claim returns: the claim, the station's state as its previous owner left it
    (JSON-ready, None for a station never seen), the claim it replaced (None if the
    station was not held), and ``orphaned``: the previous claim when its node died
    holding it (nobody ended that connection: the new owner reports its end)."""

    claim: Claim
    state: dict[str, Any] | None
    replaced: Claim | None
    orphaned: Claim | None = None


@attrs.frozen
class RoutedCall:
    """A CSMS-initiated call on its way to the station's owner: the OCPP ``action`` and its
    JSON ``payload`` for ``version``, to run on the connection of ``epoch``."""

    key: str
    epoch: int
    version: str
    action: str
    payload: dict[str, Any]
    #: Seconds the caller waits at most (the owner's core applies its own call timeout too).
    timeout: float


#: ``StationEvent.kind`` of a station-initiated message.
MESSAGE = "message"
#: ``StationEvent.kind`` when a connection of the station was admitted (payload: its
#: ``version``), and when it ended (payload: ``reason``).
CONNECTED = "connected"
DISCONNECTED = "disconnected"

#: (station key, connection epoch, kind, message id): one event, however often delivered.
DedupKey = tuple[str, int, str, str]


@attrs.frozen
class StationEvent:
    """What happened to a station, as the node that held it saw it: a message it sent
    (``kind`` "message": ``message_id``, ``action``, JSON ``payload``), or one of its
    connections admitted or ended ("connected", "disconnected": ``message_id`` and
    ``action`` empty). ``dedup_key`` is the same for every copy delivered."""

    identity: str
    epoch: int
    message_id: str
    action: str
    payload: dict[str, Any]
    node: str
    kind: str = MESSAGE

    @property
    def dedup_key(self) -> DedupKey:
        return (station_key(self.identity), self.epoch, self.kind, self.message_id)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StationEvent:
        return cls(
            identity=str(data["identity"]),
            epoch=int(data["epoch"]),
            message_id=str(data["message_id"]),
            action=str(data["action"]),
            payload=dict(data["payload"]),
            node=str(data["node"]),
            kind=str(data.get("kind", MESSAGE)),
        )


class Delivery(Protocol):
    """One delivery of an event to a consumer; ``ack()`` it once handled, or it comes
    again (with the same ``event.dedup_key``)."""

    event: StationEvent

    async def ack(self) -> None: ...


#: The owner's side of routing: run a call on the local session, return the JSON answer
#: payload, or raise ``RoutedCallFailed`` / ``StationNotConnected`` / ``Fenced``.
CallRunner = Callable[[RoutedCall], Awaitable[dict[str, Any]]]
#: ``fenced(claim)``: a newer claim took the station this node held with ``claim``.
FenceListener = Callable[[Claim], None]


class ClusterEngine(Protocol):
    """One process's handle on the cluster engine (in-memory, NATS JetStream; Redis fits the
    same shape: see docs/cluster.md). Every method is a coroutine on the caller's event
    loop; every wait is bounded by the engine's own timeouts."""

    #: This process's node name ("" for a handle that only routes calls and reads events).
    node: str
    #: Seconds a node's lease (and every claim under it) lives without renewal.
    lease_time: float

    # --- node membership --------------------------------------------------------------

    async def join(self, run_call: CallRunner, fenced: FenceListener) -> str:
        """Become a node: take a lease (returned: its id), answer calls routed here with
        ``run_call`` and tell ``fenced`` when a newer claim takes one of ours."""
        ...

    async def renew(self) -> None:
        """Keep this node's lease, and so every claim made under it, alive. Raises
        LeaseLost when it had expired: the node must drop all its stations."""
        ...

    async def leave(self) -> None:
        """Stop answering calls and drop the lease (every claim under it ends at once)."""
        ...

    # --- station ownership --------------------------------------------------------------

    async def claim(self, identity: str) -> Admission:
        """Take ``identity`` for this node with a new epoch, whoever held it; the previous
        holder is told it is fenced."""
        ...

    async def save_state(self, claim: Claim, state: dict[str, Any]) -> None:
        """Store the station's state under ``claim``; raises Fenced when it is no longer
        the current claim (nothing is written)."""
        ...

    async def release(self, claim: Claim, state: dict[str, Any]) -> None:
        """The station's connection under ``claim`` closed: store its last state and mark
        it not connected, unless a newer claim exists (then nothing is written)."""
        ...

    async def owner(self, identity: str) -> Claim | None:
        """The live claim on ``identity``: None when released, or when its node's lease
        expired."""
        ...

    # --- routing and events --------------------------------------------------------------

    async def call(
        self, identity: str, version: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Run a CSMS-initiated call on the station's owner, from any process; the answer's
        JSON payload. Raises StationNotConnected at once when no live node holds it,
        OwnerLost when the owner goes away before answering, RoutedCallFailed for a failure
        on the owner, ClusterUnavailable when the engine cannot be reached."""
        ...

    async def publish(self, event: StationEvent) -> None:
        """Store ``event`` durably (an event with a ``dedup_key`` stored before is not
        stored twice). Raises ClusterUnavailable when the engine did not confirm."""
        ...

    async def allocate(self, name: str, count: int) -> int:
        """Reserve ``count`` numbers of the cluster-wide sequence ``name``: the first one
        (it and the ``count - 1`` after it are this caller's; no other process gets them,
        ever). Numbers start at 1. Raises ClusterUnavailable."""
        ...

    async def fetch(self, consumer: str, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` events for the durable ``consumer`` (each consumer sees every
        event), waiting at most ``timeout`` for the first; unacknowledged ones come again."""
        ...

    async def close(self) -> None:
        """Leave if still a node, and drop the connection to the engine."""
        ...


class Deduplicator:
    """Remembers the last ``capacity`` de-duplication keys, for a consumer that wants each
    event once: ``first(event)`` is True the first time its key is seen."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[DedupKey, None] = OrderedDict()

    def first(self, event: StationEvent) -> bool:
        key = event.dedup_key
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True
