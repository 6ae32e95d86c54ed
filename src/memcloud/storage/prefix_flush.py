"""The prefix flushes a cache has not finished reclaiming, and the bounded scan that does.

A prefix flush costs O(1) when asked: it records (prefix, mark), where the mark is a CAS
unique taken at that moment. Every write gives an item a fresh, higher CAS (as memcached's
flush_all uses its `oldest_cas`), so an item whose key starts with the prefix and whose CAS is
below the mark was written before the flush: it is gone. A command that finds such an item
drops it; the upkeep visits every key in bounded slices (`Cache.reclaim_prefixed`) and drops
the others, so that `bytes` and `curr_items` come right; a finished scan retires the flushes
it covered.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PENDING_PREFIX_FLUSHES", "PrefixFlushes", "TooManyPrefixFlushes"]

# Every command on an item older than the newest pending flush checks its key against each
# pending prefix (one bytes.startswith over a tuple: about 20 ns a prefix): this bounds that
# cost. A scan retires every flush older than itself, so only a burst of distinct prefixes
# on a large cache (more than this many within one scan) meets the bound.
MAX_PENDING_PREFIX_FLUSHES: Final = 32


class TooManyPrefixFlushes(Exception):
    """The cache has MAX_PENDING_PREFIX_FLUSHES prefix flushes still being reclaimed; this
    one was not made (a retry once the scan has retired some succeeds)."""

    def __init__(self) -> None:
        super().__init__(
            f"{MAX_PENDING_PREFIX_FLUSHES} prefix flushes of this cache are still being"
            " reclaimed; retry in a few seconds"
        )


class PrefixFlushes:
    """One cache's pending prefix flushes (parallel `prefixes` and `marks`) and its scan:
    the keys still to visit, and the newest mark the running scan covers (0: none runs)."""

    __slots__ = ("marks", "prefixes", "scan", "scan_covers")

    def __init__(self) -> None:
        self.prefixes: tuple[bytes, ...] = ()
        self.marks: list[int] = []
        self.scan: list[bytes] = []
        self.scan_covers = 0

    def covers(self, key: bytes, cas: int) -> bool:
        """Whether an item under `key` with this CAS was flushed by a pending prefix flush."""
        prefixes = self.prefixes
        if not key.startswith(prefixes):
            return False
        for index, mark in enumerate(self.marks):
            if cas < mark and key.startswith(prefixes[index]):
                return True
        return False

    def add(self, prefix: bytes, mark: int) -> int:
        """Record a flush of `prefix` at `mark`; answers the newest pending mark. A pending
        flush of the same or a longer prefix is older and covered by this one: merged away.
        Raises TooManyPrefixFlushes when the others fill the bound."""
        kept = [
            (old, old_mark)
            for old, old_mark in zip(self.prefixes, self.marks, strict=True)
            if not old.startswith(prefix)
        ]
        if len(kept) >= MAX_PENDING_PREFIX_FLUSHES:
            raise TooManyPrefixFlushes()
        kept.append((prefix, mark))
        self.prefixes = tuple(entry[0] for entry in kept)
        self.marks = [entry[1] for entry in kept]
        return mark

    def finish_scan(self) -> int:
        """The scan visited every key present when it began: an item a flush covered that no
        command dropped was there then (it predates the flush, which predates the scan), so
        every flush the scan covers is done. Answers the newest mark still pending (0: none)."""
        covered = self.scan_covers
        kept = [
            (prefix, mark)
            for prefix, mark in zip(self.prefixes, self.marks, strict=True)
            if mark > covered
        ]
        self.prefixes = tuple(entry[0] for entry in kept)
        self.marks = [entry[1] for entry in kept]
        self.scan = []
        self.scan_covers = 0
        return max(self.marks, default=0)

    def clear(self) -> None:
        """The whole cache was flushed: nothing is pending any more."""
        self.prefixes = ()
        self.marks = []
        self.scan = []
        self.scan_covers = 0
