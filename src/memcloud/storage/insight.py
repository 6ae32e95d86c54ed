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
the load: each sketch holds at most PRUNE_AT x TOP_K keys (a key is at most 250 bytes).
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = [
    "DECR_BASE",
    "DELETED",
    "DELETE_EXISTS",
    "DELETE_MISS",
    "EVENTS",
    "GAT_HIT",
    "GAT_MISS",
    "GET_HIT",
    "GET_MISS",
    "HIT",
    "INCR_BASE",
    "MAX_WATCHED",
    "MISS",
    "MUTATION",
    "PRUNE_AT",
    "RECENT_REQUESTS",
    "SAMPLE_EVERY",
    "SEPARATORS",
    "SERIES_POINTS",
    "TOP_K",
    "TOUCHED",
    "TOUCH_MISS",
    "WINDOW_SECONDS",
    "CacheInsight",
    "PrefixWatch",
    "TopK",
    "prefix_of",
]

# The hosted service shows the last 100 requests per server.
RECENT_REQUESTS: Final = 100
# About one request in this many (at random gaps) feeds the sketches: the hot keys of any
# real load survive sampling, and the data plane pays one decrement on the others.
SAMPLE_EVERY: Final = 32
# Keys a sketch reports at most; it holds PRUNE_AT times as many before it prunes (a sort:
# rarer with more room, and the room is what a hostile load of distinct keys fills).
TOP_K: Final = 50
PRUNE_AT: Final = 4
# The sketches start over every WINDOW_SECONDS; the previous window is kept beside.
WINDOW_SECONDS: Final = 120.0
# Watched prefixes per cache (the control store refuses more).
MAX_WATCHED: Final = 10
# One snapshot a minute of each watched prefix, for a day.
SERIES_POINTS: Final = 1440
SERIES_STEP: Final = 60.0
SEPARATORS: Final = (b":", b"/", b".", b"_", b"-")
_SEPARATOR_TABLE: Final = bytes.maketrans(b"/._-", b"::::")

# What a request did to its key (which sketch it feeds).
HIT: Final = 0
MISS: Final = 1
MUTATION: Final = 2

Request = tuple[float, bytes, str, str, int]

# What a request was, as one small int (stored per request: no tuple, no string): an index
# into EVENTS, (command, status, kind).
_FIXED_EVENTS: Final = (
    ("GET", "HIT", HIT),
    ("GET", "MISS", MISS),
    ("GAT", "HIT", HIT),
    ("GAT", "MISS", MISS),
    ("TOUCH", "TOUCHED", MUTATION),
    ("TOUCH", "NOT_FOUND", MISS),
    ("DELETE", "DELETED", MUTATION),
    ("DELETE", "NOT_FOUND", MISS),
    ("DELETE", "EXISTS", MUTATION),
    ("INCR", "OK", MUTATION),
    ("INCR", "NOT_FOUND", MISS),
    ("INCR", "NON_NUMERIC", MUTATION),
    ("INCR", "EXISTS", MUTATION),
    ("DECR", "OK", MUTATION),
    ("DECR", "NOT_FOUND", MISS),
    ("DECR", "NON_NUMERIC", MUTATION),
    ("DECR", "EXISTS", MUTATION),
)
GET_HIT: Final = 0
GET_MISS: Final = 1
GAT_HIT: Final = 2
GAT_MISS: Final = 3
TOUCHED: Final = 4
TOUCH_MISS: Final = 5
DELETED: Final = 6
DELETE_MISS: Final = 7
DELETE_EXISTS: Final = 8
# + 0 OK, 1 NOT_FOUND, 2 NON_NUMERIC, 3 EXISTS
INCR_BASE: Final = 9
DECR_BASE: Final = 13
# Stores: STORE_BASE + (StoreMode - 1) * 6 + (StoreResult - 1), in those enums' orders.
STORE_BASE: Final = len(_FIXED_EVENTS)
_STORE_COMMANDS: Final = ("SET", "ADD", "REPLACE", "APPEND", "PREPEND", "CAS")
_STORE_STATUSES: Final = ("STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "TOO_LARGE", "NO_MEMORY")
EVENTS: Final[tuple[tuple[str, str, int], ...]] = _FIXED_EVENTS + tuple(
    (command, status, MISS if status == "NOT_FOUND" else MUTATION)
    for command in _STORE_COMMANDS
    for status in _STORE_STATUSES
)


def prefix_of(key: bytes) -> bytes:
    """The key up to and including its first separator; b"" when it has none."""
    # Every separator becomes ":" in one C pass, then one find: cheaper than five finds.
    end = key.translate(_SEPARATOR_TABLE).find(b":")
    return key[: end + 1] if end >= 0 else b""


class TopK:
    """Space-saving top-k with batched pruning: a key's count is exact while it stays, and a
    key that enters after a prune starts at `floor` (the largest count pruned so far, an
    upper bound on anything forgotten), so a key hit more often than `floor` is never lost.
    At most PRUNE_AT x capacity keys are held."""

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
        if len(counts) > PRUNE_AT * self.capacity:
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

    __slots__ = (
        "countdown",
        "current",
        "events",
        "keys",
        "position",
        "previous",
        "sizes",
        "stamp",
        "stamp_object",
        "state",
        "times",
        "watched",
        "watches",
    )

    def __init__(self, now: float) -> None:
        # The recent ring, as parallel lists written in place (no allocation per request).
        self.keys: list[bytes | None] = [None] * RECENT_REQUESTS
        self.events: list[int] = [0] * RECENT_REQUESTS
        self.sizes: list[int] = [0] * RECENT_REQUESTS
        self.times: list[object] = [0.0] * RECENT_REQUESTS
        self.position = 0
        # The last time seen, and that time as one object shared by its requests' entries.
        self.stamp = -1.0
        self.stamp_object: object = 0.0
        # Requests until the next sample, drawn at random around SAMPLE_EVERY: a fixed
        # stride would alias with a client's periodic pattern (four gets per page, always
        # the same one sampled). `state` is the generator's (a linear congruential one).
        self.state = 1
        self.countdown = SAMPLE_EVERY
        self.current = _Window(now)
        self.previous: _Window | None = None
        # The watched prefixes, in the order the store lists them; empty when none.
        self.watched: tuple[bytes, ...] = ()
        self.watches: dict[bytes, PrefixWatch] = {}

    # -- the data plane's calls (each one cheap) -----------------------------------------

    def record(self, now: float, key: bytes, event: int, size: int) -> None:
        """One request (an EVENTS index): always in the recent ring, about one in
        SAMPLE_EVERY into the sketches."""
        position = self.position
        self.keys[position] = key
        self.events[position] = event
        self.sizes[position] = size
        if now != self.stamp:
            self.stamp = now
            self.stamp_object = now
        self.times[position] = self.stamp_object
        self.position = position + 1 if position + 1 < RECENT_REQUESTS else 0
        countdown = self.countdown - 1
        if countdown > 0:
            self.countdown = countdown
            return
        state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        self.state = state
        # Uniform over 1 .. 2 x SAMPLE_EVERY - 1: one request in SAMPLE_EVERY on average.
        self.countdown = 1 + (state >> 16) % (2 * SAMPLE_EVERY - 1)
        self._sample(now, key, EVENTS[event][2])

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
        """The ring, oldest first: (time, key, command, status, size)."""
        found: list[Request] = []
        for offset in range(RECENT_REQUESTS):
            index = (self.position + offset) % RECENT_REQUESTS
            key = self.keys[index]
            if key is None:
                continue
            command, status, _ = EVENTS[self.events[index]]
            at = self.times[index]
            assert isinstance(at, float)
            found.append((at, key, command, status, self.sizes[index]))
        return found

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
