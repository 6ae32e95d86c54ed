"""The stat names and how they combine (memcloud.stats), as units."""

from __future__ import annotations

import pytest

from memcloud.clock import FakeClock
from memcloud.stats.aggregate import (
    aggregate_stats,
    counter_delta,
    counter_deltas,
    counter_increase,
)
from memcloud.stats.names import (
    API_STAT_NAMES,
    CACHE_WIDE_STATS,
    COMMAND_COUNTERS,
    COUNTER_NAMES,
    GAUGE_NAMES,
    HISTORY_STAT_NAMES,
    HIT_COUNTERS,
    REQUEST_COMMANDS,
)
from memcloud.stats.report import cache_stats, node_stats
from memcloud.storage.registry import Registry
from memcloud.storage.results import StoreMode


def test_the_api_names_are_the_references_31_in_its_order() -> None:
    assert len(API_STAT_NAMES) == 31 == len(set(API_STAT_NAMES))
    assert list(API_STAT_NAMES) == sorted(API_STAT_NAMES)


def test_every_reported_name_is_exactly_one_kind() -> None:
    kinds = (set(COUNTER_NAMES), set(GAUGE_NAMES), set(CACHE_WIDE_STATS))
    assert sum(len(kind) for kind in kinds) == len(set().union(*kinds))  # no overlap
    assert set(HISTORY_STAT_NAMES) <= set().union(*kinds)
    assert set(HISTORY_STAT_NAMES) - set(API_STAT_NAMES) == {"get_expired", "get_flushed"}


def test_command_groupings_name_counters() -> None:
    counters = set(COUNTER_NAMES)
    for names in COMMAND_COUNTERS.values():
        assert set(names) <= counters
    for hits, attempts in HIT_COUNTERS.values():
        assert set(hits) <= set(attempts) <= counters
    assert set(REQUEST_COMMANDS) <= set(COMMAND_COUNTERS)


def test_a_node_reports_the_history_names_with_the_stats_values() -> None:
    clock = FakeClock()
    cache = Registry(memory_limit=0, item_size_max=1024).ensure(1, "c", 10_000)
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    cache.get(b"k", clock.now())
    cache.get(b"missing", clock.now())
    report = node_stats(cache, clock.now())
    assert list(report) == list(HISTORY_STAT_NAMES)
    lines = dict(
        cache_stats(
            cache,
            started_at=clock.now(),
            now=clock.now() + 7,
            max_connections=9,
            control_store_read_at=clock.now() + 4,
            control_store_up=False,
        )
    )
    assert report == {name: int(lines[name]) for name in HISTORY_STAT_NAMES} | {
        "time": int(clock.now())
    }
    assert (lines["control_store_up"], lines["control_store_age"]) == (0, 3)
    assert (report["get_hits"], report["get_misses"], report["curr_items"]) == (1, 1, 1)


def test_nodes_add_up_except_the_cache_wide_time() -> None:
    per_node = {
        "a:1": {"cmd_get": 3, "bytes": 100, "time": 50},
        "b:2": {"cmd_get": 4, "bytes": 10, "time": 52},
        "c:3": {"cmd_get": 0, "bytes": 1, "time": 51},
    }
    assert aggregate_stats(per_node) == {"cmd_get": 7, "bytes": 111, "time": 52}
    assert aggregate_stats({}) == {}


@pytest.mark.parametrize(
    ("new", "old", "grown"),
    [(10, 4, 6), (4, 4, 0), (3, 10, 3), (0, 10, 0)],
    ids=["grew", "same", "reset then grew", "reset"],
)
def test_counter_increase_across_resets(new: int, old: int, grown: int) -> None:
    assert counter_increase(new, old) == grown


def test_counter_deltas_leave_gauges_out() -> None:
    new = {"cmd_get": 10, "get_expired": 2, "bytes": 5, "curr_items": 1, "time": 99}
    old = {"cmd_get": 4, "bytes": 50, "time": 30}
    assert counter_deltas(new, old) == {"cmd_get": 6, "get_expired": 2}
    assert counter_delta(new, old, "cmd_get") == 6
    assert counter_delta(new, old, "cmd_set") == 0
