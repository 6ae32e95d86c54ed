"""Prefix flush as a unit (Cache, Registry, FakeClock): the flushed keys are gone for every
command at once, the others stay, memory and curr_items come right as the upkeep's bounded
scan reclaims, a later write is a fresh item, and the pending flushes stay bounded."""

from __future__ import annotations

import pytest

from memcloud.clock import FakeClock
from memcloud.storage.cache import PREFIX_SCAN_SLICE, Cache
from memcloud.storage.item import ITEM_OVERHEAD
from memcloud.storage.prefix_flush import MAX_PENDING_PREFIX_FLUSHES, TooManyPrefixFlushes
from memcloud.storage.registry import Registry
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult

MIB = 1024 * 1024
# More items than one scan slice: the flush is left to the upkeep (lazy).
LARGE = 3 * PREFIX_SCAN_SLICE


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def registry() -> Registry:
    return Registry(memory_limit=0, item_size_max=MIB)


def fill(registry: Registry, clock: FakeClock, per_prefix: int) -> Cache:
    cache = registry.ensure(1, "c1", 1024 * MIB)
    for i in range(per_prefix):
        for prefix in (b"views:", b"sessions:"):
            cache.store(StoreMode.SET, prefix + b"%d" % i, b"v" * 10, 0, 0, clock.now())
    return cache


def item_size(key: bytes) -> int:
    return len(key) + 10 + ITEM_OVERHEAD


def finish_upkeep(registry: Registry, clock: FakeClock) -> int:
    """Run upkeep slices until no work is left; answers how many it took."""
    for ticks in range(1, 1000):
        if not registry.upkeep(clock.now()):
            return ticks
    raise AssertionError("the upkeep never finished")


def test_a_large_cache_is_flushed_lazily_and_reclaimed_in_slices(
    registry: Registry, clock: FakeClock
) -> None:
    per_prefix = LARGE // 2
    cache = fill(registry, clock, per_prefix)
    total = 2 * per_prefix
    views_bytes = sum(item_size(b"views:%d" % i) for i in range(per_prefix))
    used = cache.used

    cache.flush_prefix(b"views:")

    # Nothing was walked: the items are still held, yet no command sees a flushed one.
    assert cache.curr_items == total and cache.used == used
    assert cache.get(b"views:0", clock.now()) is None
    hits, _ = cache.get_many([b"views:1", b"sessions:1", b"views:2"], clock.now(), MIB)
    assert [key for key, _ in hits] == [b"sessions:1"]
    assert cache.peek(b"views:3", clock.now()) is None
    assert cache.get(b"sessions:0", clock.now()) is not None
    assert cache.stats.get_flushed == 4
    assert cache.curr_items == total - 4

    ticks = finish_upkeep(registry, clock)
    assert ticks >= 3  # bounded slices, not one walk
    assert cache.curr_items == per_prefix
    assert cache.used == used - views_bytes
    assert registry.budget.used == cache.used
    assert cache.prefix_mark == 0 and cache.prefix_flushes.prefixes == ()
    assert all(cache.peek(b"sessions:%d" % i, clock.now()) is not None for i in range(per_prefix))


def test_a_small_cache_is_reclaimed_within_the_flush(registry: Registry, clock: FakeClock) -> None:
    cache = fill(registry, clock, 100)
    cache.flush_prefix(b"sessions:")
    assert cache.curr_items == 100
    assert cache.prefix_mark == 0  # nothing left pending: reads pay nothing
    assert cache.stats.cmd_flush == 1


def test_a_key_written_after_the_flush_is_a_fresh_item(
    registry: Registry, clock: FakeClock
) -> None:
    cache = fill(registry, clock, LARGE // 2)
    cache.flush_prefix(b"views:")
    now = clock.now()
    assert cache.store(StoreMode.SET, b"views:1", b"new", 0, 0, now)[0] is StoreResult.STORED
    # Each command finds a flushed item as missing, as after flush_all.
    assert cache.store(StoreMode.ADD, b"views:2", b"added", 0, 0, now)[0] is StoreResult.STORED
    assert cache.store(StoreMode.REPLACE, b"views:3", b"x", 0, 0, now)[0] is StoreResult.NOT_STORED
    assert cache.store(StoreMode.APPEND, b"views:4", b"x", 0, 0, now)[0] is StoreResult.NOT_STORED
    assert cache.store(StoreMode.CAS, b"views:5", b"x", 0, 0, now, 1)[0] is StoreResult.NOT_FOUND
    assert cache.arith(b"views:6", 1, True, now) is ArithResult.NOT_FOUND
    assert cache.touch(b"views:7", 100, now) is None
    assert cache.delete(b"views:8", now) is DeleteResult.NOT_FOUND

    finish_upkeep(registry, clock)
    item = cache.get(b"views:1", clock.now())
    assert item is not None and item.value == b"new"
    added = cache.get(b"views:2", clock.now())
    assert added is not None and added.value == b"added"
    assert cache.curr_items == LARGE // 2 + 2


def test_a_flush_made_during_a_scan_waits_for_the_next_one(
    registry: Registry, clock: FakeClock
) -> None:
    per_prefix = LARGE // 2
    cache = fill(registry, clock, per_prefix)
    cache.flush_prefix(b"views:")
    registry.upkeep(clock.now())  # the scan has begun
    cache.flush_prefix(b"sessions:1")
    while b"views:" in cache.prefix_flushes.prefixes:
        registry.upkeep(clock.now())
    # The first scan retired only the flush made before it began.
    assert cache.prefix_flushes.prefixes == (b"sessions:1",) and cache.prefix_mark
    finish_upkeep(registry, clock)
    expected = sum(1 for i in range(per_prefix) if not (b"%d" % i).startswith(b"1"))
    assert cache.curr_items == expected
    assert cache.prefix_mark == 0


def test_the_same_or_a_longer_prefix_merges_and_the_bound_refuses(
    registry: Registry, clock: FakeClock
) -> None:
    cache = fill(registry, clock, LARGE // 2)
    cache.flush_prefix(b"views:1")
    cache.flush_prefix(b"views:12")
    cache.flush_prefix(b"views:1")  # covers both: they merge into this one
    assert cache.prefix_flushes.prefixes == (b"views:1",)
    for i in range(MAX_PENDING_PREFIX_FLUSHES - 1):
        cache.flush_prefix(b"p%d:" % i)
    with pytest.raises(TooManyPrefixFlushes):
        cache.flush_prefix(b"one-too-many:")
    assert cache.stats.cmd_flush == 3 + MAX_PENDING_PREFIX_FLUSHES - 1
    cache.flush_prefix(b"p")  # a broader one merges the p… flushes away: room again
    assert len(cache.prefix_flushes.prefixes) == 2
    finish_upkeep(registry, clock)
    cache.flush_prefix(b"one-too-many:")  # once reclaimed, taken again


def test_a_whole_flush_or_an_empty_prefix_clears_what_was_pending(
    registry: Registry, clock: FakeClock
) -> None:
    cache = fill(registry, clock, LARGE // 2)
    cache.flush_prefix(b"views:")
    cache.flush_prefix(b"")
    assert cache.curr_items == 0 and cache.used == 0
    assert cache.prefix_mark == 0 and cache.prefix_flushes.prefixes == ()
    assert cache.stats.cmd_flush == 2


def test_a_share_of_another_nodes_flush_is_not_counted(
    registry: Registry, clock: FakeClock
) -> None:
    cache = fill(registry, clock, 10)
    cache.flush_prefix(b"views:", counted=False)
    assert cache.stats.cmd_flush == 0 and cache.curr_items == 10


def test_eviction_of_a_flushed_item_counts_as_reclaimed(
    registry: Registry, clock: FakeClock
) -> None:
    size = item_size(b"views:00000")
    cache = registry.ensure(1, "c1", LARGE * size)
    for i in range(LARGE):
        key = b"%s%05d" % (b"views:" if i < LARGE // 2 else b"other:", i)
        cache.store(StoreMode.SET, key, b"v" * 10, 0, 0, clock.now())
    cache.flush_prefix(b"views:")  # the oldest half: the LRU tail
    for i in range(100):
        cache.store(StoreMode.SET, b"fresh:%05d" % i, b"v" * 10, 0, 0, clock.now())
    assert cache.stats.evictions == 0 and cache.stats.reclaimed == 100
