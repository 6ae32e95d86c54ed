"""PostgreSQL's errors as the store's own: nothing above the backend sees `psycopg`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from memcloud.control.base import StoreFailed, StoreRefused

__all__ = ["database_errors", "store_error"]

# Retrying the same statement with the same data fails the same way.
_REFUSED: tuple[type[psycopg.Error], ...] = (
    psycopg.IntegrityError,
    psycopg.DataError,
    psycopg.ProgrammingError,
    psycopg.NotSupportedError,
)


def store_error(exc: psycopg.Error) -> StoreFailed:
    """The store's error for `exc`: PostgreSQL's first line (its message never holds the
    password; psycopg's connection errors name the host, port and user only)."""
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    kind = StoreRefused if isinstance(exc, _REFUSED) else StoreFailed
    return kind(cause)


@contextmanager
def database_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise store_error(exc) from exc
