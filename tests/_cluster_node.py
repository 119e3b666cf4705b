"""One CSMS node of a test cluster, as its own process:
``python tests/_cluster_node.py NATS_URL NODE PREFIX LEASE``.

It serves on 127.0.0.1 (a free port), prints ``{"port": N}`` on its first line, then one
line per claim (``claimed IDENTITY (epoch E)``), and runs until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from _adapterkit import QUIET
from _clusterkit import Csms, csms_flows

from ocpp_sansio.adapters import ServerOptions
from ocpp_sansio.adapters.asyncio import serve
from ocpp_sansio.adapters.cluster import cluster_node


async def main(url: str, name: str, prefix: str, lease: float) -> None:
    async with (
        serve(Csms(), options=ServerOptions(ws_options=QUIET, flows=csms_flows)) as server,
        cluster_node(server, url, node=name, prefix=prefix, lease_ttl=lease),
    ):
        print(json.dumps({"port": server.port}), flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    cluster_log = logging.getLogger("ocpp_sansio.adapters.cluster")
    cluster_log.addHandler(handler)
    cluster_log.setLevel(logging.INFO)
    url, name, prefix, lease = sys.argv[1:5]
    asyncio.run(main(url, name, prefix, float(lease)))
