"""What one cache's requests look like, kept bounded and cheap: the introspection data.

Per cache and node, when introspection is on (`Cache.insight` is not None):

* `recent`: the last RECENT_REQUESTS requests (time, key, command, status, value size; never
  a value: the recorder is never handed one). Every request is written, one tuple each.
* hot keys: one request in SAMPLE_EVERY (pseudo-random) feeds three `TopK` sketches (keys
  most hit, missed, mutated) and one of prefixes, over windows of WINDOW_SECONDS; what is
  reported is the current window and the one before it, so "the last few minutes" means 2
  to 4 minutes.
* watched prefixes (at most MAX_WATCHED, set by the API from the control store): the same
  three sketches for the prefix's keys, its hit/miss/mutation counts, and its keys and bytes
  (counted as items are stored and removed, from when the prefix was watched on this node:
  keys stored before are not walked, which would mean walking the keyspace), with one
  snapshot a minute for the last SERIES_POINTS minutes.

A key's prefix (popular prefixes) is the key up to and including its first `:` `/` `.` `_`
or `-`: `user:42:name` → `user:`; a key without one has none. Memory is bounded whatever
the load: each sketch holds at most 2 x TOP_K keys (a key is at most 250 bytes).
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = [
    "HIT",
    "MAX_WATCHED",
    "MISS",
    "MUTATION",
    "RECENT_REQUESTS",
    "SAMPLE_EVERY",
    "SEPARATORS",
    "SERIES_POINTS",
    "TOP_K",
    "WINDOW_SECONDS",
    "CacheInsight",
    "PrefixWatch",
    "TopK",
    "prefix_of",
]

# The hosted service shows the last 100 requests per server.
RECENT_REQUESTS: Final = 100
# One request in this many (chosen pseudo-randomly) feeds the sketches: the hot keys of any
# real load survive sampling, and the data plane pays one multiply-add on the others.
SAMPLE_EVERY: Final = 4
_SAMPLE_MASK: Final = SAMPLE_EVERY - 1
# Keys a sketch reports at most; it holds twice as many before it prunes.
TOP_K: Final = 50
# The sketches start over every WINDOW_SECONDS; the previous window is kept beside.
WINDOW_SECONDS: Final = 120.0
# Watched prefixes per cache (the control store refuses more).
MAX_WATCHED: Final = 10
# One snapshot a minute of each watched prefix, for a day.
SERIES_POINTS: Final = 1440
SERIES_STEP: Final = 60.0
SEPARATORS: Final = (b":", b"/", b".", b"_", b"-")

# What a request did to its key (which sketch it feeds).
HIT: Final = 0
MISS: Final = 1
MUTATION: Final = 2

Request = tuple[float, bytes, str, str, int]


def prefix_of(key: bytes) -> bytes:
    """The key up to and including its first separator; b"" when it has none."""
    end = len(key)
    for separator in SEPARATORS:
        at = key.find(separator, 0, end)
        if at >= 0:
            end = at
    return key[: end + 1] if end < len(key) else b""


class TopK:
    """Space-saving top-k with batched pruning: a key's count is exact while it stays, and a
    key that enters after a prune starts at `floor` (the largest count pruned so far, an
    upper bound on anything forgotten), so a key hit more often than `floor` is never lost.
    At most 2 x capacity keys are held."""

    __slots__ = ("capacity", "counts", "floor")

    def __init__(self, capacity: int = TOP_K) -> None:
        self.capacity = capacity
        self.counts: dict[bytes, int] = {}
        self.floor = 0

    def add(self, key: bytes, weight: int) -> None:
        counts = self.counts
        count = counts.get(key)
        if count is not None:
            counts[key] = count + weight
            return
        counts[key] = self.floor + weight
        if len(counts) > 2 * self.capacity:
            self._prune()

    def _prune(self) -> None:
        ranked = sorted(self.counts.items(), key=_count, reverse=True)
        self.floor = max(self.floor, ranked[self.capacity][1])
        self.counts = dict(ranked[: self.capacity])

    def __len__(self) -> int:
        return len(self.counts)


def _count(entry: tuple[bytes, int]) -> int:
    return entry[1]


class _Window:
    """The sketches of one window of time."""

    __slots__ = ("hit", "miss", "mutation", "prefixes", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.hit = TopK()
        self.miss = TopK()
        self.mutation = TopK()
        self.prefixes = TopK()

    def sketch(self, kind: int) -> TopK:
        if kind == HIT:
            return self.hit
        if kind == MISS:
            return self.miss
        return self.mutation


class PrefixWatch:
    """One watched prefix on this node: counts, keys and bytes, its hot keys, its series."""

    __slots__ = (
        "counts",
        "current",
        "keys",
        "name",
        "previous",
        "series",
        "size",
    )

    def __init__(self, name: bytes, now: float) -> None:
        self.name = name
        self.keys = 0
        self.size = 0
        # Estimated requests (sampled x SAMPLE_EVERY): hits, misses, mutations.
        self.counts = [0, 0, 0]
        self.current = _Window(now)
        self.previous: _Window | None = None
        # (minute, keys, bytes, hits, misses, mutations): cumulative counts, one a minute.
        self.series: deque[tuple[float, int, int, int, int, int]] = deque(maxlen=SERIES_POINTS)

    def snapshot(self, at: float) -> None:
        hits, misses, mutations = self.counts
        point = (at, self.keys, self.size, hits, misses, mutations)
        if self.series and self.series[-1][0] == at:
            self.series[-1] = point
        else:
            self.series.append(point)


class CacheInsight:
    """The introspection recorder of one cache on one node (see the module's text)."""

    __slots__ = ("current", "position", "previous", "recent", "state", "watched", "watches")

    def __init__(self, now: float) -> None:
        self.recent: list[Request | None] = [None] * RECENT_REQUESTS
        self.position = 0
        self.state = 1
        self.current = _Window(now)
        self.previous: _Window | None = None
        # The watched prefixes, in the order the store lists them; empty when none.
        self.watched: tuple[bytes, ...] = ()
        self.watches: dict[bytes, PrefixWatch] = {}

    # -- the data plane's calls (each one cheap) -----------------------------------------

    def record(
        self, now: float, key: bytes, command: str, status: str, size: int, kind: int
    ) -> None:
        """One request: always in the recent ring, one in SAMPLE_EVERY into the sketches."""
        position = self.position
        self.recent[position] = (now, key, command, status, size)
        self.position = position + 1 if position + 1 < RECENT_REQUESTS else 0
        # A linear congruential step picks the sample: a counter would alias with a
        # client's periodic pattern (four gets per page, always the same one sampled).
        state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        self.state = state
        if (state >> 16) & _SAMPLE_MASK:
            return
        self._sample(now, key, kind)

    def _sample(self, now: float, key: bytes, kind: int) -> None:
        window = self.current
        if now - window.start >= WINDOW_SECONDS:
            window = self._rotate(now)
        window.sketch(kind).add(key, SAMPLE_EVERY)
        prefix = prefix_of(key)
        if prefix:
            window.prefixes.add(prefix, SAMPLE_EVERY)
        if self.watched:
            for name in self.watched:
                if key.startswith(name):
                    watch = self.watches[name]
                    watch.counts[kind] += SAMPLE_EVERY
                    pwindow = watch.current
                    if now - pwindow.start >= WINDOW_SECONDS:
                        watch.previous = (
                            pwindow if now - pwindow.start < 2 * WINDOW_SECONDS else None
                        )
                        pwindow = watch.current = _Window(now)
                    pwindow.sketch(kind).add(key, SAMPLE_EVERY)

    def _rotate(self, now: float) -> _Window:
        old = self.current
        # A window older than two lengths says nothing about the last few minutes.
        self.previous = old if now - old.start < 2 * WINDOW_SECONDS else None
        self.current = _Window(now)
        return self.current

    def stored(self, key: bytes, size: int) -> None:
        """An item of `size` bytes was stored (only called while a prefix is watched)."""
        for name in self.watched:
            if key.startswith(name):
                watch = self.watches[name]
                watch.keys += 1
                watch.size += size

    def removed(self, key: bytes, size: int) -> None:
        """An item was removed (deleted, replaced, evicted, expired)."""
        for name in self.watched:
            if key.startswith(name):
                watch = self.watches[name]
                # Keys stored before the prefix was watched were never counted.
                if watch.keys > 0:
                    watch.keys -= 1
                    watch.size = max(0, watch.size - size)

    def emptied(self) -> None:
        """The cache was flushed: no key of any prefix is left."""
        for watch in self.watches.values():
            watch.keys = 0
            watch.size = 0

    # -- the control plane's calls -------------------------------------------------------

    def watch(self, names: tuple[bytes, ...], now: float) -> None:
        """Watch exactly these prefixes (at most MAX_WATCHED); others are forgotten."""
        names = tuple(dict.fromkeys(names))[:MAX_WATCHED]
        if names == self.watched:
            return
        self.watches = {name: self.watches.get(name) or PrefixWatch(name, now) for name in names}
        self.watched = names

    def tick(self, now: float) -> None:
        """Background upkeep: a snapshot of each watched prefix once a minute."""
        if not self.watched:
            return
        minute = now // SERIES_STEP * SERIES_STEP
        for watch in self.watches.values():
            watch.snapshot(minute)

    def recent_requests(self) -> list[Request]:
        """The ring, oldest first."""
        position = self.position
        ring = self.recent[position:] + self.recent[:position]
        return [request for request in ring if request is not None]

    def popular(self, now: float, watch: PrefixWatch | None = None) -> dict[str, object]:
        """The hottest keys of the last windows (of one watched prefix's keys, if given),
        each as (key, estimated requests), with how many seconds they cover."""
        current = watch.current if watch is not None else self.current
        previous = watch.previous if watch is not None else self.previous
        if now - current.start >= 2 * WINDOW_SECONDS:
            current, previous = _Window(now), None  # nothing sampled lately
        elif now - current.start >= WINDOW_SECONDS:
            previous = current
            current = _Window(now)
        windows = [w for w in (previous, current) if w is not None]
        start = min(w.start for w in windows)
        report: dict[str, object] = {"seconds": max(0.0, now - start)}
        for name, kind in (("hit", HIT), ("miss", MISS), ("mutation", MUTATION)):
            report[name] = _merged([w.sketch(kind) for w in windows])
        report["prefix"] = [] if watch is not None else _merged([w.prefixes for w in windows])
        return report

    def key_counts(self, key: bytes, now: float) -> tuple[int, int, int]:
        """Estimated hits, misses and mutations of `key` over the last windows."""
        counts = self.popular_counts(now)
        return counts[0].get(key, 0), counts[1].get(key, 0), counts[2].get(key, 0)

    def popular_counts(
        self, now: float
    ) -> tuple[dict[bytes, int], dict[bytes, int], dict[bytes, int]]:
        windows = [w for w in (self.previous, self.current) if w is not None]
        windows = [w for w in windows if now - w.start < 2 * WINDOW_SECONDS]
        merged: list[dict[bytes, int]] = []
        for kind in (HIT, MISS, MUTATION):
            total: dict[bytes, int] = {}
            for window in windows:
                for key, count in window.sketch(kind).counts.items():
                    total[key] = total.get(key, 0) + count
            merged.append(total)
        return merged[0], merged[1], merged[2]


def _merged(sketches: list[TopK]) -> list[tuple[bytes, int]]:
    total: dict[bytes, int] = {}
    for sketch in sketches:
        for key, count in sketch.counts.items():
            total[key] = total.get(key, 0) + count
    return sorted(total.items(), key=_count, reverse=True)[:TOP_K]
