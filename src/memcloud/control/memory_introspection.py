"""The watched-prefix and latency methods of the memory store (`MemoryStore` inherits
them): the same rules and answers as memcloud.control.sql.introspection."""

from __future__ import annotations

import threading

from memcloud.control import introspection as rules
from memcloud.control.introspection import LatencySample, WatchedPrefixRecord
from memcloud.control.models import CacheRecord
from memcloud.control.rules import no_cache_id

__all__ = ["MemoryIntrospection"]


class MemoryIntrospection:
    _lock: threading.Lock
    _caches: dict[int, CacheRecord]

    def _init_introspection(self) -> None:
        self._prefixes: dict[int, WatchedPrefixRecord] = {}
        self._last_prefix_id = 0
        self._latency: list[LatencySample] = []

    def _drop_prefixes(self, cache_id: int) -> None:
        """What a deleted cache had (the caller holds the lock)."""
        for key in [k for k, v in self._prefixes.items() if v.cache_id == cache_id]:
            del self._prefixes[key]

    def _prefix_cache(self, cache_id: int) -> None:
        if cache_id not in self._caches:
            raise no_cache_id(cache_id)

    def watch_prefix(self, cache_id: int, name: str) -> WatchedPrefixRecord:
        name = rules.validate_prefix(name)
        with self._lock:
            self._prefix_cache(cache_id)
            mine = [p for p in self._prefixes.values() if p.cache_id == cache_id]
            for record in mine:
                if record.name == name:
                    return record
            rules.check_prefix_count(len(mine))
            self._last_prefix_id += 1
            record = WatchedPrefixRecord(self._last_prefix_id, cache_id, name)
            self._prefixes[record.id] = record
            return record

    def list_watched_prefixes(self, cache_id: int | None = None) -> list[WatchedPrefixRecord]:
        with self._lock:
            if cache_id is not None:
                self._prefix_cache(cache_id)
            return sorted(
                (p for p in self._prefixes.values() if cache_id is None or p.cache_id == cache_id),
                key=lambda p: p.id,
            )

    def unwatch_prefix(self, cache_id: int, prefix_id: int) -> None:
        with self._lock:
            self._prefix_cache(cache_id)
            record = self._prefixes.get(prefix_id)
            if record is None or record.cache_id != cache_id:
                raise rules.no_prefix(cache_id, prefix_id)
            del self._prefixes[prefix_id]

    def add_latency_samples(self, samples: list[LatencySample]) -> None:
        with self._lock:
            self._latency.extend(samples)

    def latency_samples(self, servers: list[str], start: float, end: float) -> list[LatencySample]:
        wanted = set(servers)
        with self._lock:
            found = [s for s in self._latency if s.server in wanted and start <= s.at <= end]
        return sorted(found, key=lambda s: (s.at, s.server))

    def prune_latency(self, before: float) -> int:
        with self._lock:
            kept = [s for s in self._latency if s.at >= before]
            pruned = len(self._latency) - len(kept)
            self._latency = kept
            return pruned
