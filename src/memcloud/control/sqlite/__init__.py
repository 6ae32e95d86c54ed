"""The control store on SQLite: the only code of memcloud that knows `sqlite3`.

engine.py runs the shared SQL store (memcloud.control.sql) on one SQLite file; store.py is
that `ControlStore`; migrations.py its schema; transactions.py its transactions; errors.py
turns SQLite's errors into the store's own; check.py refuses a damaged file at start.
"""

from __future__ import annotations

from memcloud.control.sqlite.check import check_store
from memcloud.control.sqlite.store import SqliteStore

__all__ = ["SqliteStore", "check_store"]
