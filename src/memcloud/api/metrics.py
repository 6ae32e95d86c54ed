"""`GET /metrics`: live per-cache, per-node stats in Prometheus' text format.

A custom collector renders a snapshot taken through the nodes at scrape time (no background
state). It names every tenant and its counters, so it needs `Authorization: Bearer <token>`:
the `--metrics-token` (`MEMCLOUD_METRICS_TOKEN`) given, else the one `memcloud serve`
generated at its first start (`<data-dir>/metrics-token`). Only an explicitly empty
`--metrics-token ''` opens it; a token never resolved (None) refuses every scrape.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.api.context import ApiContext, context
from memcloud.nodes import NodesFailed
from memcloud.stats.names import COMMAND_COUNTERS, HIT_COUNTERS

__all__ = ["MetricsSnapshot", "SnapshotCollector", "metrics_endpoint"]

_LABELS = ["cache", "cache_id", "server"]
_COUNTERS = (
    ("evictions", "evictions", "Items evicted to make room"),
    ("expired", "expired", "Items found expired"),
    ("flushes", "cmd_flush", "Flushes of the cache"),
    ("connections", "total_connections", "Connections authenticated to the cache"),
    ("items", "total_items", "Items stored"),
    ("read_bytes", "bytes_read", "Bytes received from clients"),
    ("written_bytes", "bytes_written", "Bytes sent to clients"),
    ("auth_commands", "auth_cmds", "Authentication attempts"),
    ("auth_errors", "auth_errors", "Failed authentication attempts"),
)
_GAUGES = (
    ("items", "curr_items", "Items in the cache"),
    ("bytes", "bytes", "Bytes used by the cache's items"),
    ("limit_bytes", "limit_maxbytes", "The cache's plan: its size limit in bytes"),
    ("connections", "curr_connections", "Open connections to the cache"),
)


@dataclass(frozen=True, slots=True)
class CacheSnapshot:
    cache_id: int
    name: str
    plan: int
    per_node: dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    caches: list[CacheSnapshot]
    failed_nodes: list[str]
    open_connections: int
    uptime: float
    flush_log_dropped: int
    node_restarts: int


class SnapshotCollector(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        hits = CounterMetricFamily(
            "memcloud_cache_hits", "Hits per command", labels=[*_LABELS, "command"]
        )
        misses = CounterMetricFamily(
            "memcloud_cache_misses", "Misses per command", labels=[*_LABELS, "command"]
        )
        commands = CounterMetricFamily(
            "memcloud_cache_commands", "Commands per kind", labels=[*_LABELS, "command"]
        )
        counters = {
            name: CounterMetricFamily(f"memcloud_cache_{name}", text, labels=_LABELS)
            for name, _, text in _COUNTERS
        }
        gauges = {
            name: GaugeMetricFamily(f"memcloud_cache_{name}", text, labels=_LABELS)
            for name, _, text in _GAUGES
        }
        plan = GaugeMetricFamily(
            "memcloud_cache_plan_bytes", "The cache's plan in bytes", labels=["cache", "cache_id"]
        )
        for cache in snap.caches:
            plan.add_metric([cache.name, str(cache.cache_id)], cache.plan)
            for server, stats in sorted(cache.per_node.items()):
                labels = [cache.name, str(cache.cache_id), server]
                for command, (hit_names, all_names) in HIT_COUNTERS.items():
                    hit = sum(stats.get(name, 0) for name in hit_names)
                    total = sum(stats.get(name, 0) for name in all_names)
                    hits.add_metric([*labels, command], hit)
                    misses.add_metric([*labels, command], total - hit)
                for command, names in COMMAND_COUNTERS.items():
                    total = sum(stats.get(n, 0) for n in names)
                    commands.add_metric([*labels, command], total)
                for name, source, _ in _COUNTERS:
                    counters[name].add_metric(labels, stats.get(source, 0))
                for name, source, _ in _GAUGES:
                    gauges[name].add_metric(labels, stats.get(source, 0))
        yield from (hits, misses, commands, *counters.values(), *gauges.values(), plan)
        yield GaugeMetricFamily(
            "memcloud_caches", "Caches served by this node", value=len(snap.caches)
        )
        yield GaugeMetricFamily(
            "memcloud_open_connections",
            "Open memcache connections, authenticated or not",
            value=snap.open_connections,
        )
        yield GaugeMetricFamily(
            "memcloud_uptime_seconds", "Seconds since this node started", value=snap.uptime
        )
        failed = GaugeMetricFamily(
            "memcloud_node_up", "1 if the node answered this scrape", labels=["server"]
        )
        for server in snap.failed_nodes:
            failed.add_metric([server], 0)
        yield failed
        yield CounterMetricFamily(
            "memcloud_flush_log_dropped",
            "Flush log records dropped because the writer fell behind",
            value=snap.flush_log_dropped,
        )
        yield CounterMetricFamily(
            "memcloud_node_restarts",
            "Node processes that died and were restarted by the supervisor",
            value=snap.node_restarts,
        )


async def take_snapshot(ctx: ApiContext) -> MetricsSnapshot:
    caches: list[CacheSnapshot] = []
    failed: set[str] = set()
    for record in list(ctx.service.directory.caches.values()):
        try:
            per_node = await ctx.deployment.stats(record.id)
        except NodesFailed as exc:
            failed.update(exc.addresses)
            continue
        caches.append(CacheSnapshot(record.id, record.name, record.plan, per_node))
    service = ctx.service
    return MetricsSnapshot(
        caches=caches,
        failed_nodes=sorted(failed),
        open_connections=len(ctx.connections),
        uptime=max(0.0, time.time() - service.started_at),
        flush_log_dropped=ctx.deployment.flush_log_dropped,
        node_restarts=ctx.deployment.node_restarts,
    )


def _token_ok(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Digests first, so that the comparison's time tells nothing, not even the length.
    given_digest = hashlib.sha256(given.strip().encode()).digest()
    return hmac.compare_digest(given_digest, hashlib.sha256(token.encode()).digest())


async def metrics_endpoint(request: Request) -> Response:
    ctx = context(request)
    token = ctx.settings.metrics_token
    if token != "" and (token is None or not _token_ok(request, token)):
        return JSONResponse(
            {"detail": "a valid bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="memcloud metrics"'},
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(await take_snapshot(ctx)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
