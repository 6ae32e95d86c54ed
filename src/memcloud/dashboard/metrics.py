"""Numbers for the overview: rates over the last hour and time series for the graphs.

Input is the stats history (cumulative counters and gauges per sample, as the node's sampler
stores them) plus the live stats as the newest point. Counters fall back to zero when a node
restarts, so a negative difference counts as a restart: the new value is the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from memcloud.control.telemetry import HOUR
from memcloud.stats.aggregate import Reading, counter_delta, counter_deltas, merge_buckets

__all__ = [
    "HIT_RATE_GOOD",
    "HIT_RATE_WARN",
    "HOUR",
    "NEW_CONNECTIONS_WARN",
    "RANGES",
    "Overview",
    "Point",
    "complete",
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
# How far before the hour the overview's base point may be (one sample interval late).
BUCKET_SECONDS = 30

Stats = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Point:
    """The cache at one moment.

    A point of the history (`merged`) carries the counters' increases since the previous point
    (`deltas`, and per second `rates`), each node differenced against its own previous sample
    before they were combined (`stats.aggregate.merge_buckets`); None when no node of the
    point had an earlier sample. Any other point (the live one, read now) is differenced as a
    whole against the previous point.
    """

    at: float
    stats: Stats
    deltas: Mapping[str, float] | None = None
    rates: Mapping[str, float] | None = None
    merged: bool = False
    nodes: int = 0  # how many nodes' samples the point holds (merged points)


def merge_samples(samples: Iterable[tuple[float, str, Stats]], step: float = 60.0) -> list[Point]:
    """One point per sampling tick: the nodes' samples `(at, server, stats)` of the same
    tick (the sampler stamps every node's with the tick's time; a sample up to half a `step`
    off joins the nearest tick) aggregated, their counters differenced per node."""
    readings = (Reading(at, server, stats) for at, server, stats in samples)
    return [
        Point(b.at, b.stats, b.deltas, b.rates, merged=True, nodes=b.nodes)
        if b.has_deltas
        else Point(b.at, b.stats, merged=True, nodes=b.nodes)
        for b in merge_buckets(readings, lambda at: round(at / step) * step)
    ]


def complete(points: Sequence[Point]) -> list[Point]:
    """`points` without a newest tick that not every node has written yet (they store their
    samples a few milliseconds apart): read then, it would show part of the cache."""
    if len(points) >= 2 and points[-1].nodes < points[-2].nodes:
        return list(points[:-1])
    return list(points)


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


Increases = tuple[Mapping[str, float], Mapping[str, float]]


def _increases(point: Point, previous: Point) -> Increases | None:
    """How much each counter grew into `point`, in all and per second (None: unknown)."""
    if point.merged:
        if point.deltas is None or point.rates is None:
            return None
        return point.deltas, point.rates
    if point.at <= previous.at:
        return None
    seconds = max(point.at - previous.at, 1.0)
    deltas = counter_deltas(point.stats, previous.stats)
    return deltas, {name: value / seconds for name, value in deltas.items()}


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
        increases = _increases(point, previous) if previous is not None else None
        if increases is not None:
            deltas, rates = increases
            hits = deltas.get("get_hits", 0)
            gets = hits + deltas.get("get_misses", 0)
            out["hit_rate"].append((point.at, 100.0 * hits / gets if gets else None))
            out["new_connections"].append((point.at, float(rates.get("total_connections", 0))))
            out["evictions"].append((point.at, float(deltas.get("evictions", 0))))
        previous = point
    return out
