"""Ids are never handed out twice, and every cache carries a generation of its own
(issue 9, finding 1): on a fresh store and on a database made by the old schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memcloud.control.sqlite import SqliteStore
from memcloud.control.sqlite.migrations import MIGRATIONS

# The scripts a database had before ids were made AUTOINCREMENT (schema version 3).
OLD_SCHEMA = MIGRATIONS[:3]


def _old_database(path: Path) -> None:
    """A control database as memcloud before issue 9 left it: three caches, the newest
    deleted (its id and its credential's id were then free for the next create)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for index, script in enumerate(OLD_SCHEMA):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {index + 1};\nCOMMIT;")
    for cache_id, name in ((1, "a"), (2, "b"), (3, "c")):
        conn.execute("INSERT INTO caches (id, name, plan) VALUES (?, ?, 1000)", (cache_id, name))
        conn.execute(
            "INSERT INTO credentials (cache_id, username, salt, secret_hash, is_primary)"
            " VALUES (?, ?, x'00', x'00', 1)",
            (cache_id, f"U{cache_id}"),
        )
        # As the old store did: every change (here two inserts) bumps the revision once.
        conn.execute("UPDATE meta SET value = value + 2 WHERE key = 'revision'")
    conn.execute("INSERT INTO sso_state (cache_id, version, not_before) VALUES (2, 4, 99)")
    conn.execute(
        "INSERT INTO flush_log (cache_id, at, source, username, peer, node)"
        " VALUES (2, 1.0, 'cli', '', '', '')"
    )
    conn.execute("DELETE FROM caches WHERE id = 3")
    conn.close()


def test_a_fresh_store_never_reuses_cache_or_credential_ids(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "control.db") as store:
        first = store.create_cache("first", 1000)
        newest = store.create_cache("newest", 1000)
        credential = store.create_credential(newest.id).record
        store.delete_cache(newest.id)
        again = store.create_cache("again", 1000)
        again_credential = store.create_credential(again.id).record
        assert again.id == newest.id + 1
        assert again_credential.id == credential.id + 1
        # Each cache has its own random generation (16 bytes, hex), never shared.
        generations = {first.generation, newest.generation, again.generation}
        assert len(generations) == 3
        assert all(len(g) == 32 and int(g, 16) >= 0 for g in generations)
        assert store.find_cache(again.id).generation == again.generation


def test_an_old_database_upgrades_in_place_and_never_reuses_ids(tmp_path: Path) -> None:
    path = tmp_path / "control.db"
    _old_database(path)
    with SqliteStore(path) as store:
        caches = store.list_caches()
        assert [(c.id, c.name, c.plan) for c in caches] == [(1, "a", 1000), (2, "b", 1000)]
        assert len({c.generation for c in caches}) == 2
        assert [(c.id, c.cache_id, c.username) for c in store.list_credentials()] == [
            (1, 1, "U1"),
            (2, 2, "U2"),
        ]
        # Rows that hang off caches came through the rebuild, cascades included.
        assert store.sso_state(2) == (4, 99)
        assert len(store.flush_log(2)) == 1
        new = store.create_cache("d", 1000)
        credential = store.create_credential(new.id).record
        # The deleted cache 3 and its credential 3 are never handed out again.
        assert new.id > 3
        assert credential.id > 3
        store.delete_cache(2)
        assert [c.cache_id for c in store.list_credentials()] == [1, new.id]
    conn = sqlite3.connect(str(path))
    sql = {row[0]: row[1] for row in conn.execute("SELECT name, sql FROM sqlite_master")}
    conn.close()
    assert "AUTOINCREMENT" in sql["caches"] and "AUTOINCREMENT" in sql["credentials"]
    assert "ON DELETE CASCADE" in sql["credentials"]
    for index in ("credentials_cache_id", "credentials_one_primary"):
        assert index in sql
