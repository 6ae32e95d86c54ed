"""The control store on SQLite: one file in the data directory, shared by the CLI and servers.

One connection per store, guarded by a lock because the server calls it from a worker thread.
Every change runs in one `BEGIN IMMEDIATE` transaction that also bumps `meta.revision`, so a
server polling `revision()` sees either none or all of a change.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memcloud.control import revocations, telemetry
from memcloud.control.base import Conflict, ControlError, NotFound
from memcloud.control.migrations import migrate
from memcloud.control.models import (
    CacheRecord,
    CredentialRecord,
    FlushRecord,
    NewCredential,
    StatsSample,
)
from memcloud.control.secrets import generate_password, generate_username, hash_password
from memcloud.control.transactions import transaction

__all__ = ["CACHE_NAME_RE", "PRIMARY_DELETE_REFUSED", "SqliteStore", "validate_cache_name"]

# Names appear in URLs, logs and shell commands: keep them to a safe, short alphabet.
CACHE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# 24-bit usernames collide now and then; a few redraws make a collision practically impossible.
USERNAME_ATTEMPTS = 20
BUSY_TIMEOUT_MS = 5000
PRIMARY_DELETE_REFUSED = "cannot delete the primary credential; promote another credential first"

_CACHE_COLUMNS = "id, name, plan, enabled, generation"
# A cache's generation: 16 random bytes, hex.
GENERATION_BYTES = 16
_CREDENTIAL_COLUMNS = "id, cache_id, username, salt, secret_hash, write, flush, api, is_primary"


def validate_cache_name(name: str) -> None:
    if not CACHE_NAME_RE.match(name):
        raise ControlError(
            f"invalid cache name {name!r}: use 1-64 characters of letters, digits, '_', '.', '-'"
        )
    if name.isdigit():
        # An all-digit reference means an id everywhere (CLI, find_cache), so such a name
        # could never be looked up.
        raise ControlError(f"invalid cache name {name!r}: a name cannot be all digits")


def _validate_plan(plan: int) -> None:
    if plan <= 0:
        raise ControlError(f"invalid plan {plan}: a plan must be a positive number of bytes")


def _cache(row: Any) -> CacheRecord:
    return CacheRecord(id=row[0], name=row[1], plan=row[2], enabled=bool(row[3]), generation=row[4])


def _credential(row: Any) -> CredentialRecord:
    return CredentialRecord(
        id=row[0],
        cache_id=row[1],
        username=row[2],
        salt=bytes(row[3]),
        secret_hash=bytes(row[4]),
        write=bool(row[5]),
        flush=bool(row[6]),
        api=bool(row[7]),
        primary=bool(row[8]),
    )


class SqliteStore:
    """A `ControlStore` backed by one SQLite file (WAL mode, safe across processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so transactions are explicit.
        self._conn = sqlite3.connect(
            str(path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL makes NORMAL durable against application crashes; only power loss may
            # drop the last commits, which an operator can simply redo.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self._lock:
                migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction that bumps the revision; rolled back on any exception."""
        with self._lock, transaction(self._conn) as conn:
            yield conn
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")

    @staticmethod
    def _get_cache(conn: sqlite3.Connection, cache_id: int) -> CacheRecord:
        row = conn.execute(
            f"SELECT {_CACHE_COLUMNS} FROM caches WHERE id = ?", (cache_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no cache with id {cache_id}")
        return _cache(row)

    @staticmethod
    def _get_credential(conn: sqlite3.Connection, credential_id: int) -> CredentialRecord:
        row = conn.execute(
            f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?", (credential_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no credential with id {credential_id}")
        return _credential(row)

    # -- ControlStore -----------------------------------------------------------------------

    def revision(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return int(row[0])

    def create_cache(self, name: str, plan: int) -> CacheRecord:
        validate_cache_name(name)
        _validate_plan(plan)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM caches WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a cache named {name!r} already exists")
            cursor = conn.execute(
                "INSERT INTO caches (name, plan, generation) VALUES (?, ?, ?)",
                (name, plan, secrets.token_hex(GENERATION_BYTES)),
            )
            assert cursor.lastrowid is not None
            return self._get_cache(conn, cursor.lastrowid)

    def list_caches(self) -> list[CacheRecord]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_CACHE_COLUMNS} FROM caches ORDER BY id").fetchall()
        return [_cache(row) for row in rows]

    def find_cache(self, ref: str | int) -> CacheRecord:
        """An int or an all-digit string is an id, anything else a name."""
        with self._read() as conn:
            if isinstance(ref, int) or ref.isdigit():
                return self._get_cache(conn, int(ref))
            row = conn.execute(
                f"SELECT {_CACHE_COLUMNS} FROM caches WHERE name = ?", (ref,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no cache named {ref!r}")
        return _cache(row)

    def update_cache(
        self, cache_id: int, *, plan: int | None = None, enabled: bool | None = None
    ) -> CacheRecord:
        if plan is not None:
            _validate_plan(plan)
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            if plan is not None:
                conn.execute("UPDATE caches SET plan = ? WHERE id = ?", (plan, cache_id))
            if enabled is not None:
                conn.execute("UPDATE caches SET enabled = ? WHERE id = ?", (enabled, cache_id))
            return self._get_cache(conn, cache_id)

    def delete_cache(self, cache_id: int) -> None:
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            # Credentials go with it (ON DELETE CASCADE).
            conn.execute("DELETE FROM caches WHERE id = ?", (cache_id,))

    def create_credential(
        self,
        cache_id: int,
        *,
        write: bool = True,
        flush: bool = True,
        api: bool = True,
        primary: bool = False,
        password: str | None = None,
    ) -> NewCredential:
        """`password` is generated unless given (provisioning derives it, to stay idempotent)."""
        password = password or generate_password()
        salt, secret_hash = hash_password(password)
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            has_primary = conn.execute(
                "SELECT 1 FROM credentials WHERE cache_id = ? AND is_primary = 1", (cache_id,)
            ).fetchone()
            # Every cache always has exactly one primary: its first credential becomes it.
            primary = primary or has_primary is None
            if primary:
                conn.execute(
                    "UPDATE credentials SET is_primary = 0 WHERE cache_id = ?", (cache_id,)
                )
            username = self._unused_username(conn)
            cursor = conn.execute(
                "INSERT INTO credentials"
                " (cache_id, username, salt, secret_hash, write, flush, api, is_primary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cache_id, username, salt, secret_hash, write, flush, api, primary),
            )
            assert cursor.lastrowid is not None
            record = self._get_credential(conn, cursor.lastrowid)
        return NewCredential(record=record, password=password)

    @staticmethod
    def _unused_username(conn: sqlite3.Connection) -> str:
        for _ in range(USERNAME_ATTEMPTS):
            username = generate_username()
            if not conn.execute(
                "SELECT 1 FROM credentials WHERE username = ?", (username,)
            ).fetchone():
                return username
        raise ControlError("could not find an unused credential username; try again")

    def list_credentials(self, cache_id: int | None = None) -> list[CredentialRecord]:
        """All credentials (for servers loading them), or one cache's (NotFound if absent)."""
        with self._read() as conn:
            if cache_id is None:
                rows = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials ORDER BY cache_id, id"
                ).fetchall()
            else:
                self._get_cache(conn, cache_id)
                rows = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE cache_id = ? ORDER BY id",
                    (cache_id,),
                ).fetchall()
        return [_credential(row) for row in rows]

    def find_credential(self, cache_id: int, ref: str | int) -> CredentialRecord:
        """A username (case-insensitive) first, then an id: usernames may be all digits."""
        with self._read() as conn:
            self._get_cache(conn, cache_id)
            row = None
            if isinstance(ref, str):
                row = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials"
                    " WHERE cache_id = ? AND username = ?",
                    (cache_id, ref.upper()),
                ).fetchone()
            if row is None and (isinstance(ref, int) or ref.isdigit()):
                row = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE cache_id = ? AND id = ?",
                    (cache_id, int(ref)),
                ).fetchone()
        if row is None:
            raise NotFound(f"no credential {ref!r} in cache {cache_id}")
        return _credential(row)

    def update_credential(
        self,
        credential_id: int,
        *,
        write: bool | None = None,
        flush: bool | None = None,
        api: bool | None = None,
    ) -> CredentialRecord:
        changes = {"write": write, "flush": flush, "api": api}
        with self._write() as conn:
            self._get_credential(conn, credential_id)
            for column, value in changes.items():
                if value is not None:
                    # Column names come from the fixed dict above, never from input.
                    conn.execute(
                        f"UPDATE credentials SET {column} = ? WHERE id = ?",
                        (value, credential_id),
                    )
            return self._get_credential(conn, credential_id)

    def promote_credential(self, credential_id: int) -> CredentialRecord:
        with self._write() as conn:
            record = self._get_credential(conn, credential_id)
            conn.execute(
                "UPDATE credentials SET is_primary = 0 WHERE cache_id = ? AND id != ?",
                (record.cache_id, credential_id),
            )
            conn.execute("UPDATE credentials SET is_primary = 1 WHERE id = ?", (credential_id,))
            return self._get_credential(conn, credential_id)

    def delete_credential(self, credential_id: int) -> None:
        with self._write() as conn:
            record = self._get_credential(conn, credential_id)
            if record.primary:
                # Even when it is the only one: a cache without credentials is one no client
                # can use. Deleting the cache is how its last credential goes.
                raise Conflict(PRIMARY_DELETE_REFUSED)
            conn.execute("DELETE FROM credentials WHERE id = ?", (credential_id,))

    # -- single sign-on --------------------------------------------------------------------

    def sso_state(self, cache_id: int) -> tuple[int, int]:
        """`(version, not_before)`: SSO tokens older than `not_before` (epoch s) are refused."""
        with self._read() as conn:
            self._get_cache(conn, cache_id)
            row = conn.execute(
                "SELECT version, not_before FROM sso_state WHERE cache_id = ?", (cache_id,)
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def rotate_sso(self, cache_id: int, now: int) -> int:
        """Invalidate earlier SSO tokens and SSO sessions of a cache; answer the new version."""
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            conn.execute(
                "INSERT INTO sso_state (cache_id, version, not_before) VALUES (?, 1, ?)"
                " ON CONFLICT (cache_id) DO UPDATE"
                " SET version = version + 1, not_before = excluded.not_before",
                (cache_id, now),
            )
            row = conn.execute(
                "SELECT version FROM sso_state WHERE cache_id = ?", (cache_id,)
            ).fetchone()
        return int(row[0])

    # -- used SSO tokens and signed-out sessions (see memcloud.control.revocations) ---------

    def use_sso_token(self, token_hash: bytes, expires: int, now: int) -> bool:
        with self._lock:
            return revocations.remember_once(
                self._conn, "used_sso_tokens", token_hash, expires, now
            )

    def revoke_session(self, session_hash: bytes, expires: int, now: int) -> None:
        with self._lock:
            revocations.remember_once(self._conn, "revoked_sessions", session_hash, expires, now)

    def session_revoked(self, session_hash: bytes, now: int) -> bool:
        with self._read() as conn:
            return revocations.revoked(conn, "revoked_sessions", session_hash, now)

    # -- flush log and stats history (see memcloud.control.telemetry) ------------------------

    def record_flushes(self, records: list[FlushRecord]) -> None:
        with self._lock:
            telemetry.insert_flushes(self._conn, records)

    def flush_log(self, cache_id: int, limit: int = 100) -> list[FlushRecord]:
        """The newest flushes of a cache, newest first; NotFound if no such cache."""
        with self._read() as conn:
            self._get_cache(conn, cache_id)
            return telemetry.select_flushes(conn, cache_id, limit)

    def prune_flush_log(self, before: float) -> int:
        with self._lock:
            return telemetry.prune_flush_log(self._conn, before)

    def add_stats_samples(self, samples: list[StatsSample]) -> None:
        with self._lock:
            telemetry.insert_samples(self._conn, samples)

    def stats_samples(self, cache_id: int, start: float, end: float) -> list[StatsSample]:
        with self._read() as conn:
            return telemetry.select_samples(conn, cache_id, start, end)

    def compact_stats(self, minute_cutoff: float, hour_cutoff: float) -> int:
        with self._lock:
            return telemetry.compact_stats(self._conn, minute_cutoff, hour_cutoff)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
