"""The deployment's prefix flush at the pending bound, in process: the node that cannot take
it fails the flush by name (the APIs' 500 `Server error: host:port`), nothing is logged for it,
and a flush that merges pending ones is still taken."""

from __future__ import annotations

import asyncio

import pytest

from memcloud.auth import Directory
from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.control.audit import FlushEvent
from memcloud.control.models import CacheRecord
from memcloud.deployment import Deployment
from memcloud.nodes import LocalNode, NodesFailed
from memcloud.service import Service
from memcloud.storage.cache import PREFIX_SCAN_SLICE
from memcloud.storage.prefix_flush import MAX_PENDING_PREFIX_FLUSHES
from memcloud.storage.registry import Registry
from memcloud.storage.results import StoreMode

ADDRESS = "127.0.0.1:11211"


def test_the_bound_fails_the_node_by_name_and_logs_nothing() -> None:
    clock = FakeClock(1_700_000_000.0)
    directory = Directory([CacheRecord(1, "shop", 256 * 1024 * 1024)], [], 1)
    service = Service(Registry(0, 1024 * 1024), directory, clock, Settings())
    logged: list[FlushEvent] = []
    service.flush_listeners.append(logged.append)
    cache = service.registry.get(1)
    assert cache is not None
    for i in range(3 * PREFIX_SCAN_SLICE):  # large: the flushes stay pending
        cache.store(StoreMode.SET, b"k:%d" % i, b"v", 0, 0, clock.now())
    deployment = Deployment(LocalNode(service, ADDRESS), clock=clock)

    async def flush(prefix: bytes) -> FlushEvent:
        return await deployment.flush(1, "api", "user", "peer", prefix=prefix)

    for i in range(MAX_PENDING_PREFIX_FLUSHES):
        asyncio.run(flush(b"p%d:" % i))
    assert len(logged) == MAX_PENDING_PREFIX_FLUSHES
    assert logged[-1].details == {"prefix": f"p{MAX_PENDING_PREFIX_FLUSHES - 1}:"}
    with pytest.raises(NodesFailed) as failed:
        asyncio.run(flush(b"one-more:"))
    assert failed.value.addresses == [ADDRESS]
    assert len(logged) == MAX_PENDING_PREFIX_FLUSHES  # a flush that did not happen
    event = asyncio.run(flush(b"p"))  # covers every pending one: merged, taken
    assert event.details == {"prefix": "p"} and logged[-1] is event
