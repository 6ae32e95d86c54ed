"""The nodes' introspection views (memcloud.introspection.node) and the stats and latency
history, merged into the hosted service's shapes (reference §2.5, §2.7).

- `recent_logs`: one list per server ("host:port"), oldest first.
- `popular_items`: the nodes' estimates added up per key (a key lives on one node, a
  prefix on many), the most popular first; `time_slice` is the nanoseconds they cover.
- `key_stats`: one entry, the counts of every node added up.
- `compound_stats` (stats history) and `prefix_stats` (the nodes' minute series of a watched
  prefix): `num_keys` and `total_size` at the end of each bucket, the three rates (per
  second) from each node's increase against its own previous point, then added up.
- `latency`: one series per server, each bucket the mean of its probes' nanoseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from memcloud.stats.aggregate import Reading, merge_buckets

__all__ = [
    "COMPOUND_COLUMNS",
    "POPULAR_LIMIT",
    "compound_series",
    "key_stats",
    "latency_granularity",
    "latency_series",
    "popular_items",
    "prefix_series",
    "recent_logs",
    "rfc3339",
]

# Keys per list of popular_items (each node keeps 50 candidates per list).
POPULAR_LIMIT: Final = 20
COMPOUND_COLUMNS: Final = (
    "time",
    "num_keys",
    "total_size",
    "total_hits_rate",
    "total_misses_rate",
    "total_mutations_rate",
)
# What counts as a hit, a miss and a mutation in the stats history's counters.
_HITS: Final = ("get_hits",)
_MISSES: Final = ("get_misses",)
_MUTATIONS: Final = (
    "cmd_set",
    "delete_hits",
    "incr_hits",
    "decr_hits",
    "touch_hits",
)
_DAY: Final = 86400
# The hosted service's latency granularity: <= 24 h 20 s, <= 1 week 10 min, <= 3 months 1 h.
_LATENCY_STEPS: Final = ((_DAY, 20), (7 * _DAY, 600), (92 * _DAY, 3600))
_STATS_STEPS: Final = ((_DAY, 60), (7 * _DAY, 600), (92 * _DAY, 3600))

Views = Mapping[str, Mapping[str, Any]]


def rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _step(span: float, steps: Sequence[tuple[int, int]]) -> int:
    for limit, step in steps:
        if span <= limit:
            return step
    return _DAY


def latency_granularity(span: float) -> int:
    return _step(span, _LATENCY_STEPS)


def recent_logs(views: Views) -> dict[str, list[dict[str, Any]]]:
    return {
        server: [
            {
                "timestamp": rfc3339(float(at)),
                "key": str(key),
                "command": str(command),
                "status": str(status),
                "size": int(size),
            }
            for at, key, command, status, size in view.get("recent", [])
        ]
        for server, view in sorted(views.items())
    }


def _ranked(lists: Iterable[Sequence[Sequence[Any]]]) -> list[dict[str, Any]]:
    total: dict[str, int] = {}
    for entries in lists:
        for name, count in entries:
            total[str(name)] = total.get(str(name), 0) + int(count)
    ranked = sorted(total.items(), key=lambda entry: (-entry[1], entry[0]))
    return [{"name": name, "popularity": count} for name, count in ranked[:POPULAR_LIMIT]]


def popular_items(views: Views) -> dict[str, Any]:
    nodes = list(views.values())
    seconds = max((float(v.get("seconds", 0.0)) for v in nodes), default=0.0)
    return {
        "time_slice": int(seconds * 1e9),
        "most_hit_keys": _ranked(v.get("hit", []) for v in nodes),
        "most_missed_keys": _ranked(v.get("miss", []) for v in nodes),
        "most_mutated_keys": _ranked(v.get("mutation", []) for v in nodes),
        "popular_prefixes": _ranked(v.get("prefix", []) for v in nodes),
    }


def key_stats(name: str, views: Views, now: float) -> list[dict[str, Any]]:
    stats = [v["key"] for v in views.values() if "key" in v]
    held = [s for s in stats if s.get("in_cache")]
    return [
        {
            "timestamp": rfc3339(now),
            "name": name,
            "size": max((int(s.get("size", 0)) for s in held), default=0),
            "hit_count": sum(int(s.get("hits", 0)) for s in stats),
            "miss_count": sum(int(s.get("misses", 0)) for s in stats),
            "mutation_count": sum(int(s.get("mutations", 0)) for s in stats),
            "in_cache": bool(held),
        }
    ]


def _rows(readings: Sequence[Reading], start: float, end: float) -> list[list[Any]]:
    """Rows of COMPOUND_COLUMNS from readings whose stats hold curr_items, bytes and the
    counters of hits, misses and mutations (every node differenced against itself)."""
    step = _step(end - start, _STATS_STEPS)
    first = int(start) // step * step
    merged = merge_buckets(readings, lambda at: at // step * step)
    rows: list[list[Any]] = []
    for bucket in merged:
        if not first <= bucket.at <= end:
            continue
        rates = bucket.rates
        row: list[Any] = [
            rfc3339(bucket.at),
            bucket.stats.get("curr_items", 0),
            bucket.stats.get("bytes", 0),
        ]
        for names in (_HITS, _MISSES, _MUTATIONS):
            row.append(
                round(sum(rates.get(n, 0.0) for n in names), 6) if bucket.has_deltas else None
            )
        rows.append(row)
    return rows


def compound_series(
    samples: Iterable[tuple[float, str, Mapping[str, int]]], start: float, end: float
) -> list[dict[str, Any]]:
    """compound_stats from the stats history: (time, server, stats) per sample."""
    readings = [Reading(at, server, stats) for at, server, stats in samples]
    return [
        {
            "name": "compound_stats",
            "columns": list(COMPOUND_COLUMNS),
            "values": _rows(readings, start, end),
        }
    ]


def prefix_series(views: Views, start: float, end: float) -> list[dict[str, Any]]:
    """prefix_stats from each node's minute series of one watched prefix."""
    readings: list[Reading] = []
    for server, view in views.items():
        for at, keys, size, hits, misses, mutations in view.get("series", []):
            stats = {
                "curr_items": int(keys),
                "bytes": int(size),
                "get_hits": int(hits),
                "get_misses": int(misses),
                "cmd_set": int(mutations),
            }
            readings.append(Reading(float(at), server, stats))
    return [
        {
            "name": "prefix_stats",
            "columns": list(COMPOUND_COLUMNS),
            "values": _rows(readings, start, end),
        }
    ]


def latency_series(
    samples: Iterable[tuple[float, str, int]], start: float, end: float
) -> list[dict[str, Any]]:
    step = latency_granularity(end - start)
    buckets: dict[str, dict[int, list[int]]] = {}
    for at, server, duration in samples:
        if start <= at <= end:
            bucket = int(at) // step * step
            buckets.setdefault(server, {}).setdefault(bucket, []).append(duration)
    return [
        {
            "name": "latency",
            "tags": {"server": server},
            "columns": ["time", "duration"],
            "values": [
                [rfc3339(at), round(sum(durations) / len(durations), 2)]
                for at, durations in sorted(per_server.items())
            ],
        }
        for server, per_server in sorted(buckets.items())
    ]
