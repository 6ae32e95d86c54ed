"""memcached's admin commands, each for the caller's cache only: `stats detail on|off|dump`,
`stats conns`, `stats sizes`, `stats cachedump`, `lru_crawler metadump`, and the clear
refusals of `cache_memlimit`, `watch` and the crawler's operator commands.

On a shared server memcached's own versions show every tenant's keys and connections; here
every command reads the session's cache and nothing else. The walks over a cache's keys
(metadump, sizes) never stall the event loop: a `Crawl` takes the key list once and answers
in bounded steps through the session's backlog (REPLY_BATCH_MAX), one crawl per cache at a
time, as memcached runs one crawler ("BUSY").
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote_from_bytes

from memcloud.gate import ALLOWED, allowed
from memcloud.protocol import replies
from memcloud.protocol.commands import Admin
from memcloud.protocol.specs import STATS_DETAIL_SWITCH
from memcloud.service import Session
from memcloud.storage.cache import Cache
from memcloud.storage.detail import PrefixStats
from memcloud.storage.item import FETCHED, ITEM_OVERHEAD, Item

__all__ = [
    "CRAWL_KEYS_PER_STEP",
    "SIZE_BUCKET",
    "STATS_GROUPS",
    "Crawl",
    "admin_command",
    "admin_stats",
    "binary_stats",
]

# `stats <group>` answered here rather than by Session.stats_lines.
STATS_GROUPS: Final = frozenset((b"detail", b"conns", b"sizes", b"cachedump"))
# Keys a crawl looks at per step at most, besides the reply batch limit: a few milliseconds
# of work (about 7 µs a metadump line on a loaded core), so that other connections are
# answered between the steps of a crawl over millions of keys.
CRAWL_KEYS_PER_STEP: Final = 2_000
# memcached's `stats sizes` buckets items by total size rounded up to 32 bytes.
SIZE_BUCKET: Final = 32
# Slab class ids memcached accepts (1 to 63; MAX_NUMBER_OF_SLAB_CLASSES is 64). A cache here
# has one LRU, reported as class 1 (docs/text-protocol.md).
_CLASS_IDS: Final = range(0, 64)
_ONLY_CLASS: Final = 1

_BAD_LINE: Final = b"CLIENT_ERROR bad command line\r\n"
_ILLEGAL_SLAB: Final = b"CLIENT_ERROR Illegal slab id\r\n"
_BADCLASS: Final = b"BADCLASS invalid class id\r\n"
_BUSY: Final = b"BUSY currently processing crawler request\r\n"
MEMLIMIT_REFUSED: Final = (
    b"CLIENT_ERROR cache_memlimit is refused: a cache's memory is its plan, "
    b"which only the operator changes\r\n"
)
WATCH_REFUSED: Final = (
    b"CLIENT_ERROR watch is not available: see your cache's recent requests on the "
    b"dashboard's Introspection page\r\n"
)
CRAWLER_REFUSED: Final = (
    b"CLIENT_ERROR lru_crawler %s is the operator's: memcloud reclaims expired items "
    b"itself (lru_crawler metadump lists your keys)\r\n"
)
MGDUMP_REFUSED: Final = (
    b"CLIENT_ERROR lru_crawler mgdump is not implemented: lru_crawler metadump lists your keys\r\n"
)
_CRAWLER_OPERATOR: Final = frozenset((b"crawl", b"enable", b"disable", b"sleep", b"tocrawl"))

# The crawl each cache runs, if any (one at a time per cache, as memcached's one crawler).
_CRAWLS: dict[Cache, Crawl] = {}


class Crawl:
    """A walk over a snapshot of one cache's keys, answered in steps: metadump lines as it
    goes, or (`sizes`) one histogram at the end. Looking does not count as a command, move
    an item in the LRU or mark it fetched; items gone or expired meanwhile are skipped."""

    __slots__ = ("cache", "keys", "position", "session", "sizes")

    def __init__(self, session: Session, cache: Cache, sizes: bool) -> None:
        self.session = session
        self.cache = cache
        # One copy of the key list (8 bytes a key): the dict cannot be iterated across
        # steps while other connections change it (some 10-50 ms for a million keys). The
        # order is the keys' insertion, not the LRU's: memcached's crawler order is no
        # promise either.
        self.keys = list(cache.items)
        self.position = 0
        self.sizes: dict[int, int] | None = {} if sizes else None

    def step(self, now: float, budget: int) -> tuple[bytes, bool]:
        """The next part of the reply (at most about `budget` bytes) and whether it is the
        last."""
        cache = self.cache
        items = cache.items
        flushed = bool(cache.flush_at) and now >= cache.flush_at
        keys = self.keys
        end = min(len(keys), self.position + CRAWL_KEYS_PER_STEP)
        out: list[bytes] = []
        size = 0
        sizes = self.sizes
        position = self.position
        while position < end and size <= budget and not flushed:
            key = keys[position]
            position += 1
            item = items.get(key)
            if item is None or (item.exptime and item.exptime <= now):
                continue
            if sizes is not None:
                bucket = -(-(len(key) + len(item.value) + ITEM_OVERHEAD) // SIZE_BUCKET)
                sizes[bucket] = sizes.get(bucket, 0) + 1
            else:
                line = metadump_line(key, item)
                out.append(line)
                size += len(line)
        self.position = len(keys) if flushed else position
        done = self.position >= len(keys)
        if done:
            self.finish()
            if sizes is not None:
                out.extend(
                    b"STAT %d %d\r\n" % (bucket * SIZE_BUCKET, count)
                    for bucket, count in sorted(sizes.items())
                )
            out.append(replies.END)
        return b"".join(out), done

    def finish(self) -> None:
        """Release the cache's crawl slot and the key list."""
        if _CRAWLS.get(self.cache) is self:
            del _CRAWLS[self.cache]
        self.keys = []


def metadump_line(key: bytes, item: Item) -> bytes:
    """One `lru_crawler metadump` line in memcached's format (a bare LF ends it, as in
    memcached): expiry and last access as Unix times (-1: never expires), `size` as this
    cache accounts the item (key + value + ITEM_OVERHEAD)."""
    exp = int(item.exptime) if item.exptime else -1
    return b"key=%s exp=%d la=%d cas=%d fetch=%s cls=1 size=%d\n" % (
        quote_from_bytes(key, safe="").encode(),
        exp,
        int(item.bumped),
        item.cas,
        b"yes" if item.meta & FETCHED else b"no",
        len(key) + len(item.value) + ITEM_OVERHEAD,
    )


def _start_crawl(session: Session, cache: Cache, sizes: bool) -> Crawl | bytes:
    running = _CRAWLS.get(cache)
    if running is not None:
        # A crawl whose connection closed (or which its session dropped) frees the slot.
        live = running.session in session.service.sessions and running.keys
        if live:
            return _BUSY
        running.finish()
    for stale in [c for c in _CRAWLS.values() if c.session not in session.service.sessions]:
        stale.finish()
    crawl = Crawl(session, cache, sizes)
    _CRAWLS[cache] = crawl
    return crawl


def admin_stats(session: Session, args: tuple[bytes, ...], now: float) -> bytes | Crawl:
    """The reply to `stats <group> ...` for a group of STATS_GROUPS."""
    cache = session.cache
    assert cache is not None  # the gate let a logged-in session through
    group = args[0]
    if group == b"detail":
        return _detail(session, cache, args[1] if len(args) > 1 else b"")
    if group == b"conns":
        return replies.render_stats(conns_lines(session, cache))
    if group == b"sizes":
        return _start_crawl(session, cache, sizes=True)
    return _cachedump(args)


def _detail(session: Session, cache: Cache, arg: bytes) -> bytes:
    stats = cache.stats
    if arg == b"dump":
        return replies.END if stats.detail is None else stats.detail.dump()
    if arg != b"on" and arg != b"off":
        return replies.STATS_DETAIL_USAGE
    if allowed(session.capabilities, STATS_DETAIL_SWITCH) != ALLOWED:
        return replies.NO_WRITE
    if arg == b"on":
        if stats.detail is None:
            stats.detail = PrefixStats(session.service.settings.prefix_delimiter.encode())
        stats.detail.enabled = True
    elif stats.detail is not None:
        stats.detail.enabled = False  # the counts stay for `dump`, as in memcached
    return replies.OK


def conns_lines(session: Session, cache: Cache) -> list[tuple[str, object]]:
    """memcached's `stats conns` for the connections logged in to this cache only, each
    numbered by its place in address order (memcached shows file descriptors)."""
    lines: list[tuple[str, object]] = []
    peers = sorted(
        (other.peer, other is session)
        for other in session.service.sessions
        if other.cache is cache and not other.closing
    )
    for number, (peer, own) in enumerate(peers, start=1):
        host, _, port = peer.rpartition(":")
        address = f"tcp6:[{host}]:{port}" if ":" in host else f"tcp:{peer}"
        lines.append((f"{number}:addr", address))
        lines.append((f"{number}:state", "conn_parse_cmd" if own else "conn_waiting"))
    return lines


def _cachedump(args: tuple[bytes, ...]) -> bytes:
    """`stats cachedump <class> <limit>`: memcached's answers to a bad line, else END (the
    key listing is `lru_crawler metadump`)."""
    if len(args) < 3:
        return _BAD_LINE
    slab, limit = args[1], args[2]
    if not slab.isdigit() or not limit.isdigit():
        return replies.BAD_FORMAT
    if int(slab) not in _CLASS_IDS:
        return _ILLEGAL_SLAB
    return replies.END


def admin_command(session: Session, command: Admin, now: float) -> bytes | Crawl:
    """The reply to `lru_crawler`, `cache_memlimit` or `watch` (empty under noreply)."""
    args = command.args
    if command.verb == b"cache_memlimit":
        return b"" if args[-1] == b"noreply" else MEMLIMIT_REFUSED
    if command.verb == b"watch":
        return WATCH_REFUSED
    cache = session.cache
    assert cache is not None
    sub = args[0]
    if sub == b"metadump":
        return _metadump(session, cache, args[1:], now)
    if sub in _CRAWLER_OPERATOR:
        return CRAWLER_REFUSED % sub
    if sub == b"mgdump":
        return MGDUMP_REFUSED
    return replies.ERROR


def _metadump(
    session: Session, cache: Cache, targets: tuple[bytes, ...], now: float
) -> bytes | Crawl:
    """`lru_crawler metadump all|hash|<classid,...>` walks the cache; any other arguments
    are keys (memcloud's extension): their lines, for those the cache holds, then END."""
    if not targets:
        return replies.ERROR
    if len(targets) == 1:
        target = targets[0]
        if target == b"all" or target == b"hash":
            return _start_crawl(session, cache, sizes=False)
        ids = target.split(b",")
        if all(part.isdigit() for part in ids):
            numbers = [int(part) for part in ids]
            if any(number not in _CLASS_IDS or number == 0 for number in numbers):
                return _BADCLASS
            if _ONLY_CLASS in numbers:
                return _start_crawl(session, cache, sizes=False)
            return replies.END
    lines = []
    for key in targets:
        item = cache.items.get(key)
        if item is not None and not (item.exptime and item.exptime <= now):
            lines.append(metadump_line(key, item))
    lines.append(replies.END)
    return b"".join(lines)


def binary_stats(session: Session, group: bytes) -> list[tuple[bytes, bytes]] | int | None:
    """The binary Stat groups answered here, as memcached answers them: (key, value) pairs
    before the closing empty one, a gate verdict to refuse with, or None for the groups
    Session.stats_lines answers (memcached's binary Stat has no `conns` or `cachedump`)."""
    cache = session.cache
    assert cache is not None
    if group == b"detail dump":
        # One pair holding the whole text dump, under memcached's key.
        detail = cache.stats.detail
        return [(b"detailed", replies.END if detail is None else detail.dump())]
    if group == b"detail on" or group == b"detail off":
        verdict = allowed(session.capabilities, STATS_DETAIL_SWITCH)
        if verdict != ALLOWED:
            return verdict
        _detail(session, cache, group[7:])
        return []
    if group == b"sizes":
        # The histogram is built in bounded steps on text connections only; this is
        # memcached's answer when it keeps none (its default).
        return [(b"sizes_status", b"disabled")]
    return None
