"""SQL for what the dashboard must remember until it expires: SSO tokens already used and
sessions signed out. Only hashes are stored (a token or a session nonce never is), each row
with the moment it may be forgotten; every insert first prunes what has expired, so both
tables stay as small as the traffic of their validity period.

Neither bumps the revision servers poll: the data plane never reads them. The caller holds
the store's lock.
"""

from __future__ import annotations

from memcloud.control.sql.connection import Connection

__all__ = ["remember_once", "revoked"]

_TABLES = frozenset({"used_sso_tokens", "revoked_sessions"})
_KEYS = {"used_sso_tokens": "token_hash", "revoked_sessions": "session_hash"}


def remember_once(conn: Connection, table: str, digest: bytes, expires: int, now: int) -> bool:
    """Remember `digest` in `table` until `expires`; False if it was remembered already
    (one transaction, so two servers racing with one token cannot both win)."""
    assert table in _TABLES  # a fixed name, never input
    key = _KEYS[table]
    with conn.transaction():
        conn.execute(f"DELETE FROM {table} WHERE expires < ?", (now,))
        cursor = conn.execute(
            f"INSERT INTO {table} ({key}, expires) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (digest, expires),
        )
    return cursor.rowcount == 1


def revoked(conn: Connection, table: str, digest: bytes, now: int) -> bool:
    """Whether `digest` is remembered in `table` and not yet expired (one primary-key read)."""
    assert table in _TABLES
    row = conn.execute(
        f"SELECT 1 FROM {table} WHERE {_KEYS[table]} = ? AND expires >= ?", (digest, now)
    ).fetchone()
    return row is not None
