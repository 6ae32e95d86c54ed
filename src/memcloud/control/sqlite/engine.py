"""SQLite as the shared SQL store's engine: one file, one connection, a lock around it.

The server calls the store from worker threads, hence the lock. WAL mode lets the CLI and
every server process share the file. Transactions are `BEGIN IMMEDIATE`: the write lock is
taken at the start, so two writers never interleave.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from memcloud.control.sql.connection import Connection, Rows
from memcloud.control.sqlite.errors import database_errors
from memcloud.control.sqlite.migrations import migrate
from memcloud.control.sqlite.transactions import transaction

__all__ = ["BUSY_TIMEOUT_MS", "SqliteConnection", "SqliteEngine"]

BUSY_TIMEOUT_MS = 5000
# How often a waiting server looks whether another connection committed (one pragma read).
CHANGE_CHECK_SECONDS = 0.05


class SqliteConnection:
    """sqlite3's connection with the shared store's `transaction()`."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        return self.raw.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[SqliteConnection]:
        with transaction(self.raw):
            yield self


class SqliteEngine:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        with database_errors(path.parent):
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so transactions are
            # explicit.
            raw = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                raw.execute("PRAGMA journal_mode = WAL")
                # WAL makes NORMAL durable against application crashes; only power loss may
                # drop the last commits, which an operator can simply redo.
                raw.execute("PRAGMA synchronous = NORMAL")
                raw.execute("PRAGMA foreign_keys = ON")
                with self.lock:
                    migrate(raw)
            except BaseException:
                raw.close()
                raise
        self.connection = SqliteConnection(raw)

    @contextmanager
    def session(self) -> Iterator[SqliteConnection]:
        with self.lock, database_errors(self.path.parent):
            yield self.connection

    def announce(self, conn: Connection) -> None:
        """Nothing to send: waiters see the file's data_version move."""

    def _data_version(self) -> int:
        with self.session() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def wait_for_change(self, timeout: float) -> bool:
        """`PRAGMA data_version` changes when another connection commits to the file (a CLI
        command, another node): looked at every CHANGE_CHECK_SECONDS until `timeout`. A
        flush log or stats write wakes it too; the caller's revision check sorts that out."""
        deadline = time.monotonic() + timeout
        seen = self._data_version()
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(CHANGE_CHECK_SECONDS, left))
            if self._data_version() != seen:
                return True
        return False

    # julianday() is a float of days with millisecond precision; the Unix epoch is day
    # 2440587.5.
    clock_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def truncate(self, expression: str) -> str:
        return f"CAST({expression} AS INTEGER)"

    def close(self) -> None:
        with self.lock:
            self.connection.raw.close()
