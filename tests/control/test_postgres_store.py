"""What only the PostgreSQL store shows: several stores (machines) on one database, schema
migrations racing at start, a database that restarts, and a password that never shows.
What every store must do is in test_store_contract.py, run on PostgreSQL too."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest

from memcloud.control.base import Conflict, StoreFailed
from memcloud.control.open import open_store
from memcloud.control.postgres import PostgresStore, masked_url
from memcloud.control.postgres.engine import MIGRATIONS
from postgres import PostgresServer

MB = 1024 * 1024


def _together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` in `count` threads released at once; each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_stores_on_one_database_see_each_others_changes(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.fresh_database("two_stores")
    with PostgresStore(url) as one, PostgresStore(url) as other:
        before = other.revision()
        cache = one.create_cache("shared", MB)
        assert other.revision() > before
        assert other.find_cache("shared") == cache
        new = other.create_credential(cache.id)
        assert one.find_credential(cache.id, new.record.username) == new.record


def test_nodes_starting_at_once_migrate_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database("racing_migrations")
    stores = _together(4, lambda i: PostgresStore(url))
    assert all(isinstance(store, PostgresStore) for store in stores), stores
    for store in stores:
        assert isinstance(store, PostgresStore)
        store.close()
    with psycopg.connect(url) as conn:
        applied = conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()
        revision = conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchall()
    assert applied == (len(list(MIGRATIONS.glob("*.sql"))),)
    assert revision == [(0,)]  # the schema's one row, inserted once


def test_racing_creates_of_one_name_give_one_cache_and_conflicts(
    postgres_server: PostgresServer,
) -> None:
    """Writers are serialized on the revision row: the loser sees the winner's cache and is
    told the name is taken (not a database constraint error)."""
    url = postgres_server.fresh_database("racing_creates")
    stores = [PostgresStore(url) for _ in range(4)]
    try:
        results = _together(4, lambda i: stores[i].create_cache("race", MB))
    finally:
        for store in stores:
            store.close()
    created = [r for r in results if not isinstance(r, Exception)]
    assert len(created) == 1, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception)), results


def test_a_restarted_database_fails_one_call_then_serves_again() -> None:
    with PostgresServer() as pg:
        store = open_store(pg.root / "unused", control_url=pg.url)
        try:
            store.create_cache("kept", MB)
            pg.stop_server()
            with pytest.raises(StoreFailed) as failed:
                store.list_caches()
            assert pg.password not in str(failed.value)
            pg.start_server()
            assert [c.name for c in store.list_caches()] == ["kept"]
        finally:
            store.close()


def test_a_wrong_password_fails_the_open_without_showing_it(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url.replace(postgres_server.password, "not-the-password")
    with pytest.raises(StoreFailed, match="control database: ") as failed:
        PostgresStore(url)
    assert "not-the-password" not in str(failed.value)


def test_the_password_is_masked_in_repr(postgres_server: PostgresServer) -> None:
    with PostgresStore(postgres_server.url) as store:
        assert postgres_server.password not in repr(store)
        assert repr(store) == f"PostgresStore({masked_url(postgres_server.url)!r})"
    assert masked_url("postgresql://u:p%40ss@[::1]:5432/db") == "postgresql://u:***@[::1]:5432/db"
    assert masked_url("postgresql://u@h/db") == "postgresql://u@h/db"
