"""Merging several nodes' sampled history (stats.aggregate.merge_buckets), counting a flush
once, and the one clock samples are stamped on (stats.sampling.tick_time)."""

from __future__ import annotations

import pytest

from memcloud.stats.aggregate import (
    Reading,
    aggregate_stats,
    combine_counts,
    merge_buckets,
)
from memcloud.stats.sampling import tick_time


def test_flushes_add_up_like_every_counter() -> None:
    """The node that took a flush counts it, the others only empty their share: so flush_alls
    sent to two different servers are two flushes, not one."""
    per_node = {"a:1": {"cmd_flush": 3, "cmd_get": 5}, "b:2": {"cmd_flush": 1, "cmd_get": 7}}
    assert aggregate_stats(per_node) == {"cmd_flush": 4, "cmd_get": 12}
    assert combine_counts([{"cmd_flush": 1, "cmd_get": 2}, {"cmd_flush": 1, "cmd_get": 3}]) == {
        "cmd_flush": 2,
        "cmd_get": 5,
    }


def test_counters_are_differenced_per_node_before_they_are_added() -> None:
    # b's counters are far ahead of a's (it started earlier): differencing the sums of two
    # points that hold different nodes would count b's whole total as one interval's.
    readings = [
        Reading(0.0, "a:1", {"total_connections": 10, "curr_items": 100}),
        Reading(0.0, "b:2", {"total_connections": 5000, "curr_items": 100}),
        Reading(60.0, "a:1", {"total_connections": 70, "curr_items": 100}),
        # b's sample of that tick is missing; its next one is differenced against its own
        Reading(120.0, "a:1", {"total_connections": 130, "curr_items": 100}),
        Reading(120.0, "b:2", {"total_connections": 5240, "curr_items": 100}),
    ]
    buckets = merge_buckets(readings, lambda at: at // 60 * 60)
    assert [(b.at, b.nodes, b.differenced) for b in buckets] == [(0, 2, 0), (60, 1, 1), (120, 2, 2)]
    assert [b.stats["curr_items"] for b in buckets] == [200, 100, 200]
    assert buckets[1].rates == {"total_connections": 1.0}
    assert buckets[2].deltas == {"total_connections": 60 + 240}
    assert buckets[2].rates == {"total_connections": 1.0 + 2.0}  # b's over its own 120 s
    assert not buckets[0].has_deltas and buckets[2].has_deltas


def test_each_nodes_last_reading_of_a_bucket_stands_for_it() -> None:
    readings = [
        Reading(1.0, "a:1", {"cmd_get": 0}),
        Reading(30.0, "a:1", {"cmd_get": 50}),
        Reading(61.0, "a:1", {"cmd_get": 60}),
    ]
    first, second = merge_buckets(readings, lambda at: at // 60 * 60)
    assert first.stats == {"cmd_get": 50}
    assert second.deltas == {"cmd_get": 10} and second.rates == {"cmd_get": 10 / 31}


@pytest.mark.parametrize(
    ("now", "interval", "stamped"),
    [
        (1_800_000_059.9993, 60.0, 1_800_000_060.0),  # woke just before the minute
        (1_800_000_060.0008, 60.0, 1_800_000_060.0),  # and just after it
        (1_800_000_074.0, 60.0, 1_800_000_060.0),  # 14 s late is still that minute's
        (1_800_000_030.0, 60.0, 1_800_000_030.0),  # the first sample, mid-minute
        (1_800_000_000.2999, 0.1, 1_800_000_000.3),
        (1_800_000_001.999, 2.0, 1_800_000_002.0),
    ],
)
def test_samples_are_stamped_with_their_ticks_time(
    now: float, interval: float, stamped: float
) -> None:
    assert tick_time(now, interval) == stamped


def test_two_nodes_woken_either_side_of_a_tick_share_a_stamp() -> None:
    early, late = tick_time(1_800_000_001.9992983, 0.5), tick_time(1_800_000_002.0002735, 0.5)
    assert early == late == 1_800_000_002.0
