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
    # 4: ids are never handed out twice (issue 9). Without AUTOINCREMENT SQLite hands the
    # newest deleted id to the next row, and with it everything that was made for the old
    # one (cookies, SSO sessions, open connections). `caches` and `credentials` are rebuilt
    # (SQLite's documented table rebuild; `migrate` runs it with foreign keys off, so the
    # drops cascade nowhere) keeping every row, id and index. The sequences start above
    # every id ever used: the old schema kept no record of deleted ids, but every insert
    # bumped `meta.revision` once, so no id ever used exceeds the revision.
    # Each cache also gets its generation: a random nonce that everything made for a cache
    # carries, so nothing made for a deleted cache can touch a later one.
    """
    CREATE TABLE caches_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        plan INTEGER NOT NULL CHECK (plan > 0),
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        generation TEXT NOT NULL UNIQUE
    );
    INSERT INTO caches_new (id, name, plan, enabled, created_at, generation)
        SELECT id, name, plan, enabled, created_at, lower(hex(randomblob(16))) FROM caches;
    CREATE TABLE credentials_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO credentials_new
        SELECT id, cache_id, username, salt, secret_hash, write, flush, api, is_primary,
               created_at
        FROM credentials;
    DROP TABLE credentials;
    DROP TABLE caches;
    ALTER TABLE caches_new RENAME TO caches;
    ALTER TABLE credentials_new RENAME TO credentials;
    CREATE INDEX credentials_cache_id ON credentials (cache_id);
    CREATE UNIQUE INDEX credentials_one_primary ON credentials (cache_id) WHERE is_primary = 1;
    DELETE FROM sqlite_sequence WHERE name IN ('caches', 'credentials');
    INSERT INTO sqlite_sequence (name, seq) SELECT 'caches', max(
        (SELECT coalesce(max(id), 0) FROM caches),
        (SELECT value FROM meta WHERE key = 'revision'));
    INSERT INTO sqlite_sequence (name, seq) SELECT 'credentials', max(
        (SELECT coalesce(max(id), 0) FROM credentials),
        (SELECT value FROM meta WHERE key = 'revision'));
    -- SSO tokens already used, until they expire (a restart must not reopen them), and
    -- dashboard sessions signed out before their cookie expires. Only hashes are kept.
    CREATE TABLE used_sso_tokens (
        token_hash BLOB PRIMARY KEY,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX used_sso_tokens_expires ON used_sso_tokens (expires);
    CREATE TABLE revoked_sessions (
        session_hash BLOB PRIMARY KEY,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX revoked_sessions_expires ON revoked_sessions (expires);
    """,
    # 5: clusters and the deployment's nodes (issue 11). A cache lives on one cluster, a
    # named set of nodes; each node registers itself and heartbeats (`heartbeat_at`, epoch
    # seconds by the database's clock).
    """
    ALTER TABLE caches ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
    CREATE TABLE nodes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL UNIQUE,
        cluster TEXT NOT NULL,
        machine TEXT NOT NULL,
        internal TEXT NOT NULL DEFAULT '',
        heartbeat_at REAL NOT NULL
    );
    """,
    # 6: alerts, where they are delivered, and each delivery with its attempts (issue 12).
    # Written by the API and the alert evaluator; no revision bump (no node reads them).
    """
    CREATE TABLE alert_configs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        delivery_type TEXT NOT NULL,
        email TEXT NOT NULL DEFAULT '',
        slack_url TEXT NOT NULL DEFAULT '',
        slack_channel TEXT NOT NULL DEFAULT '',
        webhook_url TEXT NOT NULL DEFAULT '',
        webhook_secret TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alert_configs_cache_id ON alert_configs (cache_id);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        trigger_type TEXT NOT NULL,
        trigger_threshold REAL NOT NULL,
        delivery_config_id INTEGER NOT NULL REFERENCES alert_configs (id),
        description TEXT NOT NULL DEFAULT '',
        enabled INTEGER NOT NULL DEFAULT 1,
        firing INTEGER NOT NULL DEFAULT 0,
        value REAL,
        changed_at REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX alerts_cache_id ON alerts (cache_id);
    CREATE TABLE alert_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        config_id INTEGER NOT NULL REFERENCES alert_configs (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        created_at REAL NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        delivered_at REAL
    );
    CREATE INDEX alert_deliveries_cache ON alert_deliveries (cache_id, created_at);
    CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
    """,
    # 7: deploy-hook tokens (issue 13): flush-only secrets of a cache, stored as a digest,
    # each with the cache's generation it was made for. No revision bump on their writes.
    """
    CREATE TABLE hook_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        generation TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        prefix TEXT NOT NULL DEFAULT '',
        token_hash BLOB NOT NULL UNIQUE,
        hint TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL,
        revoked_at REAL
    );
    CREATE INDEX hook_tokens_cache_id ON hook_tokens (cache_id);
    """,
    # 8: what each node tells the registry for the operator's server panel (issue 14 item
    # 9): when it registered (the database's clock), its memory budget, its
    # --max-connections, and its open connections, renewed with each heartbeat. (7 is the
    # deploy-hook tokens of issue 13; this entry goes after it when both are merged.)
    """
    ALTER TABLE nodes ADD COLUMN started_at REAL NOT NULL DEFAULT 0;
    ALTER TABLE nodes ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE nodes ADD COLUMN max_connections INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE nodes ADD COLUMN connections INTEGER NOT NULL DEFAULT 0;
    UPDATE nodes SET started_at = heartbeat_at;
    """,
    # 9 (issue 12, introspection; after 7 and 8 of the same wave once merged): the prefixes
    # a cache watches, and the latency probe's samples (one per node every 20 s, by
    # "host:port", pruned after LATENCY_KEEP_SECONDS). No revision bump on their writes.
    """
    CREATE TABLE watched_prefixes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_id INTEGER NOT NULL REFERENCES caches (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        UNIQUE (cache_id, name)
    );
    CREATE TABLE latency_samples (
        at REAL NOT NULL,
        server TEXT NOT NULL,
        duration_ns INTEGER NOT NULL
    );
    CREATE INDEX latency_samples_at ON latency_samples (at);
    CREATE INDEX latency_samples_server ON latency_samples (server, at);
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
    if version == len(MIGRATIONS):
        return version
    # Foreign keys off while tables are rebuilt (a DROP would otherwise cascade into every
    # row that refers to the table); checked before each commit instead. The pragma only
    # takes effect outside a transaction, hence here and not in the scripts.
    enforced = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for index in range(version, len(MIGRATIONS)):
            # executescript() commits first and runs outside the module's transaction
            # handling; the transaction it opens stays open until the check below passes,
            # so the schema change and the version bump are atomic.
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[index]}")
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(
                        f"schema migration {index + 1} would break {len(broken)} references"
                    )
                conn.execute(f"PRAGMA user_version = {index + 1}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    finally:
        if enforced:
            conn.execute("PRAGMA foreign_keys = ON")
    return len(MIGRATIONS)
