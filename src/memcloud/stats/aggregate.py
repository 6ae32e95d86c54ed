"""How stats combine: several nodes' readings into one cache-wide view, two readings of a
counter into how much it grew (across resets), and the nodes' sampled history into one
series of buckets.

- Per-node stats add up (each node holds its share of the plan and of the keys), except the
  cache-wide ones (`CACHE_WIDE_STATS`, the latest is taken). A flush that reaches every node
  (the deployment's fan-out) is counted by the node that took it only, so `cmd_flush` adds
  up like every other counter: once per flush.
- History is merged per bucket: each node's last reading in a bucket stands for it, its
  counters are differenced against that node's own previous reading (never another node's),
  and only then are the nodes' increases combined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from memcloud.stats.names import CACHE_WIDE_STATS, COUNTER_NAMES

__all__ = [
    "Bucket",
    "Reading",
    "aggregate_stats",
    "combine_counts",
    "counter_delta",
    "counter_deltas",
    "counter_increase",
    "merge_buckets",
]

_COUNTERS = frozenset(COUNTER_NAMES)

Stats = Mapping[str, int]


def aggregate_stats(per_node: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """One cache-wide view: per-node values summed, cache-wide ones taken once (the
    latest)."""
    total: dict[str, int] = {}
    for stats in per_node.values():
        for name, value in stats.items():
            if name in CACHE_WIDE_STATS:
                total[name] = max(total.get(name, value), value)
            else:
                total[name] = total.get(name, 0) + value
    return total


def combine_counts(per_node: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Nodes' increases (or rates) of the same interval as the cache's: summed."""
    total: dict[str, float] = {}
    for counts in per_node:
        for name, value in counts.items():
            total[name] = total.get(name, 0) + value
    return total


def counter_increase(new: int, old: int) -> int:
    """How much a counter grew between two readings. A smaller value means it was reset in
    between (a node restart, reset_stats), so all of it is new."""
    return new - old if new >= old else new


def counter_delta(new: Mapping[str, int], old: Mapping[str, int], name: str) -> int:
    """`counter_increase` of one counter between two readings (absent: 0)."""
    return counter_increase(new.get(name, 0), old.get(name, 0))


def counter_deltas(new: Mapping[str, int], old: Mapping[str, int]) -> dict[str, int]:
    """How much each counter of `new` grew since `old`; gauges are left out."""
    return {
        name: counter_increase(value, old.get(name, 0))
        for name, value in new.items()
        if name in _COUNTERS
    }


@dataclass(frozen=True, slots=True)
class Reading:
    """One node's stats sampled at one moment."""

    at: float
    server: str
    stats: Stats


@dataclass(frozen=True, slots=True)
class Bucket:
    """The cache over one bucket of time, from every node that has a reading in it.

    `stats` is the nodes' last readings aggregated (gauges as they were at the end of the
    bucket). `deltas` and `rates` come from the nodes that have an earlier reading to
    difference against (`differenced` of the `nodes`): each node's counter increases since its
    own previous reading, and those divided by that node's own seconds, then combined.
    """

    at: float
    stats: dict[str, int]
    deltas: dict[str, float]
    rates: dict[str, float]
    nodes: int
    differenced: int

    @property
    def has_deltas(self) -> bool:
        return self.differenced > 0


def merge_buckets(readings: Iterable[Reading], bucket_of: Callable[[float], float]) -> list[Bucket]:
    """The readings of every node, oldest first, as one `Bucket` per bucket of time that
    holds at least one reading; `bucket_of` maps a reading's time to its bucket's."""
    last: dict[float, dict[str, Reading]] = {}
    for reading in sorted(readings, key=lambda r: r.at):  # stable: the later row wins a tie
        last.setdefault(bucket_of(reading.at), {})[reading.server] = reading
    previous: dict[str, Reading] = {}
    buckets: list[Bucket] = []
    for at in sorted(last):
        per_node = last[at]
        deltas: list[dict[str, int]] = []
        rates: list[dict[str, float]] = []
        for server, reading in per_node.items():
            before = previous.get(server)
            if before is not None and reading.at > before.at:
                seconds = reading.at - before.at
                increase = counter_deltas(reading.stats, before.stats)
                deltas.append(increase)
                rates.append({name: value / seconds for name, value in increase.items()})
            previous[server] = reading
        buckets.append(
            Bucket(
                at=at,
                stats=aggregate_stats({s: r.stats for s, r in per_node.items()}),
                deltas=combine_counts(deltas),
                rates=combine_counts(rates),
                nodes=len(per_node),
                differenced=len(deltas),
            )
        )
    return buckets
