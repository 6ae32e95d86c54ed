"""Analytics API v2 (`/api/v2/caches/<id>/...`).

Implemented: info, credentials (list, create, update, delete, promote), flush (also the
body of a release webhook), reset_stats, stats, enable_cache, insight/processed_stats
(aggregate and per server), rotate_sso (the dashboard's single sign-on: provisioning/sso.py),
and memcloud's `flush_log`; alerts are memcloud.api.alerts, switch_cluster (and the
cluster fields of `info`) memcloud.api.clusters. Introspection and latency are not
implemented (404).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.admission import plan_connection_limit
from memcloud.api import credential_ops
from memcloud.api.audit import PENDING_HEADER, PENDING_SINCE_HEADER, pending_headers
from memcloud.api.auth import authorize
from memcloud.api.clusters import cache_cluster
from memcloud.api.context import context, refresh_directory
from memcloud.api.credential_ops import CAPABILITY_FIELDS, capabilities_body
from memcloud.api.errors import ApiError, Problem
from memcloud.api.hooks import parse_fields, read_body
from memcloud.api.insight import (
    PROCESSED_NAMES,
    default_range,
    granularity,
    parse_time,
    processed_series,
)
from memcloud.api.models import (
    Capabilities,
    ServerStats,
    V2Cache,
    V2Credential,
    V2CredentialList,
    V2DeleteDone,
    V2EnableDone,
    V2FlushLogList,
    V2ProcessedSeriesList,
    V2RotateDone,
    errors,
)
from memcloud.api.shapes import (
    capabilities_json,
    credential_v2,
    flush_json,
    nodes_call,
    parse_bool,
    pick_stats,
    store_call,
)
from memcloud.api.v1 import FLUSH_BODY_DOC, flush_cache
from memcloud.control.telemetry import HOUR
from memcloud.logs import log_change
from memcloud.stats.aggregate import aggregate_stats

__all__ = ["FLUSH_LOG_LIMIT", "router"]

PREFIX = "/api/v2/caches/{cache_id}"
router = APIRouter(prefix=PREFIX, tags=["v2"])
FLUSH_LOG_LIMIT = 1000

# What every route may answer besides its success (api/errors.py's v2 table).
_COMMON = errors(
    "v2",
    e400="The specified cache ID is invalid (not a number).",
    e401="Unauthorized to access cache with this ID. / Bad user",
    e403="Forbidden to access cache with this ID.",
    e404="Cache not found. (or Credential not found.)",
    e429="Too many failed logins. Try again later. (see Retry-After)",
    e500="Unexpected error. / Server error: host:port,...",
)
# Routes that read a body: above its limit, 413 before it is read.
_BODY_ERRORS = {**_COMMON, **errors("v2", e413="Request Entity Too Large")}
_FLUSH_ERRORS = {
    **_BODY_ERRORS,
    **errors("v2", e400="The specified cache ID is invalid (not a number). / a refused prefix"),
}
_PENDING_HEADERS = {
    PENDING_HEADER: {
        "description": "flushes of the cache the nodes hold, not yet in the log",
        "schema": {"type": "string"},
    },
    PENDING_SINCE_HEADER: {
        "description": "RFC 3339 time of the oldest of them (absent when none waits)",
        "schema": {"type": "string"},
    },
}


@router.get(
    "/info",
    operation_id="v2_info",
    response_model=V2Cache,
    responses=_COMMON,
    summary="The cache, its servers and credentials",
)
async def info(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    cache = await store_call(ctx.store.find_cache, principal.cache_id, not_found=Problem.NO_CACHE)
    credentials = await store_call(ctx.store.list_credentials, cache.id, not_found=Problem.NO_CACHE)
    placed = await cache_cluster(ctx, cache)
    return JSONResponse(
        {
            "id": cache.id,
            "name": cache.name,
            "label": cache.name,
            "cache_type": "memcachier",
            "plan": cache.plan,
            # memcloud's extension: the connections the cache may hold (all nodes together).
            "connection_limit": plan_connection_limit(cache.plan, ctx.settings),
            "provider": "memcloud",
            "enabled": cache.enabled,
            "cluster_name": placed.cluster_name,
            "servers": placed.servers,
            "credentials": [credential_v2(r) for r in credentials],
            "can_switch": placed.can_switch,
            "can_manage_credentials": True,
            "can_update_capabilities": True,
        }
    )


@router.get(
    "/credentials",
    operation_id="v2_list_credentials",
    response_model=V2CredentialList,
    responses=_COMMON,
    summary="List credentials",
)
async def list_credentials(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    records = await credential_ops.list_records(ctx, principal.cache_id)
    return JSONResponse([credential_v2(r) for r in records])


@router.post(
    "/credentials",
    operation_id="v2_create_credential",
    status_code=201,
    response_model=V2Credential,
    responses=_COMMON,
    summary="Create a credential (its password is shown this once)",
)
async def create_credential(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    new = await credential_ops.create(ctx, principal.cache_id)
    return JSONResponse(credential_v2(new.record, new.password), status_code=201)


_CAPABILITIES_BODY = capabilities_body({"type": "boolean"})


# One route per method, so each has its own operationId.
@router.patch(
    "/credentials/{credential}",
    operation_id="v2_update_credential",
    response_model=Capabilities,
    responses=_BODY_ERRORS,
    summary="Set a credential's capabilities (omitted ones become false)",
    openapi_extra=_CAPABILITIES_BODY,
)
@router.put(
    "/credentials/{credential}",
    operation_id="v2_update_credential_put",
    response_model=Capabilities,
    responses=_BODY_ERRORS,
    summary="Same as PATCH",
    openapi_extra=_CAPABILITIES_BODY,
)
async def update_credential(cache_id: str, credential: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    body = await read_body(request)
    fields = parse_fields(body)
    if fields is None and body.strip():
        raise ApiError(Problem.BAD_REQUEST, "The request body must be a JSON object.")
    fields = fields or {}
    changes = {key: parse_bool(fields.get(field, False), field) for field, key in CAPABILITY_FIELDS}
    record = await credential_ops.update_capabilities(ctx, principal.cache_id, credential, changes)
    return JSONResponse(capabilities_json(record))


@router.delete(
    "/credentials/{credential}",
    operation_id="v2_delete_credential",
    response_model=V2DeleteDone,
    responses=_COMMON,
    summary="Delete a credential (not the primary while others remain)",
)
async def delete_credential(cache_id: str, credential: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    await credential_ops.delete(ctx, principal.cache_id, credential)
    return JSONResponse("Delete successful")


@router.post(
    "/credentials/primary/{credential}",
    operation_id="v2_promote_credential",
    response_model=V2Credential,
    responses=_COMMON,
    summary="Promote to primary",
)
async def promote_credential(cache_id: str, credential: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    record = await credential_ops.promote(ctx, principal.cache_id, credential)
    return JSONResponse(credential_v2(record))


@router.post(
    "/flush",
    operation_id="v2_flush",
    status_code=204,
    response_class=Response,
    responses=_FLUSH_ERRORS,
    openapi_extra=FLUSH_BODY_DOC,
    summary="Flush the cache (release webhooks POST their JSON here)",
)
async def flush(cache_id: str, request: Request) -> Response:
    await flush_cache(context(request), request, cache_id)
    return Response(status_code=204)


@router.post(
    "/reset_stats",
    operation_id="v2_reset_stats",
    status_code=204,
    response_class=Response,
    responses=_COMMON,
    summary="Zero the counters",
)
async def reset_stats(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    await nodes_call(ctx.deployment.reset_stats(principal.cache_id))
    return Response(status_code=204)


@router.get(
    "/stats",
    operation_id="v2_stats",
    response_model=ServerStats,
    responses=_COMMON,
    summary="Stats over all servers",
)
async def stats(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    per_node = await nodes_call(ctx.deployment.stats(principal.cache_id))
    return JSONResponse(pick_stats(aggregate_stats(per_node)))


@router.post(
    "/enable_cache",
    operation_id="v2_enable_cache",
    response_model=V2EnableDone,
    responses=_COMMON,
    summary="Re-enable a disabled cache",
)
async def enable_cache(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id, disabled_ok=True)
    await store_call(
        ctx.store.update_cache, principal.cache_id, enabled=True, not_found=Problem.NO_CACHE
    )
    log_change("cache enabled", cache=credential_ops.cache_name(ctx, principal.cache_id))
    await refresh_directory(ctx)
    return JSONResponse("Enabled cache successfully")


async def _processed(
    request: Request, cache_id: str, query: InsightQuery, *, per_server: bool
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    start_time, end_time = query.start_time, query.end_time
    wanted = [n.strip() for n in (query.names or "").split(",") if n.strip()]
    if not wanted:
        raise ApiError(Problem.BAD_REQUEST, "query parameter names is required")
    unknown = [n for n in wanted if n not in PROCESSED_NAMES]
    if unknown:
        raise ApiError(
            Problem.BAD_REQUEST,
            f"unknown names: {', '.join(unknown)} (allowed: {', '.join(PROCESSED_NAMES)})",
        )
    start, end = default_range(time.time())
    try:
        if start_time:
            start = parse_time(start_time)
        if end_time:
            end = parse_time(end_time)
    except (ValueError, OverflowError, OSError):
        raise ApiError(
            Problem.BAD_REQUEST, "startTime and endTime must be RFC 3339 times"
        ) from None
    if end <= start:
        raise ApiError(Problem.BAD_REQUEST, "endTime must be after startTime")
    step = granularity(end - start)
    # Reach back far enough to find each node's previous sample (maybe an hourly one).
    samples = await store_call(
        ctx.store.stats_samples,
        principal.cache_id,
        start - step - HOUR,
        end,
        not_found=Problem.NO_CACHE,
    )
    return JSONResponse(processed_series(samples, wanted, start, end, per_server=per_server))


@dataclass(frozen=True)
class InsightQuery:
    """The query parameters of both insight/processed_stats routes."""

    names: str | None = Query(None, description="comma-separated, e.g. hit_rate,get_rate")
    start_time: str | None = Query(None, alias="startTime", description="RFC 3339")
    end_time: str | None = Query(None, alias="endTime", description="RFC 3339")


_INSIGHT_ERRORS = {
    **_COMMON,
    **errors("v2", e400="query parameter names is required, or invalid cache ID or times"),
}


@router.get(
    "/insight/processed_stats",
    operation_id="v2_processed_stats",
    response_model=V2ProcessedSeriesList,
    responses=_INSIGHT_ERRORS,
    summary="Derived stats",
)
async def processed_stats(
    cache_id: str, request: Request, query: Annotated[InsightQuery, Depends()]
) -> Response:
    return await _processed(request, cache_id, query, per_server=False)


@router.get(
    "/insight/processed_stats/per_server",
    operation_id="v2_processed_stats_per_server",
    response_model=V2ProcessedSeriesList,
    responses=_INSIGHT_ERRORS,
    summary="Derived stats, one series per server",
)
async def processed_stats_per_server(
    cache_id: str, request: Request, query: Annotated[InsightQuery, Depends()]
) -> Response:
    return await _processed(request, cache_id, query, per_server=True)


@router.get(
    "/flush_log",
    operation_id="v2_flush_log",
    response_model=V2FlushLogList,
    responses={
        **_COMMON,
        **errors("v2", e400="invalid cache ID, or limit is not a number from 1 to 1000"),
        200: {"headers": _PENDING_HEADERS},
    },
    summary="Recent flushes, newest first (memcloud extension)",
)
async def flush_log(
    cache_id: str,
    request: Request,
    limit: int = Query(100, ge=1, le=FLUSH_LOG_LIMIT),
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    records = await store_call(
        ctx.store.flush_log, principal.cache_id, limit, not_found=Problem.NO_CACHE
    )
    headers = pending_headers(await ctx.deployment.flush_log_pending(principal.cache_id))
    return JSONResponse([flush_json(r) for r in records], headers=headers)


@router.post(
    "/rotate_sso",
    operation_id="v2_rotate_sso",
    response_model=V2RotateDone,
    responses=_COMMON,
    summary="Rotate the dashboard SSO secret (refuses earlier SSO tokens and sessions)",
)
async def rotate_sso(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    await asyncio.to_thread(ctx.store.rotate_sso, principal.cache_id, int(time.time()))
    log_change("single sign-on rotated", cache=credential_ops.cache_name(ctx, principal.cache_id))
    return JSONResponse("SSO rotation successful")
