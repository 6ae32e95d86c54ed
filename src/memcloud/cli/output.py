"""What the management commands print: tables and notes for people, or with `--json` the
v2 API's shapes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from memcloud.api.record_json import credential_v2
from memcloud.config import format_size
from memcloud.control.models import CacheRecord, CredentialRecord

__all__ = [
    "cache_json",
    "caches_table",
    "credential_json",
    "credentials_table",
    "emit",
    "human_bytes",
    "password_note",
    "stats_text",
    "table",
]


def credential_json(record: CredentialRecord, password: str | None = None) -> dict[str, Any]:
    """A credential in the v2 API's shape; the password only right after creation."""
    data = credential_v2(record, password)
    if password is None:
        del data["sasl_password"]
    return data


def cache_json(
    cache: CacheRecord,
    credentials: Sequence[CredentialRecord],
    passwords: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """A cache in the v2 API's `info` shape; `passwords` (by credential id) only when new."""
    known = passwords or {}
    return {
        "id": cache.id,
        "name": cache.name,
        "plan": cache.plan,
        "enabled": cache.enabled,
        "cluster_name": cache.cluster,
        "credentials": [credential_json(c, known.get(c.id)) for c in credentials],
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def credentials_table(records: Sequence[CredentialRecord]) -> str:
    rows = [
        (c.id, c.username, _yes(c.primary), _yes(c.write), _yes(c.flush), _yes(c.api))
        for c in records
    ]
    return table(("id", "username", "primary", "write", "flush", "api"), rows)


def caches_table(caches: Sequence[CacheRecord], counts: Mapping[int, int]) -> str:
    rows = [
        (c.id, c.name, format_size(c.plan), _yes(c.enabled), counts.get(c.id, 0)) for c in caches
    ]
    return table(("id", "name", "plan", "enabled", "credentials"), rows)


def emit(ns: argparse.Namespace, data: object, text: str) -> None:
    """`data` as JSON with --json, else `text`."""
    if ns.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def password_note(username: str, password: str, servers: Sequence[str], cluster: str) -> str:
    """The new password, then the three config vars a hosted add-on hands an app. Without a
    server up (none known to the control store), the SERVERS line is a comment saying so."""
    if servers:
        servers_line = f"MEMCACHIER_SERVERS={','.join(servers)}"
    else:
        servers_line = (
            f"# MEMCACHIER_SERVERS: no memcloud server of cluster {cluster} is up; `memcloud"
            " serve` prints it at start (and `memcloud nodes` lists the servers)"
        )
    return (
        f"\nPassword of {username} (shown only now, store it safely):\n  {password}\n"
        f"\n{servers_line}\nMEMCACHIER_USERNAME={username}\nMEMCACHIER_PASSWORD={password}"
    )


def human_bytes(size: float) -> str:
    """A size for people, in the binary units plans are given in: `1.5 MB`, `25 MB`."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(size) >= factor:
            value = size / factor
            return f"{value:.1f} {unit}".replace(".0 ", " ")
    return f"{size:.0f} B"


def _count(stats: Mapping[str, object], name: str) -> int:
    try:
        return int(str(stats.get(name, 0)))
    except ValueError:
        return 0


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def stats_text(cache: CacheRecord, stats: Mapping[str, object]) -> str:
    """What an operator reads first (hit rate, memory against the plan, connections,
    evictions), then every counter under memcached's names."""
    hits, misses = _count(stats, "get_hits"), _count(stats, "get_misses")
    gets = hits + misses
    used, limit = _count(stats, "bytes"), _count(stats, "limit_maxbytes") or cache.plan
    hit_rate = (
        f"{_percent(hits, gets)} ({hits:,} hits, {misses:,} misses)" if gets else "no gets yet"
    )
    summary = [
        ("hit rate", hit_rate),
        ("memory", f"{human_bytes(used)} of {human_bytes(limit)} ({_percent(used, limit)})"),
        ("items", f"{_count(stats, 'curr_items'):,}"),
        (
            "connections",
            f"{_count(stats, 'curr_connections'):,} open,"
            f" {_count(stats, 'total_connections'):,} since start",
        ),
        ("evictions", f"{_count(stats, 'evictions'):,}"),
    ]
    head = f"Cache {cache.name} (id {cache.id}, plan {format_size(cache.plan)})"
    width = max(len(name) for name, _ in summary)
    lines = [head, *(f"  {name.ljust(width)}  {value}" for name, value in summary)]
    counter_width = max((len(name) for name in stats), default=0)
    counters = [f"  {name.ljust(counter_width)}  {value}" for name, value in stats.items()]
    return "\n".join(
        [*lines, "", "Counters (memcached's names; --json prints them raw):", *counters]
    )
