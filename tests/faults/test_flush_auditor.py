"""The flush log writer keeps what the store refuses and writes it once the store works.

Method: a real SQLite store switched to `PRAGMA query_only` (every write then fails with
"attempt to write a readonly database", as a full or damaged disk would make it fail), so
this runs without a mount; tests/faults/test_flush_audit.py does it with a real full disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from memcloud.control.audit import FlushAuditor, FlushEvent
from memcloud.control.sqlite import SqliteStore
from memcloud.testing import wait_for

READ_ONLY = "attempt to write a readonly database"


def event(cache_id: int, at: float) -> FlushEvent:
    return FlushEvent(cache_id, "text", "ABC123", "127.0.0.1:5000", at)


def test_records_the_store_refused_are_written_when_it_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with SqliteStore(tmp_path / "memcloud.db") as store:
        cache = store.create_cache("shop", 1 << 20)
        auditor = FlushAuditor(store, "127.0.0.1:11211")
        auditor.start()
        try:
            with store._lock:
                store._conn.execute("PRAGMA query_only = ON")
            now = time.time()
            for i in range(3):
                auditor.listener(event(cache.id, now + i))
            # The writer may fail on the first record before the others are queued (a loaded
            # machine); they join the pending ones as they arrive, without a write.
            assert wait_for(
                lambda: auditor.last_error != "" and auditor.pending(cache.id).count == 3,
                timeout=5,
            )
            pending = auditor.pending(cache.id)
            assert (pending.count, pending.since) == (3, now)
            assert pending.error == f"control database: {READ_ONLY}"
            assert auditor.pending(cache.id + 1).count == 0
            assert store.flush_log(cache.id) == []
            with store._lock:
                store._conn.execute("PRAGMA query_only = OFF")
            assert wait_for(lambda: len(store.flush_log(cache.id)) == 3, timeout=10)
            assert auditor.pending(cache.id).count == 0
            assert (auditor.written, auditor.dropped) == (3, 0)
        finally:
            auditor.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "memcloud.audit"]
    assert messages[0].startswith(f"writing the flush log failed: control database: {READ_ONLY}")
    assert messages[-1].startswith("writing the flush log works again after")
    assert all(r.exc_info is None for r in caplog.records)


def test_pending_records_are_bounded_and_the_excess_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="memcloud.audit")
    with SqliteStore(tmp_path / "memcloud.db") as store:
        cache = store.create_cache("shop", 1 << 20)
        auditor = FlushAuditor(store, "127.0.0.1:11211", max_pending=3)
        auditor.start()
        try:
            with store._lock:
                store._conn.execute("PRAGMA query_only = ON")
            for i in range(5):
                auditor.listener(event(cache.id, 1000.0 + i))
            assert wait_for(lambda: auditor.dropped == 2, timeout=5)
            assert auditor.pending(cache.id).count == 3
            with store._lock:
                store._conn.execute("PRAGMA query_only = OFF")
            assert wait_for(lambda: len(store.flush_log(cache.id)) == 3, timeout=10)
        finally:
            auditor.stop()
        # The oldest are kept: the first three flushes are the ones written.
        assert sorted(r.at for r in store.flush_log(cache.id)) == [1000.0, 1001.0, 1002.0]
    assert any(
        "3 flush log records already wait to be written: 1 flush log records dropped so far"
        in r.getMessage()
        for r in caplog.records
    )


def test_recorded_returns_once_the_record_is_written_or_kept_pending(tmp_path: Path) -> None:
    """`recorded` is the deployment's hand-off: its caller reads the log right after it.
    The outer wait is far shorter than `recorded`'s own bound, so only the writer thread's
    answer (not that bound running out) lets the waits below finish."""

    async def hand_over(auditor: FlushAuditor, flush: FlushEvent) -> None:
        await asyncio.wait_for(auditor.recorded(flush, timeout=600), 10)

    with SqliteStore(tmp_path / "memcloud.db") as store:
        cache = store.create_cache("shop", 1 << 20)
        auditor = FlushAuditor(store, "127.0.0.1:11211")
        auditor.start()
        try:
            asyncio.run(hand_over(auditor, event(cache.id, 1000.0)))
            assert [r.at for r in store.flush_log(cache.id)] == [1000.0]
            # A store that refuses writes: the record is kept pending, and the caller goes
            # on (twice: the second hand-off comes while the writer waits to retry).
            with store._lock:
                store._conn.execute("PRAGMA query_only = ON")
            asyncio.run(hand_over(auditor, event(cache.id, 2000.0)))
            assert auditor.pending(cache.id).count == 1
            assert auditor.last_error == f"control database: {READ_ONLY}"
            asyncio.run(hand_over(auditor, event(cache.id, 3000.0)))
            assert auditor.pending(cache.id).count == 2
            with store._lock:
                store._conn.execute("PRAGMA query_only = OFF")
            assert wait_for(lambda: len(store.flush_log(cache.id)) == 3, timeout=10)
            assert (auditor.written, auditor.dropped) == (3, 0)
        finally:
            auditor.stop()
