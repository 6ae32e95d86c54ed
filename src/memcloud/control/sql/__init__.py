"""The control store's logic written once in SQL (store.py, telemetry.py, revocations.py),
over an engine's connection (connection.py): SQLite (memcloud.control.sqlite) and
PostgreSQL (memcloud.control.postgres) each provide one.
"""

from __future__ import annotations

from memcloud.control.sql.store import SqlStore

__all__ = ["SqlStore"]
