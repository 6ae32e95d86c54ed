"""Watched prefixes and latency samples, the same from every control store (SQLite, memory,
PostgreSQL: the `store` fixture of test_store_contract.py)."""

from __future__ import annotations

import pytest

from control.test_store_contract import MB, store
from memcloud.control.base import Conflict, ControlError, ControlStore, NotFound
from memcloud.control.introspection import MAX_WATCHED_PREFIXES, LatencySample

__all__ = ["store"]


def test_watch_list_unwatch(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    revision = store.revision()
    user = store.watch_prefix(cache.id, "user:")
    post = store.watch_prefix(cache.id, "post/")
    assert (user.cache_id, user.name, post.name) == (cache.id, "user:", "post/")
    assert store.watch_prefix(cache.id, "user:") == user  # watched again: the same record
    assert store.list_watched_prefixes(cache.id) == [user, post]
    assert store.list_watched_prefixes() == [user, post]
    store.unwatch_prefix(cache.id, user.id)
    assert store.list_watched_prefixes(cache.id) == [post]
    assert store.revision() == revision  # no node reloads anything for them


def test_prefixes_belong_to_their_cache(store: ControlStore) -> None:
    mine, theirs = store.create_cache("a", MB), store.create_cache("b", MB)
    foreign = store.watch_prefix(theirs.id, "x:")
    with pytest.raises(NotFound, match="no watched prefix"):
        store.unwatch_prefix(mine.id, foreign.id)
    assert store.list_watched_prefixes(mine.id) == []
    with pytest.raises(NotFound, match="no cache with id"):
        store.list_watched_prefixes(9999)
    with pytest.raises(NotFound, match="no cache with id"):
        store.watch_prefix(9999, "x:")
    store.delete_cache(theirs.id)
    assert store.list_watched_prefixes() == []


@pytest.mark.parametrize("name", ["", "a b", "tab\there", "x" * 251, "nul\x00"])
def test_a_prefix_no_key_could_start_with_is_refused(store: ControlStore, name: str) -> None:
    cache = store.create_cache("demo", MB)
    with pytest.raises(ControlError):
        store.watch_prefix(cache.id, name)
    assert store.list_watched_prefixes(cache.id) == []


def test_a_cache_watches_a_bounded_number_of_prefixes(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    for index in range(MAX_WATCHED_PREFIXES):
        store.watch_prefix(cache.id, f"p{index}:")
    with pytest.raises(Conflict, match=f"at most {MAX_WATCHED_PREFIXES} prefixes"):
        store.watch_prefix(cache.id, "one-more:")
    assert store.watch_prefix(cache.id, "p0:").name == "p0:"  # an existing one still answers


def test_latency_samples_by_server_and_time_pruned(store: ControlStore) -> None:
    samples = [
        LatencySample(100.0, "h:1", 2_000),
        LatencySample(100.0, "h:2", 3_000),
        LatencySample(120.0, "h:1", 4_000),
        LatencySample(140.0, "other:9", 9_000),
    ]
    store.add_latency_samples(samples)
    assert store.latency_samples(["h:1", "h:2"], 0, 1000) == samples[:3]
    assert store.latency_samples(["h:1"], 110, 130) == [samples[2]]
    assert store.latency_samples([], 0, 1000) == []
    assert store.prune_latency(110) == 2
    assert store.latency_samples(["h:1", "h:2", "other:9"], 0, 1000) == samples[2:]
