"""The control store on PostgreSQL: shared by every machine of a deployment."""

from __future__ import annotations

from memcloud.control.postgres.engine import PostgresEngine, masked_url
from memcloud.control.sql.store import SqlStore

__all__ = ["PostgresStore"]


class PostgresStore(SqlStore):
    """A `ControlStore` in a PostgreSQL database (`postgresql://user:password@host/db`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(PostgresEngine(url))

    def __repr__(self) -> str:
        return f"PostgresStore({masked_url(self.url)!r})"
