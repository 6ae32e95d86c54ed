"""storage/snapshot.py on real files: what is written comes back exactly (LRU order, CAS,
expiry, a pending delayed flush), every damaged byte and every cut is detected (empty
caches, never an exception or a wrong value), and writing streams in bounded memory."""

from __future__ import annotations

import gc
import logging
import struct
import tracemalloc
from pathlib import Path

import pytest

from memcloud.storage.registry import Registry
from memcloud.storage.results import StoreMode, StoreResult
from memcloud.storage.snapshot import (
    BLOCK_TARGET,
    load_snapshot,
    read_snapshot,
    snapshot_path,
    write_snapshot,
)

MIB = 1024 * 1024
NOW = 1_700_000_000.0


def _filled(items: int = 300, value: bytes = b"v" * 30) -> Registry:
    registry = Registry(memory_limit=0, item_size_max=MIB)
    for cache_id in (1, 2):
        cache = registry.ensure(cache_id, f"c{cache_id}", 10 * MIB, f"gen{cache_id}")
        for n in range(items):
            result, _ = cache.store(
                StoreMode.SET, b"c%d-%04d" % (cache_id, n), value, n, n % 3 * 100, NOW
            )
            assert result is StoreResult.STORED
    return registry


def _empty_like(registry: Registry) -> Registry:
    """The same caches (ids, generations, plans) with no items, as a node starts."""
    fresh = Registry(memory_limit=0, item_size_max=registry.item_size_max)
    for cache_id, cache in registry.caches.items():
        fresh.ensure(cache_id, cache.name, cache.limit, registry.generations[cache_id])
    return fresh


def _contents(registry: Registry) -> dict[int, list[tuple[bytes, bytes, int, float, int]]]:
    return {
        cache_id: [
            (key, item.value, item.flags, item.exptime, item.cas)
            for key, item in cache.in_lru_order()
        ]
        for cache_id, cache in registry.caches.items()
    }


def test_what_is_written_comes_back_exactly_and_the_file_is_removed(tmp_path: Path) -> None:
    registry = _filled()
    cache = registry.caches[1]
    cache.touch(b"c1-0000", 0, NOW)  # now the most recently used
    cache.flush(500, NOW)  # a delayed flush_all, due later
    path = snapshot_path(tmp_path, 3)
    assert path.name == "node-3.snapshot"
    report = write_snapshot(registry, path, node="127.0.0.1:11214", now=NOW)
    assert (report.caches, report.items) == (2, 600)
    header, _ = read_snapshot(path)
    assert header["node"] == "127.0.0.1:11214" and header["saved_at"] == NOW
    fresh = _empty_like(registry)
    loaded = load_snapshot(fresh, path, now=NOW + 1)
    assert loaded is not None and loaded.items == 600
    assert gc.isenabled()  # turned off while loading only
    assert _contents(fresh) == _contents(registry)
    assert list(fresh.caches[1].in_lru_order())[-1][0] == b"c1-0000"
    assert fresh.caches[1].flush_at == NOW + 500
    assert fresh.caches[1].used == cache.used
    assert not path.exists()
    # The expiry heap came back too: the upkeep reclaims what expires.
    fresh.upkeep(NOW + 101)
    assert fresh.caches[2].curr_items == 200


def test_new_cas_uniques_continue_above_the_restored_ones(tmp_path: Path) -> None:
    # Saved by a node whose CAS counter had gone far higher than this process's.
    registry = _empty_like(_filled(items=1))
    assert registry.caches[1].restore(b"high", b"x", 0, 0.0, 10**15, NOW)
    path = _rewritten(registry, tmp_path / "node-0.snapshot")
    fresh = _empty_like(registry)
    assert load_snapshot(fresh, path, now=NOW) is not None
    assert fresh.caches[1].items[b"high"].cas == 10**15
    _, cas = fresh.caches[2].store(StoreMode.SET, b"new", b"y", 0, 0, NOW)
    assert cas > 10**15


def test_an_expired_item_a_deleted_cache_and_another_generation_are_left_out(
    tmp_path: Path,
) -> None:
    registry = _filled(items=10)
    path = tmp_path / "node-0.snapshot"
    write_snapshot(registry, path, node="n", now=NOW)
    fresh = Registry(memory_limit=0, item_size_max=MIB)
    fresh.ensure(1, "c1", 10 * MIB, "another generation")
    loaded = load_snapshot(fresh, path, now=NOW + 150)
    assert loaded is not None
    assert (loaded.items, loaded.skipped_caches, loaded.skipped_items) == (0, 2, 20)
    assert fresh.caches[1].curr_items == 0
    fresh = _empty_like(registry)
    loaded = load_snapshot(fresh, _rewritten(registry, path), now=NOW + 150)
    assert loaded is not None and loaded.expired == 2 * 3  # exptime 100: n % 3 == 1
    assert loaded.items == 2 * 7


def _rewritten(registry: Registry, path: Path) -> Path:
    write_snapshot(registry, path, node="n", now=NOW)
    return path


def test_a_smaller_plan_or_item_limit_drops_the_least_recently_used(tmp_path: Path) -> None:
    registry = _filled(items=100, value=b"x" * 50)
    path = _rewritten(registry, tmp_path / "s")
    fresh = Registry(memory_limit=0, item_size_max=MIB)
    size = len(b"c1-0000") + 50 + 50
    fresh.ensure(1, "c1", 10 * size, "gen1")
    fresh.ensure(2, "c2", 10 * MIB, "gen2")
    loaded = load_snapshot(fresh, path, now=NOW)
    assert loaded is not None and loaded.dropped == 90
    assert list(fresh.caches[1].items) == [b"c1-%04d" % n for n in range(90, 100)]
    assert fresh.caches[1].stats.evictions == 90
    assert fresh.caches[2].curr_items == 100


def _load_damaged(registry: Registry, path: Path, body: bytes) -> Registry:
    path.write_bytes(body)
    fresh = _empty_like(registry)
    assert load_snapshot(fresh, path, now=NOW) is None
    assert all(cache.curr_items == 0 and cache.used == 0 for cache in fresh.caches.values())
    assert fresh.budget.used == 0
    assert not path.exists()
    return fresh


def test_every_flipped_byte_and_every_cut_is_detected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = _filled(items=8)  # every kind of block, in a file small enough to try whole
    path = _rewritten(registry, tmp_path / "s")
    body = path.read_bytes()
    caplog.set_level(logging.INFO, logger="memcloud.snapshot")
    for position in range(len(body)):
        damaged = bytearray(body)
        damaged[position] ^= 0x20
        _load_damaged(registry, path, bytes(damaged))
    for length in range(len(body)):
        _load_damaged(registry, path, body[:length])
    _load_damaged(registry, path, body + b"\0")
    lines = [r for r in caplog.records if r.name == "memcloud.snapshot"]
    assert len(lines) == 2 * len(body) + 1  # one line per start
    assert all("damaged" in r.getMessage() for r in lines)


def test_a_huge_length_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    registry = _filled(items=1)
    path = _rewritten(registry, tmp_path / "s")
    body = bytearray(path.read_bytes())
    struct.pack_into("<I", body, 10 + 1, 0xFFFFFFFF)  # the header block's length
    _load_damaged(registry, path, bytes(body))


def test_a_missing_file_is_one_line_and_no_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="memcloud.snapshot")
    registry = _empty_like(_filled(items=1))
    assert load_snapshot(registry, tmp_path / "none", now=NOW) is None
    [line] = [r for r in caplog.records if r.name == "memcloud.snapshot"]
    assert "no snapshot" in line.getMessage()


def test_writing_streams_in_bounded_memory(tmp_path: Path) -> None:
    items = 60_000
    registry = _filled(items=items, value=b"v" * 100)
    path = tmp_path / "s"
    tracemalloc.start()
    try:
        write_snapshot(registry, path, node="n", now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert size > 2 * items * 100  # 12 MB written ...
    assert peak < 4 * BLOCK_TARGET  # ... through a few blocks' worth of memory


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    registry = _filled(items=3)
    path = _rewritten(registry, tmp_path / "node-0.snapshot")
    before = path.read_bytes()
    registry.caches[1].items[b"bad"] = registry.caches[1].items[b"c1-0000"]
    registry.caches[1].items[b"bad"].flags = -1  # cannot be packed: the write fails
    with pytest.raises(struct.error):
        write_snapshot(registry, path, node="n", now=NOW)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["node-0.snapshot"]
