"""SQL for watched prefixes and latency samples, the same on every engine: methods of the
shared SQL store (`SqlStore` inherits them). Nothing here bumps the revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memcloud.control import introspection as rules
from memcloud.control.introspection import LatencySample, WatchedPrefixRecord
from memcloud.control.rules import may_exist, no_cache_id
from memcloud.control.sql.connection import Connection, Engine

__all__ = ["SqlIntrospection"]


def _prefix(row: Any) -> WatchedPrefixRecord:
    return WatchedPrefixRecord(int(row[0]), int(row[1]), str(row[2]))


class SqlIntrospection:
    """The watched-prefix and latency methods of `ControlStore` over `self.engine`."""

    engine: Engine

    @contextmanager
    def _introspection_tx(self) -> Iterator[Connection]:
        with self.engine.session() as conn, conn.transaction():
            yield conn

    @staticmethod
    def _prefix_cache(conn: Connection, cache_id: int) -> None:
        if (
            not may_exist(cache_id)
            or conn.execute("SELECT 1 FROM caches WHERE id = ?", (cache_id,)).fetchone() is None
        ):
            raise no_cache_id(cache_id)

    def watch_prefix(self, cache_id: int, name: str) -> WatchedPrefixRecord:
        """Watch `name` (already watched: the same record again)."""
        name = rules.validate_prefix(name)
        with self._introspection_tx() as conn:
            self._prefix_cache(conn, cache_id)
            row = conn.execute(
                "SELECT id, cache_id, name FROM watched_prefixes WHERE cache_id = ? AND name = ?",
                (cache_id, name),
            ).fetchone()
            if row is not None:
                return _prefix(row)
            count = conn.execute(
                "SELECT count(*) FROM watched_prefixes WHERE cache_id = ?", (cache_id,)
            ).fetchone()
            rules.check_prefix_count(int(count[0]))
            row = conn.execute(
                "INSERT INTO watched_prefixes (cache_id, name) VALUES (?, ?)"
                " RETURNING id, cache_id, name",
                (cache_id, name),
            ).fetchone()
            return _prefix(row)

    def list_watched_prefixes(self, cache_id: int | None = None) -> list[WatchedPrefixRecord]:
        """One cache's watched prefixes (NotFound if no such cache), or every cache's."""
        with self.engine.session() as conn:
            if cache_id is None:
                rows = conn.execute(
                    "SELECT id, cache_id, name FROM watched_prefixes ORDER BY id"
                ).fetchall()
            else:
                self._prefix_cache(conn, cache_id)
                rows = conn.execute(
                    "SELECT id, cache_id, name FROM watched_prefixes WHERE cache_id = ?"
                    " ORDER BY id",
                    (cache_id,),
                ).fetchall()
            return [_prefix(row) for row in rows]

    def unwatch_prefix(self, cache_id: int, prefix_id: int) -> None:
        with self._introspection_tx() as conn:
            self._prefix_cache(conn, cache_id)
            changed = 0
            if may_exist(prefix_id):
                changed = conn.execute(
                    "DELETE FROM watched_prefixes WHERE id = ? AND cache_id = ?",
                    (prefix_id, cache_id),
                ).rowcount
            if not changed:
                raise rules.no_prefix(cache_id, prefix_id)

    def add_latency_samples(self, samples: list[LatencySample]) -> None:
        with self._introspection_tx() as conn:
            for s in samples:
                conn.execute(
                    "INSERT INTO latency_samples (at, server, duration_ns) VALUES (?, ?, ?)",
                    (s.at, s.server, s.duration_ns),
                )

    def latency_samples(self, servers: list[str], start: float, end: float) -> list[LatencySample]:
        """The samples of these servers in [start, end], oldest first."""
        if not servers:
            return []
        marks = ", ".join("?" for _ in servers)
        with self.engine.session() as conn:
            rows = conn.execute(
                "SELECT at, server, duration_ns FROM latency_samples"
                f" WHERE server IN ({marks}) AND at >= ? AND at <= ? ORDER BY at, server",
                (*servers, start, end),
            ).fetchall()
        return [LatencySample(float(r[0]), str(r[1]), int(r[2])) for r in rows]

    def prune_latency(self, before: float) -> int:
        with self._introspection_tx() as conn:
            return int(conn.execute("DELETE FROM latency_samples WHERE at < ?", (before,)).rowcount)
