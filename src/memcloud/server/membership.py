"""A node's entry in the deployment's node registry: registered at start, kept alive by a
heartbeat every second, removed at a clean stop.

A node whose heartbeat is older than `DOWN_AFTER_SECONDS` (by the database's clock) counts
as down wherever the registry is read (`NodeRecord.up`), so a frozen or dead node is marked
down within five seconds; its next heartbeat brings it back (a node the registry lost
registers again). The
store calls run in worker threads: the data plane never waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Final

from memcloud.control import clusters
from memcloud.control.base import ControlError, ControlStore
from memcloud.control.failures import FailureLog
from memcloud.control.models import NodeRecord
from memcloud.storage.cache import stripe_cas

__all__ = ["HEARTBEAT_SECONDS", "NodeMembership", "cluster_members", "machine_name"]

log = logging.getLogger("memcloud.membership")

HEARTBEAT_SECONDS: Final = 1.0  # models.DOWN_AFTER_SECONDS is three missed ones


def machine_name(given: str | None) -> str:
    """`--machine`, or this machine's host name."""
    return given or socket.gethostname() or "localhost"


async def cluster_members(store: ControlStore, cluster: str) -> tuple[str, ...]:
    """The live registered nodes of `cluster` (what the start log and `.env` hand out as
    MEMCACHIER_SERVERS); empty when the registry cannot be read or lists none."""
    try:
        nodes = await asyncio.to_thread(store.list_nodes)
    except ControlError as exc:
        log.warning("the node registry could not be read: %s", exc)
        return ()
    return tuple(clusters.servers_of(nodes, cluster, []))


def _no_connections() -> int:
    return 0


class NodeMembership:
    """`memory` and `max_connections` are the node's own bounds, and `connections` counts
    its open memcache connections: each heartbeat carries that count to the registry (the
    operator's server panel reads it there)."""

    def __init__(
        self,
        store: ControlStore,
        address: str,
        *,
        cluster: str,
        machine: str,
        internal: str = "",
        on_nodes: Callable[[list[NodeRecord]], None] | None = None,
        memory: int = 0,
        max_connections: int = 0,
        connections: Callable[[], int] = _no_connections,
    ) -> None:
        self.store = store
        self.address = address
        self.cluster = cluster
        self.machine = machine
        self.internal = internal  # "host:port" of the node-to-node channel
        # Told the registry's nodes after every heartbeat (the cluster's routes follow).
        self.on_nodes = on_nodes
        self.memory = memory
        self.max_connections = max_connections
        self.connections = connections
        self.node: NodeRecord | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._failures = FailureLog(log, "heartbeating to the node registry")

    async def _register(self) -> None:
        self.node = await asyncio.to_thread(
            self.store.register_node,
            self.address,
            cluster=self.cluster,
            machine=self.machine,
            internal=self.internal,
            memory=self.memory,
            max_connections=self.max_connections,
        )
        stripe_cas(self.node.id)
        await self._read_nodes()

    async def _read_nodes(self) -> None:
        if self.on_nodes is not None:
            self.on_nodes(await asyncio.to_thread(self.store.list_nodes))

    async def start(self) -> None:
        """Register (a failure here stops the start: a node nobody can find is no use)."""
        await self._register()
        self._task = asyncio.create_task(self._beat(), name="memcloud-heartbeat")

    def wake(self) -> None:
        """Heartbeat and read the registry now (a node joined or left: a new revision)."""
        self._wake.set()

    async def _beat(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that meets its timeout in one loop iteration (a node frozen and resumed, then
            # stopped), and the heartbeat, and with it the node's stop, never ended.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            try:
                assert self.node is not None
                open_now = self.connections()
                if not await asyncio.to_thread(self.store.heartbeat, self.node.id, open_now):
                    log.warning("node %s was not in the registry; registering again", self.address)
                    await self._register()
                else:
                    await self._read_nodes()
            except Exception as exc:
                self._failures.failed(exc, "other nodes will count this one down meanwhile")
            else:
                self._failures.succeeded()

    async def stop(self) -> None:
        """Leave the registry (best effort: a node that cannot say goodbye times out)."""
        if self._task is not None:
            self._task.cancel()
            # Bounded: a heartbeat stuck in the store must not keep the node from stopping.
            await asyncio.wait({self._task}, timeout=HEARTBEAT_SECONDS * 2)
        if self.node is not None:
            try:
                await asyncio.to_thread(self.store.remove_node, self.node.id)
            except Exception as exc:
                log.warning("node %s could not leave the registry: %s", self.address, exc)
            self.node = None
