"""One node's introspection view of one cache, as JSON-ready data: what
`Node.introspect` answers (LocalNode directly, RemoteNode over the admin socket).

A query is a mapping: `watched` (optional: the cache's watched prefixes, applied first, as
the API hands them to every node) and `view`, one of:

* `recent`: `{"recent": [[time, key, command, status, size], ...]}`, oldest first;
* `popular`: `{"seconds": s, "hit"|"miss"|"mutation"|"prefix": [[name, count], ...]}`; with
  `prefix` (a watched prefix), that prefix's keys;
* `key`: `{"key": {"hits", "misses", "mutations", "in_cache", "size"}}` for `key`;
* `prefix`: `{"series": [[minute, keys, bytes, hits, misses, mutations], ...]}`, cumulative
  counts of the watched `prefix` once a minute, its current state last;
* `none`: `{}` (only the watched prefixes are applied).

Keys leave as text: UTF-8, other bytes as `\\xNN` escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from memcloud.storage.cache import Cache
from memcloud.storage.insight import MAX_WATCHED, CacheInsight, PrefixWatch

__all__ = ["MAX_QUERY_KEY", "IntrospectionOff", "node_view"]

# A memcache key is at most 250 bytes; anything longer cannot be one.
MAX_QUERY_KEY: Final = 250
_VIEWS: Final = ("recent", "popular", "key", "prefix", "none")


class IntrospectionOff(Exception):
    """This node records nothing (--no-introspection) or the query is not one."""


def key_text(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


def _key_bytes(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise IntrospectionOff("a key or prefix must be a non-empty string")
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_QUERY_KEY:
        raise IntrospectionOff(f"a key or prefix is at most {MAX_QUERY_KEY} bytes")
    return raw


def _watched(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_WATCHED:
        raise IntrospectionOff(f"watched must be a list of at most {MAX_WATCHED} prefixes")
    return tuple(_key_bytes(name) for name in value)


def _pairs(entries: object) -> list[list[object]]:
    assert isinstance(entries, list)
    return [[key_text(key), count] for key, count in entries]


def _popular(insight: CacheInsight, now: float, watch: PrefixWatch | None) -> dict[str, Any]:
    report = insight.popular(now, watch)
    return {
        "seconds": report["seconds"],
        **{name: _pairs(report[name]) for name in ("hit", "miss", "mutation", "prefix")},
    }


def _key(cache: Cache, insight: CacheInsight, key: bytes, now: float) -> dict[str, Any]:
    hits, misses, mutations = insight.key_counts(key, now)
    # Looked at without a command's side effects (no LRU bump, no expiry counted).
    item = cache.items.get(key)
    live = (
        item is not None
        and not (item.exptime and item.exptime <= now)
        and not (cache.flush_at and now >= cache.flush_at)
    )
    return {
        "hits": hits,
        "misses": misses,
        "mutations": mutations,
        "in_cache": live,
        "size": len(item.value) if live and item is not None else 0,
    }


def _series(watch: PrefixWatch, now: float) -> list[list[float]]:
    hits, misses, mutations = watch.counts
    points = [list(point) for point in watch.series]
    points.append([now, watch.keys, watch.size, hits, misses, mutations])
    return points


def node_view(cache: Cache, query: Mapping[str, Any], now: float) -> dict[str, Any]:
    """This node's answer to `query` for `cache` (see the module's text); IntrospectionOff
    when the node records nothing or the query is malformed."""
    insight = cache.insight
    if insight is None:
        raise IntrospectionOff("introspection is off on this node (--no-introspection)")
    if "watched" in query:
        insight.watch(_watched(query["watched"]), now)
    view = query.get("view", "none")
    if view not in _VIEWS:
        raise IntrospectionOff(f"unknown view {view!r}")
    if view == "recent":
        return {
            "recent": [
                [at, key_text(key), command, status, size]
                for at, key, command, status, size in insight.recent_requests()
            ]
        }
    if view == "key":
        return {"key": _key(cache, insight, _key_bytes(query.get("key")), now)}
    if view in ("popular", "prefix"):
        watch = None
        if view == "prefix" or "prefix" in query:
            watch = insight.watches.get(_key_bytes(query.get("prefix")))
            if watch is None:
                # Not (yet) watched here: a node that just started knows it from the next
                # query's `watched`; until then it has seen nothing of it.
                return {"series": []} if view == "prefix" else _empty_popular()
        if view == "prefix":
            assert watch is not None
            return {"series": _series(watch, now)}
        return _popular(insight, now, watch)
    return {}


def _empty_popular() -> dict[str, Any]:
    return {"seconds": 0.0, "hit": [], "miss": [], "mutation": [], "prefix": []}
