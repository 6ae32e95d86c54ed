"""One tenant's keyspace: a memory-limited LRU of items with expiry, CAS and stats.

Every method is synchronous and bounded: the event loop calls them per command, so none may
walk the whole keyspace (flush hands the old dict to a graveyard that is freed in slices).
The methods count the commands they serve in `stats` (storage/stats.py).
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from typing import Final

from memcloud.storage.counter import UINT64_MASK, parse_counter
from memcloud.storage.item import BUMP_INTERVAL, FETCHED, ITEM_OVERHEAD, Item
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult
from memcloud.storage.stats import CacheStats

__all__ = [
    "MAX_RELATIVE_EXPTIME",
    "REAP_GRACE",
    "Cache",
    "Graveyard",
    "MemoryBudget",
    "absolute_exptime",
]

# memcached: an exptime above 30 days is an absolute Unix time, not an offset.
MAX_RELATIVE_EXPTIME: Final = 60 * 60 * 24 * 30
# Stale expiry entries (overwritten or deleted items) are tolerated up to this many times the
# number of live items before the heap is rebuilt.
EXPIRY_HEAP_SLACK: Final = 2
# Seconds an expired item stays for a command to find (and count as get_expired) before the
# upkeep reclaims it, as memcached's maintainer waits for its 1 s clock to pass the expiry;
# reaping at once would leave get_expired, and insight's get_expired_rate, at 0.
REAP_GRACE: Final = 0.5

_next_cas = itertools.count(1).__next__

Graveyard = list[OrderedDict[bytes, Item]]


def absolute_exptime(exptime: int, now: float) -> float:
    """memcached's exptime rule: 0 never, negative already expired, <= 30 days relative."""
    if exptime == 0:
        return 0.0
    if exptime < 0:
        return -1.0
    if exptime <= MAX_RELATIVE_EXPTIME:
        return now + exptime
    return float(exptime)


class MemoryBudget:
    """The server-wide bound shared by every cache of a process."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class Cache:
    __slots__ = (
        "_expiries",
        "budget",
        "flush_at",
        "flushed",
        "graveyard",
        "id",
        "item_size_max",
        "items",
        "limit",
        "name",
        "stats",
        "used",
    )

    def __init__(
        self,
        cache_id: int,
        name: str,
        limit: int,
        *,
        budget: MemoryBudget,
        item_size_max: int,
        graveyard: Graveyard,
    ) -> None:
        self.id = cache_id
        self.name = name
        self.limit = limit
        self.budget = budget
        self.item_size_max = item_size_max
        self.graveyard = graveyard
        self.items: OrderedDict[bytes, Item] = OrderedDict()
        self.used = 0
        self.stats = CacheStats()
        self.flush_at = 0.0
        # The dict the latest flush_all took away, until the graveyard has freed it: a
        # command that looks for one of its keys finds a flushed item (stat get_flushed).
        self.flushed: OrderedDict[bytes, Item] = OrderedDict()
        self._expiries: list[tuple[float, int, bytes]] = []

    # -- reads ---------------------------------------------------------------------------

    def _live(self, key: bytes, now: float) -> Item | None:
        """The item under `key` if it is live. As memcached's lookup (do_item_get) does for
        every command, an item found flushed or expired is removed and counted
        (get_flushed, get_expired), and the command sees none."""
        if self.flush_at and now >= self.flush_at:
            self.empty()
        item = self.items.get(key)
        if item is None:
            if self.flushed:
                self._forget_flushed(key)
            return None
        exptime = item.exptime
        if exptime and exptime <= now:
            self._expire(key, item)
            return None
        return item

    def _forget_flushed(self, key: bytes) -> None:
        """A lookup missed while a flushed dict waits to be freed: if `key` was in it, the
        command found a flushed item (memcached: get_flushed); it is gone from then on."""
        if self.flushed.pop(key, None) is not None:
            self.stats.get_flushed += 1

    def _expire(self, key: bytes, item: Item) -> None:
        """A command found `item` expired (memcached: get_expired): unlink it."""
        self._unlink(key, item)
        self.stats.expired += 1
        self.stats.get_expired += 1

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
        if item is None:
            stats.get_misses += 1
            return None
        if now - item.bumped >= BUMP_INTERVAL:
            item.bumped = now
            self.items.move_to_end(key)
        item.meta |= FETCHED  # memcached's ITEM_FETCHED (meta `h`)
        stats.get_hits += 1
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
        lookup = self.items.get
        refresh = self.items.move_to_end
        flushed = self.flushed
        size = 0
        looked_at = 0
        for key in keys:
            if size > budget:
                break
            looked_at += 1
            item = lookup(key)
            if item is None:
                if flushed:
                    self._forget_flushed(key)
                continue
            if item.exptime and item.exptime <= now:
                self._expire(key, item)
                continue
            if now - item.bumped >= BUMP_INTERVAL:
                item.bumped = now
                refresh(key)
            item.meta |= FETCHED
            hits.append((key, item))
            size += len(item.value)
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
        self.stats.cmd_set += 1
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
                self.items.move_to_end(key)  # memcached bumps the item an add failed on
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

    def _insert(
        self, key: bytes, value: bytes, flags: int, exptime: float, old: Item | None, now: float
    ) -> tuple[StoreResult, int]:
        # A failed store still removes the old value, as memcached does: stale data must
        # not outlive a write the client believes happened or was refused.
        budget = self.budget
        if old is not None:
            self._unlink(key, old)
        if len(key) + len(value) > self.item_size_max:
            self.stats.store_too_large += 1
            return StoreResult.TOO_LARGE, 0
        if exptime < 0:
            # Already expired (negative exptime, or an absolute time in the past): stored
            # and gone at once, as memcached does, without taking memory until a reap.
            self.stats.total_items += 1
            return StoreResult.STORED, _next_cas()
        size = len(key) + len(value) + ITEM_OVERHEAD
        if (
            self.used + size > self.limit or budget.used + size > budget.limit
        ) and not self._make_room(size, now):
            self.stats.store_no_memory += 1
            return StoreResult.NO_MEMORY, 0
        cas = _next_cas()
        self.items[key] = Item(value, flags, exptime, cas, now)
        self.used += size
        budget.used += size
        self.stats.total_items += 1
        if exptime:
            heapq.heappush(self._expiries, (exptime, cas, key))
        return StoreResult.STORED, cas

    def _make_room(self, size: int, now: float) -> bool:
        """Evict this cache's least recently used items until `size` more bytes fit. An
        item that had already expired counts as reclaimed (its memory reused, as memcached
        counts it), any other as evicted."""
        if size > self.limit:
            return False
        budget = self.budget
        while self.used + size > self.limit or budget.used + size > budget.limit:
            if not self.items:
                return False
            item = self._drop_lru()
            if item.exptime and item.exptime <= now:
                self.stats.reclaimed += 1
            else:
                self.stats.evictions += 1
        return True

    def _drop_lru(self) -> Item:
        """Remove the least recently used item and free its memory; answers it."""
        key, item = self.items.popitem(last=False)
        self._account_removal(key, item)
        return item

    def _unlink(self, key: bytes, item: Item) -> None:
        del self.items[key]
        self._account_removal(key, item)

    def _account_removal(self, key: bytes, item: Item) -> None:
        size = len(key) + len(item.value) + ITEM_OVERHEAD
        self.used -= size
        self.budget.used -= size

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
            item = self.items.get(key)
            if item is not None:
                self._unlink(key, item)

    def delete(self, key: bytes, now: float, cas_unique: int = 0) -> DeleteResult:
        stats = self.stats
        stats.cmd_delete += 1
        item = self._live(key, now)
        if item is None:
            stats.delete_misses += 1
            return DeleteResult.NOT_FOUND
        if cas_unique and item.cas != cas_unique:
            return DeleteResult.EXISTS
        self._unlink(key, item)
        stats.delete_hits += 1
        return DeleteResult.DELETED

    def gat(self, key: bytes, exptime: int, now: float) -> Item | None:
        """get-and-touch (gat, gats, binary GAT*): a touch that also counts as a get."""
        item = self.touch(key, exptime, now)
        stats = self.stats
        stats.cmd_get += 1
        if item is None:
            stats.get_misses += 1
        else:
            stats.get_hits += 1
        return item

    def touch(self, key: bytes, exptime: int, now: float) -> Item | None:
        """Give the item a new expiry; answers it, or None when there is none."""
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
            heapq.heappush(self._expiries, (item.exptime, item.cas, key))
        self.items.move_to_end(key)
        return item

    def arith(
        self, key: bytes, delta: int, incr: bool, now: float, cas_unique: int = 0
    ) -> int | ArithResult:
        """incr wraps at 2**64, decr stops at 0; answers the new value."""
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

    # -- whole-cache operations ------------------------------------------------------------

    def flush(self, delay: int, now: float) -> None:
        """flush_all: now, or at `delay` (memcached's delayed flush; the exptime rules
        apply: over 30 days it is an absolute Unix time). Counted as cmd_flush."""
        self.stats.cmd_flush += 1
        at = absolute_exptime(delay, now) if delay > 0 else 0.0
        if at > now:
            self.flush_at = at
        else:
            self.empty()

    def flush_now(self) -> None:
        """flush_all without a delay. Counted as cmd_flush."""
        self.stats.cmd_flush += 1
        self.empty()

    def empty(self) -> None:
        """Empty the cache in O(1): the old dict is freed later, in slices, by the reaper.
        Not a command (a delayed flush falling due, a removed cache): not counted."""
        if self.items:
            self.graveyard.append(self.items)
            self.flushed = self.items
            self.items = OrderedDict()
        self.budget.used -= self.used
        self.used = 0
        self._expiries = []
        self.flush_at = 0.0

    def resize(self, limit: int) -> None:
        """A new plan: keep the data when growing, evict the LRU tail when shrinking."""
        self.limit = limit
        while self.used > limit and self.items:
            self._drop_lru()
            self.stats.evictions += 1

    def reap(self, now: float, budget: int) -> int:
        """Remove up to `budget` items nobody asked for that expired at least REAP_GRACE
        seconds ago; answers how many went."""
        if self.flush_at and now >= self.flush_at:
            self.empty()
        heap = self._expiries
        items = self.items
        due = now - REAP_GRACE
        removed = 0
        while heap and heap[0][0] <= due and removed < budget:
            _, cas, key = heapq.heappop(heap)
            item = items.get(key)
            if item is not None and item.cas == cas and item.exptime and item.exptime <= due:
                self._unlink(key, item)
                self.stats.reclaimed += 1
                self.stats.expired += 1
                removed += 1
        if len(heap) > EXPIRY_HEAP_SLACK * len(items) + 1024:
            self._expiries = [
                (item.exptime, item.cas, key) for key, item in items.items() if item.exptime
            ]
            heapq.heapify(self._expiries)
        return removed

    @property
    def curr_items(self) -> int:
        return len(self.items)
