"""One tenant's keyspace: a memory-limited LRU of items with expiry, CAS and stats.

Every method is synchronous and bounded: the event loop calls them per command, so none may
walk the whole keyspace (flush hands the old dict to a graveyard that is freed in slices; a
prefix flush is recorded and reclaimed lazily and in slices: storage/prefix_flush.py).
The methods count the commands they serve in `stats` (storage/stats.py).
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterator
from typing import Final

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
    CacheInsight,
)
from memcloud.storage.item import BUMP_INTERVAL, FETCHED, ITEM_OVERHEAD, Item
from memcloud.storage.prefix_flush import PrefixFlushes
from memcloud.storage.results import ArithResult, DeleteResult, StoreMode, StoreResult
from memcloud.storage.stats import CacheStats

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

# memcached: an exptime above 30 days is an absolute Unix time, not an offset.
MAX_RELATIVE_EXPTIME: Final = 60 * 60 * 24 * 30
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

# CAS uniques: one counter per node process. In a cluster every node counts in its own
# stripe (`stripe_cas`), so that no two nodes ever hand out the same unique: a key whose
# owner changed (a node died) never matches a CAS its old owner gave.
CAS_STRIDE: Final = 1024
_cas_counter = itertools.count(1)
_next_cas = _cas_counter.__next__
_cas_slot, _cas_stride = 0, 1  # this node's stripe, once it has one (stripe_cas)


def _count_cas_above(above: int) -> None:
    """Count on from the first unique of this node's stripe above `above`."""
    global _cas_counter, _next_cas
    start = (above // _cas_stride + 1) * _cas_stride + _cas_slot
    _cas_counter = itertools.count(start, _cas_stride)
    _next_cas = _cas_counter.__next__


def stripe_cas(node_id: int) -> None:
    """Count CAS uniques from now on in stripe `node_id % CAS_STRIDE`, above every unique
    handed out so far (the node registry's ids are unique per deployment)."""
    global _cas_slot, _cas_stride
    last = next(_cas_counter)
    _cas_slot, _cas_stride = node_id % CAS_STRIDE, CAS_STRIDE
    _count_cas_above(last)


def next_cas() -> int:
    """The next CAS unique (for storage modules other than this one: stripe_cas and
    continue_cas_above rebind this module's counter, so a name imported from here would
    keep counting the old one)."""
    return _next_cas()


def continue_cas_above(cas: int) -> None:
    """Make every CAS unique given from now on greater than `cas`: a warm restart
    (storage/snapshot.py) brings items back with their saved CAS, which must stay unique."""
    _count_cas_above(max(cas, next(_cas_counter)))


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
        "insight",
        "item_size_max",
        "items",
        "limit",
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
        self.items: OrderedDict[bytes, Item] = OrderedDict()
        self.used = 0
        self.stats = CacheStats()
        self.flush_at = 0.0
        # The dict the latest flush_all took away, until the graveyard has freed it: a
        # command that looks for one of its keys finds a flushed item (stat get_flushed).
        self.flushed: OrderedDict[bytes, Item] = OrderedDict()
        self._expiries: list[tuple[float, int, bytes]] = []
        # The introspection recorder; None when introspection is off (one check per command).
        self.insight: CacheInsight | None = CacheInsight(now) if introspection else None
        # Prefix flushes not yet reclaimed, and the newest one's mark: an item with a lower
        # CAS may be flushed. 0 when none is pending: then a read costs one comparison more.
        self.prefix_flushes = PrefixFlushes()
        self.prefix_mark = 0

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
            self.items.move_to_end(key)
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
        lookup = self.items.get
        refresh = self.items.move_to_end
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
                refresh(key)
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
        key, item = self.items.popitem(last=False)
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
        insight = self.insight
        if insight is not None:
            if item is None:
                insight.record(now, key, GAT_MISS, 0)
            else:
                insight.record(now, key, GAT_HIT, len(item.value))
        return item

    def touch(self, key: bytes, exptime: int, now: float) -> Item | None:
        """Give the item a new expiry; answers it, or None when there is none."""
        item = self._touch(key, exptime, now)
        insight = self.insight
        if insight is not None:
            if item is None:
                insight.record(now, key, TOUCH_MISS, 0)
            else:
                insight.record(now, key, TOUCHED, len(item.value))
        return item

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
            heapq.heappush(self._expiries, (item.exptime, item.cas, key))
        self.items.move_to_end(key)
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

    # -- warm restart (storage/snapshot.py) -------------------------------------------------

    def live_items(self, now: float) -> Iterator[tuple[bytes, Item]]:
        """Every item a command would find at `now`, least recently used first: what a
        snapshot saves. Whatever else makes an item unreachable must be left out here too."""
        if self.flush_at and now >= self.flush_at:
            return
        for key, item in self.items.items():
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
        self.items[key] = Item(value, flags, exptime, cas, 0.0)
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
        self.prefix_mark = pending.add(prefix, _next_cas())
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
            self.items = OrderedDict()
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
