"""What the shared SQL store needs of a database engine: a connection that runs statements
with `?` placeholders and opens transactions. SQLite and PostgreSQL each provide one
(memcloud.control.sqlite.engine, memcloud.control.postgres.engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["Connection", "Engine", "Rows"]


class Rows(Protocol):
    """The result of one statement (a DB-API cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        """Run one statement; parameters are `?` placeholders whatever the engine."""
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """Statements inside commit together, or not at all when the block raises (the
        block's exception leaves unchanged). Writers are serialized: a transaction that
        changes the control plane starts by bumping the revision, whose row lock (or
        SQLite's write lock) makes the next writer wait."""
        ...


class Engine(Protocol):
    def session(self) -> AbstractContextManager[Connection]:
        """The engine's one connection, for one call of the store: held exclusively for the
        block; the database's errors inside leave as the store's `StoreFailed`."""
        ...

    def announce(self, conn: Connection) -> None:
        """Inside a transaction that changed the control plane: tell waiting servers at
        commit (PostgreSQL's NOTIFY; nothing on SQLite, whose waiters watch the file)."""
        ...

    def wait_for_change(self, timeout: float) -> bool:
        """`ControlStore.wait_for_change`."""
        ...

    @property
    def clock_sql(self) -> str:
        """SQL for the database's clock now, in epoch seconds (a float)."""
        ...

    def truncate(self, expression: str) -> str:
        """SQL for `expression` (a number) truncated toward zero to an integer."""
        ...

    def close(self) -> None: ...
