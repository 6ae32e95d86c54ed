"""The nodes that serve a cache: empty it, read and reset its stats, count its unwritten
flush log records.

Every process is one node; `LocalNode` wraps this process's `Service`, `RemoteNode` is
another node process reached over its admin socket. A node on another machine only has to
implement `Node` and be one of the `Deployment`'s nodes (memcloud.deployment), which sends
an operation to every node of a cache and names those that failed in `NodesFailed` (the API
reports them as `"Server error: host:port,..."`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from memcloud.control.audit import FlushAuditor
from memcloud.introspection.node import IntrospectionOff, node_view
from memcloud.routing import Link
from memcloud.service import Service
from memcloud.stats.report import node_stats
from memcloud.storage.cache import Cache
from memcloud.storage.prefix_flush import TooManyPrefixFlushes

__all__ = [
    "NODE_OPERATION",
    "NODE_TIMEOUT_SECONDS",
    "ChannelNode",
    "LocalNode",
    "Node",
    "NodeError",
    "NodesFailed",
    "RemoteNode",
]

log = logging.getLogger("memcloud.nodes")

# The largest answer a node process may give over its admin socket (a stats mapping).
REMOTE_REPLY_LIMIT = 1024 * 1024
# A node that has not answered by then is reported as failed.
NODE_TIMEOUT_SECONDS = 10.0
# The node-to-node channel's frame kind of the operations above (JSON, as on the socket).
NODE_OPERATION = 2


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

    async def flush(self, cache_id: int, *, counted: bool = True, prefix: bytes = b"") -> None:
        """Empty the cache on this node (the deployment records the flush, once), or only
        its keys starting with `prefix`. Only the node that took the flush counts it
        (`counted`); the others empty their share."""
        ...

    async def stats(self, cache_id: int) -> dict[str, int]:
        """The node's `stats.names.HISTORY_STAT_NAMES` for one cache."""
        ...

    async def reset_stats(self, cache_id: int) -> None: ...

    async def ping(self) -> None:
        """Return once the node answers (its event loop runs); /readyz bounds the wait."""
        ...

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        """`{"pending": n, "since": t | None, "error": str}`: the cache's flush log records
        this node holds because the control store did not take them yet."""
        ...

    async def introspect(self, cache_id: int, query: Mapping[str, Any]) -> dict[str, Any]:
        """This node's introspection view of the cache (memcloud.introspection.node)."""
        ...


class LocalNode:
    """The node of this process: its `Service`, called directly on the event loop, and its
    flush log writer (None: none runs here; the deployment then hands its flushes to the
    service's flush listeners)."""

    def __init__(self, service: Service, address: str, auditor: FlushAuditor | None = None) -> None:
        self.service = service
        self._address = address
        self.auditor = auditor

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

    async def flush(self, cache_id: int, *, counted: bool = True, prefix: bytes = b"") -> None:
        self.flush_now(cache_id, counted=counted, prefix=prefix)

    def flush_now(self, cache_id: int, *, counted: bool = True, prefix: bytes = b"") -> None:
        """Synchronous flush, unaudited (whoever asked records it); `counted`, `prefix`: see
        Service.flush."""
        try:
            served = self.service.flush(cache_id, None, counted=counted, prefix=prefix)
        except TooManyPrefixFlushes as exc:
            raise NodeError(f"{self.address}: {exc}") from exc
        if not served:
            raise self._not_served(cache_id)

    def stats_now(self, cache_id: int) -> dict[str, int]:
        """Synchronous read (the storage lives on this loop, so this is consistent)."""
        return node_stats(self._served(cache_id), self.service.clock.now())

    async def stats(self, cache_id: int) -> dict[str, int]:
        return self.stats_now(cache_id)

    async def reset_stats(self, cache_id: int) -> None:
        self._served(cache_id).stats.reset()

    async def ping(self) -> None:
        return None  # this process's loop runs this very call: the node answers

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        auditor = self.auditor
        if auditor is None:
            return {"pending": 0, "since": None, "error": ""}
        pending = auditor.pending(cache_id)
        return {"pending": pending.count, "since": pending.since, "error": pending.error}

    async def introspect(self, cache_id: int, query: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return node_view(self._served(cache_id), query, self.service.clock.now())
        except IntrospectionOff as exc:
            raise NodeError(f"{self.address}: {exc}") from None


class RemoteNode:
    """A node process of this deployment, reached over its admin socket (node-<i>.sock)."""

    def __init__(self, address: str, socket_path: Path) -> None:
        self._address = address
        self.socket_path = socket_path

    @property
    def address(self) -> str:
        return self._address

    async def call(self, request: dict[str, object]) -> dict[str, Any]:
        """One operation of server/admin.py; NodeError if the node refused or is gone."""
        return await self._call(request)

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

    async def flush(self, cache_id: int, *, counted: bool = True, prefix: bytes = b"") -> None:
        # The node that fans out records the flush once; this one only empties its share.
        request: dict[str, object] = {
            "op": "flush",
            "cache_id": cache_id,
            "audit": False,
            "counted": counted,
        }
        if prefix:
            request["prefix_hex"] = prefix.hex()  # any bytes, exactly, in JSON
        await self._call(request)

    async def stats(self, cache_id: int) -> dict[str, int]:
        reply = await self._call({"op": "node_stats", "cache_id": cache_id})
        return {str(name): int(value) for name, value in reply["stats"].items()}

    async def reset_stats(self, cache_id: int) -> None:
        await self._call({"op": "reset_stats", "cache_id": cache_id})

    async def ping(self) -> None:
        await self._call({"op": "ping"})

    async def flush_log_pending(self, cache_id: int) -> dict[str, Any]:
        # `here`: that node's own records only (its deployment would ask every node again).
        reply = await self._call({"op": "flush_log_pending", "cache_id": cache_id, "here": True})
        since = reply.get("since")
        return {
            "pending": int(reply.get("pending") or 0),
            "since": float(since) if since is not None else None,
            "error": str(reply.get("error") or ""),
        }

    async def introspect(self, cache_id: int, query: Mapping[str, Any]) -> dict[str, Any]:
        reply = await self._call({"op": "introspect", "cache_id": cache_id, "query": dict(query)})
        view = reply.get("view")
        if not isinstance(view, dict):
            raise NodeError(f"{self.address} answered no introspection view")
        return view


class ChannelNode(RemoteNode):
    """A node of the deployment reached over the node-to-node channel (another machine, or
    another process of this one): the same operations as over the admin socket."""

    def __init__(self, address: str, link: Link) -> None:
        super().__init__(address, Path())
        self.link = link

    async def _call(self, request: dict[str, object]) -> dict[str, Any]:
        try:
            answer = await self.link.call(NODE_OPERATION, json.dumps(request).encode())
        except Exception as exc:
            raise NodeError(f"{self.address} unreachable: {exc}") from exc
        try:
            reply: dict[str, Any] = json.loads(answer)
        except ValueError as exc:
            raise NodeError(f"{self.address} answered nothing usable") from exc
        if not reply.get("ok"):
            raise NodeError(f"{self.address}: {reply.get('error', 'refused')}")
        return reply
