"""What the meta protocol does to a cache beyond the classic commands: create an empty item
(mg `N`), give an item a new expiry or CAS (mg `T`, `E`), mark one stale (md `I`), store
a value over a newer one as stale (ms `I` with an older `C`), and memcached's LRU bump.

Functions over `Cache`, beside it in this package: they keep its accounting (memory,
expiry heap, counters) exactly as its own methods do, so Cache stays one concept.
"""

from __future__ import annotations

import heapq

from memcloud.storage.cache import Cache, absolute_exptime, next_cas
from memcloud.storage.item import BUMP_INTERVAL, FETCHED, STALE, TOKEN_SENT, Item
from memcloud.storage.results import StoreMode, StoreResult

__all__ = ["bump", "mark_stale", "set_cas", "set_expiry", "store_stale", "vivify"]


def set_expiry(cache: Cache, key: bytes, item: Item, exptime: int, now: float) -> None:
    """A new TTL under memcached's exptime rules (0 never, negative already expired)."""
    item.exptime = absolute_exptime(exptime, now)
    if item.exptime > 0:
        heapq.heappush(cache._expiries, (item.exptime, item.cas, key))


def set_cas(cache: Cache, key: bytes, item: Item, cas: int) -> None:
    """Give the item a new CAS (the next one, or the client's explicit `E` one); the expiry
    heap knows entries by CAS, so the item gets a new entry there."""
    item.cas = cas if cas else next_cas()
    if item.exptime > 0:
        heapq.heappush(cache._expiries, (item.exptime, item.cas, key))


def bump(cache: Cache, key: bytes, item: Item, now: float) -> None:
    """memcached's do_item_bump after a meta read: fetched, and moved to the most recently
    used end at most once per BUMP_INTERVAL (as `Cache.get` does)."""
    item.meta |= FETCHED
    if now - item.bumped >= BUMP_INTERVAL:
        item.bumped = now
        cache.lru.push(key, item, cache.items)


def vivify(cache: Cache, key: bytes, meta: int, now: float) -> Item | None:
    """mg `N` on a miss: an empty item with flags 0 and no expiry yet (the command sets it),
    counted as an item but not as a set, as memcached links it. None without memory."""
    result, _ = cache._insert(key, b"", 0, 0.0, None, now)
    if result is not StoreResult.STORED:
        return None
    item = cache.items[key]
    item.meta = meta
    return item


def mark_stale(cache: Cache, key: bytes, item: Item, cas: int) -> None:
    """md `I`: keep the item but mark it stale with a new CAS; the next reader wins the
    right to recache it (its token-sent mark is cleared)."""
    item.meta = (item.meta | STALE) & ~TOKEN_SENT
    set_cas(cache, key, item, cas)


def store_stale(
    cache: Cache, key: bytes, value: bytes, flags: int, old: Item, now: float
) -> tuple[StoreResult, int]:
    """ms `I` with a CAS older than the item's: the value is stored, still stale, keeping
    the old expiry and token-sent mark (memcached's CAS_STALE), counted as a CAS hit."""
    exptime, marks = old.exptime, old.meta & TOKEN_SENT
    result, cas = cache.store(StoreMode.SET, key, value, flags, 0, now)
    if result is StoreResult.STORED:
        cache.stats.cas_hits += 1
        item = cache.items[key]
        item.meta = STALE | marks
        if exptime:
            item.exptime = exptime
            heapq.heappush(cache._expiries, (exptime, item.cas, key))
    return result, cas
