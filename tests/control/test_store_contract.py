"""What every control store must do, run against each of them (SQLite in a temporary
directory, in memory, PostgreSQL started by the test). A new backend joins by adding itself
to `STORES`.

The rules come from memcloud.control.rules, so the refusals' words are the same from every
store; what only the SQLite file can show (its bytes, its schema) is in test_sqlite_store.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memcloud.control.base import Conflict, ControlError, ControlStore, NotFound
from memcloud.control.introspection import MAX_WATCHED_PREFIXES, LatencySample
from memcloud.control.memory import MemoryStore
from memcloud.control.models import FlushRecord, StatsSample
from memcloud.control.postgres import PostgresStore
from memcloud.control.secrets import verify_password
from memcloud.control.sqlite import SqliteStore
from memcloud.control.telemetry import HOUR, MINUTE

MB = 1024 * 1024
PRIMARY_REFUSED = "cannot delete the primary credential; promote another credential first"

_numbers = itertools.count()
STORES: dict[str, Callable[[pytest.FixtureRequest, Path], ControlStore]] = {
    "sqlite": lambda request, tmp: SqliteStore(tmp / "memcloud.db"),
    "memory": lambda request, tmp: MemoryStore(),
    # A database of its own per test, on one PostgreSQL server per test session.
    "postgres": lambda request, tmp: PostgresStore(
        request.getfixturevalue("postgres_server").fresh_database(f"contract_{next(_numbers)}")
    ),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ControlStore]:
    with STORES[request.param](request, tmp_path) as opened:
        yield opened


# -- caches ---------------------------------------------------------------------------------


def test_a_fresh_store_is_empty_at_revision_zero(store: ControlStore) -> None:
    assert (store.revision(), store.list_caches(), store.list_credentials()) == (0, [], [])


def test_create_find_list_caches(store: ControlStore) -> None:
    demo = store.create_cache("demo", 25 * MB)
    other = store.create_cache("other.cache_2-b", MB)
    assert (demo.name, demo.plan, demo.enabled) == ("demo", 25 * MB, True)
    assert store.find_cache("demo") == demo
    assert store.find_cache(demo.id) == demo
    assert store.find_cache(str(other.id)) == other
    assert store.list_caches() == [demo, other]


def test_find_cache_not_found_messages(store: ControlStore) -> None:
    store.create_cache("Demo", MB)
    with pytest.raises(NotFound, match="no cache named 'nope'"):
        store.find_cache("nope")
    with pytest.raises(NotFound, match="no cache named 'demo'"):
        store.find_cache("demo")  # names are case-sensitive
    with pytest.raises(NotFound, match="no cache with id 42"):
        store.find_cache("42")


@pytest.mark.parametrize("ref", ["9" * 20, str(2**63), 2**64, -1, 0])
def test_ids_no_store_can_hold_are_not_found(store: ControlStore, ref: str | int) -> None:
    """Not a database's overflow error (SQLite raised OverflowError, PostgreSQL a DataError)."""
    cache = store.create_cache("demo", MB)
    with pytest.raises(NotFound, match="no cache with id"):
        store.find_cache(ref)
    with pytest.raises(NotFound):
        store.update_cache(int(ref), plan=MB)
    with pytest.raises(NotFound):
        store.find_credential(cache.id, ref)
    with pytest.raises(NotFound):
        store.delete_credential(int(ref))


def test_a_digit_that_is_no_number_is_a_name(store: ControlStore) -> None:
    with pytest.raises(NotFound, match="no cache named '²'"):
        store.find_cache("²")


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/", "ünï", "1234"])
def test_invalid_cache_names(store: ControlStore, name: str) -> None:
    with pytest.raises(ControlError, match="invalid cache name"):
        store.create_cache(name, MB)
    assert store.list_caches() == []


def test_duplicate_name_and_bad_plan(store: ControlStore) -> None:
    store.create_cache("demo", MB)
    with pytest.raises(Conflict, match="a cache named 'demo' already exists"):
        store.create_cache("demo", MB)
    with pytest.raises(ControlError, match="positive"):
        store.create_cache("zero", 0)
    cache = store.find_cache("demo")
    with pytest.raises(ControlError, match="positive"):
        store.update_cache(cache.id, plan=-1)
    assert store.find_cache("demo").plan == MB


def test_update_cache(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    assert store.update_cache(cache.id, plan=2 * MB).plan == 2 * MB
    disabled = store.update_cache(cache.id, enabled=False)
    assert (disabled.plan, disabled.enabled) == (2 * MB, False)
    assert store.find_cache(cache.id) == disabled
    assert store.update_cache(cache.id, enabled=True).enabled
    with pytest.raises(NotFound, match="no cache with id 999"):
        store.update_cache(999, plan=MB)


def test_ids_are_never_reused_and_generations_are_unique(store: ControlStore) -> None:
    first = store.create_cache("first", MB)
    newest = store.create_cache("newest", MB)
    credential = store.create_credential(newest.id).record
    store.delete_cache(newest.id)
    again = store.create_cache("newest", MB)  # even under the same name
    again_credential = store.create_credential(again.id).record
    assert again.id == newest.id + 1
    assert again_credential.id == credential.id + 1
    generations = {first.generation, newest.generation, again.generation}
    assert len(generations) == 3
    assert all(len(g) == 32 and int(g, 16) >= 0 for g in generations)
    assert store.find_cache(again.id).generation == again.generation


def test_delete_cache_takes_everything_of_it(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    keep = store.create_cache("keep", MB)
    store.create_credential(cache.id)
    kept = store.create_credential(keep.id).record
    store.rotate_sso(cache.id, now=5)
    store.record_flushes([_flush(cache.id, 1.0), _flush(keep.id, 1.0)])
    store.add_stats_samples([_sample(cache.id, 60.0), _sample(keep.id, 60.0)])
    store.delete_cache(cache.id)
    assert store.list_caches() == [keep]
    assert store.list_credentials() == [kept]
    assert len(store.flush_log(keep.id)) == 1
    assert len(store.stats_samples(keep.id, 0, 1e12)) == 1
    assert store.stats_samples(cache.id, 0, 1e12) == []
    for call in (
        lambda: store.delete_cache(cache.id),
        lambda: store.list_credentials(cache.id),
        lambda: store.sso_state(cache.id),
        lambda: store.flush_log(cache.id),
    ):
        with pytest.raises(NotFound, match=f"no cache with id {cache.id}"):
            call()


# -- credentials and the primary rule --------------------------------------------------------


def test_create_cache_makes_no_credential(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    assert store.list_credentials(cache.id) == []


def test_first_credential_is_primary_regardless(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    first = store.create_credential(cache.id, primary=False).record
    second = store.create_credential(cache.id, write=False, flush=False).record
    assert first.primary and not second.primary
    assert (second.write, second.flush, second.api) == (False, False, True)
    assert store.list_credentials(cache.id) == [first, second]


def test_create_primary_demotes_the_old_one(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    first = store.create_credential(cache.id).record
    third = store.create_credential(cache.id, primary=True).record
    records = {r.id: r for r in store.list_credentials(cache.id)}
    assert records[third.id].primary and not records[first.id].primary


def test_promote_keeps_exactly_one_primary(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    other = store.create_cache("other", MB)
    ids = [store.create_credential(cache.id).record.id for _ in range(3)]
    other_primary = store.create_credential(other.id).record
    promoted = store.promote_credential(ids[2])
    assert promoted.primary and promoted.id == ids[2]
    primaries = [r.id for r in store.list_credentials(cache.id) if r.primary]
    assert primaries == [ids[2]]
    assert store.find_credential(other.id, other_primary.id).primary
    with pytest.raises(NotFound, match="no credential with id 999"):
        store.promote_credential(999)


def test_delete_primary_refused_even_when_it_is_the_only_one(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    primary = store.create_credential(cache.id).record
    secondary = store.create_credential(cache.id).record
    with pytest.raises(Conflict) as failure:
        store.delete_credential(primary.id)
    assert str(failure.value) == PRIMARY_REFUSED
    store.delete_credential(secondary.id)
    # The last one stays too: without it no client could use the cache.
    with pytest.raises(Conflict) as failure:
        store.delete_credential(primary.id)
    assert str(failure.value) == PRIMARY_REFUSED
    assert [r.id for r in store.list_credentials(cache.id)] == [primary.id]
    with pytest.raises(NotFound, match=f"no credential with id {secondary.id}"):
        store.delete_credential(secondary.id)


def test_find_credential_by_username_or_id(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    record = store.create_credential(cache.id).record
    assert store.find_credential(cache.id, record.username) == record
    assert store.find_credential(cache.id, record.username.lower()) == record
    assert store.find_credential(cache.id, record.id) == record
    assert store.find_credential(cache.id, str(record.id)) == record
    other = store.create_cache("other", MB)
    with pytest.raises(NotFound, match=f"no credential '{record.username}' in cache {other.id}"):
        store.find_credential(other.id, record.username)
    with pytest.raises(NotFound, match="no cache with id 999"):
        store.find_credential(999, record.id)


def test_usernames_are_unique_across_caches(store: ControlStore) -> None:
    caches = [store.create_cache(f"c{n}", MB) for n in range(3)]
    usernames = [store.create_credential(c.id).record.username for c in caches for _ in range(5)]
    assert len(set(usernames)) == 15
    assert all(len(u) == 6 and u == u.upper() for u in usernames)


def test_update_credential_changes_only_given_flags(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    record = store.create_credential(cache.id).record
    updated = store.update_credential(record.id, flush=False)
    assert (updated.write, updated.flush, updated.api) == (True, False, True)
    updated = store.update_credential(record.id, write=False, api=False)
    assert (updated.write, updated.flush, updated.api) == (False, False, False)
    assert store.find_credential(cache.id, record.id) == updated
    with pytest.raises(NotFound):
        store.update_credential(999, write=True)


def test_capabilities_must_be_booleans(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    record = store.create_credential(cache.id).record
    with pytest.raises(ControlError, match="invalid write capability 'no'"):
        store.update_credential(record.id, write="no")  # type: ignore[arg-type]
    with pytest.raises(ControlError, match="invalid api capability 1"):
        store.create_credential(cache.id, api=1)  # type: ignore[arg-type]
    assert store.list_credentials(cache.id) == [record]


def test_passwords_verify_and_are_never_shown_again(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    new = store.create_credential(cache.id)
    stored = store.find_credential(cache.id, new.record.id)
    assert verify_password(stored, new.password)
    assert not verify_password(stored, new.password.lower())
    assert not verify_password(stored, "")
    assert new.password not in repr(new) and new.password not in repr(stored)
    given = store.create_credential(cache.id, password="derived-by-provisioning")
    assert given.password == "derived-by-provisioning"
    assert verify_password(store.find_credential(cache.id, given.record.id), given.password)


# -- the revision servers poll ---------------------------------------------------------------


def _same_database(store: ControlStore) -> ControlStore:
    """Another store on `store`'s database, as another process (a CLI, a node) opens it;
    the memory store's database is the store itself."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    if isinstance(store, PostgresStore):
        return PostgresStore(store.url)
    return store


def test_a_change_elsewhere_wakes_a_waiting_server(store: ControlStore) -> None:
    other = _same_database(store)
    woke: list[tuple[bool, float]] = []
    store.wait_for_change(0.0)  # a first wait may set up what later waits listen on

    def wait() -> None:
        started = time.monotonic()
        woke.append((store.wait_for_change(10.0), time.monotonic() - started))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the waiter is waiting
    before = store.revision()
    other.create_cache("elsewhere", MB)
    waiter.join(timeout=15)
    if other is not store:
        other.close()
    [(changed, seconds)] = woke
    assert changed and seconds < 2.0  # long before the timeout
    assert store.revision() > before


def test_waiting_without_a_change_ends_at_the_timeout(store: ControlStore) -> None:
    started = time.monotonic()
    changed = store.wait_for_change(0.3)
    elapsed = time.monotonic() - started
    assert not changed
    assert 0.25 <= elapsed < 3.0


def test_revision_changes_on_every_change_only(store: ControlStore) -> None:
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
    store.rotate_sso(cache.id, now=10)
    changed()
    store.delete_cache(cache.id)
    changed()
    kept = store.create_cache("x", MB)
    changed()
    before = store.revision()
    # Reads, refused changes and what servers never load leave the revision alone.
    store.list_caches()
    store.list_credentials()
    store.sso_state(kept.id)
    with pytest.raises(Conflict):
        store.create_cache("x", MB)
    with pytest.raises(ControlError):
        store.create_cache("bad name", MB)
    with pytest.raises(NotFound):
        store.promote_credential(999)
    store.use_sso_token(b"t" * 32, expires=100, now=10)
    store.revoke_session(b"s" * 32, expires=100, now=10)
    store.record_flushes([_flush(kept.id, 1.0)])
    store.add_stats_samples([_sample(kept.id, 60.0)])
    store.prune_flush_log(0.5)
    store.compact_stats(0.0, 0.0)
    assert store.revision() == before


def test_concurrent_use_from_threads(store: ControlStore) -> None:
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


# -- single sign-on, used tokens, signed-out sessions ----------------------------------------


def test_sso_state_starts_at_zero_and_rotates(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    other = store.create_cache("other", MB)
    assert store.sso_state(cache.id) == (0, 0)
    assert store.rotate_sso(cache.id, now=100) == 1
    assert store.rotate_sso(cache.id, now=250) == 2
    assert store.sso_state(cache.id) == (2, 250)
    assert store.sso_state(other.id) == (0, 0)
    with pytest.raises(NotFound, match="no cache with id 999"):
        store.rotate_sso(999, now=1)


def test_a_used_token_is_refused_until_it_expires(store: ControlStore) -> None:
    token = b"\x01" * 32
    assert store.use_sso_token(token, expires=1_000, now=700)
    assert not store.use_sso_token(token, expires=1_000, now=999)
    assert not store.use_sso_token(token, expires=5_000, now=1_000)
    assert store.use_sso_token(b"\x02" * 32, expires=2_000, now=1_000)
    # Once expired it is forgotten: a later use (refused anyway by its own time) is new.
    assert store.use_sso_token(token, expires=3_000, now=1_001)


def test_a_revoked_session_stays_revoked_until_it_expires(store: ControlStore) -> None:
    session, other = b"\x03" * 32, b"\x04" * 32
    assert not store.session_revoked(session, now=10)
    store.revoke_session(session, expires=100, now=10)
    store.revoke_session(session, expires=100, now=11)  # twice: no error
    assert store.session_revoked(session, now=100)
    assert not store.session_revoked(other, now=50)
    assert not store.session_revoked(session, now=101)


# -- the flush log --------------------------------------------------------------------------


def _flush(cache_id: int, at: float, **details: str) -> FlushRecord:
    return FlushRecord(
        cache_id=cache_id,
        at=at,
        source="text",
        username="ABC123",
        peer="127.0.0.1:5000",
        node="127.0.0.1:11211",
        details=details,
    )


def test_flush_log_newest_first_with_its_fields(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    other = store.create_cache("other", MB)
    hook = FlushRecord(
        cache_id=cache.id,
        at=30.0,
        source="deploy_hook",
        username="",
        peer="10.0.0.1:443",
        app="shop",
        release="v42",
        commit="abc",
        details={"z": "1", "a": "2"},
    )
    store.record_flushes([_flush(cache.id, 10.0), hook, _flush(other.id, 20.0)])
    store.record_flushes([_flush(cache.id, 20.0), _flush(cache.id, 20.0, second="yes")])
    log = store.flush_log(cache.id)
    assert [(r.at, r.details) for r in log] == [
        (30.0, {"a": "2", "z": "1"}),
        (20.0, {"second": "yes"}),  # the same time: the later line first
        (20.0, {}),
        (10.0, {}),
    ]
    assert log[0].id is not None and log[0] == dataclasses.replace(hook, id=log[0].id)
    assert len({r.id for r in log}) == 4
    assert store.flush_log(cache.id, limit=2) == log[:2]
    assert [r.cache_id for r in store.flush_log(other.id)] == [other.id]


def test_flushes_of_a_deleted_cache_are_skipped_and_old_ones_pruned(
    store: ControlStore,
) -> None:
    cache = store.create_cache("demo", MB)
    store.record_flushes([_flush(cache.id, 5.0), _flush(999, 6.0), _flush(cache.id, 7.0)])
    assert [r.at for r in store.flush_log(cache.id)] == [7.0, 5.0]
    assert store.prune_flush_log(6.0) == 1
    assert [r.at for r in store.flush_log(cache.id)] == [7.0]
    assert store.prune_flush_log(6.0) == 0


def test_what_a_caller_holds_is_not_the_store(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    record = _flush(cache.id, 1.0, app="x")
    store.record_flushes([record])
    record.details["app"] = "changed"
    shown = store.flush_log(cache.id)[0]
    shown.details["more"] = "y"
    assert store.flush_log(cache.id)[0].details == {"app": "x"}
    sample = _sample(cache.id, 60.0)
    store.add_stats_samples([sample])
    sample.stats["get_hits"] = 99
    store.stats_samples(cache.id, 0, 100)[0].stats["cmd_get"] = 5
    assert store.stats_samples(cache.id, 0, 100)[0].stats == {"get_hits": 1}


# -- the stats history ----------------------------------------------------------------------


def _sample(
    cache_id: int, at: float, server: str = "127.0.0.1:11211", hits: int = 1
) -> StatsSample:
    return StatsSample(cache_id=cache_id, server=server, at=at, stats={"get_hits": hits})


def test_stats_samples_in_a_time_range_oldest_first(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    other = store.create_cache("other", MB)
    store.add_stats_samples(
        [
            _sample(cache.id, 180.0, hits=3),
            _sample(cache.id, 60.0, hits=1),
            _sample(cache.id, 120.0, "127.0.0.1:11212", hits=2),
            _sample(other.id, 120.0),
            _sample(999, 120.0),  # a deleted cache's: skipped
        ]
    )
    got = store.stats_samples(cache.id, 60.0, 120.0)
    assert [(s.at, s.server, s.stats, s.resolution) for s in got] == [
        (60.0, "127.0.0.1:11211", {"get_hits": 1}, MINUTE),
        (120.0, "127.0.0.1:11212", {"get_hits": 2}, MINUTE),
    ]
    assert [s.at for s in store.stats_samples(cache.id, 0, 1e12)] == [60.0, 120.0, 180.0]
    assert store.stats_samples(999, 0, 1e12) == []


def test_compaction_keeps_each_hours_last_sample_and_expires_the_oldest(
    store: ControlStore,
) -> None:
    cache = store.create_cache("demo", MB)
    a, b = "127.0.0.1:11211", "127.0.0.1:11212"
    day = 24 * HOUR
    samples = [
        _sample(cache.id, day + minute * MINUTE, server, hits=minute)
        for server in (a, b)
        for minute in range(0, 120, 30)  # hour 24: minutes 0, 30; hour 25: minutes 60, 90
    ]
    samples.append(_sample(cache.id, HOUR + 5.0, a, hits=7))  # a day older than the rest
    samples.append(_sample(cache.id, 2 * day, a, hits=500))  # recent: stays a minute sample
    store.add_stats_samples(samples)
    # Minute samples before 25:40, rounded down to 25:00, become hourly; older than 2 h, gone.
    changed = store.compact_stats(day + HOUR + 40 * MINUTE, 2 * HOUR)
    kept = store.stats_samples(cache.id, 0, 1e12)
    assert [(s.at, s.server, s.resolution, s.stats["get_hits"]) for s in kept] == [
        (day + 30 * MINUTE, a, HOUR, 30),
        (day + 30 * MINUTE, b, HOUR, 30),
        (day + 60 * MINUTE, a, MINUTE, 60),
        (day + 60 * MINUTE, b, MINUTE, 60),
        (day + 90 * MINUTE, a, MINUTE, 90),
        (day + 90 * MINUTE, b, MINUTE, 90),
        (2 * day, a, MINUTE, 500),
    ]
    # Made hourly: hour 1 of a, hour 24 of a and b (3); deleted: minute 0 of a and b (2);
    # then the hour-1 sample, older than the hour cutoff (1).
    assert changed == 6
    assert store.compact_stats(day + HOUR + 40 * MINUTE, 2 * HOUR) == 0


# -- clusters and nodes -----------------------------------------------------------------------


def test_a_cache_lives_on_a_cluster_and_can_move(store: ControlStore) -> None:
    plain = store.create_cache("plain", MB)
    placed = store.create_cache("placed", MB, cluster="eu-1")
    assert (plain.cluster, placed.cluster) == ("default", "eu-1")
    before = store.revision()
    moved = store.update_cache(plain.id, cluster="eu-1")
    assert moved == dataclasses.replace(plain, cluster="eu-1")
    assert store.find_cache("plain") == moved
    assert store.revision() > before
    for bad in ("", "has space", "x" * 65):
        with pytest.raises(ControlError, match="invalid cluster name"):
            store.update_cache(plain.id, cluster=bad)
        with pytest.raises(ControlError, match="invalid cluster name"):
            store.create_cache("other", MB, cluster=bad)
    assert store.find_cache("plain").cluster == "eu-1"


def test_nodes_register_heartbeat_and_leave(store: ControlStore) -> None:
    before = store.revision()
    one = store.register_node("10.0.0.1:11211", cluster="default", machine="m1")
    two = store.register_node(
        "[fd00::2]:11211", cluster="default", machine="m2", internal="[fd00::2]:11290"
    )
    assert store.revision() >= before + 2  # joining changes where keys live
    assert [(n.id, n.address, n.cluster, n.machine, n.internal) for n in store.list_nodes()] == [
        (one.id, "10.0.0.1:11211", "default", "m1", ""),
        (two.id, "[fd00::2]:11211", "default", "m2", "[fd00::2]:11290"),
    ]
    assert all(0 <= n.heartbeat_age < 5 for n in store.list_nodes())
    time.sleep(0.3)
    revision = store.revision()
    assert store.heartbeat(one.id)
    ages = {n.id: n.heartbeat_age for n in store.list_nodes()}
    assert ages[one.id] < 0.25 <= ages[two.id]  # the database's clock moved; one beat
    assert store.revision() == revision  # heartbeats are not changes
    store.remove_node(two.id)
    assert [n.id for n in store.list_nodes()] == [one.id]
    assert store.revision() > revision
    assert not store.heartbeat(two.id)  # gone: it must register again
    with pytest.raises(NotFound, match=f"no node with id {two.id}"):
        store.remove_node(two.id)


def test_a_node_rejoining_at_its_address_keeps_its_id(store: ControlStore) -> None:
    first = store.register_node("10.0.0.1:11211", cluster="default", machine="m1")
    again = store.register_node("10.0.0.1:11211", cluster="eu-1", machine="m9")
    assert again.id == first.id
    assert [(n.id, n.cluster, n.machine) for n in store.list_nodes()] == [(first.id, "eu-1", "m9")]


def test_nodes_tell_their_bounds_uptime_and_connections(store: ControlStore) -> None:
    """The server panel's facts (SQLite migration 8, PostgreSQL 0005.node_stats)."""
    node = store.register_node(
        "10.0.0.1:11211", cluster="eu-1", machine="m1", memory=512 * MB, max_connections=900
    )
    assert (node.memory, node.max_connections, node.connections) == (512 * MB, 900, 0)
    assert 0 <= node.uptime < 5
    plain = store.register_node("10.0.0.2:11211", cluster="eu-1", machine="m2")
    assert (plain.memory, plain.max_connections, plain.connections) == (0, 0, 0)
    revision = store.revision()
    time.sleep(0.3)
    assert store.heartbeat(node.id, 17)
    assert store.heartbeat(plain.id)  # no count given: the last one stays
    listed = {n.id: n for n in store.list_nodes()}
    assert (listed[node.id].connections, listed[plain.id].connections) == (17, 0)
    assert listed[node.id].uptime >= 0.25 > listed[node.id].heartbeat_age
    assert store.revision() == revision  # counts travel with heartbeats: no change
    assert store.heartbeat(node.id)
    assert store.list_nodes()[0].connections == 17
    # A restarted node registers again: its uptime and connections start over.
    again = store.register_node(
        "10.0.0.1:11211", cluster="eu-1", machine="m1", memory=MB, max_connections=10
    )
    assert (again.id, again.memory, again.max_connections, again.connections) == (
        node.id,
        MB,
        10,
        0,
    )
    assert again.uptime < 0.25
    for bad in (-1, 2**63, True):
        with pytest.raises(ControlError, match="invalid node connections"):
            store.heartbeat(node.id, bad)
        with pytest.raises(ControlError, match="invalid node memory"):
            store.register_node("10.0.0.3:1", cluster="eu-1", machine="m", memory=bad)
        with pytest.raises(ControlError, match="invalid node max connections"):
            store.register_node("10.0.0.3:1", cluster="eu-1", machine="m", max_connections=bad)
    assert [n.address for n in store.list_nodes()] == ["10.0.0.1:11211", "10.0.0.2:11211"]


@pytest.mark.parametrize(
    ("address", "machine", "internal", "message"),
    [
        ("no-port", "m", "", "invalid node address"),
        ("host:0", "m", "", "invalid node address"),
        ("host:70000", "m", "", "invalid node address"),
        ("a,b:1", "m", "", "invalid node address"),
        ("host:1", "m", "bad", "invalid node internal address"),
        ("host:1", "", "", "invalid machine name"),
        ("host:1", "two words", "", "invalid machine name"),
    ],
)
def test_invalid_nodes_are_refused(
    store: ControlStore, address: str, machine: str, internal: str, message: str
) -> None:
    with pytest.raises(ControlError, match=message):
        store.register_node(address, cluster="default", machine=machine, internal=internal)
    assert store.list_nodes() == []


# -- alerts, delivery configs and deliveries --------------------------------------------------


def _slack(store: ControlStore, cache_id: int) -> int:
    return store.create_delivery_config(
        cache_id, delivery_type="slack", slack_url="https://hooks.example/x", slack_channel="#a"
    ).id


def test_alerts_and_configs_belong_to_their_cache(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    other = store.create_cache("other", MB)
    revision = store.revision()
    config = _slack(store, cache.id)
    hook = store.create_delivery_config(
        cache.id, delivery_type="webhook", webhook_url="https://h.example/", webhook_secret="s3"
    )
    assert "s3" not in repr(hook)
    assert store.find_delivery_config(cache.id, hook.id).webhook_secret == "s3"
    alert = store.create_alert(
        cache.id, trigger_type="hit_rate", trigger_threshold=80, delivery_config_id=config
    )
    assert (alert.trigger_type, alert.trigger_threshold, alert.enabled, alert.firing) == (
        "hit_rate",
        80.0,
        True,
        False,
    )
    assert store.list_alerts(cache.id) == [alert] == store.list_alerts()
    assert store.list_alerts(other.id) == []
    assert [c.id for c in store.list_delivery_configs(cache.id)] == [config, hook.id]
    # Another cache's ids are nobody's: not found, never changed.
    with pytest.raises(NotFound, match=f"no alert with id {alert.id} in cache {other.id}"):
        store.find_alert(other.id, alert.id)
    with pytest.raises(NotFound):
        store.update_alert(other.id, alert.id, enabled=False)
    with pytest.raises(NotFound):
        store.delete_alert(other.id, alert.id)
    with pytest.raises(NotFound, match="no alert delivery config"):
        store.create_alert(
            other.id, trigger_type="hit_rate", trigger_threshold=1, delivery_config_id=config
        )
    with pytest.raises(NotFound):
        store.delete_delivery_config(other.id, config)
    assert store.revision() == revision  # nothing a node reads changed


def test_alert_updates_are_partial_and_validated(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    config = _slack(store, cache.id)
    alert = store.create_alert(
        cache.id,
        trigger_type="evictions",
        trigger_threshold=5000,
        delivery_config_id=config,
        description="too many",
    )
    changed = store.update_alert(cache.id, alert.id, enabled=False)
    assert (changed.enabled, changed.trigger_threshold, changed.description) == (
        False,
        5000.0,
        "too many",
    )
    for kwargs, words in (
        ({"trigger_type": "nope"}, "trigger_type must be one of"),
        ({"trigger_threshold": 101.0, "trigger_type": "hit_rate"}, "from 0 to 100"),
        ({"trigger_threshold": float("nan")}, "trigger_threshold"),
        ({"description": "x" * 501}, "at most 500"),
    ):
        with pytest.raises(ControlError, match=words):
            store.update_alert(cache.id, alert.id, **kwargs)
    assert store.find_alert(cache.id, alert.id) == changed
    with pytest.raises(ControlError, match="requires slack_url"):
        store.create_delivery_config(cache.id, delivery_type="slack")
    with pytest.raises(ControlError, match="delivery_type must be one of"):
        store.create_delivery_config(cache.id, delivery_type="pager")


def test_an_alert_fires_and_resolves_once_each(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    config = _slack(store, cache.id)
    alert = store.create_alert(
        cache.id, trigger_type="hit_rate", trigger_threshold=50, delivery_config_id=config
    )
    ok = store.observe_alert(alert.id, value=90.0, firing=False, at=10.0, payload={"n": 0})
    fired = store.observe_alert(alert.id, value=10.0, firing=True, at=70.0, payload={"n": 1})
    again = store.observe_alert(alert.id, value=5.0, firing=True, at=130.0, payload={"n": 2})
    assert ok is None and again is None and fired is not None
    assert (fired.event, fired.payload, fired.status, fired.config_id) == (
        "fired",
        {"n": 1},
        "pending",
        config,
    )
    now = store.find_alert(cache.id, alert.id)
    assert (now.firing, now.value, now.changed_at) == (True, 5.0, 70.0)
    resolved = store.observe_alert(alert.id, value=95.0, firing=False, at=190.0, payload={})
    assert resolved is not None and resolved.event == "resolved"
    assert [d.event for d in store.list_deliveries(cache.id)] == ["resolved", "fired"]
    # A disabled alert measures but never fires, and is no longer firing.
    store.update_alert(cache.id, alert.id, enabled=False)
    assert store.observe_alert(alert.id, value=1.0, firing=True, at=250.0, payload={}) is None
    assert store.find_alert(cache.id, alert.id).firing is False


def test_deliveries_are_claimed_once_retried_and_finished(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    config = _slack(store, cache.id)
    alert = store.create_alert(
        cache.id, trigger_type="memory_usage", trigger_threshold=90, delivery_config_id=config
    )
    made = store.observe_alert(alert.id, value=95.0, firing=True, at=100.0, payload={})
    assert made is not None
    assert store.claim_deliveries(99.0, 200.0, 10) == []  # not due yet
    (claimed,) = store.claim_deliveries(100.0, 160.0, 10)
    assert claimed.id == made.id
    assert _same_database(store).claim_deliveries(120.0, 180.0, 10) == []  # leased
    store.finish_delivery(made.id, at=101.0, error="HTTP 500", retry_at=130.0)
    (pending,) = store.list_deliveries(cache.id)
    assert (pending.status, pending.attempts, pending.last_error) == ("pending", 1, "HTTP 500")
    (retry,) = store.claim_deliveries(130.0, 190.0, 10)
    store.finish_delivery(retry.id, at=131.0)
    (done,) = store.list_deliveries(cache.id)
    assert (done.status, done.attempts, done.delivered_at, done.last_error) == (
        "delivered",
        2,
        131.0,
        "",
    )
    assert store.claim_deliveries(1000.0, 1100.0, 10) == []
    assert store.prune_deliveries(100.5) == 1
    assert store.list_deliveries(cache.id) == []


def test_a_config_in_use_is_not_deleted_and_a_deleted_cache_takes_its_alerts(
    store: ControlStore,
) -> None:
    cache = store.create_cache("demo", MB)
    config = _slack(store, cache.id)
    alert = store.create_alert(
        cache.id, trigger_type="latency", trigger_threshold=2000, delivery_config_id=config
    )
    store.observe_alert(alert.id, value=3000.0, firing=True, at=1.0, payload={})
    with pytest.raises(Conflict, match="is used by an alert"):
        store.delete_delivery_config(cache.id, config)
    store.delete_cache(cache.id)
    assert store.list_alerts() == []
    assert store.claim_deliveries(1e9, 1e9, 10) == []
    # The ids are not handed out again: nothing made for the deleted cache reaches a new one.
    new = store.create_cache("demo", MB)
    new_config = _slack(store, new.id)
    assert new_config > config
    with pytest.raises(NotFound):
        store.find_alert(new.id, alert.id)
    with pytest.raises(NotFound):
        store.list_alerts(cache.id)


def test_a_cache_has_a_bounded_number_of_alerts(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    config = _slack(store, cache.id)
    for _ in range(50):
        store.create_alert(
            cache.id, trigger_type="hit_rate", trigger_threshold=1, delivery_config_id=config
        )
    with pytest.raises(Conflict, match="at most 50 alerts"):
        store.create_alert(
            cache.id, trigger_type="hit_rate", trigger_threshold=1, delivery_config_id=config
        )


# -- watched prefixes and latency samples (introspection) ------------------------------------


def test_watch_list_unwatch(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    revision = store.revision()
    user = store.watch_prefix(cache.id, "user:")
    post = store.watch_prefix(cache.id, "post/")
    assert (user.cache_id, user.name, post.name) == (cache.id, "user:", "post/")
    assert store.watch_prefix(cache.id, "user:") == user  # watched again: the same record
    assert store.list_watched_prefixes(cache.id) == [user, post]
    assert store.list_watched_prefixes() == [user, post]
    store.unwatch_prefix(cache.id, user.id)
    assert store.list_watched_prefixes(cache.id) == [post]
    assert store.revision() == revision  # no node reloads anything for them


def test_prefixes_belong_to_their_cache(store: ControlStore) -> None:
    mine, theirs = store.create_cache("a", MB), store.create_cache("b", MB)
    foreign = store.watch_prefix(theirs.id, "x:")
    with pytest.raises(NotFound, match="no watched prefix"):
        store.unwatch_prefix(mine.id, foreign.id)
    assert store.list_watched_prefixes(mine.id) == []
    with pytest.raises(NotFound, match="no cache with id"):
        store.list_watched_prefixes(9999)
    with pytest.raises(NotFound, match="no cache with id"):
        store.watch_prefix(9999, "x:")
    store.delete_cache(theirs.id)
    assert store.list_watched_prefixes() == []


@pytest.mark.parametrize("name", ["", "a b", "tab\there", "x" * 251, "nul\x00"])
def test_a_prefix_no_key_could_start_with_is_refused(store: ControlStore, name: str) -> None:
    cache = store.create_cache("demo", MB)
    with pytest.raises(ControlError):
        store.watch_prefix(cache.id, name)
    assert store.list_watched_prefixes(cache.id) == []


def test_a_cache_watches_a_bounded_number_of_prefixes(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    for index in range(MAX_WATCHED_PREFIXES):
        store.watch_prefix(cache.id, f"p{index}:")
    with pytest.raises(Conflict, match=f"at most {MAX_WATCHED_PREFIXES} prefixes"):
        store.watch_prefix(cache.id, "one-more:")
    assert store.watch_prefix(cache.id, "p0:").name == "p0:"  # an existing one still answers


def test_latency_samples_by_server_and_time_pruned(store: ControlStore) -> None:
    samples = [
        LatencySample(100.0, "h:1", 2_000),
        LatencySample(100.0, "h:2", 3_000),
        LatencySample(120.0, "h:1", 4_000),
        LatencySample(140.0, "other:9", 9_000),
    ]
    store.add_latency_samples(samples)
    assert store.latency_samples(["h:1", "h:2"], 0, 1000) == samples[:3]
    assert store.latency_samples(["h:1"], 110, 130) == [samples[2]]
    assert store.latency_samples([], 0, 1000) == []
    assert store.prune_latency(110) == 2
    assert store.latency_samples(["h:1", "h:2", "other:9"], 0, 1000) == samples[2:]
