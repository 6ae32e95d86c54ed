"""`GET /metrics`: live per-cache, per-node stats in Prometheus' text format.

A custom collector renders a snapshot taken through the nodes at scrape time (no background
state): memcloud's own `memcloud_*` families here, memcached_exporter's `memcached_*` ones in
api/memcached_metrics.py (docs/metrics.md lists them all). It names every tenant and its
counters, so it needs `Authorization: Bearer <token>`:
the `--metrics-token` (`MEMCLOUD_METRICS_TOKEN`) given, else the one `memcloud serve`
generated at its first start (`<data-dir>/metrics-token`). Only an explicitly empty
`--metrics-token ''` opens it; a token never resolved (None) refuses every scrape.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.admission import plan_connection_limit
from memcloud.api.context import ApiContext, context
from memcloud.api.memcached_metrics import MemcachedView, memcached_families
from memcloud.control.base import ControlError
from memcloud.logs import running_version
from memcloud.nodes import NodesFailed
from memcloud.stats.names import COMMAND_COUNTERS, HIT_COUNTERS

__all__ = ["FLUSH_SOURCES", "MetricsSnapshot", "SnapshotCollector", "metrics_endpoint"]

_LABELS = ["cache", "cache_id", "server"]
# Counters are named apart from the gauges of the same stat (`memcloud_cache_items` the
# gauge, `memcloud_cache_stored_items_total` the counter): OpenMetrics reads a counter
# `x_total` and a gauge `x` as one family `x`.
_COUNTERS = (
    ("evictions", "evictions", "Items evicted to make room"),
    ("expired", "expired", "Items found expired"),
    ("flushes", "cmd_flush", "Flushes of the cache"),
    ("opened_connections", "total_connections", "Connections authenticated to the cache"),
    ("stored_items", "total_items", "Items stored"),
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
    per_node: dict[str, dict[str, int]] | None  # None: a node did not answer for it
    max_connections: int = 0


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What one scrape reports. `server` is the node that answers it (process-wide series
    carry it); `nodes` is every node of the deployment, up or not."""

    caches: list[CacheSnapshot]
    open_connections: int
    uptime: float
    flush_log_dropped: int
    node_restarts: int
    server: str = ""
    version: str = ""
    nodes: dict[str, bool] = field(default_factory=dict)
    flushes: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    # This node's last read of the control store worked (a node that lost it serves on).
    control_store_up: bool = True


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
            for server, stats in sorted((cache.per_node or {}).items()):
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
        yield from self._process(snap)
        yield from memcached_families(
            [
                MemcachedView(c.name, c.per_node, snap.uptime, c.max_connections)
                for c in snap.caches
            ],
            snap.version,
        )

    @staticmethod
    def _process(snap: MetricsSnapshot) -> Iterator[Metric]:
        """This node's and the deployment's own series (process-wide ones say `server`)."""
        here = [snap.server]
        info = GaugeMetricFamily(
            "memcloud_build_info", "The memcloud version serving, always 1", labels=["version"]
        )
        info.add_metric([snap.version], 1)
        yield info
        for name, text, value in (
            ("memcloud_caches", "Caches served by this node", len(snap.caches)),
            (
                "memcloud_open_connections",
                "Open memcache connections, authenticated or not",
                snap.open_connections,
            ),
            ("memcloud_uptime_seconds", "Seconds since this node started", snap.uptime),
            (
                "memcloud_control_store_up",
                "1 if this node's last read of the control store worked, else 0 (it serves "
                "the caches and credentials it last read)",
                1 if snap.control_store_up else 0,
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["server"])
            gauge.add_metric(here, value)
            yield gauge
        up = GaugeMetricFamily(
            "memcloud_node_up",
            "1 if the node heartbeats and answered this scrape, else 0; every node of the "
            "deployment",
            labels=["server"],
        )
        for server, is_up in sorted(snap.nodes.items()):
            up.add_metric([server], 1 if is_up else 0)
        yield up
        dropped = CounterMetricFamily(
            "memcloud_flush_log_dropped",
            "Flush log records dropped because the writer fell behind",
            labels=["server"],
        )
        dropped.add_metric(here, snap.flush_log_dropped)
        yield dropped
        yield CounterMetricFamily(
            "memcloud_node_restarts",
            "Node processes that died and were restarted by the supervisor",
            value=snap.node_restarts,
        )
        for name, text, label, counts in (
            (
                "memcloud_flushes",
                "Flushes recorded by this node's flush log writer, by source",
                "source",
                snap.flushes,
            ),
            (
                "memcloud_connection_refusals",
                "Memcache connections refused (address: its share of unauthenticated slots "
                "is taken; full: the node is full) or shed (the oldest unauthenticated one)",
                "reason",
                snap.refusals,
            ),
            (
                "memcloud_throttled_logins",
                "Login attempts slowed down (held) or refused unchecked (refused) by the "
                "failed-login throttle",
                "outcome",
                snap.throttled,
            ),
        ):
            counter = CounterMetricFamily(name, text, labels=["server", label])
            for key, count in sorted(counts.items()):
                counter.add_metric([snap.server, key], count)
            yield counter


# Flush sources always shown (0 until one happens), so that rate() has a series at once.
FLUSH_SOURCES = ("text", "binary", "api", "deploy_hook", "webhook", "cli", "dashboard")


async def _node_health(ctx: ApiContext, failed: set[str]) -> dict[str, bool]:
    """Every node of the deployment: registered ones by their heartbeat, this deployment's
    own by whether they answered; one that failed this scrape is down."""
    nodes = {address: True for address in ctx.deployment.addresses(0)}
    try:
        registered = await asyncio.to_thread(ctx.store.list_nodes)
    except ControlError:
        registered = []
    for node in registered:
        nodes[node.address] = node.up and nodes.get(node.address, True)
    for address in failed:
        nodes[address] = False
    return nodes


async def take_snapshot(ctx: ApiContext) -> MetricsSnapshot:
    caches: list[CacheSnapshot] = []
    failed: set[str] = set()
    service = ctx.service
    records = list(service.directory.caches.values())

    async def stats_of(cache_id: int) -> dict[str, dict[str, int]] | None:
        try:
            return await ctx.deployment.stats(cache_id)
        except NodesFailed as exc:
            failed.update(exc.addresses)
            return None

    # All caches at once: a node that does not answer costs one timeout, not one per cache.
    answers = await asyncio.gather(*(stats_of(record.id) for record in records))
    for record, per_node in zip(records, answers, strict=True):
        limit = plan_connection_limit(record.plan, ctx.settings)
        caches.append(CacheSnapshot(record.id, record.name, record.plan, per_node, limit))
    auditor = ctx.deployment.local.auditor
    flushes = dict.fromkeys(FLUSH_SOURCES, 0)
    flushes.update(auditor.flushes_by_source() if auditor is not None else {})
    throttle = service.auth_throttle
    return MetricsSnapshot(
        caches=caches,
        open_connections=len(ctx.connections),
        uptime=max(0.0, time.time() - service.started_at),
        flush_log_dropped=ctx.deployment.flush_log_dropped,
        node_restarts=ctx.deployment.node_restarts,
        server=ctx.deployment.local.address,
        version=running_version(),
        nodes=await _node_health(ctx, failed),
        flushes=flushes,
        refusals=dict(service.admission.refusals),
        throttled={"held": throttle.held, "refused": throttle.refused},
        control_store_up=service.control_store_up,
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
