"""What the dashboard and the provisioning API need from the running server, in one object.

The composition root (`memcloud.api.app`) builds it from the HTTP API's context: flushes go
through the deployment (every node, audited once in the flush log), stats are the nodes'
aggregated stats, and a change to the control store is applied on this node at once. Tests
may build one from anything with the same shape. The dashboard and provisioning import
nothing of the API's package (tests/test_layering.py): what they need arrives here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from memcloud.auth import Principal
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.dashboard.sessions import Signer
from memcloud.webauth import LoginGuard

__all__ = ["DashboardContext", "dashboard_context"]


@dataclass
class DashboardContext:
    store: ControlStore
    settings: Settings
    signer: Signer
    # Checks a cache credential (the data plane's in-memory directory: no database read).
    authenticate: Callable[[str, str], Principal | None]
    # A cache's stats over every node (None if no node has it).
    live_stats: Callable[[int], Awaitable[dict[str, int] | None]]
    # Flush one cache on every node (only its keys starting with the prefix, unless b"")
    # and audit it once, as (cache id, who, peer, prefix) asked; False if that failed
    # somewhere. Returns once the flush log writer holds the record.
    flush: Callable[[int, str, str, bytes], Awaitable[bool]]
    # Apply a change just made to the control store on this node now (others poll).
    changed: Callable[[], Awaitable[None]]
    # MEMCACHIER_SERVERS of a cache on this cluster (memcloud.control.clusters.servers_of),
    # for config vars and the connection help.
    servers: Callable[[str], Awaitable[str]]
    now: Callable[[], float] = field(default=time.time)
    # A cache's flush log records the nodes hold because the store could not take them yet.
    pending_flushes: Callable[[int], Awaitable[int]] | None = None
    # The process's login throttle (shared with the memcache logins and the API).
    guard: LoginGuard = field(default_factory=LoginGuard)
    # Introspection (issue 12): every node's view of a cache (memcloud.introspection.node;
    # raises if a node failed) and the addresses of a cache's nodes ("host:port").
    introspect: Callable[[int, Mapping[str, Any]], Awaitable[dict[str, dict[str, Any]]]] | None = (
        None
    )
    addresses: Callable[[int], list[str]] | None = None


def dashboard_context(request: Request) -> DashboardContext:
    """The dashboard context of the app serving `request`."""
    ctx: DashboardContext = request.app.state.dashboard
    return ctx
