"""The latency probe and the watched-prefix sync: a task of the API process (node 0).

Every PROBE_SECONDS the probe opens a memcache connection to every node of the deployment
at the address clients are given ("host:port"; over TLS with --tls-only), and times one
`get memcloud:latency-probe` from sending it to the reply's end: the network, the node's
event loop, parser and gate as any client meets them. It sends no credential: the get is
answered at the gate ("CLIENT_ERROR unauthenticated"), so no tenant's stats, connections or
logins ever count it. Only on a server run with --anonymous-cache does it reach a cache: the
anonymous cache then counts one get miss per node every PROBE_SECONDS.

Each probe is a `LatencySample` in the control store (pruned after LATENCY_KEEP_SECONDS);
a node that does not answer within PROBE_TIMEOUT has no sample for that round.

The same loop hands every node the watched prefixes of each cache from the control store
(the API also does at once when one is watched or unwatched), so a node that restarted
records them again within PROBE_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from typing import Final

from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.control.failures import FailureLog
from memcloud.control.introspection import LATENCY_KEEP_SECONDS, LatencySample
from memcloud.deployment import Deployment
from memcloud.nodes import NodeError, NodesFailed

__all__ = ["PROBE_ENV", "PROBE_KEY", "PROBE_SECONDS", "LatencyProbe", "probe_once"]

log = logging.getLogger("memcloud.latency")

PROBE_SECONDS: Final = 20.0
# Tests probe more often; never below a tenth of a second.
PROBE_ENV: Final = "MEMCLOUD_LATENCY_PROBE_SECONDS"
PROBE_TIMEOUT: Final = 5.0
PROBE_KEY: Final = b"memcloud:latency-probe"
# A reply line longer than this is no answer to a get.
_REPLY_LIMIT: Final = 4096
_PRUNE_SECONDS: Final = 3600.0
_WILDCARDS: Final = ("0.0.0.0", "::", "")


def probe_interval() -> float:
    raw = os.environ.get(PROBE_ENV, "")
    try:
        return max(float(raw), 0.1) if raw else PROBE_SECONDS
    except ValueError:
        return PROBE_SECONDS


def _endpoint(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return ("127.0.0.1" if host in _WILDCARDS else host), int(port)


def _tls_context() -> ssl.SSLContext:
    # The probe sends nothing secret and measures, it does not trust: no verification.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def probe_once(address: str, *, tls: bool = False) -> int:
    """Nanoseconds one get took on the node at `address`; OSError if it did not answer."""
    host, port = _endpoint(address)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            host, port, ssl=_tls_context() if tls else None, limit=_REPLY_LIMIT
        ),
        PROBE_TIMEOUT,
    )
    try:
        started = time.perf_counter_ns()
        writer.write(b"get " + PROBE_KEY + b"\r\n")
        line = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT)
        elapsed = time.perf_counter_ns() - started
        if not line.endswith(b"\n"):
            raise OSError(f"{address} closed the probe's connection")
        return elapsed
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), PROBE_TIMEOUT)


class LatencyProbe:
    def __init__(
        self,
        store: ControlStore,
        deployment: Deployment,
        settings: Settings,
        interval: float | None = None,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.tls = settings.tls_only
        self.introspection = settings.introspection
        self.interval = interval or probe_interval()
        self._last_prune = 0.0
        # The watched prefixes each cache's nodes were last handed.
        self._handed: dict[int, list[str]] = {}
        self._failures = FailureLog(log, "probing latency")

    async def measure(self, now: float) -> list[LatencySample]:
        nodes = [self.deployment.local, *self.deployment.others]
        results = await asyncio.gather(
            *(probe_once(node.address, tls=self.tls) for node in nodes), return_exceptions=True
        )
        samples: list[LatencySample] = []
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.debug("latency probe of %s failed: %r", node.address, result)
                continue
            samples.append(LatencySample(now, node.address, result))
        return samples

    async def hand_watched(self) -> None:
        """Give every node the watched prefixes of each cache (and none to a cache that
        had some and has none now)."""
        records = await asyncio.to_thread(self.store.list_watched_prefixes, None)
        wanted: dict[int, list[str]] = {}
        for record in records:
            wanted.setdefault(record.cache_id, []).append(record.name)
        served = self.deployment.local.service.registry.caches
        for cache_id in sorted(set(wanted) | set(self._handed)):
            names = wanted.get(cache_id, [])
            if cache_id not in served:
                self._handed.pop(cache_id, None)
                continue
            try:
                await self.deployment.introspect(cache_id, {"watched": names, "view": "none"})
            except (NodesFailed, NodeError) as exc:
                log.debug("watched prefixes of cache %d not handed everywhere: %s", cache_id, exc)
            if names:
                self._handed[cache_id] = names
            else:
                self._handed.pop(cache_id, None)

    async def tick(self) -> None:
        now = time.time()
        samples = await self.measure(now)
        if samples:
            await asyncio.to_thread(self.store.add_latency_samples, samples)
        if now - self._last_prune >= _PRUNE_SECONDS:
            self._last_prune = now
            await asyncio.to_thread(self.store.prune_latency, now - LATENCY_KEEP_SECONDS)
        if self.introspection:
            await self.hand_watched()

    async def run(self) -> None:
        while True:
            await self._failures.attempt(self.tick, "latency has a gap")
            await asyncio.sleep(self.interval)
