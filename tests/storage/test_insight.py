"""The introspection recorder (storage/insight.py) through the Cache that feeds it: the
recent ring, the hot-key sketches (bounded under a hostile load), popular prefixes and
watched prefixes, with a FakeClock."""

from __future__ import annotations

import sys

import pytest

from memcloud.clock import FakeClock
from memcloud.introspection.node import IntrospectionOff, node_view
from memcloud.storage.cache import Cache
from memcloud.storage.insight import (
    PRUNE_AT,
    RECENT_REQUESTS,
    TOP_K,
    WINDOW_SECONDS,
    CacheInsight,
    TopK,
    prefix_of,
)
from memcloud.storage.item import ITEM_OVERHEAD
from memcloud.storage.registry import Registry
from memcloud.storage.results import StoreMode

MIB = 1024 * 1024


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


def make(limit: int = 10 * MIB, *, introspection: bool = True) -> Cache:
    return Registry(0, MIB, introspection).ensure(1, "c", limit)


def recorder(cache: Cache) -> CacheInsight:
    assert cache.insight is not None
    return cache.insight


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        (b"user:42:name", b"user:"),
        (b"a/b:c", b"a/"),
        (b"v1.2", b"v1."),
        (b"session_abc-1", b"session_"),
        (b"x-y_z", b"x-"),
        (b"plain", b""),
        (b":lead", b":"),
    ],
)
def test_a_prefix_ends_at_the_first_separator(key: bytes, prefix: bytes) -> None:
    assert prefix_of(key) == prefix


def test_introspection_off_records_nothing(clock: FakeClock) -> None:
    cache = make(introspection=False)
    assert cache.insight is None
    cache.store(StoreMode.SET, b"k", b"v", 0, 0, clock.now())
    assert cache.get(b"k", clock.now()) is not None
    with pytest.raises(IntrospectionOff):
        node_view(cache, {"view": "recent"}, clock.now())


def test_the_ring_keeps_the_last_requests_without_values(clock: FakeClock) -> None:
    cache = make()
    now = clock.now()
    cache.store(StoreMode.SET, b"k", b"VALUE", 0, 0, now)
    cache.store(StoreMode.ADD, b"k", b"VALUE", 0, 0, now)
    cache.get(b"k", now)
    cache.get_many([b"k", b"gone"], now, MIB)
    cache.delete(b"gone", now)
    cache.touch(b"k", 10, now)
    cache.gat(b"k", 10, now)
    cache.store(StoreMode.SET, b"n", b"1", 0, 0, now)
    cache.arith(b"n", 5, True, now)
    cache.arith(b"k", 1, False, now)
    cache.store(StoreMode.SET, b"k", b"VALUE", 0, 0, now, cas_unique=999)
    recent = [r[1:] for r in recorder(cache).recent_requests()]
    assert recent == [
        (b"k", "SET", "STORED", 5),
        (b"k", "ADD", "NOT_STORED", 5),
        (b"k", "GET", "HIT", 5),
        (b"k", "GET", "HIT", 5),
        (b"gone", "GET", "MISS", 0),
        (b"gone", "DELETE", "NOT_FOUND", 0),
        (b"k", "TOUCH", "TOUCHED", 5),
        (b"k", "GAT", "HIT", 5),
        (b"n", "SET", "STORED", 1),
        (b"n", "INCR", "OK", 0),
        (b"k", "DECR", "NON_NUMERIC", 0),
        (b"k", "CAS", "EXISTS", 5),
    ]
    assert b"VALUE" not in repr(recorder(cache).recent_requests()).encode()
    for index in range(RECENT_REQUESTS + 7):
        cache.get(b"r%d" % index, now)
    keys = [r[1] for r in recorder(cache).recent_requests()]
    assert keys == [b"r%d" % i for i in range(7, RECENT_REQUESTS + 7)]


def test_sketches_stay_bounded_under_a_million_distinct_keys(clock: FakeClock) -> None:
    """A hostile tenant's load: every request a new key, with one key hit 1 time in 20;
    memory stays within PRUNE_AT x TOP_K keys per sketch and the hot key still comes first."""
    cache = make()
    now = clock.now()
    cache.store(StoreMode.SET, b"hot", b"v", 0, 0, now)
    insight = recorder(cache)
    for index in range(1_000_000):
        if index % 20 == 0:
            cache.get(b"hot", now)
        else:
            cache.get(b"miss:%d" % index, now)
    window = insight.current
    for sketch in (window.hit, window.miss, window.mutation, window.prefixes):
        assert len(sketch) <= PRUNE_AT * TOP_K
        assert sum(sys.getsizeof(k) for k in sketch.counts) < PRUNE_AT * TOP_K * 200
    report = insight.popular(now)
    hit = report["hit"]
    assert isinstance(hit, list) and hit[0][0] == b"hot"
    prefixes = report["prefix"]
    assert isinstance(prefixes, list) and prefixes[0][0] == b"miss:"


def test_topk_keeps_a_heavy_key_through_prunes() -> None:
    sketch = TopK(capacity=4)
    for index in range(10_000):
        sketch.add(b"heavy", 1)
        sketch.add(b"k%d" % index, 1)
        assert len(sketch) <= PRUNE_AT * 4
    ranked = sorted(sketch.counts.items(), key=lambda e: -e[1])
    assert ranked[0][0] == b"heavy"
    assert ranked[0][1] >= 10_000


def test_hot_keys_cover_the_last_windows_only(clock: FakeClock) -> None:
    cache = make()
    cache.store(StoreMode.SET, b"old", b"v", 0, 0, clock.now())
    for _ in range(400):
        cache.get(b"old", clock.now())

    def hit() -> list[bytes]:
        entries = recorder(cache).popular(clock.now())["hit"]
        assert isinstance(entries, list)
        return [key for key, _ in entries]

    assert hit() == [b"old"]
    clock.advance(WINDOW_SECONDS)  # the previous window still counts
    assert hit() == [b"old"]
    clock.advance(WINDOW_SECONDS)  # two windows on: forgotten
    assert hit() == []
    seconds = recorder(cache).popular(clock.now())["seconds"]
    assert isinstance(seconds, float) and seconds <= 2 * WINDOW_SECONDS


def test_about_one_request_in_sample_every_feeds_the_sketches(clock: FakeClock) -> None:
    """Estimates are sampled counts times SAMPLE_EVERY; a periodic pattern (every fourth
    request the same key) is sampled like any other."""
    cache = make()
    requests, period = 160_000, 4
    for index in range(requests):
        cache.get(b"m:%d" % (index % period), clock.now())
    missed = dict(recorder(cache).popular_counts(clock.now())[1])
    for which in range(period):
        estimate = missed[b"m:%d" % which]
        assert abs(estimate - requests / period) < 0.1 * requests / period


def test_watched_prefix_counts_keys_bytes_and_requests(clock: FakeClock) -> None:
    cache = make(limit=20 * (6 + 1 + ITEM_OVERHEAD) + 10)
    insight = recorder(cache)
    now = clock.now()
    node_view(cache, {"watched": ["user:"], "view": "none"}, now)
    watch = insight.watches[b"user:"]
    for index in range(10):
        cache.store(StoreMode.SET, b"user:%d" % index, b"v", 0, 0, now)
        cache.store(StoreMode.SET, b"post:%d" % index, b"v", 0, 0, now)
    assert (watch.keys, watch.size) == (10, 10 * (6 + 1 + ITEM_OVERHEAD))
    cache.store(StoreMode.SET, b"user:0", b"v", 0, 0, now)  # replaced: still one key
    cache.delete(b"user:1", now)
    assert watch.keys == 9
    for index in range(12):  # past the plan: the oldest are evicted
        cache.store(StoreMode.SET, b"fill:%02d" % index, b"v", 0, 0, now)
    assert watch.keys == sum(1 for key in cache.items if key.startswith(b"user:"))
    for _ in range(8):
        cache.get(b"user:9", now)
    view = node_view(cache, {"view": "popular", "prefix": "user:"}, now)
    assert view["prefix"] == []
    assert all(name.startswith("user:") for name, _ in view["mutation"] + view["hit"])
    series = node_view(cache, {"view": "prefix", "prefix": "user:"}, now)["series"]
    assert series[-1][1] == watch.keys
    cache.flush_now()
    assert (watch.keys, watch.size) == (0, 0)
    node_view(cache, {"watched": [], "view": "none"}, now)
    assert insight.watched == () and insight.watches == {}


def test_the_upkeep_takes_one_snapshot_a_minute(clock: FakeClock) -> None:
    registry = Registry(0, MIB, True)
    cache = registry.ensure(1, "c", MIB)
    node_view(cache, {"watched": ["a:"], "view": "none"}, clock.now())
    cache.store(StoreMode.SET, b"a:1", b"v", 0, 0, clock.now())
    for _ in range(5):
        registry.upkeep(clock.now())
        clock.advance(20)
    series = recorder(cache).watches[b"a:"].series
    assert [point[0] % 60 for point in series] == [0.0] * len(series)
    assert len(series) == 2  # five ticks, 20 s apart: two minutes


def test_node_views_refuse_malformed_queries(clock: FakeClock) -> None:
    cache = make()
    now = clock.now()
    for query in (
        {"view": "bogus"},
        {"view": "key"},
        {"view": "key", "key": "k" * 251},
        {"watched": "user:"},
        {"watched": [f"p{i}" for i in range(11)]},
    ):
        with pytest.raises(IntrospectionOff):
            node_view(cache, query, now)
