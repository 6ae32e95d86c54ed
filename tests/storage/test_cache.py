"""Cache and Registry as units, with a FakeClock: LRU within the plan, expiry, CAS, arith,
flush without a stall, and the server-wide budget."""

from __future__ import annotations

import time

import pytest

from memcloud.clock import FakeClock
from memcloud.storage.cache import MAX_RELATIVE_EXPTIME, Cache
from memcloud.storage.counter import parse_counter
from memcloud.storage.item import BUMP_INTERVAL, ITEM_OVERHEAD
from memcloud.storage.registry import FREE_SLICE, Registry
from memcloud.storage.results import ArithResult, StoreMode, StoreResult

MIB = 1024 * 1024


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def registry() -> Registry:
    return Registry(memory_limit=0, item_size_max=MIB)


def make(registry: Registry, cache_id: int = 1, limit: int = 10 * MIB) -> Cache:
    return registry.ensure(cache_id, f"c{cache_id}", limit)


def test_memory_is_key_value_and_overhead(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"key", b"value", 0, 0, clock.now())
    assert cache.used == 3 + 5 + ITEM_OVERHEAD
    cache.store(StoreMode.SET, b"key", b"v", 0, 0, clock.now())
    assert cache.used == 3 + 1 + ITEM_OVERHEAD
    cache.delete(b"key", clock.now())
    assert cache.used == 0 and registry.budget.used == 0


def test_lru_eviction_stays_within_plan(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry, limit=MIB)
    value = b"v" * 1000
    for i in range(5 * 1024):  # 5 MB of writes into a 1 MB plan
        result, _ = cache.store(StoreMode.SET, b"k%d" % i, value, 0, 0, clock.now())
        assert result is StoreResult.STORED
        assert cache.used <= cache.limit
    assert cache.stats.evictions > 3000
    assert cache.get(b"k0", clock.now()) is None  # the oldest went first
    assert cache.get(b"k%d" % (5 * 1024 - 1), clock.now()) is not None


@pytest.mark.parametrize("multi_get", [False, True], ids=["get", "get_many"])
def test_recently_read_items_survive_eviction(
    registry: Registry, clock: FakeClock, multi_get: bool
) -> None:
    size = 100 + 3 + ITEM_OVERHEAD
    cache = make(registry, limit=10 * size)
    for i in range(10):
        cache.store(StoreMode.SET, b"k%02d" % i, b"v" * 100, 0, 0, clock.now())
    clock.advance(BUMP_INTERVAL)
    if multi_get:
        assert len(cache.get_many([b"k00"], clock.now(), 1 << 20)[0]) == 1
    else:
        assert cache.get(b"k00", clock.now()) is not None  # now most recently used
    cache.store(StoreMode.SET, b"k10", b"v" * 100, 0, 0, clock.now())
    assert cache.get(b"k00", clock.now()) is not None
    assert cache.get(b"k01", clock.now()) is None
    assert cache.stats.evictions == 1


def test_a_read_moves_an_item_at_most_once_per_bump_interval(
    registry: Registry, clock: FakeClock
) -> None:
    # memcached's ITEM_UPDATE_INTERVAL: an item read again within the interval of its
    # store (or its last move) keeps its place, so the oldest-stored goes first.
    size = 100 + 3 + ITEM_OVERHEAD
    cache = make(registry, limit=3 * size)
    for key in (b"k0", b"k1", b"k2"):
        cache.store(StoreMode.SET, key, b"v" * 100, 0, 0, clock.now())
    clock.advance(BUMP_INTERVAL - 1)
    assert cache.get(b"k0", clock.now()) is not None  # within the interval: not moved
    cache.store(StoreMode.SET, b"k3", b"v" * 100, 0, 0, clock.now())
    assert cache.peek(b"k0", clock.now()) is None
    clock.advance(1)
    assert cache.get(b"k1", clock.now()) is not None  # a full interval since its store
    cache.store(StoreMode.SET, b"k4", b"v" * 100, 0, 0, clock.now())
    assert cache.peek(b"k1", clock.now()) is not None
    assert cache.peek(b"k2", clock.now()) is None


def test_eviction_never_touches_another_cache(registry: Registry, clock: FakeClock) -> None:
    small, other = make(registry, 1, MIB), make(registry, 2, MIB)
    for i in range(100):
        other.store(StoreMode.SET, b"k%d" % i, b"o" * 1000, 0, 0, clock.now())
    for i in range(5000):
        small.store(StoreMode.SET, b"k%d" % i, b"s" * 1000, 0, 0, clock.now())
    assert other.curr_items == 100 and other.stats.evictions == 0
    assert all(other.peek(b"k%d" % i, clock.now()) is not None for i in range(100))


def test_server_budget_bounds_all_caches(clock: FakeClock) -> None:
    registry = Registry(memory_limit=2 * MIB, item_size_max=MIB)
    a, b = make(registry, 1, 10 * MIB), make(registry, 2, 10 * MIB)
    for i in range(3000):
        a.store(StoreMode.SET, b"a%d" % i, b"x" * 1000, 0, 0, clock.now())
        b.store(StoreMode.SET, b"b%d" % i, b"x" * 1000, 0, 0, clock.now())
        assert registry.budget.used <= registry.budget.limit
    assert registry.budget.used == a.used + b.used


def test_item_larger_than_plan_is_refused(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry, limit=1000)
    result, _ = cache.store(StoreMode.SET, b"k", b"x" * 2000, 0, 0, clock.now())
    assert result is StoreResult.NO_MEMORY


def test_item_size_limit_counts_key_and_value(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    key = b"k" * 200
    ok, _ = cache.store(StoreMode.SET, key, b"x" * (MIB - 200), 0, 0, clock.now())
    assert ok is StoreResult.STORED
    big, _ = cache.store(StoreMode.SET, key, b"x" * (MIB - 199), 0, 0, clock.now())
    assert big is StoreResult.TOO_LARGE


def test_append_past_the_limit_keeps_the_item(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"x" * 600_000, 7, 0, clock.now())
    for mode in (StoreMode.APPEND, StoreMode.PREPEND):
        result, _ = cache.store(mode, b"k", b"y" * 600_000, 0, 0, clock.now())
        assert result is StoreResult.TOO_LARGE
    item = cache.get(b"k", clock.now())
    assert item is not None and item.value == b"x" * 600_000 and item.flags == 7


def test_append_prepend_keep_flags_and_expiry(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"b", 3, 100, clock.now())
    cache.store(StoreMode.APPEND, b"k", b"c", 9, 0, clock.now())
    cache.store(StoreMode.PREPEND, b"k", b"a", 9, 0, clock.now())
    item = cache.get(b"k", clock.now())
    assert item is not None and (item.value, item.flags) == (b"abc", 3)
    clock.advance(101)
    assert cache.get(b"k", clock.now()) is None


@pytest.mark.parametrize(
    ("exptime", "alive_after"),
    [
        (0, [1, 10**6]),
        (10, [9]),
        (MAX_RELATIVE_EXPTIME, [MAX_RELATIVE_EXPTIME - 1]),
    ],
)
def test_exptime_rules(
    registry: Registry, clock: FakeClock, exptime: int, alive_after: list[int]
) -> None:
    cache = make(registry)
    start = clock.now()
    cache.store(StoreMode.SET, b"k", b"v", 0, exptime, start)
    for seconds in alive_after:
        assert cache.peek(b"k", start + seconds) is not None
    if exptime:
        assert cache.peek(b"k", start + exptime) is None


def test_exptime_over_30_days_is_absolute(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    at = int(clock.now()) + 50
    cache.store(StoreMode.SET, b"k", b"v", 0, at, clock.now())
    assert cache.peek(b"k", at - 1) is not None
    assert cache.peek(b"k", at) is None
    # an absolute time in the past: gone at once
    cache.store(StoreMode.SET, b"old", b"v", 0, MAX_RELATIVE_EXPTIME + 1, clock.now())
    assert cache.peek(b"old", clock.now()) is None


def test_negative_exptime_stores_nothing(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    result, _ = cache.store(StoreMode.SET, b"k", b"w", 0, -1, clock.now())
    assert result is StoreResult.STORED
    assert cache.peek(b"k", clock.now()) is None
    assert cache.used == 0 and cache.curr_items == 0


def test_expired_items_are_reclaimed_without_being_touched(
    registry: Registry, clock: FakeClock
) -> None:
    cache = make(registry)
    for i in range(5000):
        cache.store(StoreMode.SET, b"k%d" % i, b"v" * 10, 0, 10 if i % 2 else 0, clock.now())
    assert cache.curr_items == 5000
    clock.advance(11)
    for _ in range(10):  # bounded slices
        registry.upkeep(clock.now())
    assert cache.curr_items == 2500
    assert cache.used == 2500 * (len(b"k0") + 10 + ITEM_OVERHEAD) + sum(
        len(b"%d" % i) - 1 for i in range(0, 5000, 2)
    )
    assert cache.stats.reclaimed == 2500


def test_touch_moves_the_expiry(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"v", 0, 10, clock.now())
    assert cache.touch(b"k", 100, clock.now()) is not None
    clock.advance(50)
    registry.upkeep(clock.now())
    assert cache.peek(b"k", clock.now()) is not None
    assert cache.touch(b"k", 0, clock.now()) is not None  # never expires now
    clock.advance(10**6)
    registry.upkeep(clock.now())
    assert cache.peek(b"k", clock.now()) is not None
    assert cache.touch(b"missing", 10, clock.now()) is None


def test_overwritten_items_do_not_leak_expiry_entries(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    for round_ in range(20):
        for i in range(1000):
            cache.store(StoreMode.SET, b"k%d" % i, b"v", 0, 1000 + round_, clock.now())
        registry.upkeep(clock.now())
    assert len(cache._expiries) <= 3 * cache.curr_items + 1024


def test_cas(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    result, cas = cache.store(StoreMode.CAS, b"k", b"v", 0, 0, clock.now(), 1)
    assert result is StoreResult.NOT_FOUND
    _, cas = cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    assert cache.store(StoreMode.CAS, b"k", b"w", 0, 0, clock.now(), cas + 1)[0] is (
        StoreResult.EXISTS
    )
    result, new_cas = cache.store(StoreMode.CAS, b"k", b"w", 0, 0, clock.now(), cas)
    assert result is StoreResult.STORED and new_cas != cas
    assert cache.store(StoreMode.CAS, b"k", b"x", 0, 0, clock.now(), cas)[0] is (StoreResult.EXISTS)
    assert (cache.stats.cas_hits, cache.stats.cas_badval, cache.stats.cas_misses) == (1, 2, 1)


def test_cas_uniques_are_64_bit_and_increasing(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    uniques = [cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())[1] for _ in range(100)]
    assert uniques == sorted(set(uniques)) and all(0 < u < 2**64 for u in uniques)


@pytest.mark.parametrize(
    ("value", "delta", "incr", "expected"),
    [
        (b"10", 5, True, 15),
        (b"18446744073709551615", 2, True, 1),  # wraps at 2**64
        (b"5", 6, False, 0),  # decr stops at 0
        (b"5", 5, False, 0),
        (b"99", 1, True, 100),
        (b" 10", 1, True, 11),
        (b"10 ab", 1, True, 11),
        (b"-0", 1, True, 1),
        (b"+7", 1, True, 8),
        (b"000000000000000000000000001", 1, True, 2),
    ],
)
def test_arith(
    registry: Registry, clock: FakeClock, value: bytes, delta: int, incr: bool, expected: int
) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"n", value, 4, 0, clock.now())
    assert cache.arith(b"n", delta, incr, clock.now()) == expected
    item = cache.get(b"n", clock.now())
    assert item is not None and item.value == b"%d" % expected and item.flags == 4


@pytest.mark.parametrize(
    "value", [b"", b"ab", b"-5", b"1.5", b"18446744073709551616", b"0x10", b"9" * 5000]
)
def test_arith_non_numeric(registry: Registry, clock: FakeClock, value: bytes) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"n", value, 0, 0, clock.now())
    assert cache.arith(b"n", 1, True, clock.now()) is ArithResult.NON_NUMERIC
    assert cache.arith(b"missing", 1, True, clock.now()) is ArithResult.NOT_FOUND


def test_parse_counter_never_raises_on_long_values() -> None:
    assert parse_counter(b"1" * 100_000) is None
    assert parse_counter(b"0" * 100_000 + b"7") == 7
    assert parse_counter(b" " * 100_000) is None


def test_add_replace_modes(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    assert cache.store(StoreMode.REPLACE, b"k", b"v", 0, 0, clock.now())[0] is (
        StoreResult.NOT_STORED
    )
    assert cache.store(StoreMode.ADD, b"k", b"v", 0, 0, clock.now())[0] is StoreResult.STORED
    assert cache.store(StoreMode.ADD, b"k", b"w", 0, 0, clock.now())[0] is (StoreResult.NOT_STORED)
    assert cache.store(StoreMode.REPLACE, b"k", b"w", 0, 0, clock.now())[0] is (StoreResult.STORED)
    # an expired item counts as absent for add
    cache.store(StoreMode.SET, b"e", b"v", 0, 5, clock.now())
    clock.advance(6)
    assert cache.store(StoreMode.ADD, b"e", b"v", 0, 0, clock.now())[0] is StoreResult.STORED


def test_delayed_flush(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    cache.flush(10, clock.now())
    clock.advance(9)
    assert cache.peek(b"k", clock.now()) is not None
    clock.advance(1)
    assert cache.peek(b"k", clock.now()) is None
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    clock.advance(100)
    assert cache.peek(b"k", clock.now()) is not None  # stored after the flush time


def test_delayed_flush_reaches_idle_cache_through_upkeep(
    registry: Registry, clock: FakeClock
) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    cache.flush(10, clock.now())
    clock.advance(10)
    registry.upkeep(clock.now())
    assert cache.curr_items == 0 and cache.used == 0


def test_delayed_flush_absolute_time(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    cache.flush(int(clock.now()) + 20, clock.now())  # over 30 days: a Unix time
    clock.advance(19)
    assert cache.peek(b"k", clock.now()) is not None
    clock.advance(1)
    assert cache.peek(b"k", clock.now()) is None


def test_flush_is_constant_time_and_freed_in_bounded_slices(
    registry: Registry, clock: FakeClock
) -> None:
    cache = make(registry, limit=1024 * MIB)
    other = make(registry, 2)
    other.store(StoreMode.SET, b"keep", b"v", 0, 0, clock.now())
    for i in range(300_000):
        cache.store(StoreMode.SET, b"k%d" % i, b"v", 0, 0, clock.now())
    # CPU time of this process, not wall time: a loaded machine (CI beside other jobs)
    # must not turn a descheduled moment into a failure; the work itself is what is bounded.
    started = time.process_time()
    cache.flush_now()
    assert time.process_time() - started < 0.005
    assert cache.curr_items == 0 and cache.used == 0
    slices = 0
    while registry.graveyard:
        started = time.process_time()
        registry.upkeep(clock.now())
        assert time.process_time() - started < 0.05
        slices += 1
        assert slices <= 300_000 // FREE_SLICE + 1
    assert other.peek(b"keep", clock.now()) is not None


def test_resize_shrinks_by_eviction(registry: Registry, clock: FakeClock) -> None:
    cache = make(registry, limit=MIB)
    for i in range(900):
        cache.store(StoreMode.SET, b"k%d" % i, b"x" * 1000, 0, 0, clock.now())
    registry.ensure(1, "c1", MIB // 2)
    assert cache.used <= MIB // 2 and cache.stats.evictions > 0


def test_remove_cache_frees_its_memory(clock: FakeClock) -> None:
    registry = Registry(memory_limit=MIB * 100, item_size_max=MIB)
    cache = make(registry)
    cache.store(StoreMode.SET, b"k", b"v" * 1000, 0, 0, clock.now())
    registry.remove(1)
    assert registry.get(1) is None and registry.budget.used == 0


def test_a_store_that_reuses_an_expired_items_memory_counts_it_reclaimed(
    registry: Registry, clock: FakeClock
) -> None:
    size = 100 + 3 + ITEM_OVERHEAD
    cache = make(registry, limit=2 * size)
    cache.store(StoreMode.SET, b"k00", b"v" * 100, 0, 10, clock.now())  # expires in 10 s
    cache.store(StoreMode.SET, b"k01", b"v" * 100, 0, 0, clock.now())
    clock.advance(11)
    cache.store(StoreMode.SET, b"k02", b"v" * 100, 0, 0, clock.now())  # takes k00's room
    assert (cache.stats.reclaimed, cache.stats.evictions) == (1, 0)
    cache.store(StoreMode.SET, b"k03", b"v" * 100, 0, 0, clock.now())  # evicts live k01
    assert (cache.stats.reclaimed, cache.stats.evictions) == (1, 1)
