"""The nodes that serve a cache, as the HTTP API sees them: flush, read and reset stats.

Today every process is one node and `LocalNode` wraps its in-process `Service`. A node in
another process (or machine) only has to implement `Node` (say over the admin channel or
HTTP) and be returned by `NodeSet.nodes_for`; the API code does not change. Operations on a
cache go to every node serving it at once, and answer only after all of them finished; the
nodes that failed are named in `NodesFailed`, which the API reports as
`"Server error: host:port,..."`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from memcloud.service import FlushEvent, Service
from memcloud.stats.report import node_stats
from memcloud.storage.cache import Cache

__all__ = [
    "NODE_TIMEOUT_SECONDS",
    "LocalNode",
    "Node",
    "NodeError",
    "NodeSet",
    "NodesFailed",
    "RemoteNode",
]

log = logging.getLogger("memcloud.nodes")

# The largest answer a node process may give over its admin socket (a stats mapping).
REMOTE_REPLY_LIMIT = 1024 * 1024
# A node that has not answered by then is reported as failed.
NODE_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")


class NodeError(Exception):
    """One node could not do what was asked."""


class NodesFailed(Exception):
    """Some nodes of a cache failed; `addresses` names them ("host:port")."""

    def __init__(self, addresses: Sequence[str]) -> None:
        super().__init__(",".join(addresses))
        self.addresses = list(addresses)


class Node(Protocol):
    @property
    def address(self) -> str:
        """ "host:port" of the node's memcache listener, as clients know it."""
        ...

    async def flush(self, cache_id: int, event: FlushEvent) -> None:
        """Empty the cache on this node (the node records `event` in the flush log)."""
        ...

    async def stats(self, cache_id: int) -> dict[str, int]:
        """The node's `stats.names.HISTORY_STAT_NAMES` for one cache."""
        ...

    async def reset_stats(self, cache_id: int) -> None: ...

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        """`{"pending": n, "since": t | None, "error": str}`: the cache's flush log records
        this node holds because the control store did not take them yet."""
        ...


class LocalNode:
    """The node of this process: its `Service`, called directly on the event loop."""

    def __init__(self, service: Service, address: str) -> None:
        self.service = service
        self._address = address

    @property
    def address(self) -> str:
        return self._address

    def _not_served(self, cache_id: int) -> NodeError:
        return NodeError(f"cache {cache_id} is not served by {self.address}")

    def _served(self, cache_id: int) -> Cache:
        cache = self.service.registry.get(cache_id)
        if cache is None:
            raise self._not_served(cache_id)
        return cache

    async def flush(self, cache_id: int, event: FlushEvent) -> None:
        if not self.service.flush(cache_id, event):
            raise self._not_served(cache_id)

    def stats_now(self, cache_id: int) -> dict[str, int]:
        """Synchronous read (the storage lives on this loop, so this is consistent)."""
        return node_stats(self._served(cache_id), self.service.clock.now())

    async def stats(self, cache_id: int) -> dict[str, int]:
        return self.stats_now(cache_id)

    async def reset_stats(self, cache_id: int) -> None:
        self._served(cache_id).stats.reset()

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        # The flush log writer runs beside the service (api.server starts it).
        auditor = getattr(self.service.api, "auditor", None)
        if auditor is None:
            return {"pending": 0, "since": None, "error": ""}
        pending = auditor.pending(cache_id)
        return {"pending": pending.count, "since": pending.since, "error": pending.error}


class RemoteNode:
    """A node process of this deployment, reached over its admin socket (node-<i>.sock)."""

    def __init__(self, address: str, socket_path: Path) -> None:
        self._address = address
        self.socket_path = socket_path

    @property
    def address(self) -> str:
        return self._address

    async def _call(self, request: dict[str, object]) -> dict[str, Any]:
        try:
            reader, writer = await asyncio.open_unix_connection(
                str(self.socket_path), limit=REMOTE_REPLY_LIMIT
            )
        except OSError as exc:
            raise NodeError(f"{self.address} unreachable: {exc}") from exc
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            line = await reader.readline()
        finally:
            writer.close()
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError as exc:
            raise NodeError(f"{self.address} answered nothing usable") from exc
        if not reply.get("ok"):
            raise NodeError(f"{self.address}: {reply.get('error', 'refused')}")
        return reply

    async def flush(self, cache_id: int, event: FlushEvent) -> None:
        # The node that fans out records the flush once; this one only empties its share.
        await self._call({"op": "flush", "cache_id": cache_id, "audit": False})

    async def stats(self, cache_id: int) -> dict[str, int]:
        reply = await self._call({"op": "node_stats", "cache_id": cache_id})
        return {str(name): int(value) for name, value in reply["stats"].items()}

    async def reset_stats(self, cache_id: int) -> None:
        await self._call({"op": "reset_stats", "cache_id": cache_id})

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        reply = await self._call({"op": "flush_log_pending", "cache_id": cache_id})
        since = reply.get("since")
        return {
            "pending": int(reply.get("pending") or 0),
            "since": float(since) if since is not None else None,
            "error": str(reply.get("error") or ""),
        }


class NodeSet:
    """Every node this API can reach, and which of them serve a cache."""

    def __init__(self, local: LocalNode, others: Sequence[Node] = ()) -> None:
        self.local = local
        self.others = list(others)

    def nodes_for(self, cache_id: int) -> list[Node]:
        # Every node serves every cache today; placement would narrow this list.
        return [self.local, *self.others]

    def addresses(self, cache_id: int) -> list[str]:
        return [node.address for node in self.nodes_for(cache_id)]

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

    async def flush(self, cache_id: int, event: FlushEvent) -> None:
        """Flush on every node; returns once all have, or raises NodesFailed."""
        await self._on_all(cache_id, lambda node: node.flush(cache_id, event))

    async def stats(self, cache_id: int) -> dict[str, dict[str, int]]:
        """Each node's stats, keyed by its address."""
        return await self._on_all(cache_id, lambda node: node.stats(cache_id))

    async def reset_stats(self, cache_id: int) -> None:
        await self._on_all(cache_id, lambda node: node.reset_stats(cache_id))

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
