"""`/healthz` and `/readyz` on the API port, unauthenticated, for load balancers, process
supervisors and orchestrators.

`/healthz` says the process is alive (its event loop answers): 200 `{"status": "ok"}`.
`/readyz` says it can serve: the control store answers a `revision()` read (in a worker
thread, bounded by a timeout) and every node of this deployment answers a ping; otherwise
503 `{"status": "unready", "reasons": [...]}`.

Anyone who reaches the port may ask, so both are cheap and tell nothing secret: one check
runs at a time and its answer is reused for `RECHECK_SECONDS` (a flood of probes costs one
store read a second), a store read still hanging is never started again (worker threads do
not pile up), and the reasons are fixed phrases naming the store or a node's public memcache
address; the cause itself (a database error, which may name hosts) goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse

from memcloud.api.context import ApiContext

__all__ = ["STORE_TIMEOUT_SECONDS", "Readiness", "install"]

log = logging.getLogger("memcloud.api.health")

# A control store slower than this to read one row is not ready to serve changes.
STORE_TIMEOUT_SECONDS = 2.0
# A node process that does not answer its admin socket within this is frozen or gone.
NODE_TIMEOUT_SECONDS = 2.0
# Probes within this of the last check get its answer (bounds the work any client causes).
RECHECK_SECONDS = 1.0

STORE_UNREACHABLE = "control store unreachable"
STORE_SLOW = f"control store did not answer within {STORE_TIMEOUT_SECONDS:g} s"


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "unready"]
    reasons: list[str]


class Readiness:
    """The last readiness answer and the one check that renews it."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._reasons: list[str] = []
        self._store_read: asyncio.Future[int] | None = None

    async def reasons(self) -> list[str]:
        """Why this server is not ready (empty: it is)."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            at = self._checked_at
            if at is not None and loop.time() - at < RECHECK_SECONDS:
                return self._reasons
            reasons = [*await self._store(), *await self._nodes()]
            if reasons != self._reasons:
                if reasons:
                    log.warning("not ready: %s", "; ".join(reasons))
                else:
                    log.info("ready again")
            self._reasons, self._checked_at = reasons, loop.time()
            return reasons

    async def _store(self) -> list[str]:
        read = self._store_read
        if read is None or read.done():
            # A read that outlived its timeout is awaited again, never doubled.
            read = self._store_read = asyncio.ensure_future(
                asyncio.to_thread(self.ctx.store.revision)
            )
        try:
            await asyncio.wait_for(asyncio.shield(read), STORE_TIMEOUT_SECONDS)
        except TimeoutError:
            return [STORE_SLOW]
        except Exception as exc:
            if self._reasons[:1] != [STORE_UNREACHABLE]:
                log.warning("readiness: control store read failed: %s", exc)
            return [STORE_UNREACHABLE]
        return []

    async def _nodes(self) -> list[str]:
        silent = await self.ctx.deployment.unanswered(NODE_TIMEOUT_SECONDS)
        return [f"node {address} did not answer" for address in silent]


async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


async def readyz(request: Request) -> JSONResponse:
    """Control store reachable and every node of this deployment answering."""
    readiness: Readiness = request.app.state.readiness
    reasons = await readiness.reasons()
    if reasons:
        body = Ready(status="unready", reasons=reasons)
        return JSONResponse(body.model_dump(), status_code=503, headers=_NO_STORE)
    return JSONResponse(Ready(status="ready", reasons=[]).model_dump(), headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


def install(app: FastAPI) -> None:
    """Add /healthz and /readyz to the API app (its state must hold the ApiContext)."""
    ctx: ApiContext = app.state.ctx
    app.state.readiness = Readiness(ctx)
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        tags=["health"],
        summary="Liveness: the process answers",
        operation_id="healthz",
        response_model=Health,
    )
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        tags=["health"],
        summary="Readiness: control store and every node answer",
        operation_id="readyz",
        response_model=Ready,
        responses={503: {"model": Ready, "description": "Not ready, with the reasons"}},
    )
