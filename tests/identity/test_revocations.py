"""The control store remembers used SSO tokens and signed-out sessions until they expire,
and forgets them after (so the tables stay as small as one validity period's traffic)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memcloud.control.sqlite import SqliteStore
from memcloud.dashboard.sessions import DashboardSession
from memcloud.provisioning.tokens import token_hash


def _rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_a_used_token_is_refused_until_it_expires_then_pruned(tmp_path: Path) -> None:
    path = tmp_path / "control.db"
    with SqliteStore(path) as store:
        digest = token_hash(" ABCDEF01 ")
        assert digest == token_hash("abcdef01")
        assert store.use_sso_token(digest, expires=1_000, now=700)
        assert not store.use_sso_token(digest, expires=1_000, now=999)
        assert not store.use_sso_token(token_hash("abcdef01\n"), expires=1_000, now=1_000)
        # Past its expiry the token fails the time check anyway; the row is pruned.
        assert store.use_sso_token(token_hash("other"), expires=2_000, now=1_001)
        assert _rows(path, "used_sso_tokens") == 1


def test_a_revoked_session_is_refused_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "control.db"
    session = DashboardSession.anonymous(now=0).signed_in(kind="cache", cache_id=1)
    other = DashboardSession.anonymous(now=0).signed_in(kind="cache", cache_id=1)
    with SqliteStore(path) as store:
        assert not store.session_revoked(session.digest, now=10)
        store.revoke_session(session.digest, expires=100, now=10)
        store.revoke_session(session.digest, expires=100, now=11)  # twice: no error
        assert store.session_revoked(session.digest, now=100)
        assert not store.session_revoked(other.digest, now=50)
        assert not store.session_revoked(session.digest, now=101)
        store.revoke_session(other.digest, expires=300, now=200)
        assert _rows(path, "revoked_sessions") == 1
