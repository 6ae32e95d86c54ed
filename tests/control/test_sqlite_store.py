"""What only the SQLite control store shows: its file, its schema, its errors. What every
store must do is in test_store_contract.py."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memcloud.control.base import ControlStore, NotFound, StoreFailed, StoreRefused
from memcloud.control.open import open_store, store_path
from memcloud.control.secrets import (
    generate_password,
    generate_username,
    hash_password,
    verify_password,
)
from memcloud.control.sqlite import SqliteStore
from memcloud.control.sqlite.migrations import MIGRATIONS

MB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "memcloud.db") as opened:
        yield opened


def test_implements_the_protocol(store: SqliteStore) -> None:
    typed: ControlStore = store
    assert typed.revision() == 0


def test_all_digit_username_wins_over_an_id(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    first = store.create_credential(cache.id).record
    second = store.create_credential(cache.id).record
    # Usernames are hex, so some are all digits; make one look like the other's id.
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE credentials SET username = ? WHERE id = ?", (str(first.id), second.id))
    assert store.find_credential(cache.id, str(first.id)).id == second.id
    assert store.find_credential(cache.id, first.id).id == first.id


def test_passwords_verify_and_are_not_stored(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    new = store.create_credential(cache.id)
    stored = store.find_credential(cache.id, new.record.id)
    assert verify_password(stored, new.password)
    assert verify_password(stored, new.password.encode())
    assert not verify_password(stored, new.password.lower())
    assert not verify_password(stored, b"\xff\xfe")
    assert not verify_password(stored, "")
    assert new.password not in repr(new) and new.password not in repr(stored)
    raw = store.path.read_bytes() + store.path.with_name("memcloud.db-wal").read_bytes()
    assert new.password.encode() not in raw


def test_secret_formats() -> None:
    username, password = generate_username(), generate_password()
    assert len(username) == 6 and username == username.upper()
    assert len(password) == 32 and password == password.upper()
    int(username, 16), int(password, 16)
    salt1, hash1 = hash_password(password)
    salt2, hash2 = hash_password(password)
    assert len(salt1) == 16 and salt1 != salt2 and hash1 != hash2


def test_a_second_store_sees_changes(tmp_path: Path) -> None:
    # The CLI and a running server open the same file.
    with SqliteStore(tmp_path / "db") as cli, SqliteStore(tmp_path / "db") as server:
        before = server.revision()
        cache = cli.create_cache("demo", MB)
        assert server.revision() > before
        assert server.find_cache("demo") == cache


def test_schema_is_migrated_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with SqliteStore(path) as first:
        cache = first.create_cache("demo", MB)
    with SqliteStore(path) as again:
        assert again.list_caches() == [cache]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_node_registered_before_the_node_stats_migration_keeps_its_row(
    tmp_path: Path,
) -> None:
    """Migration 8 (the server panel's columns) on a registry that already has a node."""
    path = tmp_path / "db"
    node_stats = next(i for i, script in enumerate(MIGRATIONS) if "started_at" in script)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for script in MIGRATIONS[:node_stats]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {node_stats}")
        conn.execute(
            "INSERT INTO nodes (address, cluster, machine, heartbeat_at) VALUES (?, ?, ?, ?)",
            ("10.0.0.1:11211", "default", "m1", time.time()),
        )
        conn.commit()
    with SqliteStore(path) as store:
        [node] = store.list_nodes()
        assert (node.address, node.memory, node.max_connections, node.connections) == (
            "10.0.0.1:11211",
            0,
            0,
            0,
        )
        assert node.up and node.uptime < 60  # from its last heartbeat, not from 1970
        assert store.heartbeat(node.id, 3)
        assert store.list_nodes()[0].connections == 3


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStore(path)


def test_open_store_creates_a_private_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    with pytest.raises(NotFound, match="no memcloud data"):
        open_store(data_dir, create=False)
    assert not data_dir.exists()
    open_store(data_dir).close()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert store_path(data_dir).exists()
    open_store(data_dir, create=False).close()


def test_sqlite_errors_leave_the_store_as_its_own(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    with store._lock:
        store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreFailed) as failure:
        store.create_credential(cache.id)
    # A fault of the file (retried by the flush log writer), not a refused record.
    assert type(failure.value) is StoreFailed
    assert failure.value.cause == "attempt to write a readonly database"
    assert str(failure.value) == "control database: attempt to write a readonly database"
    assert isinstance(failure.value.__cause__, sqlite3.OperationalError)
    with store._lock:
        store._conn.execute("PRAGMA query_only = OFF")
    assert store.list_credentials(cache.id) == []
    store.close()
    with pytest.raises(StoreRefused, match="closed database"):
        store.list_caches()


def test_a_file_that_cannot_be_opened_is_a_store_failure(tmp_path: Path) -> None:
    with pytest.raises(StoreFailed) as failure:
        SqliteStore(tmp_path / "missing-dir" / "memcloud.db")
    assert str(failure.value) == "control database: unable to open database file"
