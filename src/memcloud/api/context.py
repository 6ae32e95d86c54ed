"""What every route needs: the data plane, the control store, the nodes and the settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request

from memcloud.api.audit import FlushAuditor
from memcloud.auth import Directory
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.nodes import NodeSet
from memcloud.service import Service

__all__ = ["ApiContext", "context", "refresh_directory"]


@dataclass(slots=True)
class ApiContext:
    service: Service
    store: ControlStore
    settings: Settings
    nodes: NodeSet
    auditor: FlushAuditor | None = None


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def refresh_directory(ctx: ApiContext) -> None:
    """Apply a change the API just made to the control store on this node now.

    Other nodes (and this one, should this be skipped) pick it up by polling within a second.
    """
    directory = await asyncio.to_thread(Directory.load, ctx.store)
    if directory.revision > ctx.service.directory.revision:
        ctx.service.set_directory(directory)
