"""One cache's LRU order beside a plain dict: a queue of keys in segments, exact, 8 bytes
an entry.

An `OrderedDict` costs about 107 bytes per item over the 42 of a plain dict (its linked list
node and the table that finds a key's node), the largest share of Python's overhead per item
after the key and value objects themselves (docs/storage.md, "Memory per item"). Here the
items live in a plain dict and the order is a queue of references to their keys (the key
objects are the dict's own: one pointer each). Every move to the most recently used end
appends the key again and records its position in the item (`Item.lru`); the entry left
behind is stale, and is skipped where it is found: an entry is the item's place only while
the dict's item under its key still carries its position. So the order is exactly the one an
`OrderedDict` with `move_to_end` would keep, with no walk of the keyspace on any command.

Stale entries (moved, deleted or replaced items) are dropped a segment at a time: when the
queue holds more than twice as many entries as the dict holds items (plus STALE_FLOOR), each
append first compacts one segment, round robin from the oldest. A segment's positions are
its id times SEGMENT plus the index, so compacting one renumbers only its own entries and
every other position stays valid. So the queue stays within about 2x the items, at
8 bytes an entry, and no operation visits more than one segment.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Final

from memcloud.storage.item import Item

__all__ = ["SEGMENT", "STALE_FLOOR", "LruOrder"]

# Entries per segment: the most one compaction visits (a fraction of a millisecond).
SEGMENT: Final = 4096
# Stale entries tolerated beyond one per item before appends start compacting. Each may hold
# the only reference to a key a tenant deleted or replaced, memory no plan is charged for: so
# small, a cache's uncharged keys stay under about 256 x 300 bytes beyond one per item.
STALE_FLOOR: Final = 256


class LruOrder:
    """The least recently used first: `push` a key whose item moved to the most recently
    used end, `pop` the least recently used item's key. `entries` counts the queue's
    entries not consumed yet, live and stale."""

    __slots__ = ("compact_at", "entries", "first", "head", "segments")

    def __init__(self) -> None:
        self.segments: deque[list[bytes]] = deque([[]])
        self.first = 0  # the id of segments[0]; segments[i] has id first + i
        self.head = 0  # entries of segments[0] before this index are consumed
        self.entries = 0
        self.compact_at = 0  # the id of the segment the next compaction visits

    def push(self, key: bytes, item: Item, items: dict[bytes, Item]) -> None:
        """`item`, the item under `key` in `items`, is now the most recently used."""
        if self.entries > 2 * len(items) + STALE_FLOOR:
            self._compact_one(items)
        segments = self.segments
        last = segments[-1]
        if len(last) >= SEGMENT:
            last = []
            segments.append(last)
        item.lru = (self.first + len(segments) - 1) * SEGMENT + len(last)
        last.append(key)
        self.entries += 1

    def pop(self, items: dict[bytes, Item]) -> bytes | None:
        """The key of the least recently used item in `items`, consumed from the queue (the
        caller removes the item); None when no entry is live."""
        segments = self.segments
        while True:
            segment = segments[0]
            base = self.first * SEGMENT
            head = self.head
            while head < len(segment):
                key = segment[head]
                head += 1
                item = items.get(key)
                if item is not None and item.lru == base + head - 1:
                    self.entries -= head - self.head
                    self.head = head
                    return key
            self.entries -= head - self.head
            self.head = 0
            if len(segments) == 1:
                segments.append([])  # a new id: positions only ever grow
                segments.popleft()
                self.first += 1
                return None
            segments.popleft()
            self.first += 1

    def walk(self, items: dict[bytes, Item]) -> Iterator[tuple[bytes, Item]]:
        """Every item of `items` in the queue, least recently used first. Nothing may change
        the queue or `items` while a walk is under way (a snapshot's write runs at once)."""
        for index, segment in enumerate(self.segments):
            base = (self.first + index) * SEGMENT
            start = self.head if index == 0 else 0
            for offset in range(start, len(segment)):
                key = segment[offset]
                item = items.get(key)
                if item is not None and item.lru == base + offset:
                    yield key, item

    def _compact_one(self, items: dict[bytes, Item]) -> None:
        """Drop the stale entries of one segment (round robin over the queue, oldest
        first), renumbering the live ones within the segment's own positions."""
        segments = self.segments
        index = self.compact_at - self.first
        if index < 0 or index >= len(segments):
            index = 0
        segment_id = self.first + index
        self.compact_at = segment_id + 1
        segment = segments[index]
        start = self.head if index == 0 else 0
        base = segment_id * SEGMENT
        kept: list[bytes] = []
        for offset in range(start, len(segment)):
            key = segment[offset]
            item = items.get(key)
            if item is not None and item.lru == base + offset:
                item.lru = base + len(kept)
                kept.append(key)
        self.entries -= len(segment) - start - len(kept)
        segment[:] = kept
        if index == 0:
            self.head = 0
