"""The stats a cache reports: memcached's `stats` replies with this cache's numbers in them,
and what a node reports of a cache to the API and the history (`node_stats`)."""

from __future__ import annotations

import os
import resource

from memcloud import __version__
from memcloud.stats.names import CLUSTER_SUMMED_STATS, HISTORY_STAT_NAMES
from memcloud.storage.cache import Cache

__all__ = [
    "MEMCACHED_VERSION",
    "cache_stats",
    "cluster_stats_lines",
    "items_stats",
    "node_stats",
    "settings_stats",
    "slabs_stats",
]

# The version reported to clients: the memcached protocol level we implement. Some clients
# switch features on the major/minor number, so it looks like memcached's.
MEMCACHED_VERSION = "1.6.21"


def cache_stats(
    cache: Cache,
    *,
    started_at: float,
    now: float,
    max_connections: int,
    control_store_read_at: float,
    control_store_up: bool,
) -> list[tuple[str, int | float | str]]:
    """memcached's `stats` lines, in memcached's order, for one cache; then memcloud's own:
    whether this node's last read of the control store worked (`control_store_up` 1 or 0)
    and how many seconds ago one last did (`control_store_age`), since a node that lost the
    database keeps serving the caches and credentials it last read."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    s = cache.stats
    return [
        ("pid", os.getpid()),
        ("uptime", int(now - started_at)),
        ("time", int(now)),
        ("version", MEMCACHED_VERSION),
        ("libevent", f"memcloud-{__version__}"),
        ("pointer_size", 64),
        ("rusage_user", round(usage.ru_utime, 6)),
        ("rusage_system", round(usage.ru_stime, 6)),
        ("max_connections", max_connections),
        ("curr_connections", s.curr_connections),
        ("total_connections", s.total_connections),
        ("rejected_connections", 0),
        ("connection_structures", s.curr_connections),
        ("cmd_get", s.cmd_get),
        ("cmd_set", s.cmd_set),
        ("cmd_flush", s.cmd_flush),
        ("cmd_touch", s.cmd_touch),
        ("cmd_delete", s.cmd_delete),
        ("get_hits", s.get_hits),
        ("get_misses", s.get_misses),
        ("get_expired", s.get_expired),
        ("get_flushed", s.get_flushed),
        ("delete_misses", s.delete_misses),
        ("delete_hits", s.delete_hits),
        ("incr_misses", s.incr_misses),
        ("incr_hits", s.incr_hits),
        ("decr_misses", s.decr_misses),
        ("decr_hits", s.decr_hits),
        ("cas_misses", s.cas_misses),
        ("cas_hits", s.cas_hits),
        ("cas_badval", s.cas_badval),
        ("touch_hits", s.touch_hits),
        ("touch_misses", s.touch_misses),
        ("store_too_large", s.store_too_large),
        ("store_no_memory", s.store_no_memory),
        ("auth_cmds", s.auth_cmds),
        ("auth_errors", s.auth_errors),
        ("bytes_read", s.bytes_read),
        ("bytes_written", s.bytes_written),
        ("limit_maxbytes", cache.limit),
        ("accepting_conns", 1),
        ("threads", 1),
        ("conn_yields", 0),
        ("bytes", cache.used),
        ("curr_items", cache.curr_items),
        ("total_items", s.total_items),
        ("expired", s.expired),
        ("reclaimed", s.reclaimed),
        ("evictions", s.evictions),
        ("control_store_up", 1 if control_store_up else 0),
        ("control_store_age", max(0, int(now - control_store_read_at))),
    ]


def node_stats(cache: Cache, now: float) -> dict[str, int]:
    """`HISTORY_STAT_NAMES` of one cache on this node, with the values `stats` shows."""
    values = {
        **cache.stats.counters(),
        "bytes": cache.used,
        "curr_connections": cache.stats.curr_connections,
        "curr_items": cache.curr_items,
        "limit_maxbytes": cache.limit,
        "time": int(now),
    }
    return {name: values[name] for name in HISTORY_STAT_NAMES}


def settings_stats(
    *,
    max_connections: int,
    item_size_max: int,
    plan: int,
    auth_timeout: float,
    port: int,
    prefix_delimiter: str = ":",
    detail_enabled: bool = False,
) -> list[tuple[str, int | float | str]]:
    """`stats settings`, as memcached names them, with this server's values (and the
    cache's own `stats detail` switch)."""
    return [
        ("maxbytes", plan),
        ("maxconns", max_connections),
        ("tcpport", port),
        ("udpport", 0),
        ("verbosity", 0),
        ("oldest", 0),
        ("evictions", "on"),
        ("domain_socket", "NULL"),
        ("umask", 700),
        ("growth_factor", 1.25),
        ("chunk_size", 48),
        ("num_threads", 1),
        ("stat_key_prefix", prefix_delimiter),
        ("detail_enabled", "yes" if detail_enabled else "no"),
        ("reqs_per_event", 20),
        ("cas_enabled", "yes"),
        ("tcp_backlog", 1024),
        ("binding_protocol", "auto-negotiate"),
        ("auth_enabled_sasl", "yes"),
        ("auth_enabled_ascii", "yes"),
        ("auth_timeout", auth_timeout),
        ("item_size_max", item_size_max),
        ("maxconns_fast", "yes"),
        ("hashpower_init", 0),
        ("slab_reassign", "no"),
        ("lru_segmented", "no"),
        ("flush_enabled", "yes"),
    ]


def items_stats(cache: Cache) -> list[tuple[str, object]]:
    """memcached has one LRU per slab class; a cache here has one LRU, shown as class 1.
    Items keep no access time, so ages are reported as 0."""
    if not cache.items:
        return []
    s = cache.stats
    return [
        ("items:1:number", cache.curr_items),
        ("items:1:number_hot", 0),
        ("items:1:number_warm", 0),
        ("items:1:number_cold", cache.curr_items),
        ("items:1:age_hot", 0),
        ("items:1:age_warm", 0),
        ("items:1:age", 0),
        ("items:1:mem_requested", cache.used),
        ("items:1:evicted", s.evictions),
        ("items:1:evicted_nonzero", 0),
        ("items:1:evicted_time", 0),
        ("items:1:outofmemory", s.store_no_memory),
        ("items:1:tailrepairs", 0),
        ("items:1:reclaimed", s.reclaimed),
        ("items:1:expired_unfetched", 0),
        ("items:1:evicted_unfetched", 0),
        ("items:1:evicted_active", 0),
        ("items:1:crawler_reclaimed", s.reclaimed),
        ("items:1:crawler_items_checked", 0),
        ("items:1:lrutail_reflocked", 0),
    ]


def slabs_stats(cache: Cache) -> list[tuple[str, object]]:
    lines: list[tuple[str, object]] = []
    if cache.items:
        lines += [
            ("1:chunk_size", 0),
            ("1:chunks_per_page", 0),
            ("1:total_pages", 0),
            ("1:total_chunks", cache.curr_items),
            ("1:used_chunks", cache.curr_items),
            ("1:free_chunks", 0),
            ("1:free_chunks_end", 0),
            ("1:get_hits", cache.stats.get_hits),
            ("1:cmd_set", cache.stats.cmd_set),
            ("1:delete_hits", cache.stats.delete_hits),
            ("1:incr_hits", cache.stats.incr_hits),
            ("1:decr_hits", cache.stats.decr_hits),
            ("1:cas_hits", cache.stats.cas_hits),
            ("1:cas_badval", cache.stats.cas_badval),
            ("1:touch_hits", cache.stats.touch_hits),
        ]
    lines += [
        ("active_slabs", 1 if cache.items else 0),
        ("total_malloced", cache.used),
    ]
    return lines


def cluster_stats_lines(
    lines: list[tuple[str, object]],
    others: list[dict[bytes, bytes] | None],
    plan: int,
    copies: int,
) -> list[tuple[str, object]]:
    """A node's `stats` lines as a node of a cluster answers them: the cache-wide ones
    (CLUSTER_SUMMED_STATS) summed over this node and every other that answered (`others`:
    their lines as name -> value; None for one that did not) and divided by the copies each
    key has, `limit_maxbytes` the plan, the rest this node's own (reference §4.7)."""
    totals: dict[str, int] = {}
    for name in CLUSTER_SUMMED_STATS:
        total = 0
        for numbers in others:
            if numbers is not None:
                number = numbers.get(name.encode(), b"0")
                total += int(number) if number.isdigit() else 0
        totals[name] = total
    held = max(1, min(copies, len(others) + 1))  # each key is held this often
    result: list[tuple[str, object]] = []
    for name, shown in lines:
        if name in totals and isinstance(shown, int):
            shown = (shown + totals[name]) // held
        elif name == "limit_maxbytes":
            shown = plan
        result.append((name, shown))
    return result
