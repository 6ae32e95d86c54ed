"""A channel server in a process of its own, for the tests that kill a peer with SIGKILL:
`python peer_process.py PORT` (0: any) with the secret in MEMCLOUD_CLUSTER_SECRET; prints
`ready PORT` once listening. Kind 1 echoes, kind 2 never answers."""

from __future__ import annotations

import asyncio
import os
import sys

import uvloop

from memcloud.cluster.channel import ChannelServer
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.secrets import ClusterSecrets


def handler(kind: int, payload: bytes) -> bytes | asyncio.Future[bytes]:
    if kind == 2:
        return asyncio.get_running_loop().create_future()  # never done
    return payload


async def main(port: int) -> None:
    secret = os.environ["MEMCLOUD_CLUSTER_SECRET"].encode()
    server = ChannelServer(NodeIdentity(ClusterSecrets(secret)), handler, max_frame=1 << 20)
    await server.start("127.0.0.1", port)
    print(f"ready {server.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
