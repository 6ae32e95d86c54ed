"""Explicit SQLite transactions whose failures keep their real cause.

SQLite rolls a transaction back by itself on some errors (`database or disk is full`, an
I/O error, running out of memory). A plain `ROLLBACK` after such an error fails with
`cannot rollback - no transaction is active`, and that second error replaced the first:
a user with a full disk was told about a transaction instead of the disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["rollback", "transaction"]


def rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already; never raise over the cause."""
    if not conn.in_transaction:
        return
    # The caller is already raising the error that matters; a connection whose rollback
    # failed is rolled back by SQLite when it is closed or reused.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`; on any exception roll back and re-raise it unchanged."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
