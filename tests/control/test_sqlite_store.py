"""The SQLite control store: rules on caches and credentials, revisions, migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from memcloud.control.base import Conflict, ControlError, ControlStore, NotFound
from memcloud.control.migrations import MIGRATIONS
from memcloud.control.open import open_store, store_path
from memcloud.control.secrets import (
    generate_password,
    generate_username,
    hash_password,
    verify_password,
)
from memcloud.control.sqlite import SqliteStore

MB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "memcloud.db") as opened:
        yield opened


def test_implements_the_protocol(store: SqliteStore) -> None:
    typed: ControlStore = store
    assert typed.revision() == 0


def test_create_find_list_caches(store: SqliteStore) -> None:
    demo = store.create_cache("demo", 25 * MB)
    other = store.create_cache("other.cache_2-b", MB)
    assert (demo.name, demo.plan, demo.enabled) == ("demo", 25 * MB, True)
    assert store.find_cache("demo") == demo
    assert store.find_cache(demo.id) == demo
    assert store.find_cache(str(other.id)) == other
    assert store.list_caches() == [demo, other]


def test_find_cache_not_found_messages(store: SqliteStore) -> None:
    with pytest.raises(NotFound, match="no cache named 'nope'"):
        store.find_cache("nope")
    with pytest.raises(NotFound, match="no cache with id 42"):
        store.find_cache("42")


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/", "ünï", "1234"])
def test_invalid_cache_names(store: SqliteStore, name: str) -> None:
    with pytest.raises(ControlError, match="invalid cache name"):
        store.create_cache(name, MB)


def test_duplicate_name_and_bad_plan(store: SqliteStore) -> None:
    store.create_cache("demo", MB)
    with pytest.raises(Conflict, match="already exists"):
        store.create_cache("demo", MB)
    with pytest.raises(ControlError, match="positive"):
        store.create_cache("zero", 0)
    cache = store.find_cache("demo")
    with pytest.raises(ControlError, match="positive"):
        store.update_cache(cache.id, plan=-1)


def test_update_cache(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    assert store.update_cache(cache.id, plan=2 * MB).plan == 2 * MB
    disabled = store.update_cache(cache.id, enabled=False)
    assert (disabled.plan, disabled.enabled) == (2 * MB, False)
    with pytest.raises(NotFound):
        store.update_cache(999, plan=MB)


def test_create_cache_makes_no_credential(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    assert store.list_credentials(cache.id) == []


def test_first_credential_is_primary_regardless(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    first = store.create_credential(cache.id, primary=False).record
    second = store.create_credential(cache.id, write=False, flush=False).record
    assert first.primary and not second.primary
    assert (second.write, second.flush, second.api) == (False, False, True)
    assert store.list_credentials(cache.id) == [first, second]


def test_create_primary_demotes_the_old_one(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    first = store.create_credential(cache.id).record
    third = store.create_credential(cache.id, primary=True).record
    records = {r.id: r for r in store.list_credentials(cache.id)}
    assert records[third.id].primary and not records[first.id].primary


def test_promote_keeps_exactly_one_primary(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    other = store.create_cache("other", MB)
    ids = [store.create_credential(cache.id).record.id for _ in range(3)]
    other_primary = store.create_credential(other.id).record
    promoted = store.promote_credential(ids[2])
    assert promoted.primary
    primaries = [r.id for r in store.list_credentials(cache.id) if r.primary]
    assert primaries == [ids[2]]
    assert store.find_credential(other.id, other_primary.id).primary


def test_delete_primary_refused_even_when_it_is_the_only_one(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    primary = store.create_credential(cache.id).record
    secondary = store.create_credential(cache.id).record
    refused = "cannot delete the primary credential; promote another credential first"
    with pytest.raises(Conflict) as failure:
        store.delete_credential(primary.id)
    assert str(failure.value) == refused
    store.delete_credential(secondary.id)
    # The last one stays too: without it no client could use the cache.
    with pytest.raises(Conflict) as failure:
        store.delete_credential(primary.id)
    assert str(failure.value) == refused
    assert [r.id for r in store.list_credentials(cache.id)] == [primary.id]


def test_delete_cache_cascades(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    keep = store.create_cache("keep", MB)
    store.create_credential(cache.id)
    kept = store.create_credential(keep.id).record
    store.delete_cache(cache.id)
    assert store.list_credentials() == [kept]
    with pytest.raises(NotFound):
        store.delete_cache(cache.id)
    with pytest.raises(NotFound):
        store.list_credentials(cache.id)


def test_find_credential_by_username_or_id(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    record = store.create_credential(cache.id).record
    assert store.find_credential(cache.id, record.username) == record
    assert store.find_credential(cache.id, record.username.lower()) == record
    assert store.find_credential(cache.id, record.id) == record
    assert store.find_credential(cache.id, str(record.id)) == record
    other = store.create_cache("other", MB)
    with pytest.raises(NotFound, match="no credential"):
        store.find_credential(other.id, record.username)


def test_all_digit_username_wins_over_an_id(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    first = store.create_credential(cache.id).record
    second = store.create_credential(cache.id).record
    # Usernames are hex, so some are all digits; make one look like the other's id.
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE credentials SET username = ? WHERE id = ?", (str(first.id), second.id))
    assert store.find_credential(cache.id, str(first.id)).id == second.id
    assert store.find_credential(cache.id, first.id).id == first.id


def test_update_credential_changes_only_given_flags(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    record = store.create_credential(cache.id).record
    updated = store.update_credential(record.id, flush=False)
    assert (updated.write, updated.flush, updated.api) == (True, False, True)
    updated = store.update_credential(record.id, write=False, api=False)
    assert (updated.write, updated.flush, updated.api) == (False, False, False)
    with pytest.raises(NotFound):
        store.update_credential(999, write=True)


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


def test_revision_bumps_on_every_change_only(store: SqliteStore) -> None:
    seen = [store.revision()]

    def changed() -> None:
        seen.append(store.revision())
        assert seen[-1] > seen[-2]

    cache = store.create_cache("demo", MB)
    changed()
    first = store.create_credential(cache.id).record
    changed()
    second = store.create_credential(cache.id).record
    changed()
    store.update_credential(second.id, write=False)
    changed()
    store.promote_credential(second.id)
    changed()
    store.delete_credential(first.id)
    changed()
    store.update_cache(cache.id, plan=2 * MB)
    changed()
    store.delete_cache(cache.id)
    changed()
    store.create_cache("x", MB)
    changed()
    before = store.revision()
    # Reads and refused changes (rolled back) leave the revision alone.
    store.list_caches()
    store.list_credentials()
    with pytest.raises(Conflict):
        store.create_cache("x", MB)
    with pytest.raises(NotFound):
        store.promote_credential(999)
    assert store.revision() == before


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


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStore(path)


def test_concurrent_use_from_threads(store: SqliteStore) -> None:
    cache = store.create_cache("demo", MB)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                store.create_credential(cache.id)
                store.revision()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = store.list_credentials(cache.id)
    assert len(records) == 80 and sum(r.primary for r in records) == 1


def test_open_store_creates_a_private_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    with pytest.raises(NotFound, match="no memcloud data"):
        open_store(data_dir, create=False)
    assert not data_dir.exists()
    open_store(data_dir).close()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert store_path(data_dir).exists()
    open_store(data_dir, create=False).close()
