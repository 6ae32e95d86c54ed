"""`flush_prefix` in a text session: a small cache is scanned within the command, so a
pipeline of them is charged to the read's batch and yields the loop (the backlog) after a few,
as a pipeline of multi-gets does; every one of them is still answered, in order."""

from __future__ import annotations

from memcloud.auth import Directory
from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.control.models import CacheRecord
from memcloud.protocol import replies
from memcloud.service import REPLY_BATCH_MAX, Service
from memcloud.storage.cache import PREFIX_SCAN_SLICE
from memcloud.storage.prefix_flush import MAX_PENDING_PREFIX_FLUSHES
from memcloud.storage.registry import Registry
from memcloud.text_session import TextSession

PIPELINED = 200


def session() -> TextSession:
    settings = Settings(anonymous_cache="anon", item_size_max=1024)
    directory = Directory([CacheRecord(1, "anon", 64 * 1024 * 1024)], [], 1)
    service = Service(Registry(0, 1024), directory, FakeClock(1_700_000_000.0), settings)
    return TextSession(service, "127.0.0.1:1", lambda: None)


def test_a_pipeline_of_prefix_flushes_yields_the_loop_and_is_answered_whole() -> None:
    text = session()
    cache = text.cache
    assert cache is not None
    sets = b"".join(b"set keep:%d 0 0 1 noreply\r\nv\r\n" % i for i in range(PREFIX_SCAN_SLICE))
    assert text.handle(sets) == b""
    assert cache.curr_items == PREFIX_SCAN_SLICE

    first = text.handle(b"".join(b"flush_prefix gone:%d\r\n" % i for i in range(PIPELINED)))
    # Each may walk the whole small cache: only a batch's worth ran in this read.
    assert 0 < first.count(b"OK\r\n") < PIPELINED
    assert first.count(b"OK\r\n") <= REPLY_BATCH_MAX // (PREFIX_SCAN_SLICE * 32) + 1
    assert text.backlog
    replies = first
    while text.backlog:
        replies += text.handle(b"")
    assert replies == b"OK\r\n" * PIPELINED
    assert cache.curr_items == PREFIX_SCAN_SLICE and cache.prefix_mark == 0
    assert text.handle(b"flush_prefix keep:1\r\n") == b"OK\r\n"
    assert cache.curr_items == PREFIX_SCAN_SLICE - 1111  # keep:1, keep:10-19, 100-199, 1000-1999


def test_past_the_pending_bound_a_prefix_flush_is_refused_with_a_server_error() -> None:
    text = session()
    cache = text.cache
    assert cache is not None
    count = 3 * PREFIX_SCAN_SLICE  # large: every flush stays pending (no upkeep runs here)
    text.handle(b"".join(b"set k:%d 0 0 1 noreply\r\nv\r\n" % i for i in range(count)))
    assert cache.curr_items == count
    lines = b"".join(b"flush_prefix p%d:\r\n" % i for i in range(MAX_PENDING_PREFIX_FLUSHES))
    assert text.handle(lines) == b"OK\r\n" * MAX_PENDING_PREFIX_FLUSHES
    refused = text.handle(b"flush_prefix one-more:\r\nflush_prefix one-more: noreply\r\n")
    assert refused == replies.PREFIX_FLUSHES_PENDING
    assert refused == b"SERVER_ERROR too many prefix flushes pending; retry in a few seconds\r\n"
    # One that covers pending ones merges with them: taken.
    assert text.handle(b"flush_prefix p\r\n") == b"OK\r\n"
    assert cache.stats.cmd_flush == MAX_PENDING_PREFIX_FLUSHES + 1
