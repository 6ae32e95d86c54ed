"""One cache's keyspace: the items in a plain dict with their LRU order beside it
(storage/lru.py), their memory against the plan and the server-wide budget, expiry and
flushes. `Cache` (storage/cache.py) builds the commands on it.

Every method is synchronous and bounded: the event loop calls them per command, so none may
walk the whole keyspace (flush hands the old dict to a graveyard that is freed in slices; a
prefix flush is recorded and reclaimed lazily and in slices: storage/prefix_flush.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Final

from memcloud.storage.insight import CacheInsight
from memcloud.storage.item import ITEM_OVERHEAD, Item
from memcloud.storage.lru import LruOrder
from memcloud.storage.prefix_flush import PrefixFlushes
from memcloud.storage.results import StoreResult
from memcloud.storage.stats import CacheStats
from memcloud.storage.uniques import absolute_exptime, next_cas

__all__ = [
    "PREFIX_SCAN_SLICE",
    "REAP_GRACE",
    "Graveyard",
    "Keyspace",
    "MemoryBudget",
]

# Stale expiry entries (overwritten or deleted items) are tolerated up to this many times the
# number of live items before the heap is rebuilt.
EXPIRY_HEAP_SLACK: Final = 2
# Seconds an expired item stays for a command to find (and count as get_expired) before the
# upkeep reclaims it, as memcached's maintainer waits for its 1 s clock to pass the expiry;
# reaping at once would leave get_expired, and insight's get_expired_rate, at 0.
REAP_GRACE: Final = 0.5
# Keys a prefix flush's scan visits per upkeep tick and cache (about a millisecond); a cache
# with no more items than this is scanned at once, within the flush.
PREFIX_SCAN_SLICE: Final = 5_000


class MemoryBudget:
    """The server-wide bound shared by every cache of a process."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


# Flushed dicts and LRU segments, freed by the registry's upkeep in slices.
Graveyard = list[dict[bytes, Item] | list[bytes]]


class Keyspace:
    """The items of one cache and what holds them: the dict, the LRU order, the memory used
    against the plan and the server's budget, the expiry heap, pending flushes. Removing,
    evicting, inserting and the whole-cache operations live here; the commands, which
    count themselves in `stats` and `insight`, in `Cache` (storage/cache.py)."""

    __slots__ = (
        "_expiries",
        "budget",
        "flush_at",
        "flushed",
        "graveyard",
        "id",
        "insight",
        "item_size_max",
        "items",
        "limit",
        "lru",
        "name",
        "prefix_flushes",
        "prefix_mark",
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
        introspection: bool = False,
        now: float = 0.0,
    ) -> None:
        self.id = cache_id
        self.name = name
        self.limit = limit
        self.budget = budget
        self.item_size_max = item_size_max
        self.graveyard = graveyard
        # A plain dict: its insertion order is not the LRU's; `lru` keeps that (storage/lru.py).
        self.items: dict[bytes, Item] = {}
        self.lru = LruOrder()
        self.used = 0
        self.stats = CacheStats()
        self.flush_at = 0.0
        # The dict the latest flush_all took away, until the graveyard has freed it: a
        # command that looks for one of its keys finds a flushed item (stat get_flushed).
        self.flushed: dict[bytes, Item] = {}
        self._expiries: list[tuple[float, int, bytes]] = []
        # The introspection recorder; None when introspection is off (one check per command).
        self.insight: CacheInsight | None = CacheInsight(now) if introspection else None
        # Prefix flushes not yet reclaimed, and the newest one's mark: an item with a lower
        # CAS may be flushed. 0 when none is pending: then a read costs one comparison more.
        self.prefix_flushes = PrefixFlushes()
        self.prefix_mark = 0

    # -- lookups and removal --------------------------------------------------------------

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
        if item.cas < self.prefix_mark and self.prefix_flushes.covers(key, item.cas):
            self._drop_flushed(key, item)
            return None
        return item

    def _forget_flushed(self, key: bytes) -> None:
        """A lookup missed while a flushed dict waits to be freed: if `key` was in it, the
        command found a flushed item (memcached: get_flushed); it is gone from then on."""
        if self.flushed.pop(key, None) is not None:
            self.stats.get_flushed += 1

    def _drop_flushed(self, key: bytes, item: Item) -> None:
        """A command found `item` flushed by a prefix flush (memcached: get_flushed)."""
        self._unlink(key, item)
        self.stats.get_flushed += 1

    def flushed_by_prefix(self, key: bytes, item: Item) -> bool:
        """Whether `item`, still in `items`, is gone by a prefix flush not reclaimed yet
        (for whoever walks `items` itself)."""
        return item.cas < self.prefix_mark and self.prefix_flushes.covers(key, item.cas)

    def _expire(self, key: bytes, item: Item) -> None:
        """A command found `item` expired (memcached: get_expired): unlink it."""
        self._unlink(key, item)
        self.stats.expired += 1
        self.stats.get_expired += 1

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
            return StoreResult.STORED, next_cas()
        size = len(key) + len(value) + ITEM_OVERHEAD
        if (
            self.used + size > self.limit or budget.used + size > budget.limit
        ) and not self._make_room(size, now):
            self.stats.store_no_memory += 1
            return StoreResult.NO_MEMORY, 0
        cas = next_cas()
        item = Item(value, flags, exptime, cas, now)
        items = self.items
        items[key] = item
        self.lru.push(key, item, items)
        self.used += size
        budget.used += size
        self.stats.total_items += 1
        insight = self.insight
        if insight is not None and insight.watched:
            insight.stored(key, size)
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
            key, item = self._drop_lru()
            if (item.exptime and item.exptime <= now) or self.flushed_by_prefix(key, item):
                self.stats.reclaimed += 1
            else:
                self.stats.evictions += 1
        return True

    def discard(self, key: bytes) -> None:
        """Remove an item that is no longer this node's to hold (its key moved to another
        node of the cluster): not a command, not counted."""
        item = self.items.get(key)
        if item is not None:
            self._unlink(key, item)

    def _drop_lru(self) -> tuple[bytes, Item]:
        """Remove the least recently used item and free its memory; answers it and its key."""
        items = self.items
        key = self.lru.pop(items)
        if key is None:  # not reached: every item has its live entry in the queue
            raise LookupError("the LRU order lost its items")
        item = items.pop(key)
        self._account_removal(key, item)
        return key, item

    def _unlink(self, key: bytes, item: Item) -> None:
        del self.items[key]
        self._account_removal(key, item)

    def _account_removal(self, key: bytes, item: Item) -> None:
        size = len(key) + len(item.value) + ITEM_OVERHEAD
        self.used -= size
        self.budget.used -= size
        insight = self.insight
        if insight is not None and insight.watched:
            insight.removed(key, size)

    # -- warm restart (storage/snapshot.py) -------------------------------------------------

    def in_lru_order(self) -> Iterator[tuple[bytes, Item]]:
        """Every item held (expired or flushed ones not reclaimed yet too), least recently
        used first: the dict's own order is the keys' insertion, not the LRU's."""
        return self.lru.walk(self.items)

    def live_items(self, now: float) -> Iterator[tuple[bytes, Item]]:
        """Every item a command would find at `now`, least recently used first: what a
        snapshot saves. Whatever else makes an item unreachable must be left out here too."""
        if self.flush_at and now >= self.flush_at:
            return
        for key, item in self.lru.walk(self.items):
            exptime = item.exptime
            if (not exptime or exptime > now) and not self.flushed_by_prefix(key, item):
                yield key, item

    def restore(
        self, key: bytes, value: bytes, flags: int, exptime: float, cas: int, now: float
    ) -> bool:
        """Put back an item a snapshot saved, with its own CAS and absolute expiry, as the
        most recently used; room is made as for a store (a smaller plan evicts the least
        recently used). False, and nothing stored, for an expired or unfitting item."""
        if (exptime and exptime <= now) or len(key) + len(value) > self.item_size_max:
            return False
        old = self.items.get(key)
        if old is not None:
            self._unlink(key, old)
        size = len(key) + len(value) + ITEM_OVERHEAD
        budget = self.budget
        if (
            self.used + size > self.limit or budget.used + size > budget.limit
        ) and not self._make_room(size, now):
            return False
        # bumped 0: the first read after the restart moves the item as a read would.
        item = Item(value, flags, exptime, cas, 0.0)
        self.items[key] = item
        self.lru.push(key, item, self.items)
        self.used += size
        budget.used += size
        if exptime:
            heapq.heappush(self._expiries, (exptime, cas, key))
        return True

    # -- whole-cache operations ------------------------------------------------------------

    def flush(self, delay: int, now: float, *, counted: bool = True) -> None:
        """flush_all: now, or at `delay` (memcached's delayed flush; the exptime rules
        apply: over 30 days it is an absolute Unix time). Counted as cmd_flush unless it is
        another node's flush of the same cache (`counted`: see Service.flush)."""
        if counted:
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

    def flush_prefix(self, prefix: bytes, *, counted: bool = True) -> None:
        """Flush every item whose key starts with `prefix` (all of them if it is empty), in
        O(pending prefix flushes): commands find those items gone at once, the upkeep
        reclaims their memory in slices (`reclaim_prefixed`). Counted as cmd_flush unless
        not `counted` (see Service.flush). Raises TooManyPrefixFlushes at the bound."""
        if not prefix:
            if counted:
                self.flush_now()
            else:
                self.empty()
            return
        pending = self.prefix_flushes
        self.prefix_mark = pending.add(prefix, next_cas())
        if counted:
            self.stats.cmd_flush += 1
        if len(self.items) <= PREFIX_SCAN_SLICE and not pending.scan_covers:
            self.reclaim_prefixed(PREFIX_SCAN_SLICE)  # small: done now, nothing stays pending

    def reclaim_prefixed(self, budget: int) -> int:
        """One slice of the scan that reclaims prefix-flushed items: up to `budget` keys
        visited. A scan starts from a copy of the keys present (C speed: about 20 ns a
        key) and retires the flushes made before it once it has visited them all. Answers
        how many items went."""
        pending = self.prefix_flushes
        if not self.prefix_mark:
            return 0
        if not pending.scan_covers:
            # The dict's own key order, not the LRU's: any order visits every key, and
            # the plain dict's iteration is many times faster than the linked list's.
            pending.scan = list(dict.keys(self.items))
            pending.scan_covers = self.prefix_mark
        scan = pending.scan
        items = self.items
        prefixes = pending.prefixes
        mark = self.prefix_mark
        removed = 0
        for _ in range(min(budget, len(scan))):
            key = scan.pop()
            if not key.startswith(prefixes):
                continue  # most keys: one C call, no lookup
            item = items.get(key)
            if item is not None and item.cas < mark and pending.covers(key, item.cas):
                self._unlink(key, item)
                removed += 1
        if not scan:
            self.prefix_mark = pending.finish_scan()
        return removed

    def empty(self) -> None:
        """Empty the cache in O(1): the old dict is freed later, in slices, by the reaper.
        Not a command (a delayed flush falling due, a removed cache): not counted."""
        if self.items:
            self.graveyard.append(self.items)
            self.flushed = self.items
            self.items = {}
        if self.lru.entries:
            # The old order's segments too: the keys only their stale entries hold are
            # freed in the same slices.
            self.graveyard.extend(self.lru.segments)
            self.lru = LruOrder()
        self.budget.used -= self.used
        self.used = 0
        self._expiries = []
        self.flush_at = 0.0
        if self.insight is not None:
            self.insight.emptied()
        self.prefix_flushes.clear()
        self.prefix_mark = 0

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
