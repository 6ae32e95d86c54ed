"""The node-to-node channel's price: microseconds per `PeerLink.call` round trip over real
mutual TLS on loopback, with 1 and with 64 concurrent callers on one link.

    .venv/bin/python -m bench.channel                  # 20,000 calls per case, uvloop
    .venv/bin/python -m bench.channel --calls 2000 --payload 100

The server runs in a process of its own (an echo handler, as `memcloud serve` runs it: on
uvloop); this process makes the calls. Prints, per case, the wall time per call and this
process's CPU time per call (the calling side's cost; the server's is about the same).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence

import uvloop

from memcloud.cluster.channel import ChannelServer
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.link import PeerLink
from memcloud.cluster.secrets import ClusterSecrets, generate_secret

MAX_FRAME = 2 * 1024 * 1024
SECRET_ENV = "BENCH_CLUSTER_SECRET"


def _echo(kind: int, payload: bytes) -> bytes:
    return payload


async def _serve() -> None:
    secret = os.environ[SECRET_ENV].encode()
    server = ChannelServer(NodeIdentity(ClusterSecrets(secret)), _echo, max_frame=MAX_FRAME)
    await server.start("127.0.0.1", 0)
    print(server.port, flush=True)
    await asyncio.Event().wait()


async def _measure(port: int, secret: bytes, calls: int, payload: bytes) -> list[str]:
    link = PeerLink(
        f"127.0.0.1:{port}",
        NodeIdentity(ClusterSecrets(secret)),
        timeout=30,
        max_frame=MAX_FRAME,
    )
    await link.call(1, payload)  # connected and warm
    lines = []
    for callers in (1, 64):
        each = max(1, calls // callers)

        async def caller(count: int) -> None:
            for _ in range(count):
                await link.call(1, payload)

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller(each) for _ in range(callers)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        done = each * callers
        lines.append(
            f"{callers:>2} concurrent callers: {wall / done * 1e6:7.1f} µs per call (wall),"
            f" {cpu / done * 1e6:6.1f} µs CPU per call (caller side), {done} calls"
        )
    await link.close()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per case")
    parser.add_argument("--payload", type=int, default=100, help="bytes per request")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        uvloop.run(_serve())
        return 0
    secret = generate_secret()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.channel", "--serve"],
        env={**os.environ, SECRET_ENV: secret},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print(f"channel round trips over mutual TLS on loopback, {args.payload}-byte payloads")
        for line in uvloop.run(_measure(port, secret.encode(), args.calls, b"x" * args.payload)):
            print(line)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
