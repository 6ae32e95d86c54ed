"""The server side of the operator channel (see memcloud.adminlink): flush and stats."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from memcloud.adminlink import socket_path
from memcloud.service import FlushEvent, Service
from memcloud.statsreport import cache_stats

__all__ = ["start_admin_server"]

log = logging.getLogger("memcloud.admin")
MAX_REQUEST_BYTES = 64 * 1024


def _answer(service: Service, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    cache_id = request.get("cache_id")
    if not isinstance(cache_id, int):
        return {"ok": False, "error": "cache_id must be a number"}
    cache = service.registry.get(cache_id)
    if cache is None:
        return {"ok": False, "error": f"cache {cache_id} is not served here"}
    if op == "flush":
        actor = str(request.get("actor", "operator"))
        event = FlushEvent(cache_id, "cli", actor, "local", time.time())
        service.flush(cache_id, event)
        return {"ok": True}
    if op == "stats":
        now = service.clock.now()
        stats = cache_stats(
            cache,
            started_at=service.started_at,
            now=now,
            max_connections=service.settings.max_connections,
        )
        return {"ok": True, "stats": dict(stats)}
    return {"ok": False, "error": f"unknown operation {op!r}"}


async def start_admin_server(service: Service, data_dir: Path) -> asyncio.AbstractServer:
    path = socket_path(data_dir)
    if path.exists():
        path.unlink()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if len(line) > MAX_REQUEST_BYTES:
                reply: dict[str, Any] = {"ok": False, "error": "request too large"}
            else:
                try:
                    reply = _answer(service, json.loads(line))
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
