"""How stats combine: several nodes' readings into one cache-wide view, and two readings of
a counter into how much it grew (across resets)."""

from __future__ import annotations

from collections.abc import Mapping

from memcloud.stats.names import CACHE_WIDE_STATS, COUNTER_NAMES

__all__ = ["aggregate_stats", "counter_delta", "counter_deltas", "counter_increase"]

_COUNTERS = frozenset(COUNTER_NAMES)


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
