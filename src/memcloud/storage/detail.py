"""Per-prefix counts of one cache (memcached's `stats detail`): gets, hits, sets and deletes
of the keys that share the part before the first delimiter, while the tenant has them on.

Off by default; the cache's commands pay one attribute check while it stays off. The table
is bounded (PREFIXES_MAX): once full, keys of a prefix not yet in it are not counted.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PREFIXES_MAX", "PrefixStats"]

# Distinct prefixes one cache counts at most: memcached's table has no bound, and every
# entry (a prefix of up to 250 bytes and four counters) lives outside the cache's plan.
# 256 entries cost at most about 100 KB per cache.
PREFIXES_MAX: Final = 256

# The counters of one prefix, by index in its list.
GET: Final = 0
HIT: Final = 1
SET: Final = 2
DELETE: Final = 3


class PrefixStats:
    """`enabled` is the tenant's switch (`stats detail on|off`); the counts stay when it is
    switched off, as in memcached, until `stats reset` clears them."""

    __slots__ = ("delimiter", "enabled", "prefixes")

    def __init__(self, delimiter: bytes) -> None:
        self.delimiter: Final = delimiter
        self.enabled = True
        self.prefixes: dict[bytes, list[int]] = {}

    def _counters(self, key: bytes) -> list[int] | None:
        """The counters of the key's prefix; None for a key without the delimiter (memcached
        counts those nowhere) or a new prefix once the table is full."""
        end = key.find(self.delimiter)
        if end < 0:
            return None
        prefix = key[:end]
        counters = self.prefixes.get(prefix)
        if counters is None:
            if len(self.prefixes) >= PREFIXES_MAX:
                return None
            counters = self.prefixes[prefix] = [0, 0, 0, 0]
        return counters

    def get(self, key: bytes, hit: bool) -> None:
        if not self.enabled:
            return
        counters = self._counters(key)
        if counters is not None:
            counters[GET] += 1
            if hit:
                counters[HIT] += 1

    def set(self, key: bytes) -> None:
        if not self.enabled:
            return
        counters = self._counters(key)
        if counters is not None:
            counters[SET] += 1

    def delete(self, key: bytes) -> None:
        if not self.enabled:
            return
        counters = self._counters(key)
        if counters is not None:
            counters[DELETE] += 1

    def clear(self) -> None:
        self.prefixes = {}

    def dump(self) -> bytes:
        """memcached's `stats detail dump` reply, prefixes in byte order, then END."""
        lines = [
            b"PREFIX %s get %d hit %d set %d del %d\r\n"
            % (prefix, c[GET], c[HIT], c[SET], c[DELETE])
            for prefix, c in sorted(self.prefixes.items())
        ]
        lines.append(b"END\r\n")
        return b"".join(lines)
