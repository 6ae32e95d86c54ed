"""One cached value and its accounting."""

from __future__ import annotations

__all__ = ["ITEM_OVERHEAD", "Item", "item_size"]

# Bytes charged per item beyond key and value: what memcached's item header costs (48 bytes
# on 64-bit with CAS) plus the CR LF it stores; documented in docs/storage.md.
ITEM_OVERHEAD = 50


def item_size(key: bytes, value: bytes) -> int:
    return len(key) + len(value) + ITEM_OVERHEAD


class Item:
    """A value with its client flags, absolute expiry (0 = never) and CAS unique."""

    __slots__ = ("cas", "exptime", "flags", "value")

    def __init__(self, value: bytes, flags: int, exptime: float, cas: int) -> None:
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas = cas
