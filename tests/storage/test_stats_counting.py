"""What Cache's methods count: get_expired and get_flushed as memcached counts them (a command
that finds an expired or a flushed item), the reaper's grace, and delete's own result."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memcloud.clock import FakeClock
from memcloud.storage.cache import REAP_GRACE, Cache
from memcloud.storage.registry import Registry
from memcloud.storage.results import DeleteResult, StoreMode, StoreResult
from memcloud.storage.stats import CacheStats

MIB = 1024 * 1024


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def registry() -> Registry:
    return Registry(memory_limit=0, item_size_max=MIB)


@pytest.fixture
def cache(registry: Registry) -> Cache:
    return registry.ensure(1, "c1", 10 * MIB)


def counted(cache: Cache) -> dict[str, int]:
    s = cache.stats
    return {
        "cmd_get": s.cmd_get,
        "get_hits": s.get_hits,
        "get_misses": s.get_misses,
        "get_expired": s.get_expired,
        "get_flushed": s.get_flushed,
        "expired": s.expired,
    }


def store(cache: Cache, key: bytes, now: float, exptime: int = 0) -> None:
    result, _ = cache.store(StoreMode.SET, key, b"v", 0, exptime, now)
    assert result is StoreResult.STORED


# Every way a command reads a key: the gets (one counted get each) and the other commands
# (memcached's do_item_get counts get_expired / get_flushed for them too, and no get).
READS: dict[str, Callable[[Cache, bytes, float], object]] = {
    "get": lambda c, k, now: c.get(k, now),
    "get_many": lambda c, k, now: c.get_many([k], now, MIB),
    "gat": lambda c, k, now: c.gat(k, 100, now),
    "touch": lambda c, k, now: c.touch(k, 100, now),
    "delete": lambda c, k, now: c.delete(k, now),
    "incr": lambda c, k, now: c.arith(k, 1, True, now),
    "set": lambda c, k, now: c.store(StoreMode.SET, k, b"1", 0, 0, now),
    "add": lambda c, k, now: c.store(StoreMode.ADD, k, b"1", 0, 0, now),
    "append": lambda c, k, now: c.store(StoreMode.APPEND, k, b"1", 0, 0, now),
    "peek": lambda c, k, now: c.peek(k, now),
}
GETS = {"get", "get_many", "gat"}


@pytest.mark.parametrize("read", list(READS))
def test_a_command_that_finds_an_expired_item_counts_get_expired(
    cache: Cache, clock: FakeClock, read: str
) -> None:
    store(cache, b"k", clock.now(), exptime=10)
    clock.advance(10)  # expired now (exptime <= now), not yet reaped
    READS[read](cache, b"k", clock.now())
    is_get = read in GETS
    assert counted(cache) == {
        "cmd_get": int(is_get),
        "get_hits": 0,
        "get_misses": int(is_get),
        "get_expired": 1,
        "get_flushed": 0,
        "expired": 1,
    }
    # it is gone: the next read finds nothing to count
    READS[read](cache, b"k", clock.now())
    assert (cache.stats.get_expired, cache.stats.get_flushed) == (1, 0)


@pytest.mark.parametrize("read", list(READS))
def test_a_command_that_finds_a_flushed_item_counts_get_flushed(
    cache: Cache, clock: FakeClock, read: str
) -> None:
    store(cache, b"k", clock.now())
    store(cache, b"gone", clock.now(), exptime=5)
    cache.flush(0, clock.now())
    clock.advance(5)  # flushed before it expired: memcached checks the flush first
    READS[read](cache, b"k", clock.now())
    READS[read](cache, b"gone", clock.now())
    is_get = read in GETS
    assert counted(cache) == {
        "cmd_get": 2 * is_get,
        "get_hits": 0,
        "get_misses": 2 * is_get,
        "get_expired": 0,
        "get_flushed": 2,
        "expired": 0,
    }
    READS[read](cache, b"k", clock.now())
    assert cache.stats.get_flushed == 2


def test_hits_and_plain_misses_count_neither(cache: Cache, clock: FakeClock) -> None:
    store(cache, b"k", clock.now(), exptime=10)
    assert cache.get(b"k", clock.now()) is not None
    assert cache.get(b"never", clock.now()) is None
    hits, looked_at = cache.get_many([b"k", b"never"], clock.now(), MIB)
    assert [key for key, _ in hits] == [b"k"] and looked_at == 2
    assert counted(cache) == {
        "cmd_get": 4,
        "get_hits": 2,
        "get_misses": 2,
        "get_expired": 0,
        "get_flushed": 0,
        "expired": 0,
    }


def test_multi_get_counts_each_key(cache: Cache, clock: FakeClock) -> None:
    for key in (b"a", b"b"):
        store(cache, key, clock.now())
    cache.flush(0, clock.now())
    store(cache, b"x", clock.now(), exptime=10)
    store(cache, b"y", clock.now(), exptime=10)
    store(cache, b"live", clock.now())
    clock.advance(10)
    hits, _ = cache.get_many([b"a", b"x", b"live", b"b", b"y", b"never"], clock.now(), MIB)
    assert [key for key, _ in hits] == [b"live"]
    assert counted(cache) == {
        "cmd_get": 6,
        "get_hits": 1,
        "get_misses": 5,
        "get_expired": 2,
        "get_flushed": 2,
        "expired": 2,
    }


def test_a_delayed_flush_counts_once_it_is_due(cache: Cache, clock: FakeClock) -> None:
    store(cache, b"k", clock.now())
    cache.flush(10, clock.now())
    clock.advance(9)
    assert cache.get(b"k", clock.now()) is not None
    clock.advance(1)
    assert cache.get(b"k", clock.now()) is None
    assert (cache.stats.get_flushed, cache.stats.get_misses) == (1, 1)


def test_a_key_stored_again_after_the_flush_is_not_flushed_later(
    cache: Cache, clock: FakeClock
) -> None:
    store(cache, b"k", clock.now())
    cache.flush(0, clock.now())
    store(cache, b"k", clock.now())  # finds the flushed item (counted, as memcached does)
    assert cache.delete(b"k", clock.now()) is DeleteResult.DELETED
    assert cache.get(b"k", clock.now()) is None
    assert (cache.stats.get_flushed, cache.stats.get_misses) == (1, 1)


def test_flushed_items_freed_by_the_upkeep_are_not_found(
    registry: Registry, cache: Cache, clock: FakeClock
) -> None:
    store(cache, b"k", clock.now())
    cache.flush(0, clock.now())
    registry.upkeep(clock.now())  # frees the flushed dict: nothing is left to find
    assert not registry.graveyard
    assert cache.get(b"k", clock.now()) is None
    assert (cache.stats.get_flushed, cache.stats.get_misses) == (0, 1)


def test_the_reaper_leaves_just_expired_items_for_commands_to_find(
    registry: Registry, cache: Cache, clock: FakeClock
) -> None:
    store(cache, b"soon", clock.now(), exptime=10)
    store(cache, b"later", clock.now(), exptime=10)
    clock.advance(10 + REAP_GRACE / 2)
    registry.upkeep(clock.now())
    assert cache.curr_items == 2 and cache.stats.reclaimed == 0
    assert cache.get(b"soon", clock.now()) is None
    assert (cache.stats.get_expired, cache.stats.expired) == (1, 1)
    clock.advance(REAP_GRACE)
    registry.upkeep(clock.now())
    assert cache.curr_items == 0 and cache.used == 0
    assert (cache.stats.reclaimed, cache.stats.expired, cache.stats.get_expired) == (1, 2, 1)
    assert cache.get(b"later", clock.now()) is None
    assert cache.stats.get_expired == 1  # reaped items are not found by anyone


def test_delete_answers_its_own_result(cache: Cache, clock: FakeClock) -> None:
    _, cas = cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    assert cache.delete(b"k", clock.now(), cas + 1) is DeleteResult.EXISTS
    assert cache.delete(b"k", clock.now(), cas) is DeleteResult.DELETED
    assert cache.delete(b"k", clock.now()) is DeleteResult.NOT_FOUND
    s = cache.stats
    assert (s.cmd_delete, s.delete_hits, s.delete_misses) == (3, 1, 1)


def test_a_refused_store_counts_a_set_and_changes_nothing(cache: Cache, clock: FakeClock) -> None:
    store(cache, b"k", clock.now())
    cache.refuse_store()
    assert cache.stats.cmd_set == 2 and cache.stats.total_items == 1
    item = cache.peek(b"k", clock.now())
    assert item is not None and item.value == b"v"


def test_a_flush_counts_cmd_flush_once_and_a_due_one_not_again(
    registry: Registry, cache: Cache, clock: FakeClock
) -> None:
    cache.flush(0, clock.now())
    cache.flush_now()
    assert cache.stats.cmd_flush == 2
    store(cache, b"k", clock.now())
    cache.flush(10, clock.now())  # counted when asked for, as memcached counts it
    assert cache.stats.cmd_flush == 3
    clock.advance(10)
    assert cache.get(b"k", clock.now()) is None  # the delayed flush fell due
    registry.upkeep(clock.now())
    cache.empty()  # not a command
    assert cache.stats.cmd_flush == 3


def test_connections_logins_and_bytes_are_counted_by_the_stats_methods() -> None:
    stats = CacheStats()
    stats.connected()
    stats.connected()
    stats.disconnected()
    stats.authenticated(True)
    stats.authenticated(False)
    stats.transferred(10, 200)
    stats.transferred(5, 0)
    assert (stats.curr_connections, stats.total_connections) == (1, 2)
    assert (stats.auth_cmds, stats.auth_errors) == (2, 1)
    assert (stats.bytes_read, stats.bytes_written) == (15, 200)
    stats.reset()  # curr_connections is a gauge: a reset keeps it
    assert (stats.curr_connections, stats.total_connections, stats.auth_cmds) == (1, 0, 0)
