"""What every control store must do with deploy-hook tokens, run against each store (SQLite,
memory, PostgreSQL: the `store` fixture of test_store_contract)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from test_store_contract import store

from memcloud.control.base import Conflict, ControlError, ControlStore, NotFound
from memcloud.control.hooks import KEPT_REVOKED, MAX_HOOKS_PER_CACHE, hash_token

__all__ = ["store"]

MB = 1024 * 1024


def test_a_token_is_shown_once_and_found_only_by_itself(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    new = store.create_hook(cache.id, name="deploy  ", prefix="views:", now=100.0)
    assert re.fullmatch(r"mch_[A-Za-z0-9_-]{43}", new.token)
    record = new.record
    assert (record.cache_id, record.name, record.prefix, record.created_at) == (
        cache.id,
        "deploy",
        "views:",
        100.0,
    )
    assert (record.last_used_at, record.revoked) == (None, False)
    assert record.hint == new.token[:8]
    assert new.token not in repr(new) and new.token not in repr(store.list_hooks(cache.id))
    # Listing never gives the token back; using it stamps the use.
    assert store.list_hooks(cache.id) == [record]
    used = store.use_hook(new.token, now=200.0)
    assert used is not None and (used.id, used.last_used_at) == (record.id, 200.0)
    assert store.list_hooks(cache.id)[0].last_used_at == 200.0
    # Another token of the same form, one character off, or its digest: nothing.
    other = new.token[:-1] + ("A" if new.token[-1] != "A" else "B")
    for wrong in (other, new.token + "x", "", "mch_", hash_token(new.token).hex()):
        assert store.use_hook(wrong, now=300.0) is None
    assert store.list_hooks(cache.id)[0].last_used_at == 200.0


def test_tokens_belong_to_their_cache(store: ControlStore) -> None:
    a = store.create_cache("a", MB)
    b = store.create_cache("b", MB)
    hook = store.create_hook(a.id, now=1.0)
    assert store.list_hooks(b.id) == []
    with pytest.raises(NotFound, match=f"no deploy hook with id {hook.record.id} in cache"):
        store.revoke_hook(b.id, hook.record.id, now=2.0)
    with pytest.raises(NotFound, match="no cache with id 999"):
        store.create_hook(999, now=1.0)
    with pytest.raises(NotFound, match="no cache with id 999"):
        store.list_hooks(999)
    with pytest.raises(NotFound):
        store.revoke_hook(a.id, 2**64, now=2.0)
    found = store.use_hook(hook.token, now=3.0)
    assert found is not None and found.cache_id == a.id


def test_revoked_tokens_are_told_apart_and_never_stamped(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    new = store.create_hook(cache.id, now=1.0)
    revoked = store.revoke_hook(cache.id, new.record.id, now=5.0)
    assert (revoked.revoked, revoked.revoked_at) == (True, 5.0)
    # Revoking again changes nothing.
    assert store.revoke_hook(cache.id, new.record.id, now=9.0).revoked_at == 5.0
    found = store.use_hook(new.token, now=10.0)
    assert found is not None and found.revoked and found.last_used_at is None


def test_a_deleted_cache_takes_its_tokens_and_none_reach_a_later_cache(
    store: ControlStore,
) -> None:
    cache = store.create_cache("demo", MB)
    new = store.create_hook(cache.id, now=1.0)
    store.delete_cache(cache.id)
    assert store.use_hook(new.token, now=2.0) is None
    later = store.create_cache("demo", MB)
    assert later.id != cache.id and store.list_hooks(later.id) == []
    assert store.use_hook(new.token, now=3.0) is None


def test_active_tokens_are_bounded_and_revoked_ones_kept_bounded(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    made = [store.create_hook(cache.id, name=f"h{i}", now=float(i)) for i in range(20)]
    assert len(made) == MAX_HOOKS_PER_CACHE
    with pytest.raises(Conflict, match="at most 20 active deploy hooks"):
        store.create_hook(cache.id, now=50.0)
    # Revoked ones do not count; only the newest KEPT_REVOKED of them are remembered.
    for i, hook in enumerate(made):
        store.revoke_hook(cache.id, hook.record.id, now=100.0 + i)
    more = [store.create_hook(cache.id, now=200.0 + i) for i in range(5)]
    for i, hook in enumerate(more):
        store.revoke_hook(cache.id, hook.record.id, now=300.0 + i)
    listed = store.list_hooks(cache.id)
    assert len(listed) == KEPT_REVOKED and all(h.revoked for h in listed)
    assert {h.id for h in listed} == {h.record.id for h in [*made[5:], *more]}
    assert store.use_hook(made[0].token, now=400.0) is None  # forgotten: unknown now
    revoked = store.use_hook(made[-1].token, now=400.0)
    assert revoked is not None and revoked.revoked


@pytest.mark.parametrize(
    ("name", "prefix", "words"),
    [
        ("x" * 101, "", "name must be at most 100"),
        ("tab\there", "", "printable"),
        ("", "has space", "prefix must be at most 250 bytes"),
        ("", "p" * 251, "prefix must be at most 250 bytes"),
        ("", "nl\n", "without spaces or control"),
    ],
)
def test_names_and_prefixes_are_checked(
    store: ControlStore, name: str, prefix: str, words: str
) -> None:
    cache = store.create_cache("demo", MB)
    with pytest.raises(ControlError, match=words):
        store.create_hook(cache.id, name=name, prefix=prefix, now=1.0)
    assert store.list_hooks(cache.id) == []


def test_hook_writes_leave_the_revision_alone(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    before = store.revision()
    new = store.create_hook(cache.id, now=1.0)
    store.use_hook(new.token, now=2.0)
    store.revoke_hook(cache.id, new.record.id, now=3.0)
    assert store.revision() == before


def test_a_record_held_is_not_the_store(store: ControlStore) -> None:
    cache = store.create_cache("demo", MB)
    new = store.create_hook(cache.id, now=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.record.prefix = "x"  # type: ignore[misc]
