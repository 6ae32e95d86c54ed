"""The control store on SQLite: one file in the data directory, shared by the CLI and servers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from memcloud.control.sql.store import SqlStore
from memcloud.control.sqlite.engine import SqliteEngine

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    """A `ControlStore` backed by one SQLite file (WAL mode, safe across processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._engine = SqliteEngine(path)
        super().__init__(self._engine)

    # For tests that must reach the file itself (a full disk, a read-only database).
    @property
    def _conn(self) -> sqlite3.Connection:
        return self._engine.connection.raw

    @property
    def _lock(self) -> threading.Lock:
        return self._engine.lock
