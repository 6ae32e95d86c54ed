"""Numbers for the overview: rates over the last hour and time series for the graphs.

Input is the stats history (cumulative counters and gauges per sample, as the node's sampler
stores them) plus the live stats as the newest point. Counters fall back to zero when a node
restarts, so a negative difference counts as a restart: the new value is the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from memcloud.control.telemetry import HOUR
from memcloud.stats.aggregate import aggregate_stats, counter_delta

__all__ = [
    "HIT_RATE_GOOD",
    "HIT_RATE_WARN",
    "HOUR",
    "NEW_CONNECTIONS_WARN",
    "RANGES",
    "Overview",
    "Point",
    "hit_rate_class",
    "merge_samples",
    "overview",
    "series",
]

# The hosted dashboard's colours: >= 80 % green, >= 50 % yellow, below red.
HIT_RATE_GOOD = 80.0
HIT_RATE_WARN = 50.0
# New connections per second above which the connections card warns (clients that do not
# reuse connections).
NEW_CONNECTIONS_WARN = 10.0
RANGES: dict[str, int] = {"hour": HOUR, "day": 24 * HOUR, "week": 7 * 24 * HOUR}
# Samples of several nodes closer together than this are one point in time.
BUCKET_SECONDS = 30

Stats = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    stats: Stats


def merge_samples(samples: Iterable[tuple[float, str, Stats]]) -> list[Point]:
    """One point per moment: the nodes' samples `(at, server, stats)` aggregated."""
    buckets: dict[int, tuple[float, dict[str, Stats]]] = {}
    for at, server, stats in samples:
        key = int(at // BUCKET_SECONDS)
        latest, per_node = buckets.get(key, (at, {}))
        per_node[server] = stats
        buckets[key] = (max(latest, at), per_node)
    return [
        Point(at, aggregate_stats(per_node))
        for at, per_node in (buckets[key] for key in sorted(buckets))
    ]


def hit_rate_class(rate: float | None) -> str:
    if rate is None:
        return "none"
    if rate >= HIT_RATE_GOOD:
        return "good"
    if rate >= HIT_RATE_WARN:
        return "warn"
    return "bad"


@dataclass(frozen=True, slots=True)
class Overview:
    hit_rate: float | None  # percent, last hour (or since the oldest sample)
    hits: int
    misses: int
    window: float  # seconds the rates cover
    used: int
    limit: int
    items: int
    evictions: int  # all time
    new_evictions: int  # in the window
    connections: int
    new_connections_rate: float  # per second, in the window
    since_start: bool  # no history yet: rates are over the node's lifetime

    @property
    def hit_class(self) -> str:
        return hit_rate_class(self.hit_rate)

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0

    @property
    def connections_warn(self) -> bool:
        return self.new_connections_rate > NEW_CONNECTIONS_WARN


def overview(live: Stats, history: Sequence[Point], now: float, started: float) -> Overview:
    """The overview cards: `history` should reach back an hour (older points are ignored)."""
    base: Point | None = None
    for point in history:
        if point.at >= now - HOUR - BUCKET_SECONDS and point.at < now - 1:
            base = point
            break
    if base is None:
        base = Point(started, {})
    window = max(now - base.at, 1.0)
    hits = counter_delta(live, base.stats, "get_hits")
    misses = counter_delta(live, base.stats, "get_misses")
    gets = hits + misses
    return Overview(
        hit_rate=100.0 * hits / gets if gets else None,
        hits=hits,
        misses=misses,
        window=window,
        used=live.get("bytes", 0),
        limit=live.get("limit_maxbytes", 0),
        items=live.get("curr_items", 0),
        evictions=live.get("evictions", 0),
        new_evictions=counter_delta(live, base.stats, "evictions"),
        connections=live.get("curr_connections", 0),
        new_connections_rate=counter_delta(live, base.stats, "total_connections") / window,
        since_start=not base.stats,
    )


Series = list[tuple[float, float | None]]


def series(points: Sequence[Point]) -> dict[str, Series]:
    """Graph series: gauges at each point, rates over each interval (at its end)."""
    out: dict[str, Series] = {
        name: []
        for name in (
            "bytes",
            "limit",
            "items",
            "connections",
            "hit_rate",
            "new_connections",
            "evictions",
        )
    }
    previous: Point | None = None
    for point in points:
        s = point.stats
        out["bytes"].append((point.at, float(s.get("bytes", 0))))
        out["limit"].append((point.at, float(s.get("limit_maxbytes", 0))))
        out["items"].append((point.at, float(s.get("curr_items", 0))))
        out["connections"].append((point.at, float(s.get("curr_connections", 0))))
        if previous is not None:
            seconds = max(point.at - previous.at, 1.0)
            hits = counter_delta(s, previous.stats, "get_hits")
            gets = hits + counter_delta(s, previous.stats, "get_misses")
            out["hit_rate"].append((point.at, 100.0 * hits / gets if gets else None))
            new = counter_delta(s, previous.stats, "total_connections")
            out["new_connections"].append((point.at, new / seconds))
            evicted = counter_delta(s, previous.stats, "evictions")
            out["evictions"].append((point.at, float(evicted)))
        previous = point
    return out
