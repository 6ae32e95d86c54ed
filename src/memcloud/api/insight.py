"""`insight/processed_stats`: rates and ratios derived from the stats history.

The history holds cumulative counters per node. For a time range the granularity is chosen
as the hosted service documents it (<= 24 h: 1 minute, <= 1 week: 10 minutes, <= 3 months:
1 hour, longer: 1 day); each node's last sample in a bucket stands for the bucket, and a
value is derived from the difference to the node's previous bucket:

- `*_rate`: operations (or bytes, connections, evictions) per second;
- `*_fraction`: that command's share of all requests (get, set, delete, touch, flush, incr,
  decr; cas counts as a set), 0..1;
- `*_hit_rate`: hits / (hits + misses) of that command (cas: hits / all cas), 0..1;
  `hit_rate` is over every command that can hit or miss;
- `bytes`, `items`, `connections`, `max_bytes`: the values at the end of the bucket.

A ratio with no operations in the bucket is `null`, as is every rate of a node's first bucket
(nothing to difference against). A counter that went down (restart, reset_stats) counts from 0.
Across nodes (`stats.aggregate.merge_buckets`) every node's counters are differenced against
that node's own previous sample, then added up (each node holds its share of the plan and of
the keys), except a flush, which every node counts and which counts once. A bucket between
the series' first sample (or the range's start, if the history reaches back before it) and
its last that holds no sample (the server was down) is a row of zeros, as the hosted service
pads its series.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from memcloud.control.models import StatsSample
from memcloud.stats.aggregate import Bucket, Reading, merge_buckets
from memcloud.stats.names import COMMAND_COUNTERS, HIT_COUNTERS, REQUEST_COMMANDS

__all__ = [
    "PROCESSED_NAMES",
    "default_range",
    "format_time",
    "granularity",
    "parse_time",
    "processed_series",
]

_DAY = 86400
_GRANULARITY = ((_DAY, 60), (7 * _DAY, 600), (92 * _DAY, 3600))

_PLAIN_RATES = {
    "auth_cmds_rate": ("auth_cmds",),
    "auth_errors_rate": ("auth_errors",),
    "bytes_read_rate": ("bytes_read",),
    "bytes_write_rate": ("bytes_written",),
    "cas_badval_rate": ("cas_badval",),
    "connection_rate": ("total_connections",),
    "eviction_rate": ("evictions",),
    "get_expired_rate": ("get_expired",),
    "request_rate": tuple(c for op in REQUEST_COMMANDS for c in COMMAND_COUNTERS[op]),
    **{f"{op}_rate": counters for op, counters in COMMAND_COUNTERS.items()},
}
_FRACTIONS = {
    f"{op}_fraction": op for op in ("cas", "decr", "delete", "flush", "get", "incr", "set", "touch")
}
_HIT_RATES = {f"{op}_hit_rate": spec for op, spec in HIT_COUNTERS.items()}
_HIT_RATES["hit_rate"] = (
    tuple(c for hits, _ in HIT_COUNTERS.values() for c in hits),
    tuple(c for _, both in HIT_COUNTERS.values() for c in both),
)
_GAUGES = {
    "bytes": "bytes",
    "items": "curr_items",
    "connections": "curr_connections",
    "max_bytes": "limit_maxbytes",
}

PROCESSED_NAMES: tuple[str, ...] = tuple(
    sorted({*_PLAIN_RATES, *_FRACTIONS, *_HIT_RATES, *_GAUGES})
)

Value = float | int | None


def granularity(span_seconds: float) -> int:
    for limit, step in _GRANULARITY:
        if span_seconds <= limit:
            return step
    return _DAY


def parse_time(text: str) -> float:
    """RFC 3339 (`2023-01-10T15:20:00Z`, offsets, fractions) to epoch seconds."""
    value = dt.datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def format_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_range(now: float) -> tuple[float, float]:
    return now - _DAY, now


def _sum(deltas: Mapping[str, float], names: Iterable[str]) -> float:
    return sum(deltas.get(name, 0) for name in names)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def _row(bucket: Bucket, names: Sequence[str]) -> list[Value]:
    """One output row from a bucket of one or more nodes."""
    deltas, rates = bucket.deltas, bucket.rates
    values: list[Value] = []
    for name in names:
        if name in _GAUGES:
            values.append(bucket.stats.get(_GAUGES[name], 0))
        elif not bucket.has_deltas:
            values.append(None)
        elif name in _PLAIN_RATES:
            values.append(round(_sum(rates, _PLAIN_RATES[name]), 6))
        elif name in _FRACTIONS:
            op = COMMAND_COUNTERS[_FRACTIONS[name]]
            values.append(_ratio(_sum(deltas, op), _sum(deltas, _PLAIN_RATES["request_rate"])))
        else:
            hits, both = _HIT_RATES[name]
            values.append(_ratio(_sum(deltas, hits), _sum(deltas, both)))
    return values


def _rows(
    readings: Sequence[Reading], names: Sequence[str], step: int, first: int, end: float
) -> list[list[Value | str]]:
    """The rows of one series: one per bucket in [first, end] from its first sample (or from
    `first`, if the series has samples before it) to its last, a bucket without a sample
    padded with zeros."""
    merged = merge_buckets(readings, lambda at: at // step * step)
    buckets = {int(b.at): b for b in merged if first <= b.at <= end}
    if not buckets:
        return []
    earlier = any(b.at < first for b in merged)
    zeros: list[Value] = [0] * len(names)
    return [
        [format_time(at), *(_row(buckets[at], names) if at in buckets else zeros)]
        for at in range(first if earlier else min(buckets), max(buckets) + 1, step)
    ]


def processed_series(
    samples: Sequence[StatsSample],
    names: Sequence[str],
    start: float,
    end: float,
    *,
    per_server: bool = False,
) -> list[dict[str, object]]:
    """InfluxDB-style series: `[{"name", ["tags"], "columns", "values"}]`.

    `samples` should reach back one bucket before `start`, so the first row has rates.
    """
    step = granularity(end - start)
    first = int(start) // step * step
    columns = ["time", *names]
    readings = [Reading(s.at, s.server, s.stats) for s in samples]
    if per_server:
        by_node: dict[str, list[Reading]] = {}
        for reading in readings:
            by_node.setdefault(reading.server, []).append(reading)
        return [
            {
                "name": "processed_stats",
                "tags": {"server": server},
                "columns": columns,
                "values": _rows(rows, names, step, first, end),
            }
            for server, rows in sorted(by_node.items())
        ]
    return [
        {
            "name": "processed_stats",
            "columns": columns,
            "values": _rows(readings, names, step, first, end),
        }
    ]
