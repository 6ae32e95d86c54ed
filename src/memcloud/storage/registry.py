"""All caches of one node process, the shared memory budget, and background upkeep."""

from __future__ import annotations

import sys

from memcloud.storage.cache import PREFIX_SCAN_SLICE, Cache, Graveyard, MemoryBudget

__all__ = ["FREE_SLICE", "REAP_SLICE", "Registry"]

# Items freed or reaped per upkeep tick and cache: small enough that a tick never stalls
# the event loop for long (about a millisecond), large enough to keep up with any churn.
REAP_SLICE = 2_000
FREE_SLICE = 20_000


class Registry:
    def __init__(self, memory_limit: int, item_size_max: int, introspection: bool = False) -> None:
        # 0 means no server-wide bound: only the plans limit memory.
        self.budget = MemoryBudget(memory_limit or sys.maxsize)
        self.item_size_max = item_size_max
        # Whether the caches made here record introspection data (storage/insight.py).
        self.introspection = introspection
        self.graveyard: Graveyard = []
        self.caches: dict[int, Cache] = {}
        # The generation (see CacheRecord) each cache of `caches` was made for.
        self.generations: dict[int, str] = {}

    def get(self, cache_id: int) -> Cache | None:
        return self.caches.get(cache_id)

    def current(self, cache_id: int, generation: str) -> Cache | None:
        """The cache with this id if it is still the one of `generation`, else None."""
        if self.generations.get(cache_id) != generation:
            return None
        return self.caches.get(cache_id)

    def ensure(self, cache_id: int, name: str, limit: int, generation: str = "") -> Cache:
        """The cache with this id, created or brought to this name and plan. A cache of
        another generation is another tenant's: it is flushed and a fresh one takes its
        place (the sessions of the old one close when they see it changed)."""
        cache = self.caches.get(cache_id)
        if cache is not None and self.generations.get(cache_id) != generation:
            self.remove(cache_id)
            cache = None
        if cache is None:
            self.generations[cache_id] = generation
            cache = Cache(
                cache_id,
                name,
                limit,
                budget=self.budget,
                item_size_max=self.item_size_max,
                graveyard=self.graveyard,
                introspection=self.introspection,
            )
            self.caches[cache_id] = cache
            return cache
        cache.name = name
        if cache.limit != limit:
            cache.resize(limit)
        return cache

    def remove(self, cache_id: int) -> None:
        self.generations.pop(cache_id, None)
        cache = self.caches.pop(cache_id, None)
        if cache is not None:
            cache.empty()

    def upkeep(self, now: float) -> bool:
        """One bounded slice of background work: reclaim expired items, prefix-flushed
        ones, free flushed ones. Answers whether work is left for the next slice."""
        scanning = False
        for cache in list(self.caches.values()):
            cache.reap(now, REAP_SLICE)
            if cache.insight is not None:
                cache.insight.tick(now)
            cache.reclaim_prefixed(PREFIX_SCAN_SLICE)
            scanning = scanning or bool(cache.prefix_mark)
        freed = 0
        while self.graveyard and freed < FREE_SLICE:
            old = self.graveyard[-1]
            if isinstance(old, dict):
                while old and freed < FREE_SLICE:
                    old.popitem()
                    freed += 1
            else:
                # An LRU segment (at most lru.SEGMENT keys), dropped whole: the flushed
                # dict, freed after it, still holds most of its keys, so this is mostly
                # reference decrements, a small part of a dict entry's cost each.
                freed += 1 + len(old) // 16
                old.clear()
            if not old:
                self.graveyard.pop()
        return scanning or bool(self.graveyard)
