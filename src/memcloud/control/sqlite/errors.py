"""SQLite's errors as the store's own: nothing above the backend sees `sqlite3`.

A failure of the database becomes `StoreFailed` carrying SQLite's words ("database or disk
is full"); one that refuses the data itself becomes `StoreRefused`, which callers that retry
(the flush log writer) give up on instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memcloud.control.base import StoreFailed, StoreRefused
from memcloud.control.failures import full_disk_note

__all__ = ["database_errors", "store_error"]

# Retrying the same statement with the same data fails the same way.
_REFUSED: tuple[type[sqlite3.Error], ...] = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
)


def store_error(exc: sqlite3.Error, directory: Path) -> StoreFailed:
    """The store's error for `exc`; on a full disk that SQLite calls something else (a
    `disk I/O error` creating its -wal file at open), the message says the disk is full."""
    cause = str(exc)
    note = "" if "full" in cause else full_disk_note(directory)
    kind = StoreRefused if isinstance(exc, _REFUSED) else StoreFailed
    return kind(cause, note)


@contextmanager
def database_errors(directory: Path) -> Iterator[None]:
    """Raise SQLite's errors inside the block as `StoreFailed` (the cause chained)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(exc, directory) from exc
