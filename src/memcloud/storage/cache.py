"""One tenant's cache: the memcache commands over its keyspace (storage/keyspace.py), each
counted in `stats` (storage/stats.py) and, when introspection is on, in `insight`.

Every method is synchronous and bounded: the event loop calls them per command.
"""

from __future__ import annotations

from heapq import heappush

from memcloud.storage.counter import UINT64_MASK, parse_counter
from memcloud.storage.insight import (
    DECR_BASE,
    DELETE_EXISTS,
    DELETE_MISS,
    DELETED,
    GAT_HIT,
    GAT_MISS,
    GET_HIT,
    GET_MISS,
    INCR_BASE,
    STORE_BASE,
    TOUCH_MISS,
    TOUCHED,
)
from memcloud.storage.item import BUMP_INTERVAL, FETCHED, Item
from memcloud.storage.keyspace import (
    PREFIX_SCAN_SLICE,
    REAP_GRACE,
    Graveyard,
    Keyspace,
    MemoryBudget,
)
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult
from memcloud.storage.uniques import (
    CAS_STRIDE,
    MAX_RELATIVE_EXPTIME,
    absolute_exptime,
    continue_cas_above,
    next_cas,
    stripe_cas,
)

# The names the rest of memcloud has always imported from here stay importable from here.
__all__ = [
    "CAS_STRIDE",
    "MAX_RELATIVE_EXPTIME",
    "PREFIX_SCAN_SLICE",
    "REAP_GRACE",
    "Cache",
    "Graveyard",
    "MemoryBudget",
    "absolute_exptime",
    "continue_cas_above",
    "next_cas",
    "stripe_cas",
]


class Cache(Keyspace):
    """One tenant's cache: memcached's commands with their stats."""

    __slots__ = ()

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: bytes, now: float) -> Item | None:
        """A read that counts as a get and refreshes the item's place in the LRU (at most
        once per BUMP_INTERVAL, as memcached)."""
        stats = self.stats
        stats.cmd_get += 1
        if self.flush_at:
            item = self._live(key, now)
        else:
            # _live's work inlined, with no call on a hit: the hot path of every read.
            item = self.items.get(key)
            if item is None:
                if self.flushed:
                    self._forget_flushed(key)
            elif item.exptime and item.exptime <= now:
                self._expire(key, item)
                item = None
            elif item.cas < self.prefix_mark and self.prefix_flushes.covers(key, item.cas):
                self._drop_flushed(key, item)
                item = None
        if stats.detail is not None:  # `stats detail on` (storage/detail.py)
            stats.detail.get(key, item is not None)
        insight = self.insight
        if item is None:
            stats.get_misses += 1
            if insight is not None:
                insight.record(now, key, GET_MISS, 0)
            return None
        if now - item.bumped >= BUMP_INTERVAL:
            item.bumped = now
            self.lru.push(key, item, self.items)
        item.meta |= FETCHED  # memcached's ITEM_FETCHED (meta `h`)
        stats.get_hits += 1
        if insight is not None:
            insight.record(now, key, GET_HIT, len(item.value))
        return item

    def get_many(
        self, keys: list[bytes], now: float, budget: int
    ) -> tuple[list[tuple[bytes, Item]], int]:
        """A multi-get: the hits among `keys` in order, each counted and refreshed as by
        `get`. Stops once the values found pass `budget` bytes; answers the hits and how
        many keys were looked at."""
        if self.flush_at and now >= self.flush_at:
            self.empty()  # a delayed flush that is due happens first
        hits: list[tuple[bytes, Item]] = []
        items = self.items
        lookup = items.get
        lru = self.lru
        flushed = self.flushed
        detail = self.stats.detail
        insight = self.insight
        mark = self.prefix_mark
        size = 0
        looked_at = 0
        for key in keys:
            if size > budget:
                break
            looked_at += 1
            item = lookup(key)
            if item is not None and item.exptime and item.exptime <= now:
                self._expire(key, item)
                item = None
            elif item is None and flushed:
                self._forget_flushed(key)
            if item is None:
                if detail is not None:
                    detail.get(key, False)
                if insight is not None:
                    insight.record(now, key, GET_MISS, 0)
                continue
            if item.cas < mark and self.prefix_flushes.covers(key, item.cas):
                self._drop_flushed(key, item)
                continue
            if now - item.bumped >= BUMP_INTERVAL:
                item.bumped = now
                lru.push(key, item, items)
            item.meta |= FETCHED
            if detail is not None:
                detail.get(key, True)
            hits.append((key, item))
            size += len(item.value)
            if insight is not None:
                insight.record(now, key, GET_HIT, len(item.value))
        stats = self.stats
        stats.cmd_get += looked_at
        stats.get_hits += len(hits)
        stats.get_misses += looked_at - len(hits)
        return hits, looked_at

    def peek(self, key: bytes, now: float) -> Item | None:
        """A read that counts no command and leaves the LRU order as it is (like any
        lookup, it removes and counts an item it finds expired or flushed)."""
        return self._live(key, now)

    # -- writes --------------------------------------------------------------------------

    def store(
        self,
        mode: StoreMode,
        key: bytes,
        value: bytes,
        flags: int,
        exptime: int,
        now: float,
        cas_unique: int = 0,
    ) -> tuple[StoreResult, int]:
        """Store under memcached's rules for `mode`; answers the result and the new CAS."""
        insight = self.insight
        if insight is None:
            return self._store(mode, key, value, flags, exptime, now, cas_unique)
        answer = self._store(mode, key, value, flags, exptime, now, cas_unique)
        command = StoreMode.CAS if cas_unique else mode
        insight.record(now, key, STORE_BASE + (command - 1) * 6 + (answer[0] - 1), len(value))
        return answer

    def _store(
        self,
        mode: StoreMode,
        key: bytes,
        value: bytes,
        flags: int,
        exptime: int,
        now: float,
        cas_unique: int,
    ) -> tuple[StoreResult, int]:
        self.stats.cmd_set += 1
        if self.stats.detail is not None:
            self.stats.detail.set(key)
        item = self._live(key, now)
        if mode is StoreMode.SET:
            if cas_unique:
                return self._store_cas(key, value, flags, exptime, now, cas_unique, item)
            absolute = absolute_exptime(exptime, now) if exptime else 0.0
            return self._insert(key, value, flags, absolute, item, now)
        if mode is StoreMode.CAS:
            return self._store_cas(key, value, flags, exptime, now, cas_unique, item)
        if mode is StoreMode.ADD:
            if item is not None:
                self.lru.push(key, item, self.items)  # memcached bumps an add's failure
                return StoreResult.NOT_STORED, 0
            return self._insert(key, value, flags, absolute_exptime(exptime, now), None, now)
        if item is None:
            return StoreResult.NOT_STORED, 0
        if cas_unique and item.cas != cas_unique:
            return StoreResult.EXISTS, 0
        if mode is StoreMode.REPLACE:
            return self._insert(key, value, flags, absolute_exptime(exptime, now), item, now)
        # append / prepend keep the item's flags and expiry, as memcached does; growth past
        # the item limit is refused and leaves the item as it was.
        if len(key) + len(item.value) + len(value) > self.item_size_max:
            self.stats.store_too_large += 1
            return StoreResult.TOO_LARGE, 0
        joined = item.value + value if mode is StoreMode.APPEND else value + item.value
        return self._insert(key, joined, item.flags, item.exptime, item, now)

    def _store_cas(
        self,
        key: bytes,
        value: bytes,
        flags: int,
        exptime: int,
        now: float,
        cas_unique: int,
        item: Item | None,
    ) -> tuple[StoreResult, int]:
        stats = self.stats
        if item is None:
            stats.cas_misses += 1
            return StoreResult.NOT_FOUND, 0
        if item.cas != cas_unique:
            stats.cas_badval += 1
            return StoreResult.EXISTS, 0
        stats.cas_hits += 1
        return self._insert(key, value, flags, absolute_exptime(exptime, now), item, now)

    def refuse_store(self) -> None:
        """A store the credential may not make (no write capability): counted as a set, as
        every set read is, and nothing else happens."""
        self.stats.cmd_set += 1

    def refuse_too_large(self, key: bytes | None) -> None:
        """A set whose value was over the item limit before it reached `store` (the
        protocol skipped the value): counted as a set, and `key`, when given, loses its
        old value, as memcached drops it so that no stale data outlives the write."""
        self.stats.cmd_set += 1
        self.stats.store_too_large += 1
        if key is not None:
            if self.stats.detail is not None:
                self.stats.detail.set(key)
            item = self.items.get(key)
            if item is not None:
                self._unlink(key, item)

    def delete(self, key: bytes, now: float, cas_unique: int = 0) -> DeleteResult:
        stats = self.stats
        stats.cmd_delete += 1
        if stats.detail is not None:
            stats.detail.delete(key)
        item = self._live(key, now)
        insight = self.insight
        if item is None:
            stats.delete_misses += 1
            if insight is not None:
                insight.record(now, key, DELETE_MISS, 0)
            return DeleteResult.NOT_FOUND
        if cas_unique and item.cas != cas_unique:
            if insight is not None:
                insight.record(now, key, DELETE_EXISTS, 0)
            return DeleteResult.EXISTS
        self._unlink(key, item)
        stats.delete_hits += 1
        if insight is not None:
            insight.record(now, key, DELETED, 0)
        return DeleteResult.DELETED

    def gat(self, key: bytes, exptime: int, now: float) -> Item | None:
        """get-and-touch (gat, gats, binary GAT*): a touch that also counts as a get."""
        item = self._touch(key, exptime, now)
        stats = self.stats
        stats.cmd_get += 1
        if stats.detail is not None:
            stats.detail.get(key, item is not None)
        if item is None:
            stats.get_misses += 1
        else:
            stats.get_hits += 1
        self._record_lookup(now, key, item, GAT_HIT, GAT_MISS)
        return item

    def touch(self, key: bytes, exptime: int, now: float) -> Item | None:
        """Give the item a new expiry; answers it, or None when there is none."""
        item = self._touch(key, exptime, now)
        self._record_lookup(now, key, item, TOUCHED, TOUCH_MISS)
        return item

    def _record_lookup(
        self, now: float, key: bytes, item: Item | None, found: int, missing: int
    ) -> None:
        """A request that found `item` (event `found`, with its size) or nothing."""
        insight = self.insight
        if insight is not None:
            if item is None:
                insight.record(now, key, missing, 0)
            else:
                insight.record(now, key, found, len(item.value))

    def _touch(self, key: bytes, exptime: int, now: float) -> Item | None:
        stats = self.stats
        stats.cmd_touch += 1
        item = self._live(key, now)
        if item is None:
            stats.touch_misses += 1
            return None
        stats.touch_hits += 1
        item.meta |= FETCHED
        item.exptime = absolute_exptime(exptime, now)
        if item.exptime:
            heappush(self._expiries, (item.exptime, item.cas, key))
        self.lru.push(key, item, self.items)
        return item

    def arith(
        self, key: bytes, delta: int, incr: bool, now: float, cas_unique: int = 0
    ) -> int | ArithResult:
        """incr wraps at 2**64, decr stops at 0; answers the new value."""
        insight = self.insight
        if insight is None:
            return self._arith(key, delta, incr, now, cas_unique)
        result = self._arith(key, delta, incr, now, cas_unique)
        base = INCR_BASE if incr else DECR_BASE
        if isinstance(result, int):
            event = base
        elif result is ArithResult.NOT_FOUND:
            event = base + 1
        elif result is ArithResult.NON_NUMERIC:
            event = base + 2
        else:
            event = base + 3
        insight.record(now, key, event, 0)
        return result

    def _arith(
        self, key: bytes, delta: int, incr: bool, now: float, cas_unique: int
    ) -> int | ArithResult:
        stats = self.stats
        item = self._live(key, now)
        if item is None:
            if incr:
                stats.incr_misses += 1
            else:
                stats.decr_misses += 1
            return ArithResult.NOT_FOUND
        if cas_unique and item.cas != cas_unique:
            return ArithResult.EXISTS
        current = parse_counter(item.value)
        if current is None:
            return ArithResult.NON_NUMERIC
        if incr:
            stats.incr_hits += 1
            result = (current + delta) & UINT64_MASK
        else:
            stats.decr_hits += 1
            result = current - delta if delta < current else 0
        self._insert(key, str(result).encode(), item.flags, item.exptime, item, now)
        return result

    def create_counter(self, key: bytes, initial: int, exptime: int, now: float) -> int:
        """Binary incr/decr on a missing key with an initial value; answers the new CAS."""
        absolute = absolute_exptime(exptime, now)
        _, cas = self._insert(key, str(initial).encode(), 0, absolute, None, now)
        return cas
