"""The operator's HTTP API (`Authorization: Bearer <admin token>`, the token of the
dashboard's operator sign-in): `GET /api/admin/servers`, the server panel as JSON.

Every registered node of the deployment with its health (up or down by heartbeat), uptime,
connections, cluster and machine; per cluster the memory budget against the plans placed
on it, connections against the nodes' `--max-connections`, and a warning when the plans
overcommit the memory (also in the `X-Memcloud-Warning` header). Failed tokens count
against the login throttle as the operator sign-in's do.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.api.context import context
from memcloud.api.models import AdminServers, errors
from memcloud.auth_throttle import ADMIN_USERNAME
from memcloud.control import clusters
from memcloud.control.base import ControlError
from memcloud.webauth import LoginGuard

__all__ = ["WARNING_HEADER", "router"]

log = logging.getLogger("memcloud.api")

router = APIRouter(prefix="/api/admin", tags=["admin"])

# Carries the overcommit warnings (joined by "; ") so that a script sees them without
# reading the body.
WARNING_HEADER = "X-Memcloud-Warning"


def _bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # Digests first: the comparison's time tells nothing, not even the length.
    given_digest = hashlib.sha256(given.strip().encode()).digest()
    return hmac.compare_digest(given_digest, hashlib.sha256(token.encode()).digest())


def _refusal(request: Request) -> Response | None:
    """401 for a missing or wrong token, 429 while the throttle holds this client back;
    bodies as the other operator routes' ({"detail": ...}: this is no cache's API)."""
    ctx = context(request)
    guard = LoginGuard.of(ctx.service)
    wait = guard.refusal(request, ADMIN_USERNAME)
    if wait is not None:
        return JSONResponse(
            {"detail": "Too many failed logins. Try again later."},
            status_code=429,
            headers={"Retry-After": wait},
        )
    if not _bearer_ok(request, ctx.settings.admin_token or ""):
        guard.failed(request, ADMIN_USERNAME)
        return JSONResponse(
            {"detail": "a valid admin token is required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="memcloud admin"'},
        )
    return None


@router.get(
    "/servers",
    operation_id="admin_servers",
    response_model=AdminServers,
    responses=errors(
        "other",
        e401="a valid admin token is required (Authorization: Bearer …)",
        e429="Too many failed logins. Try again later. (see Retry-After)",
        e500="the control database failed",
    ),
    summary="The server panel: nodes, health, memory budget against plans, connections",
)
async def servers(request: Request) -> Response:
    refused = _refusal(request)
    if refused is not None:
        return refused
    ctx = context(request)
    try:
        nodes = await asyncio.to_thread(ctx.store.list_nodes)
        caches = await asyncio.to_thread(ctx.store.list_caches)
    except ControlError as exc:
        log.error("server panel: the control database failed: %s", exc)
        return JSONResponse({"detail": "the control database failed"}, status_code=500)
    panel = clusters.panel_json(nodes, caches)
    warnings = panel["warnings"]
    headers = {}
    if isinstance(warnings, list) and warnings:
        headers[WARNING_HEADER] = "; ".join(str(w) for w in warnings)
    return JSONResponse(panel, headers=headers)
