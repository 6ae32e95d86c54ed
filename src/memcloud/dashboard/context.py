"""What the dashboard and the provisioning API need from the running server, in one object.

`DashboardContext.from_api` builds it from the HTTP API's context: flushes go through the
API's node set (every node, audited once in the flush log), stats are the nodes' aggregated
stats, and a change to the control store is applied on this node at once. Tests may build one
from anything with the same shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request

from memcloud.api.context import ApiContext, refresh_directory
from memcloud.api.login_guard import LoginGuard
from memcloud.auth import Principal
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.dashboard.sessions import Signer, load_key
from memcloud.nodes import NodesFailed
from memcloud.service import FlushEvent
from memcloud.stats.aggregate import aggregate_stats

__all__ = ["AUDIT_WAIT_SECONDS", "DashboardContext", "dashboard_context"]

AUDIT_WAIT_SECONDS = 1.0


@dataclass
class DashboardContext:
    store: ControlStore
    settings: Settings
    signer: Signer
    # Checks a cache credential (the data plane's in-memory directory: no database read).
    authenticate: Callable[[str, str], Principal | None]
    # A cache's stats over every node (None if no node has it).
    live_stats: Callable[[int], Awaitable[dict[str, int] | None]]
    # Flush one cache on every node and audit it once; False if that failed somewhere.
    flush: Callable[[FlushEvent], Awaitable[bool]]
    # Apply a change just made to the control store on this node now (others poll).
    changed: Callable[[], Awaitable[None]]
    # MEMCACHIER_SERVERS for config vars and the connection help.
    servers: Callable[[], str]
    now: Callable[[], float] = field(default=time.time)
    # A cache's flush log records the nodes hold because the store could not take them yet.
    pending_flushes: Callable[[int], Awaitable[int]] | None = None
    # The process's login throttle (shared with the memcache logins and the API).
    guard: LoginGuard = field(default_factory=LoginGuard)

    @classmethod
    def from_api(cls, api: ApiContext) -> DashboardContext:
        async def live_stats(cache_id: int) -> dict[str, int] | None:
            try:
                return aggregate_stats(await api.nodes.stats(cache_id))
            except NodesFailed:
                return None

        async def flush(event: FlushEvent) -> bool:
            written = api.auditor.written if api.auditor else 0
            try:
                await api.nodes.flush(event.cache_id, event)
            except NodesFailed:
                return False
            # The audit writer stores flushes from its own thread within milliseconds; wait
            # (briefly) so the page shown next lists this flush.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + AUDIT_WAIT_SECONDS
            while api.auditor and api.auditor.written <= written and loop.time() < deadline:
                await asyncio.sleep(0.01)
            return True

        async def pending_flushes(cache_id: int) -> int:
            return int((await api.nodes.flush_log_pending(cache_id))["pending"])

        async def changed() -> None:
            await refresh_directory(api)

        def servers() -> str:
            return ",".join(api.nodes.addresses(0))

        return cls(
            store=api.store,
            settings=api.settings,
            signer=Signer(load_key(api.settings.data_dir)),
            authenticate=lambda user, password: api.service.directory.authenticate(user, password),
            live_stats=live_stats,
            flush=flush,
            changed=changed,
            servers=servers,
            pending_flushes=pending_flushes,
            guard=LoginGuard.of(api.service),
        )


def dashboard_context(request: Request) -> DashboardContext:
    """The dashboard context of the app serving `request`."""
    ctx: DashboardContext = request.app.state.dashboard
    return ctx
