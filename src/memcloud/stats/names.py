"""Every stat name memcloud reports, and what kind of number it is.

- Counters (`COUNTER_NAMES`, kept by storage) only grow until a reset (`stats reset`, the
  API's reset_stats, a node restart); a rate is a difference of two readings, taken with
  `aggregate.counter_increase`.
- Gauges (`GAUGE_NAMES`) are a value at a moment: they are shown as they are, never
  differenced.
- Cache-wide stats (`CACHE_WIDE_STATS`) read the same on every node, so nodes' values are not
  summed. Every other stat is: each node holds its own share of a cache's plan and keys (see
  docs/nodes.md), so sizes and items add up like counters.
"""

from __future__ import annotations

from typing import Final

from memcloud.storage.stats import COUNTER_NAMES

__all__ = [
    "API_STAT_NAMES",
    "CACHE_WIDE_STATS",
    "CLUSTER_SUMMED_STATS",
    "COMMAND_COUNTERS",
    "COUNTER_NAMES",
    "GAUGE_NAMES",
    "HISTORY_STAT_NAMES",
    "HIT_COUNTERS",
    "REQUEST_COMMANDS",
]

GAUGE_NAMES: Final[tuple[str, ...]] = ("bytes", "curr_connections", "curr_items", "limit_maxbytes")
# The node's clock (`time`): the latest of the nodes' is the cache's.
CACHE_WIDE_STATS: Final = frozenset({"time"})
# What memcache's `stats` on any node of a cluster reads as the whole cache's (reference
# §4.7: the same on every server): the sum of every live node's share. `limit_maxbytes` is
# the plan itself.
CLUSTER_SUMMED_STATS: Final[tuple[str, ...]] = ("curr_items", "bytes", "evictions")

# The 31 stats of the hosted service's stats API, in its (alphabetical) order.
API_STAT_NAMES: Final[tuple[str, ...]] = (
    "auth_cmds",
    "auth_errors",
    "bytes",
    "bytes_read",
    "bytes_written",
    "cas_badval",
    "cas_hits",
    "cas_misses",
    "cmd_delete",
    "cmd_flush",
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "curr_connections",
    "curr_items",
    "decr_hits",
    "decr_misses",
    "delete_hits",
    "delete_misses",
    "evictions",
    "expired",
    "get_hits",
    "get_misses",
    "incr_hits",
    "incr_misses",
    "limit_maxbytes",
    "time",
    "total_connections",
    "total_items",
    "touch_hits",
    "touch_misses",
)
# What a node reports and the history keeps: the 31, and what derived rates also need.
HISTORY_STAT_NAMES: Final[tuple[str, ...]] = (*API_STAT_NAMES, "get_expired", "get_flushed")

# The counters that add up to each command's count (insight's rates and fractions, the
# /metrics commands counter).
COMMAND_COUNTERS: Final[dict[str, tuple[str, ...]]] = {
    "get": ("cmd_get",),
    "set": ("cmd_set",),
    "delete": ("cmd_delete",),
    "touch": ("cmd_touch",),
    "flush": ("cmd_flush",),
    "incr": ("incr_hits", "incr_misses"),
    "decr": ("decr_hits", "decr_misses"),
    "cas": ("cas_hits", "cas_misses", "cas_badval"),
}
# The commands whose counts make up all requests (cas counts as a set).
REQUEST_COMMANDS: Final[tuple[str, ...]] = (
    "get",
    "set",
    "delete",
    "touch",
    "flush",
    "incr",
    "decr",
)
# Per command: the counters of its hits, and of all its attempts (hits + misses; for cas also
# the bad values). Insight's hit rates, the /metrics hits and misses.
HIT_COUNTERS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "get": (("get_hits",), ("get_hits", "get_misses")),
    "delete": (("delete_hits",), ("delete_hits", "delete_misses")),
    "incr": (("incr_hits",), ("incr_hits", "incr_misses")),
    "decr": (("decr_hits",), ("decr_hits", "decr_misses")),
    "touch": (("touch_hits",), ("touch_hits", "touch_misses")),
    "cas": (("cas_hits",), ("cas_hits", "cas_misses", "cas_badval")),
}
