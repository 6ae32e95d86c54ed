"""The deployment, assembled once at a node's start: this node (its `Service` and its flush
log writer) and, on node 0 of `--nodes N`, the node processes it supervises.

Everything that reaches nodes (the operator socket, the HTTP API, the dashboard, the stats
sampler) is given the one `Deployment` built here.
"""

from __future__ import annotations

import asyncio

from memcloud.config import Settings
from memcloud.control.audit import FlushAuditor
from memcloud.control.base import ControlStore
from memcloud.deployment import Deployment
from memcloud.nodes import LocalNode, RemoteNode
from memcloud.server.supervisor import Supervisor
from memcloud.service import Service

__all__ = ["NodeAssembly"]


class NodeAssembly:
    """Builds the `Deployment` (`start`) and takes it apart again: the supervised nodes
    first (`stop_nodes`), this node's flush log writer last (`stop_audit`, once nothing can
    flush any more, before the store closes).

    `settings` hold the node's bound ports (its name, "host:port", is its memcache port);
    `supervise` says whether this node starts the other `settings.nodes - 1` processes.
    """

    def __init__(
        self, service: Service, store: ControlStore, settings: Settings, *, supervise: bool
    ) -> None:
        self.service = service
        self.store = store
        self.settings = settings
        self.supervise = supervise and settings.nodes > 1
        self.supervisor: Supervisor | None = None
        self.auditor: FlushAuditor | None = None
        self.deployment: Deployment | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return self.settings.node_address(self.settings.node_index, self.settings.port)

    async def start(self) -> Deployment:
        others: list[RemoteNode] = []
        if self.supervise:
            self.supervisor = Supervisor(self.settings)
            others = await self.supervisor.start()
            self._watch = asyncio.create_task(self.supervisor.watch())
        auditor = FlushAuditor(self.store, self.address, cache_name=self._cache_name)
        auditor.start()
        self.auditor = auditor
        # The data plane's own flushes (text flush_all, binary Flush) reach it from here.
        self.service.flush_listeners.append(auditor.listener)
        supervisor = self.supervisor
        self.deployment = Deployment(
            LocalNode(self.service, self.address, auditor),
            others,
            clock=self.service.clock,
            node_restarts=(lambda: supervisor.restarts) if supervisor is not None else _none,
        )
        return self.deployment

    def _cache_name(self, cache_id: int) -> str | None:
        record = self.service.directory.caches.get(cache_id)
        return record.name if record is not None else None

    def node_addresses(self) -> list[str]:
        """MEMCACHIER_SERVERS' entries: every node's memcache address, this one first."""
        assert self.deployment is not None
        return self.deployment.addresses(0)

    def tls_addresses(self, tls_port: int | None) -> list[str]:
        """Every node's TLS address, this one (on `tls_port`) first; none without TLS."""
        if tls_port is None:
            return []
        children = self.supervisor.children if self.supervisor is not None else []
        host = self.settings.advertised_host
        return [f"{host}:{port}" for port in (tls_port, *(child.tls_port for child in children))]

    async def stop_nodes(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.supervisor is not None:
            await self.supervisor.stop()

    async def stop_audit(self) -> None:
        """Write out the queued flush log records (the store must still be open)."""
        auditor, self.auditor = self.auditor, None
        if auditor is None:
            return
        if auditor.listener in self.service.flush_listeners:
            self.service.flush_listeners.remove(auditor.listener)
        await asyncio.to_thread(auditor.stop)


def _none() -> int:
    return 0
