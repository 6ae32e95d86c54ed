"""What each alert type measures from two readings, and which side of the threshold fires."""

from __future__ import annotations

import pytest

from memcloud.alerts.triggers import Reading, breached, measure

BEFORE = Reading(1000.0, {"get_hits": 100, "get_misses": 0, "evictions": 10})


@pytest.mark.parametrize(
    ("kind", "stats", "at", "limit", "value"),
    [
        ("hit_rate", {"get_hits": 130, "get_misses": 90}, 1060.0, 250, 25.0),
        ("hit_rate", {"get_hits": 100, "get_misses": 0}, 1060.0, 250, None),  # no gets
        # A reset in between (counters smaller): all of it is new.
        ("hit_rate", {"get_hits": 3, "get_misses": 1}, 1060.0, 250, 75.0),
        ("evictions", {"evictions": 310}, 1120.0, 250, 150.0),  # 300 in two minutes
        ("evictions", {"evictions": 310}, 1000.0, 250, None),  # no time passed
        ("memory_usage", {"bytes": 90, "limit_maxbytes": 120}, 1060.0, 250, 75.0),
        ("memory_usage", {"bytes": 90, "limit_maxbytes": 0}, 1060.0, 250, None),
        ("connections", {"curr_connections": 200}, 1060.0, 250, 80.0),
        # Latency comes from the probe's samples (the reading's latency_us), never from stats.
        ("latency", {"get_hits": 1}, 1060.0, 250, None),
    ],
)
def test_measure(
    kind: str, stats: dict[str, int], at: float, limit: int, value: float | None
) -> None:
    assert measure(kind, Reading(at, stats), BEFORE, limit) == value


def test_the_first_reading_measures_only_gauges() -> None:
    now = Reading(1060.0, {"get_hits": 5, "bytes": 1, "limit_maxbytes": 4})
    assert measure("hit_rate", now, None, 10) is None
    assert measure("memory_usage", now, None, 10) == 25.0


def test_hit_rate_fires_under_and_the_others_over() -> None:
    assert breached("hit_rate", 49.9, 50) and not breached("hit_rate", 50, 50)
    for kind in ("memory_usage", "evictions", "connections", "latency"):
        assert breached(kind, 50.1, 50) and not breached(kind, 50, 50)
