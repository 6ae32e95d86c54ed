"""Per-cache counters, named as memcached (and the hosted service's stats API) name them."""

from __future__ import annotations

from memcloud.storage.detail import PrefixStats

__all__ = ["COUNTER_NAMES", "CacheStats"]

# Counters that commands and connections bump; gauges (bytes, curr_items, limit_maxbytes,
# curr_connections) are read from the cache itself.
COUNTER_NAMES: tuple[str, ...] = (
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "cmd_delete",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "store_too_large",
    "store_no_memory",
    "auth_cmds",
    "auth_errors",
    "bytes_read",
    "bytes_written",
    "total_connections",
    "total_items",
    "evictions",
    "expired",
    "reclaimed",
)


class CacheStats:
    """Plain integer attributes: bumping one costs what an attribute store costs."""

    __slots__ = (*COUNTER_NAMES, "curr_connections", "detail")

    cmd_get: int
    cmd_set: int
    cmd_flush: int
    cmd_touch: int
    cmd_delete: int
    get_hits: int
    get_misses: int
    get_expired: int
    get_flushed: int
    delete_hits: int
    delete_misses: int
    incr_hits: int
    incr_misses: int
    decr_hits: int
    decr_misses: int
    cas_hits: int
    cas_misses: int
    cas_badval: int
    touch_hits: int
    touch_misses: int
    store_too_large: int
    store_no_memory: int
    auth_cmds: int
    auth_errors: int
    bytes_read: int
    bytes_written: int
    total_connections: int
    total_items: int
    evictions: int
    expired: int
    reclaimed: int
    curr_connections: int
    # Per-prefix counts (`stats detail`), None until the tenant first switches them on.
    detail: PrefixStats | None

    def __init__(self) -> None:
        self.detail = None
        self.reset()
        self.curr_connections = 0

    def reset(self) -> None:
        for name in COUNTER_NAMES:
            setattr(self, name, 0)
        if self.detail is not None:  # memcached's `stats reset` clears them too
            self.detail.clear()

    # What happens around the commands, counted here as the cache's methods count theirs.

    def connected(self) -> None:
        """A connection logged in to the cache."""
        self.curr_connections += 1
        self.total_connections += 1

    def disconnected(self) -> None:
        """A logged-in connection closed, or left the cache to log in again."""
        self.curr_connections -= 1

    def authenticated(self, ok: bool) -> None:
        """A login naming a credential of the cache, and whether it succeeded."""
        self.auth_cmds += 1
        if not ok:
            self.auth_errors += 1

    def transferred(self, read: int, written: int) -> None:
        """Bytes a logged-in connection read and the bytes of its replies."""
        self.bytes_read += read
        self.bytes_written += written

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}
