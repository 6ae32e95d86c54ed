"""The deployment: every node of this memcloud, built once at start, and the one path by
which the HTTP API, the dashboard, the operator socket (CLI) and the stats sampler flush a
cache, read or reset its stats and count its unwritten flush log records.

A flush is stamped with the injected clock, sent to every node serving the cache at once,
and recorded once in the flush log (by this node's `FlushAuditor`, awaited until the writer
thread has the record, so that the flush log read next lists it). The data plane's own
flushes (text `flush_all`, binary Flush) do not come here: they flush only their node,
synchronously, and hand their event to the auditor's queue through `Service.flush`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from memcloud.clock import Clock
from memcloud.control.audit import FlushEvent, prefix_details
from memcloud.nodes import NODE_TIMEOUT_SECONDS, LocalNode, Node, NodesFailed

__all__ = ["ClusterView", "Deployment"]

log = logging.getLogger("memcloud.deployment")

T = TypeVar("T")


def _no_restarts() -> int:
    return 0


class ClusterView(Protocol):
    """The node registry as this node last read it (memcloud.server.peering)."""

    def nodes_of(self, cache_id: int) -> tuple[list[Node], list[str]] | None:
        """The live nodes of the cache's cluster (this node's LocalNode among them when it
        is one), and the addresses of that cluster's registered nodes that are down; None
        until the registry was read."""
        ...


class Deployment:
    """This process's node and the others it reaches, as one.

    `node_restarts` answers how many node processes had to be restarted (the supervisor of
    node 0 counts them; other nodes supervise nothing).
    """

    def __init__(
        self,
        local: LocalNode,
        others: Sequence[Node] = (),
        *,
        clock: Clock,
        node_restarts: Callable[[], int] = _no_restarts,
        view: ClusterView | None = None,
    ) -> None:
        self.local = local
        self.others = list(others)
        # The registry's nodes once known (every machine's); before that, `others`.
        self.view = view
        self.clock = clock
        self._node_restarts = node_restarts

    @property
    def node_restarts(self) -> int:
        return self._node_restarts()

    @property
    def flush_log_dropped(self) -> int:
        """Flush log records this node had to drop (its queue or pending list was full)."""
        auditor = self.local.auditor
        return auditor.dropped if auditor is not None else 0

    def nodes_for(self, cache_id: int) -> list[Node]:
        """The live nodes serving the cache: its cluster's."""
        known = self.view.nodes_of(cache_id) if self.view is not None else None
        return known[0] if known is not None else [self.local, *self.others]

    def down_for(self, cache_id: int) -> list[str]:
        """The cache's cluster's registered nodes that are down (heartbeat too old)."""
        known = self.view.nodes_of(cache_id) if self.view is not None else None
        return known[1] if known is not None else []

    def addresses(self, cache_id: int) -> list[str]:
        return [node.address for node in self.nodes_for(cache_id)]

    async def flush(
        self,
        cache_id: int,
        source: str,
        username: str,
        peer: str,
        details: Mapping[str, str] | None = None,
        *,
        prefix: bytes = b"",
    ) -> FlushEvent:
        """Empty the cache (with a `prefix`, only its keys starting with it) on every live
        node and record the flush once; answers its event once all have flushed, or raises
        NodesFailed naming the nodes that failed or are down, as the hosted service names
        them (the flush is recorded all the same if this node flushed its share)."""
        noted = {**(details or {}), **prefix_details(prefix)}
        event = FlushEvent(cache_id, source, username, peer, self.clock.now(), noted)
        try:
            # One flush, counted once: by this node, which took it (or, when the cache lives
            # on another cluster, by the first of its nodes).
            nodes = self.nodes_for(cache_id)
            counting = self.local if self.local in nodes or not nodes else nodes[0]
            await self._on_all(
                cache_id,
                lambda node: node.flush(cache_id, counted=node is counting, prefix=prefix),
            )
            down = self.down_for(cache_id)
            if down:
                raise NodesFailed(down)
        except NodesFailed as exc:
            if self.local.address not in exc.addresses:
                await self._record(event)
            raise
        await self._record(event)
        return event

    async def _record(self, event: FlushEvent) -> None:
        auditor = self.local.auditor
        if auditor is not None:
            await auditor.recorded(event)
        else:  # no flush log writer here: whatever listens to the node's flushes
            self.local.service.record_flush(event)

    async def stats(self, cache_id: int) -> dict[str, dict[str, int]]:
        """Each node's stats, keyed by its address."""
        return await self._on_all(cache_id, lambda node: node.stats(cache_id))

    async def introspect(
        self, cache_id: int, query: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Each node's introspection view of the cache (memcloud.introspection.node), keyed
        by its address; NodesFailed names the nodes that could not answer."""
        return await self._on_all(cache_id, lambda node: node.introspect(cache_id, query))

    async def reset_stats(self, cache_id: int) -> None:
        await self._on_all(cache_id, lambda node: node.reset_stats(cache_id))

    async def unanswered(self, timeout: float) -> list[str]:
        """The addresses of this deployment's nodes that do not answer a ping within
        `timeout` seconds (/readyz): a frozen or dead node process, a full admin socket."""
        nodes = [self.local, *self.others]
        results = await asyncio.gather(
            *(asyncio.wait_for(node.ping(), timeout) for node in nodes), return_exceptions=True
        )
        silent: list[str] = []
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                silent.append(node.address)
        return silent

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        """Waiting flush log records of a cache over every node that answers (a node that
        does not is only logged: this count must not fail the flush log it annotates)."""
        nodes = self.nodes_for(cache_id)
        results = await asyncio.gather(
            *(
                asyncio.wait_for(node.flush_log_pending(cache_id), NODE_TIMEOUT_SECONDS)
                for node in nodes
            ),
            return_exceptions=True,
        )
        total, since, error = 0, None, ""
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning(
                    "node %s: no flush log count for cache %d: %r", node.address, cache_id, result
                )
                continue
            total += int(result["pending"])
            if result["since"] is not None and (since is None or result["since"] < since):
                since = result["since"]
            error = error or str(result["error"])
        return {"pending": total, "since": since, "error": error}

    async def _on_all(self, cache_id: int, call: Callable[[Node], Awaitable[T]]) -> dict[str, T]:
        nodes = self.nodes_for(cache_id)
        results = await asyncio.gather(
            *(asyncio.wait_for(call(node), NODE_TIMEOUT_SECONDS) for node in nodes),
            return_exceptions=True,
        )
        answers: dict[str, T] = {}
        failed: list[str] = []
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation and the like are not node failures
                log.warning("node %s failed for cache %d: %r", node.address, cache_id, result)
                failed.append(node.address)
            else:
                answers[node.address] = result
        if failed:
            raise NodesFailed(failed)
        return answers
