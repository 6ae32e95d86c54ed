"""A node's background work: following the control store, and reclaiming expired and
flushed items."""

from __future__ import annotations

import asyncio
import logging

from memcloud.auth import Directory
from memcloud.control.base import ControlStore
from memcloud.control.failures import FailureLog
from memcloud.service import Service

__all__ = ["CHANGE_WAIT_SECONDS", "DIRECTORY_POLL_SECONDS", "UPKEEP_SECONDS", "NodeTasks"]

log = logging.getLogger("memcloud")

# How often the control store is asked whether anything changed when nothing woke the node
# (a change through PostgreSQL's NOTIFY or another SQLite connection wakes it at once), and
# how often expired and flushed items are reclaimed.
DIRECTORY_POLL_SECONDS = 1.0
UPKEEP_SECONDS = 0.5
# A wait for a change runs in a worker thread, in slices this long: the loop's executor is
# joined when the node stops, so a longer wait would delay every stop by as much.
CHANGE_WAIT_SECONDS = 0.25


async def _poll_directory(store: ControlStore, service: Service) -> None:
    failures = FailureLog(log, "reading the control store")
    loop = asyncio.get_running_loop()
    checked = loop.time()
    while True:
        try:
            woken = await asyncio.to_thread(store.wait_for_change, CHANGE_WAIT_SECONDS)
            if not woken and loop.time() - checked < DIRECTORY_POLL_SECONDS:
                continue
            checked = loop.time()
            revision = await asyncio.to_thread(store.revision)
            if revision != service.directory.revision:
                directory = await asyncio.to_thread(Directory.load, store)
                service.set_directory(directory)
                log.info("control plane changed: revision %d", directory.revision)
        except Exception as exc:
            failures.failed(exc, "keeping the last snapshot")
            await asyncio.sleep(DIRECTORY_POLL_SECONDS)
        else:
            failures.succeeded()


async def _upkeep(service: Service) -> None:
    registry = service.registry
    while True:
        # A flushed cache is freed slice by slice: while any is left, the next slice runs as
        # soon as the loop has served what is waiting, so its memory comes back quickly.
        await asyncio.sleep(0 if registry.graveyard else UPKEEP_SECONDS)
        registry.upkeep(service.clock.now())


class NodeTasks:
    """The directory poll and the upkeep of one node, as tasks of the running loop."""

    def __init__(self, store: ControlStore, service: Service) -> None:
        self.store = store
        self.service = service
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(_poll_directory(self.store, self.service)),
            asyncio.create_task(_upkeep(self.service)),
        ]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
