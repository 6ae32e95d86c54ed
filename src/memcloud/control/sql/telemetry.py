"""SQL for the flush audit log and the stats history, the same on every engine.

Writing them never bumps the revision (see memcloud.control.telemetry for why, and for the
rules every store follows). The caller holds the store's lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from memcloud.control.models import FlushRecord, StatsSample
from memcloud.control.sql.connection import Connection
from memcloud.control.telemetry import HOUR, MINUTE, compaction_boundary

__all__ = [
    "compact_stats",
    "insert_flushes",
    "insert_samples",
    "prune_flush_log",
    "select_flushes",
    "select_samples",
]

_FLUSH_COLUMNS = "id, cache_id, at, source, username, peer, node, app, release, commit_sha, details"


def _transaction(conn: Connection, statements: Iterable[tuple[str, tuple[object, ...]]]) -> int:
    """Run statements in one transaction (no revision bump); answer the rows they changed."""
    changed = 0
    with conn.transaction():
        for sql, params in statements:
            changed += conn.execute(sql, params).rowcount
    return changed


def insert_flushes(conn: Connection, records: Iterable[FlushRecord]) -> int:
    """Append flush log lines; lines of caches deleted meanwhile are skipped, not errors."""
    return _transaction(
        conn,
        (
            (
                "INSERT INTO flush_log"
                " (cache_id, at, source, username, peer, node, app, release, commit_sha, details)"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM caches WHERE id = ?)",
                (
                    r.cache_id,
                    r.at,
                    r.source,
                    r.username,
                    r.peer,
                    r.node,
                    r.app,
                    r.release,
                    r.commit,
                    json.dumps(r.details, sort_keys=True),
                    r.cache_id,
                ),
            )
            for r in records
        ),
    )


def _flush_record(row: tuple[object, ...]) -> FlushRecord:
    details = json.loads(str(row[10]))
    return FlushRecord(
        id=int(str(row[0])),
        cache_id=int(str(row[1])),
        at=float(str(row[2])),
        source=str(row[3]),
        username=str(row[4]),
        peer=str(row[5]),
        node=str(row[6]),
        app=None if row[7] is None else str(row[7]),
        release=None if row[8] is None else str(row[8]),
        commit=None if row[9] is None else str(row[9]),
        details={str(k): str(v) for k, v in details.items()} if isinstance(details, dict) else {},
    )


def select_flushes(conn: Connection, cache_id: int, limit: int) -> list[FlushRecord]:
    """The newest `limit` flushes of a cache, newest first."""
    rows = conn.execute(
        f"SELECT {_FLUSH_COLUMNS} FROM flush_log WHERE cache_id = ?"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (cache_id, limit),
    ).fetchall()
    return [_flush_record(tuple(row)) for row in rows]


def prune_flush_log(conn: Connection, before: float) -> int:
    return _transaction(conn, [("DELETE FROM flush_log WHERE at < ?", (before,))])


def insert_samples(conn: Connection, samples: Iterable[StatsSample]) -> int:
    return _transaction(
        conn,
        (
            (
                "INSERT INTO stats_history (cache_id, server, at, resolution, stats)"
                " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM caches WHERE id = ?)",
                (
                    s.cache_id,
                    s.server,
                    s.at,
                    s.resolution,
                    json.dumps(s.stats, sort_keys=True),
                    s.cache_id,
                ),
            )
            for s in samples
        ),
    )


def select_samples(conn: Connection, cache_id: int, start: float, end: float) -> list[StatsSample]:
    """A cache's samples with `start <= at <= end`, oldest first, of every resolution."""
    rows = conn.execute(
        "SELECT cache_id, server, at, resolution, stats FROM stats_history"
        " WHERE cache_id = ? AND at >= ? AND at <= ? ORDER BY at, id",
        (cache_id, start, end),
    ).fetchall()
    samples = []
    for row in rows:
        stats = json.loads(row[4])
        samples.append(
            StatsSample(
                cache_id=int(row[0]),
                server=str(row[1]),
                at=float(row[2]),
                resolution=int(row[3]),
                stats={str(k): int(v) for k, v in stats.items()},
            )
        )
    return samples


def compact_stats(
    conn: Connection,
    minute_cutoff: float,
    hour_cutoff: float,
    truncate: Callable[[str], str],
) -> int:
    """Downsample minute samples before `compaction_boundary(minute_cutoff)` to one per
    hour, and delete samples of any resolution older than `hour_cutoff`. `truncate` is the
    engine's SQL for an integer part (SQLite's CAST rounds toward zero, PostgreSQL's to the
    nearest)."""
    boundary = compaction_boundary(minute_cutoff)
    return _transaction(
        conn,
        [
            (
                "UPDATE stats_history SET resolution = ? WHERE id IN"
                " (SELECT max(id) FROM stats_history WHERE resolution = ? AND at < ?"
                f"  GROUP BY cache_id, server, {truncate('at / ?')})",
                (HOUR, MINUTE, boundary, HOUR),
            ),
            (
                "DELETE FROM stats_history WHERE resolution = ? AND at < ?",
                (MINUTE, boundary),
            ),
            ("DELETE FROM stats_history WHERE at < ?", (hour_cutoff,)),
        ],
    )
