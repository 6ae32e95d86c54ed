"""The control store's schema, as an ordered list of SQL scripts.

Script N (0-based) brings a database from `PRAGMA user_version` N to N + 1. Scripts are only
ever appended: an applied script is never edited, so every database converges on one schema.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

MIGRATIONS: tuple[str, ...] = (
    # 1: caches, credentials, and the revision counter servers poll to notice changes.
    """
    CREATE TABLE caches (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        plan INTEGER NOT NULL CHECK (plan > 0),
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE TABLE credentials (
        id INTEGER PRIMARY KEY,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        username TEXT NOT NULL UNIQUE,
        salt BLOB NOT NULL,
        secret_hash BLOB NOT NULL,
        write INTEGER NOT NULL DEFAULT 1,
        flush INTEGER NOT NULL DEFAULT 1,
        api INTEGER NOT NULL DEFAULT 1,
        is_primary INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX credentials_cache_id ON credentials (cache_id);
    -- At most one primary per cache, enforced by the database as well as by the store.
    CREATE UNIQUE INDEX credentials_one_primary ON credentials (cache_id) WHERE is_primary = 1;
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('revision', 0);
    """,
    # 2: single sign-on state per cache. `POST /api/v2/caches/<id>/rotate_sso` bumps
    # `version` (dashboard sessions opened by SSO carry it) and sets `not_before`, so SSO
    # tokens with an earlier timestamp are refused.
    """
    CREATE TABLE sso_state (
        cache_id INTEGER PRIMARY KEY REFERENCES caches (id) ON DELETE CASCADE,
        version INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 3: the flush audit log and the stats history the HTTP API reads (memcloud.api.history
    # samples and compacts it). Writing them never bumps the revision.
    """
    CREATE TABLE flush_log (
        id INTEGER PRIMARY KEY,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        at REAL NOT NULL,
        source TEXT NOT NULL,
        username TEXT NOT NULL,
        peer TEXT NOT NULL,
        node TEXT NOT NULL,
        app TEXT,
        release TEXT,
        commit_sha TEXT,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX flush_log_cache_at ON flush_log (cache_id, at);
    CREATE TABLE stats_history (
        id INTEGER PRIMARY KEY,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        server TEXT NOT NULL,
        at REAL NOT NULL,
        resolution INTEGER NOT NULL,
        stats TEXT NOT NULL
    );
    CREATE INDEX stats_history_cache_at ON stats_history (cache_id, at);
    CREATE INDEX stats_history_resolution_at ON stats_history (resolution, at);
    """,
)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the scripts the database has not seen yet, each in its own transaction."""
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the control database has schema version {version}, newer than this memcloud "
            f"({len(MIGRATIONS)}); upgrade memcloud"
        )
    for index in range(version, len(MIGRATIONS)):
        # executescript() commits first and runs outside the module's transaction handling,
        # so the script's BEGIN/COMMIT make the schema change and the version bump atomic.
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{MIGRATIONS[index]}\nPRAGMA user_version = {index + 1};\nCOMMIT;"
        )
    return len(MIGRATIONS)
