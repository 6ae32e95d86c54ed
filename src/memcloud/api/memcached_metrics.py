"""The `memcached_*` families of `/metrics`: prometheus/memcached_exporter's names, types and
labels (pkg/exporter/exporter.go), with a `cache` label, so the dashboards and alert rules
written for memcached read each memcloud cache as one memcached.

Each cache's series are its stats over every node (summed as `stats` sums them; the nodes
hold shares of one cache), so `sum by (cache)` is not needed and `rate(...)` works as on a
memcached. docs/metrics.md maps every family to the exporter's and says what differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from memcloud.stats.aggregate import aggregate_stats

__all__ = ["MEMCACHED_FAMILIES", "MemcachedView", "memcached_families"]

# The exporter's `status` per command: hits and misses of each, as its collector reads them.
_HIT_MISS = ("get", "delete", "incr", "decr", "cas", "touch")
# (family, type, help, stat) of the families that are one stat each, in the exporter's words.
_PLAIN: tuple[tuple[str, str, str, str], ...] = (
    ("time_seconds", "gauge", "current UNIX time according to the server.", "time"),
    (
        "read_bytes",
        "counter",
        "Total number of bytes read by this server from network.",
        "bytes_read",
    ),
    (
        "written_bytes",
        "counter",
        "Total number of bytes sent by this server to network.",
        "bytes_written",
    ),
    ("current_connections", "gauge", "Current number of open connections.", "curr_connections"),
    (
        "connections",
        "counter",
        "Total number of connections opened since the server started running.",
        "total_connections",
    ),
    ("current_bytes", "gauge", "Current number of bytes used to store items.", "bytes"),
    (
        "limit_bytes",
        "gauge",
        "Number of bytes this server is allowed to use for storage.",
        "limit_maxbytes",
    ),
    ("current_items", "gauge", "Current number of items stored by this instance.", "curr_items"),
    (
        "items",
        "counter",
        "Total number of items stored during the life of this instance.",
        "total_items",
    ),
    (
        "items_evicted",
        "counter",
        "Total number of valid items removed from cache to free memory for new items.",
        "evictions",
    ),
)
# Every memcached_* family name as the text format shows it (counters with `_total`).
MEMCACHED_FAMILIES: tuple[str, ...] = (
    "memcached_up",
    "memcached_uptime_seconds",
    "memcached_version",
    "memcached_max_connections",
    "memcached_commands_total",
    *(f"memcached_{n}{'_total' if kind == 'counter' else ''}" for n, kind, _, _ in _PLAIN),
)


@dataclass(frozen=True, slots=True)
class MemcachedView:
    """One cache as a memcached: its name, its nodes' stats (None if a node failed), the
    seconds its deployment has served, and its connection limit."""

    name: str
    per_node: Mapping[str, Mapping[str, int]] | None
    uptime: float
    max_connections: int


def _commands(stats: Mapping[str, int]) -> Iterator[tuple[str, str, int]]:
    """(command, status, count) as the exporter derives them from memcached's stats."""
    for command in _HIT_MISS:
        yield command, "hit", stats.get(f"{command}_hits", 0)
        yield command, "miss", stats.get(f"{command}_misses", 0)
    yield "cas", "badval", stats.get("cas_badval", 0)
    yield "flush", "hit", stats.get("cmd_flush", 0)
    cas = sum(stats.get(f"cas_{s}", 0) for s in ("hits", "misses", "badval"))
    yield "set", "hit", max(0, stats.get("cmd_set", 0) - cas)


def _family(kind: str, name: str, text: str) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(name, text, labels=["cache"])
    return GaugeMetricFamily(name, text, labels=["cache"])


def memcached_families(caches: list[MemcachedView], version: str) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "memcached_up", "Could the memcached server be reached.", labels=["cache"]
    )
    # A counter in the exporter; a gauge here, so that its name stays without `_total`.
    uptime = GaugeMetricFamily(
        "memcached_uptime_seconds", "Number of seconds since the server started.", labels=["cache"]
    )
    versions = GaugeMetricFamily(
        "memcached_version", "The version of this memcached server.", labels=["cache", "version"]
    )
    max_connections = GaugeMetricFamily(
        "memcached_max_connections", "Maximum number of clients allowed.", labels=["cache"]
    )
    commands = CounterMetricFamily(
        "memcached_commands",
        "Total number of all requests broken down by command (get, set, etc.) and status.",
        labels=["cache", "command", "status"],
    )
    plain = [(_family(kind, f"memcached_{name}", text), stat) for name, kind, text, stat in _PLAIN]
    for cache in caches:
        labels = [cache.name]
        up.add_metric(labels, 0 if cache.per_node is None else 1)
        if cache.per_node is None:
            continue
        stats = aggregate_stats(cache.per_node)
        uptime.add_metric(labels, cache.uptime)
        versions.add_metric([cache.name, version], 1)
        max_connections.add_metric(labels, cache.max_connections)
        for command, status, count in _commands(stats):
            commands.add_metric([cache.name, command, status], count)
        for family, stat in plain:
            family.add_metric(labels, stats.get(stat, 0))
    yield from (up, uptime, versions, max_connections, commands)
    yield from (family for family, _ in plain)
