"""What every route needs: the data plane, the control store, the deployment (every node)
and the settings."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from starlette.requests import Request

from memcloud.auth import Directory
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.deployment import Deployment
from memcloud.service import Service

__all__ = ["ApiContext", "context", "refresh_directory"]


@dataclass(slots=True)
class ApiContext:
    service: Service
    store: ControlStore
    settings: Settings
    # The one path to every node: flush (and its audit), stats, reset, addresses.
    deployment: Deployment
    # This node's open memcache connections (its listeners' set), for /metrics.
    connections: Collection[object] = frozenset()


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
