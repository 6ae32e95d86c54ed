"""The LRU order beside the plain dict (storage/lru.py): exactly an OrderedDict's order under
every command that moves or removes items, a queue that stays bounded however many entries
go stale, and what it saves per item against an OrderedDict."""

from __future__ import annotations

import random
import tracemalloc
from collections import OrderedDict

from memcloud.clock import FakeClock
from memcloud.storage.cache import Cache
from memcloud.storage.item import BUMP_INTERVAL, ITEM_OVERHEAD, Item
from memcloud.storage.lru import SEGMENT, STALE_FLOOR, LruOrder
from memcloud.storage.registry import Registry
from memcloud.storage.results import StoreMode, StoreResult

MIB = 1024 * 1024


def _cache(limit: int) -> Cache:
    return Registry(memory_limit=0, item_size_max=MIB).ensure(1, "c1", limit)


def test_the_order_is_an_ordered_dicts_through_compactions() -> None:
    # A model OrderedDict gets the moves memcached's LRU makes: a store or replace puts the
    # key last, a read older than BUMP_INTERVAL or a touch moves it last, a delete drops
    # it, a full plan evicts the first. Enough operations that stale entries pass the floor
    # many times over, so compaction runs throughout (and renumbers live entries).
    clock = FakeClock(1_700_000_000.0)
    value = b"v" * 40
    keys = [b"k%04d" % i for i in range(3000)]
    size = 5 + len(value) + ITEM_OVERHEAD
    cache = _cache(2900 * size)
    model: OrderedDict[bytes, float] = OrderedDict()  # key -> when it last moved
    rng = random.Random(15)
    compactions = 0
    for step in range(60_000):
        key = rng.choice(keys)
        action = rng.random()
        now = clock.now()
        if action < 0.45:
            result, _ = cache.store(StoreMode.SET, key, value, 0, 0, now)
            assert result is StoreResult.STORED
            model.pop(key, None)
            while len(model) >= 2900:
                model.popitem(last=False)  # the one the store evicted
            model[key] = now
        elif action < 0.8:
            item = cache.get(key, now)
            assert (item is not None) == (key in model)
            if key in model and now - model[key] >= BUMP_INTERVAL:
                model.move_to_end(key)
                model[key] = now
        elif action < 0.9:
            assert (cache.touch(key, 0, now) is not None) == (key in model)
            if key in model:
                model.move_to_end(key)  # a touch moves the item, its bump time stays
        else:
            cache.delete(key, now)
            model.pop(key, None)
        if step % 7 == 0:
            clock.advance(1)
        before = cache.lru.entries
        if step % 5000 == 4999:
            assert [key for key, _ in cache.in_lru_order()] == list(model)
        compactions += before > 2 * cache.curr_items + STALE_FLOOR
    assert compactions > 0
    assert [key for key, _ in cache.in_lru_order()] == list(model)
    assert cache.curr_items == len(model)


def test_the_queue_stays_bounded_when_nothing_is_evicted() -> None:
    # Stores and deletes of ever new keys in a plan that never fills: every delete leaves a
    # stale entry that no eviction consumes; compaction must drop them.
    clock = FakeClock(1_700_000_000.0)
    cache = _cache(100 * MIB)
    for i in range(200_000):
        cache.store(StoreMode.SET, b"new:%d" % i, b"v", 0, 0, clock.now())
        if i >= 100:
            cache.delete(b"new:%d" % (i - 100), clock.now())
    assert cache.curr_items == 100
    assert cache.lru.entries <= 2 * cache.curr_items + STALE_FLOOR + SEGMENT
    assert sum(len(segment) for segment in cache.lru.segments) <= 3 * SEGMENT + STALE_FLOOR
    assert cache.stats.evictions == 0


def test_the_order_costs_a_pointer_per_item() -> None:
    # An OrderedDict costs about 65 bytes per key more than a plain dict (its node and its
    # node table); the queue one pointer, plus a list's spare room. Each item already holds
    # a position of the value it gets (so that on the pure Python sources, where the
    # position is an int object, assigning it frees as much as it allocates).
    count = 50_000
    items = {b"key:%d" % i: Item(b"v", 0, 0.0, i + 1, 0.0) for i in range(count)}
    order = LruOrder()
    tracemalloc.start()  # before the positions are made, so that freeing them is counted
    try:
        for position, item in enumerate(items.values()):
            item.lru = position
        before = tracemalloc.get_traced_memory()[0]
        for key, item in items.items():
            order.push(key, item, items)
        per_item = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert [key for key, _ in order.walk(items)] == list(items)
    assert per_item < 16, f"{per_item:.1f} bytes per item"
