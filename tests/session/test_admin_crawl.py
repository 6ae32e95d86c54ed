"""A crawl (`lru_crawler metadump`, `stats sizes`) answers in bounded steps through the
session's backlog, while other connections change the cache between the steps, and holds
its cache's one crawl slot only while its session lives."""

from __future__ import annotations

from memcloud.admin_commands import CRAWL_KEYS_PER_STEP
from memcloud.auth import Directory
from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.control.models import CacheRecord
from memcloud.service import REPLY_BATCH_MAX, Service
from memcloud.storage.registry import Registry
from memcloud.storage.results import StoreMode
from memcloud.text_session import TextSession

ITEMS = 5 * CRAWL_KEYS_PER_STEP + 123
NOW = 1_700_000_000.0


def _service() -> Service:
    plan = 256 << 20
    settings = Settings(anonymous_cache="anon")
    directory = Directory([CacheRecord(1, "anon", plan)], [], 1)
    return Service(Registry(plan, 1 << 20), directory, FakeClock(NOW), settings)


def _filled() -> tuple[Service, TextSession]:
    service = _service()
    session = TextSession(service, "127.0.0.1:1", lambda: None)
    cache = session.cache
    assert cache is not None
    for i in range(ITEMS):
        cache.store(StoreMode.SET, b"key:%d" % i, b"v" * 10, 0, 0, NOW)
    return service, session


def test_metadump_answers_in_bounded_steps_while_the_cache_changes() -> None:
    service, session = _filled()
    writer = TextSession(service, "127.0.0.1:2", lambda: None)
    steps = [session.handle(b"lru_crawler metadump all\r\nversion\r\n")]
    assert session.backlog and b"VERSION" not in steps[0]
    # Between the steps another connection deletes keys the crawl has not reached yet and
    # adds new ones: the deleted ones are not listed, nothing breaks.
    deleted = b"".join(b"delete key:%d\r\n" % i for i in range(ITEMS - 100, ITEMS))
    assert writer.handle(deleted + b"set new:1 0 0 1\r\nx\r\n").endswith(b"STORED\r\n")
    while session.backlog:
        steps.append(session.handle(b""))
    assert all(step.count(b"\n") <= CRAWL_KEYS_PER_STEP + 2 for step in steps)
    assert all(len(step) <= REPLY_BATCH_MAX + 4096 for step in steps)
    assert len(steps) > ITEMS // CRAWL_KEYS_PER_STEP
    dump = b"".join(steps)
    assert dump.endswith(b"\nEND\r\nVERSION 1.6.21\r\n")
    assert dump.count(b"key=key%3A") == ITEMS - 100
    assert b"key=key%3A" + str(ITEMS - 1).encode() + b" " not in dump


def test_one_crawl_per_cache_while_its_session_lives() -> None:
    service, first = _filled()
    second = TextSession(service, "127.0.0.1:2", lambda: None)
    first.handle(b"stats sizes\r\n")
    assert first.backlog
    busy = b"BUSY currently processing crawler request\r\n"
    assert second.handle(b"lru_crawler metadump all\r\n") == busy
    assert second.handle(b"stats sizes\r\n") == busy
    assert second.handle(b"lru_crawler metadump key:1\r\n").startswith(b"key=key%3A1 ")
    first.closed()  # the connection went away mid-crawl
    reply = second.handle(b"stats sizes\r\n")
    while second.backlog:
        reply += second.handle(b"")
    assert reply == b"STAT 96 %d\r\nEND\r\n" % ITEMS  # key:N + 10 + 50 bytes, up to 96
