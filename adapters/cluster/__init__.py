"""A CSMS on several processes or machines: station ownership with fencing epochs, calls
routed to the node that holds a station, station events delivered at least once, and the
station's state moving with it (docs/cluster.md).

The interface is ``ClusterEngine``; ``MemoryCluster`` implements it in one process (with
faults, for tests) and ``nats_engine.NatsEngine`` on NATS JetStream (the ``cluster``
extra). ``ClusterNode`` makes a running CSMS server a node (``AsyncioSeam`` for asyncio);
``ClusterClient`` calls stations from any process.
"""

from .asyncio_seam import AsyncioSeam, cluster_node
from .base import (
    CONNECTED,
    DISCONNECTED,
    MESSAGE,
    Admission,
    Claim,
    ClusterEngine,
    ClusterError,
    ClusterUnavailable,
    DedupKey,
    Deduplicator,
    Delivery,
    Fenced,
    LeaseLost,
    OwnerLost,
    RoutedCall,
    RoutedCallFailed,
    StationEvent,
    StationNotConnected,
    station_key,
)
from .client import ClusterClient, call_from_json, connect_engine
from .memory import MemoryCluster, MemoryEngine
from .node import ClusterNode, ServerSeam

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "MESSAGE",
    "Admission",
    "AsyncioSeam",
    "Claim",
    "ClusterClient",
    "ClusterEngine",
    "ClusterError",
    "ClusterNode",
    "ClusterUnavailable",
    "DedupKey",
    "Deduplicator",
    "Delivery",
    "Fenced",
    "LeaseLost",
    "MemoryCluster",
    "MemoryEngine",
    "OwnerLost",
    "RoutedCall",
    "RoutedCallFailed",
    "ServerSeam",
    "StationEvent",
    "StationNotConnected",
    "call_from_json",
    "cluster_node",
    "connect_engine",
    "station_key",
]
