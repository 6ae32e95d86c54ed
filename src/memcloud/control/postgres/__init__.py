"""The control store on PostgreSQL: the only code of memcloud that knows `psycopg`.

engine.py runs the shared SQL store (memcloud.control.sql) on a PostgreSQL connection and
keeps the schema (migrations/, applied by yoyo-migrations); store.py is that
`ControlStore`; errors.py turns psycopg's errors into the store's own.
"""

from __future__ import annotations

from memcloud.control.postgres.engine import is_postgres_url, masked_url
from memcloud.control.postgres.store import PostgresStore

__all__ = ["PostgresStore", "is_postgres_url", "masked_url"]
