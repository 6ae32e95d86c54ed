"""One cached value and its accounting."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BUMP_INTERVAL",
    "FETCHED",
    "ITEM_OVERHEAD",
    "KEY_BINARY",
    "STALE",
    "TOKEN_SENT",
    "Item",
]

# Bytes charged per item beyond key and value: what memcached's item header costs (48 bytes
# on 64-bit with CAS) plus the CR LF it stores; documented in docs/storage.md.
ITEM_OVERHEAD: Final = 50

# A read moves an item to the LRU's most recently used end at most once in this many
# seconds, as memcached does (ITEM_UPDATE_INTERVAL): a hot item is not relinked on every
# hit, and the order among items read within the last minute does not matter for eviction.
BUMP_INTERVAL: Final = 60.0

# The bits of `Item.meta`, the part of memcached's it_flags that the meta protocol shows:
# one small int (a shared object) in a sixth slot, 8 bytes per item (72 -> 80 measured).
FETCHED: Final = 1  # read since it was stored (mg `h`, me `fetch`)
STALE: Final = 2  # marked stale by `md <key> I` or a stale `ms ... I` (mg answers `X`)
TOKEN_SENT: Final = 4  # a client was given the recache win (`W`); others see `Z`
KEY_BINARY: Final = 8  # stored with a base64 key (`b`): `k` answers the key base64-encoded


class Item:
    """A value with its client flags, absolute expiry (0 = never), CAS unique, when a read
    last moved it to the LRU's most recently used end (see BUMP_INTERVAL), and whether any
    read or touch found it since it was stored and the meta protocol's other bits (`meta`:
    FETCHED, memcached's ITEM_FETCHED, shown by `lru_crawler metadump` and `mg h`), and
    where its place in the LRU order is (`lru`)."""

    __slots__ = ("bumped", "cas", "exptime", "flags", "lru", "meta", "value")

    def __init__(
        self, value: bytes, flags: int, exptime: float, cas: int, bumped: float, meta: int = 0
    ) -> None:
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas = cas
        self.bumped = bumped
        self.meta = meta  # FETCHED | STALE | TOKEN_SENT | KEY_BINARY
        # Its entry's position in the cache's LRU queue (storage/lru.py); -1 until queued.
        # A seventh field, free in the compiled build: mypyc's object stays in 96 bytes.
        self.lru = -1
