"""A node's background work: following the control store, and reclaiming expired and
flushed items."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from memcloud.auth import Directory
from memcloud.control.base import ControlStore
from memcloud.control.failures import FailureLog
from memcloud.control.models import CredentialRecord
from memcloud.service import Service

__all__ = [
    "CHANGE_WAIT_SECONDS",
    "DIRECTORY_POLL_SECONDS",
    "UPKEEP_SECONDS",
    "NodeTasks",
    "describe_changes",
]

log = logging.getLogger("memcloud")

# How often the control store is asked whether anything changed when nothing woke the node
# (a change through PostgreSQL's NOTIFY or another SQLite connection wakes it at once), and
# how often expired and flushed items are reclaimed.
DIRECTORY_POLL_SECONDS = 1.0
UPKEEP_SECONDS = 0.5
# A wait for a change runs in a worker thread, in slices this long: the loop's executor is
# joined when the node stops, so a longer wait would delay every stop by as much.
CHANGE_WAIT_SECONDS = 0.25


# A change line lists this many changes at most, then says how many more there were.
MAX_CHANGES_LISTED = 10


def _capabilities(cred: CredentialRecord) -> str:
    given = [name for name in ("write", "flush", "api") if getattr(cred, name)]
    return "+".join(given) or "read-only"


def describe_changes(old: Directory, new: Directory) -> list[str]:
    """What changed between two snapshots, in words (names and ids, never a secret)."""
    said: list[str] = []
    for cache_id, cache in new.caches.items():
        before = old.caches.get(cache_id)
        if before is None:
            said.append(f"cache {cache.name} created")
            continue
        if before.plan != cache.plan:
            said.append(f"cache {cache.name} plan {before.plan} -> {cache.plan} bytes")
        if before.enabled != cache.enabled:
            said.append(f"cache {cache.name} {'enabled' if cache.enabled else 'disabled'}")
        if before.cluster != cache.cluster:
            said.append(f"cache {cache.name} moved to cluster {cache.cluster}")
    said.extend(
        f"cache {cache.name} deleted" for cid, cache in old.caches.items() if cid not in new.caches
    )

    def cache_of(cred: CredentialRecord) -> str:
        cache = new.caches.get(cred.cache_id) or old.caches.get(cred.cache_id)
        return cache.name if cache is not None else f"#{cred.cache_id}"

    for cred_id, cred in new.credentials.items():
        was = old.credentials.get(cred_id)
        if was is None:
            said.append(f"credential {cred.username} created in cache {cache_of(cred)}")
        elif (was.write, was.flush, was.api) != (cred.write, cred.flush, cred.api):
            said.append(
                f"credential {cred.username} of cache {cache_of(cred)} now {_capabilities(cred)}"
            )
        elif cred.primary and not was.primary:
            said.append(f"credential {cred.username} of cache {cache_of(cred)} made primary")
    said.extend(
        f"credential {cred.username} deleted from cache {cache_of(cred)}"
        for cred_id, cred in old.credentials.items()
        if cred_id not in new.credentials
    )
    if len(said) > MAX_CHANGES_LISTED:
        more = len(said) - MAX_CHANGES_LISTED
        said = [*said[:MAX_CHANGES_LISTED], f"and {more} more"]
    return said


async def _poll_directory(
    store: ControlStore, service: Service, node: str, on_revision: Callable[[], None]
) -> None:
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
            service.control_store_read(True)
            if revision != service.directory.revision:
                on_revision()  # a node may have joined or left: the registry is read again
                directory = await asyncio.to_thread(Directory.load, store)
                previous = service.directory
                service.set_directory(directory)
                changes = describe_changes(previous, directory)
                # A revision with no cache or credential change (a node joined or left the
                # registry) is no news for the operator: every node would log it at start.
                log.log(
                    logging.INFO if changes else logging.DEBUG,
                    "control plane changed: revision %d on node %s: %s",
                    directory.revision,
                    node,
                    "; ".join(changes) or "no cache or credential changed",
                    extra={"revision": directory.revision, "node": node, "changes": changes},
                )
        except Exception as exc:
            service.control_store_read(False)
            failures.failed(exc, "keeping the last snapshot")
            await asyncio.sleep(DIRECTORY_POLL_SECONDS)
        else:
            failures.succeeded()


async def _upkeep(service: Service) -> None:
    registry = service.registry
    more = False
    while True:
        # A flushed cache is freed (a prefix-flushed one scanned) slice by slice, and the
        # keys another node owns since the cluster changed are dropped: while any is left,
        # the next slice runs as soon as the loop has served what is waiting, so its memory
        # comes back quickly.
        busy = more or registry.graveyard or service.sweeping
        await asyncio.sleep(0 if busy else UPKEEP_SECONDS)
        more = registry.upkeep(service.clock.now())
        service.sweep_unowned()


def _nothing() -> None:
    return None


class NodeTasks:
    """The directory poll and the upkeep of one node, as tasks of the running loop."""

    def __init__(
        self, store: ControlStore, service: Service, on_revision: Callable[[], None] = _nothing
    ) -> None:
        self.store = store
        self.service = service
        # Told of every new revision (nodes joining and leaving bump it too).
        self.on_revision = on_revision
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, node: str) -> None:
        """Start both; `node` (this node's address) names it in the change lines."""
        self._tasks = [
            asyncio.create_task(_poll_directory(self.store, self.service, node, self.on_revision)),
            asyncio.create_task(_upkeep(self.service)),
        ]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
