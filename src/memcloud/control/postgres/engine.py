"""PostgreSQL as the shared SQL store's engine (psycopg 3), for a deployment over machines.

One connection per store, in autocommit mode with explicit transactions, guarded by a lock
(the server calls the store from worker threads). Every change also sends a NOTIFY on
CHANNEL at commit; a server waiting for changes LISTENs on a second connection of its own,
so a change reaches every node at once instead of at its next poll. A connection PostgreSQL
dropped (a restart, a failover) is opened again on the next call; the call that found it
broken fails with `StoreFailed`, and callers keep what they had (servers keep serving their
snapshot). The schema is kept by yoyo-migrations, which locks its own table so that nodes
starting at once apply each migration exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations

from memcloud.control.postgres.errors import database_errors
from memcloud.control.sql.connection import Connection, Rows

__all__ = [
    "CHANNEL",
    "CONNECT_TIMEOUT_SECONDS",
    "MIGRATIONS",
    "PostgresConnection",
    "PostgresEngine",
    "is_postgres_url",
    "masked_url",
]

MIGRATIONS: Final = Path(__file__).with_name("migrations")
# A database that does not answer within this fails the call (and the start) instead of
# hanging a worker thread; the OS default is minutes.
CONNECT_TIMEOUT_SECONDS: Final = 5
SCHEMES: Final = ("postgresql", "postgres")
# The NOTIFY channel of control-plane changes.
CHANNEL: Final = "memcloud_control"


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def masked_url(url: str) -> str:
    """The URL with its password replaced, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _placeholders(sql: str) -> str:
    """`?` placeholders (the shared store's) as psycopg's `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresConnection:
    """psycopg's connection speaking the shared store's `?` placeholders."""

    __slots__ = ("_sql", "raw")

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self._sql: dict[str, str] = {}

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = _placeholders(sql)
        return self.raw.execute(converted, params)

    @contextmanager
    def transaction(self) -> Iterator[PostgresConnection]:
        with self.raw.transaction():
            yield self


def migrate(url: str) -> None:
    """Bring the database's schema up to this memcloud's (yoyo's lock held throughout)."""
    parts = urlsplit(url)
    backend = get_backend(urlunsplit(parts._replace(scheme="postgresql+psycopg")))
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(MIGRATIONS))))
    finally:
        backend.connection.close()


class PostgresEngine:
    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        with database_errors():
            migrate(url)
            self._connection: PostgresConnection | None = self._connect()
        # Opened by the first wait_for_change (the CLI never waits, so never opens it).
        self._listening: psycopg.Connection[Any] | None = None
        self._listen_lock = threading.Lock()

    def _connect(self) -> PostgresConnection:
        raw = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        return PostgresConnection(raw)

    @contextmanager
    def session(self) -> Iterator[PostgresConnection]:
        with self.lock, database_errors():
            connection = self._connection
            if connection is None or connection.raw.broken:
                if connection is not None:
                    connection.raw.close()
                self._connection = None
                connection = self._connection = self._connect()
            yield connection

    def announce(self, conn: Connection) -> None:
        conn.execute(f"NOTIFY {CHANNEL}")

    def wait_for_change(self, timeout: float) -> bool:
        """Wait for a NOTIFY on CHANNEL. A listening connection that fails is opened again
        at the next call, which answers True at once: a change may have been missed."""
        deadline = time.monotonic() + timeout
        with self._listen_lock:
            try:
                if self._listening is None or self._listening.broken:
                    fresh = self._listening is not None
                    self._listen()
                    if fresh:
                        return True
                assert self._listening is not None
                left = max(0.0, deadline - time.monotonic())
                return any(True for _ in self._listening.notifies(timeout=left, stop_after=1))
            except psycopg.Error:
                self._close_listening()
                # The database is away: wait out the timeout (the caller's revision read
                # then fails and says so) rather than spin.
                time.sleep(max(0.0, deadline - time.monotonic()))
                return True

    def _listen(self) -> None:
        self._close_listening()
        listening = psycopg.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
        listening.execute(f"LISTEN {CHANNEL}")
        self._listening = listening

    def _close_listening(self) -> None:
        if self._listening is not None:
            self._listening.close()
            self._listening = None

    # clock_timestamp(), not now(): now() is the transaction's start.
    clock_sql = "extract(epoch from clock_timestamp())::double precision"

    def truncate(self, expression: str) -> str:
        return f"trunc({expression})"

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                self._connection.raw.close()
                self._connection = None
        with self._listen_lock:
            self._close_listening()

    def __repr__(self) -> str:
        return f"PostgresEngine({masked_url(self.url)!r})"
