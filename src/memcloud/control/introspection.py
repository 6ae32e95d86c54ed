"""Watched prefixes and latency samples: their records and the rules every control store
checks (SQL in memcloud.control.sql.introspection, memory in
memcloud.control.memory_introspection).

A tenant names its watched prefixes through the API: each is bounded here, once for every
store. Neither bumps the revision: the API hands watched prefixes to the nodes itself
(memcloud.introspection.probe), and latency samples are only read by the API.
"""

from __future__ import annotations

from typing import Final

from memcloud.control.base import Conflict, ControlError, NotFound
from memcloud.control.introspection_records import LatencySample, WatchedPrefixRecord

__all__ = [
    "LATENCY_KEEP_SECONDS",
    "MAX_PREFIX_BYTES",
    "MAX_WATCHED_PREFIXES",
    "LatencySample",
    "WatchedPrefixRecord",
    "check_prefix_count",
    "no_prefix",
    "validate_prefix",
]

# As many as the nodes' recorders keep (storage/insight.py MAX_WATCHED): each costs every
# sampled request of the cache one `startswith`.
MAX_WATCHED_PREFIXES: Final = 10
# A memcache key is at most 250 bytes: so is a prefix of one.
MAX_PREFIX_BYTES: Final = 250
# Raw latency samples (one per node every 20 s) are kept this long: the latency route's
# longest granularity below a day (10 minutes, up to a week) still has them all.
LATENCY_KEEP_SECONDS: Final = 8 * 86400


def validate_prefix(name: object) -> str:
    """A prefix a memcache key could start with: 1 to 250 bytes, no space or control
    character (those cannot be in a key)."""
    if not isinstance(name, str) or not name:
        raise ControlError("a watched prefix needs a name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_PREFIX_BYTES:
        raise ControlError(f"a prefix is at most {MAX_PREFIX_BYTES} bytes")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ControlError("a prefix cannot hold spaces or control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ControlError("a prefix must be UTF-8 text") from None
    return name


def check_prefix_count(count: int) -> None:
    if count >= MAX_WATCHED_PREFIXES:
        raise Conflict(f"a cache watches at most {MAX_WATCHED_PREFIXES} prefixes")


def no_prefix(cache_id: int, prefix_id: int) -> NotFound:
    return NotFound(f"no watched prefix with id {prefix_id} in cache {cache_id}")
