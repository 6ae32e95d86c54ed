"""One cached value and its accounting."""

from __future__ import annotations

from typing import Final

__all__ = ["BUMP_INTERVAL", "ITEM_OVERHEAD", "Item"]

# Bytes charged per item beyond key and value: what memcached's item header costs (48 bytes
# on 64-bit with CAS) plus the CR LF it stores; documented in docs/storage.md.
ITEM_OVERHEAD: Final = 50

# A read moves an item to the LRU's most recently used end at most once in this many
# seconds, as memcached does (ITEM_UPDATE_INTERVAL): a hot item is not relinked on every
# hit, and the order among items read within the last minute does not matter for eviction.
BUMP_INTERVAL: Final = 60.0


class Item:
    """A value with its client flags, absolute expiry (0 = never), CAS unique, when a read
    last moved it to the LRU's most recently used end (see BUMP_INTERVAL), and whether any
    read or touch found it since it was stored (memcached's ITEM_FETCHED, shown by
    `lru_crawler metadump`)."""

    __slots__ = ("bumped", "cas", "exptime", "fetched", "flags", "value")

    def __init__(self, value: bytes, flags: int, exptime: float, cas: int, bumped: float) -> None:
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas = cas
        self.bumped = bumped
        self.fetched = False
