"""The server side of the operator channel (see memcloud.adminlink).

Node 0 answers the CLI on `control.sock`; every other node process answers node 0 on its own
`node-<i>.sock`. Operations: `flush` (every node of the deployment when asked on node 0; with
`prefix_hex`, the hex of a key prefix, only the keys starting with it),
`stats` (memcached's list; summed over the nodes on node 0), `node_stats` and `reset_stats`
(this node only; what `nodes.RemoteNode` calls), `flush_log_pending` (flush log records this
node could not write yet), `introspect` (this node's introspection view), `ping` (the node
answers: /readyz).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from memcloud.deployment import Deployment
from memcloud.nodes import NodeError, NodesFailed
from memcloud.protocol.prefix import prefix_error
from memcloud.stats.aggregate import aggregate_stats
from memcloud.stats.report import cache_stats

__all__ = ["answer_operation", "start_admin_server"]

log = logging.getLogger("memcloud.admin")
MAX_REQUEST_BYTES = 64 * 1024


def _prefix(request: dict[str, Any]) -> bytes | str:
    """The flush's key prefix (b"" for a whole flush), or why the request's is refused."""
    given = request.get("prefix_hex", "")
    if not isinstance(given, str):
        return "prefix_hex must be a string"
    try:
        prefix = bytes.fromhex(given)
    except ValueError:
        return "prefix_hex is not hexadecimal"
    return prefix_error(prefix) or prefix


async def _answer(deployment: Deployment, request: dict[str, Any]) -> dict[str, Any]:
    service = deployment.local.service
    op = request.get("op")
    if op == "ping":
        return {"ok": True}
    if op == "members":  # how many live nodes this node's route counts (a start waits)
        return {"ok": True, "members": service.members}
    cache_id = request.get("cache_id")
    if not isinstance(cache_id, int):
        return {"ok": False, "error": "cache_id must be a number"}
    cache = service.registry.get(cache_id)
    if cache is None:
        return {"ok": False, "error": f"cache {cache_id} is not served here"}
    try:
        if op == "flush":
            prefix = _prefix(request)
            if isinstance(prefix, str):
                return {"ok": False, "error": prefix}
            if request.get("audit", True) is False:
                # The node that asked records the flush and counts it (unless told to).
                counted = request.get("counted") is True
                deployment.local.flush_now(cache_id, counted=counted, prefix=prefix)
                return {"ok": True}
            actor = str(request.get("actor", "operator"))
            await deployment.flush(cache_id, "cli", actor, "local", prefix=prefix)
            return {"ok": True}
        if op == "stats":
            if deployment.others:
                per_node = await deployment.stats(cache_id)
                stats = {**aggregate_stats(per_node), "node_restarts": deployment.node_restarts}
                return {"ok": True, "stats": stats, "nodes": per_node}
            lines = cache_stats(
                cache,
                started_at=service.started_at,
                now=service.clock.now(),
                max_connections=service.settings.max_connections,
                control_store_read_at=service.control_store_read_at,
                control_store_up=service.control_store_up,
            )
            return {"ok": True, "stats": dict(lines)}
        if op == "node_stats":
            return {"ok": True, "stats": deployment.local.stats_now(cache_id)}
        if op == "reset_stats":
            await deployment.local.reset_stats(cache_id)
            return {"ok": True}
        if op == "introspect":
            query = request.get("query")
            if not isinstance(query, dict):
                return {"ok": False, "error": "query must be an object"}
            return {"ok": True, "view": await deployment.local.introspect(cache_id, query)}
        if op == "flush_log_pending" and request.get("here") is True:
            return {"ok": True, **await deployment.local.flush_log_pending(cache_id)}
        if op == "flush_log_pending":
            # Node 0 sums its own and every other node's; another node answers its own.
            return {"ok": True, **await deployment.flush_log_pending(cache_id)}
    except NodesFailed as exc:
        return {"ok": False, "error": f"nodes failed: {','.join(exc.addresses)}"}
    except NodeError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": False, "error": f"unknown operation {op!r}"}


async def answer_operation(deployment: Deployment, request: bytes) -> bytes:
    """An operation another node sent over the node-to-node channel (nodes.ChannelNode):
    the same JSON as on the admin socket."""
    if len(request) > MAX_REQUEST_BYTES:
        reply: dict[str, Any] = {"ok": False, "error": "request too large"}
    else:
        try:
            parsed = json.loads(request)
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
            reply = await _answer(deployment, parsed)
        except ValueError:
            reply = {"ok": False, "error": "request is not JSON"}
    return json.dumps(reply).encode()


async def start_admin_server(deployment: Deployment, path: Path) -> asyncio.AbstractServer:
    """Listen on `path` (mode 0600), answering for `deployment` as this node sees it."""
    if path.exists():
        path.unlink()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if len(line) > MAX_REQUEST_BYTES:
                reply: dict[str, Any] = {"ok": False, "error": "request too large"}
            else:
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                    reply = await _answer(deployment, request)
                except ValueError:
                    reply = {"ok": False, "error": "request is not JSON"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except Exception:
            log.exception("admin request failed")
        finally:
            writer.close()

    old_umask = os.umask(0o077)  # the socket is the operator's alone
    try:
        server = await asyncio.start_unix_server(handle, path=str(path), limit=MAX_REQUEST_BYTES)
    finally:
        os.umask(old_umask)
    return server
