"""The introspection routes of API v2 (reference §2.7) under
`/api/v2/caches/<id>/introspection`, and `insight/latency` (§2.5).

Every node of the cache is asked through the deployment (`Deployment.introspect`) for its
view (memcloud.introspection.node), with the cache's watched prefixes from the control store,
and the views are merged (memcloud.introspection.views). compound_stats comes from the stats
history, latency from the probe's samples (memcloud.api.latency). A server run with
--no-introspection answers these routes (latency aside) with 400.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.api import credential_ops
from memcloud.api.auth import authorize
from memcloud.api.context import ApiContext, context
from memcloud.api.errors import ApiError, Problem
from memcloud.api.hooks import read_body
from memcloud.api.insight import default_range, granularity, parse_time
from memcloud.api.introspection_models import (
    KeyStatsList,
    LatencySeriesList,
    PopularItems,
    RecentLogs,
    TimeSeriesList,
    WatchedPrefix,
    WatchedPrefixList,
    WatchPrefixBody,
)
from memcloud.api.models import errors
from memcloud.api.shapes import nodes_call, store_call
from memcloud.control.introspection import MAX_PREFIX_BYTES, WatchedPrefixRecord
from memcloud.control.telemetry import HOUR
from memcloud.introspection import views
from memcloud.logs import log_change

__all__ = ["router"]

PREFIX = "/api/v2/caches/{cache_id}"
router = APIRouter(prefix=PREFIX, tags=["introspection"])

_ID_RE: Final = re.compile(r"^[0-9]{1,18}$")
_BAD_PREFIX_ID: Final = (
    "The specified prefix ID is invalid (not a number), or no such prefix is watched."
)
_NOT_WATCHED: Final = "The prefix could not be watched."
_OFF: Final = "Introspection is off on this server (memcloud serve --no-introspection)."
_KEY_REQUIRED: Final = "query parameter key is required"
# A watch body is one short name: a larger one is refused before it is read.
_WATCH_BODY_LIMIT: Final = 4096


def _errors(text: str, *, body: bool = False) -> dict[int | str, dict[str, Any]]:
    rows = errors(
        "v2",
        e400=f"{text} / The specified cache ID is invalid (not a number).",
        e401="Unauthorized to access cache with this ID. / Bad user",
        e403="Forbidden to access cache with this ID.",
        e404="Cache not found.",
        e429="Too many failed logins. Try again later. (see Retry-After)",
        e500="Unexpected error. / Server error: host:port,...",
    )
    if body:
        rows.update(errors("v2", e413="Request Entity Too Large"))
    return rows


def _on(ctx: ApiContext) -> None:
    if not ctx.settings.introspection:
        raise ApiError(Problem.BAD_REQUEST, _OFF)


async def _watched(ctx: ApiContext, cache_id: int) -> list[WatchedPrefixRecord]:
    return await store_call(ctx.store.list_watched_prefixes, cache_id, not_found=Problem.NO_CACHE)


async def _views(
    ctx: ApiContext, cache_id: int, query: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Every node's view, each node first handed the cache's watched prefixes."""
    watched = [record.name for record in await _watched(ctx, cache_id)]
    return await nodes_call(ctx.deployment.introspect(cache_id, {"watched": watched, **query}))


async def _prefix(ctx: ApiContext, cache_id: int, prefix_ref: str) -> WatchedPrefixRecord:
    if _ID_RE.match(prefix_ref):
        prefix_id = int(prefix_ref)
        for record in await _watched(ctx, cache_id):
            if record.id == prefix_id:
                return record
    raise ApiError(Problem.BAD_REQUEST, _BAD_PREFIX_ID)


def _range(start_time: str | None, end_time: str | None) -> tuple[float, float]:
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
    return start, end


StartTime = Annotated[str | None, Query(alias="startTime", description="RFC 3339")]
EndTime = Annotated[str | None, Query(alias="endTime", description="RFC 3339")]


@router.get(
    "/introspection/recent_logs",
    operation_id="v2_introspection_recent_logs",
    response_model=RecentLogs,
    responses=_errors("Introspection is off"),
    summary="The last 100 requests per server (never values)",
)
async def recent_logs(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    _on(ctx)
    found = await _views(ctx, principal.cache_id, {"view": "recent"})
    return JSONResponse(views.recent_logs(found))


@router.get(
    "/introspection/compound_stats",
    operation_id="v2_introspection_compound_stats",
    response_model=TimeSeriesList,
    responses=_errors("startTime and endTime must be RFC 3339 times"),
    summary="Keys, bytes, hits, misses and mutations of the cache over time",
)
async def compound_stats(
    cache_id: str, request: Request, start_time: StartTime = None, end_time: EndTime = None
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    start, end = _range(start_time, end_time)
    step = granularity(end - start)
    samples = await store_call(
        ctx.store.stats_samples,
        principal.cache_id,
        start - step - HOUR,
        end,
        not_found=Problem.NO_CACHE,
    )
    rows = [(s.at, s.server, s.stats) for s in samples]
    return JSONResponse(views.compound_series(rows, start, end))


@router.get(
    "/introspection/popular_items",
    operation_id="v2_introspection_popular_items",
    response_model=PopularItems,
    responses=_errors("Introspection is off"),
    summary="Most hit, missed and mutated keys and popular prefixes of the last minutes",
)
async def popular_items(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    _on(ctx)
    found = await _views(ctx, principal.cache_id, {"view": "popular"})
    return JSONResponse(views.popular_items(found))


@router.get(
    "/introspection/key_stats",
    operation_id="v2_introspection_key_stats",
    response_model=KeyStatsList,
    responses=_errors(_KEY_REQUIRED),
    summary="Hits, misses and mutations of one key, and whether it is in the cache",
)
async def key_stats(
    cache_id: str,
    request: Request,
    key: Annotated[str | None, Query(description="the key, as the client names it")] = None,
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    if not key:
        raise ApiError(Problem.BAD_REQUEST, _KEY_REQUIRED)
    if len(key.encode("utf-8", "surrogateescape")) > MAX_PREFIX_BYTES:
        raise ApiError(Problem.BAD_REQUEST, f"a key is at most {MAX_PREFIX_BYTES} bytes")
    _on(ctx)
    found = await _views(ctx, principal.cache_id, {"view": "key", "key": key})
    return JSONResponse(views.key_stats(key, found, time.time()))


@router.get(
    "/introspection/prefixes",
    operation_id="v2_introspection_prefixes",
    response_model=WatchedPrefixList,
    responses=_errors("Watched prefixes could not be retrieved."),
    summary="The watched prefixes",
)
async def list_prefixes(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    records = await _watched(ctx, principal.cache_id)
    return JSONResponse([{"id": r.id, "name": r.name} for r in records])


@router.post(
    "/introspection/prefixes",
    operation_id="v2_introspection_watch_prefix",
    response_model=WatchedPrefix,
    responses=_errors(f"{_NOT_WATCHED} A prefix requires a name.", body=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WatchPrefixBody.model_json_schema()}},
        }
    },
    summary="Watch a prefix (at most 10 per cache; watching one again answers it again)",
)
async def watch_prefix(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    body = await read_body(request, _WATCH_BODY_LIMIT)
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise ApiError(Problem.BAD_REQUEST, f"{_NOT_WATCHED} A prefix requires a name.")
    try:
        record = await store_call(
            ctx.store.watch_prefix, principal.cache_id, name, not_found=Problem.NO_CACHE
        )
    except ApiError as exc:
        if exc.problem in (Problem.BAD_REQUEST, Problem.CONFLICT):
            raise ApiError(Problem.BAD_REQUEST, f"{_NOT_WATCHED} {exc.detail}.") from None
        raise
    log_change(
        "prefix watched",
        cache=credential_ops.cache_name(ctx, principal.cache_id),
        prefix_id=record.id,
    )
    await _hand(ctx, principal.cache_id)
    return JSONResponse({"id": record.id, "name": record.name})


async def _hand(ctx: ApiContext, cache_id: int) -> None:
    """Give every node the cache's watched prefixes now (the probe's loop does it again
    every 20 s, for a node that could not take them now)."""
    if not ctx.settings.introspection:
        return
    # A node that failed gets them from the probe's next round.
    with contextlib.suppress(ApiError):
        await _views(ctx, cache_id, {"view": "none"})


@router.delete(
    "/introspection/prefixes/{prefix_id}",
    operation_id="v2_introspection_unwatch_prefix",
    status_code=204,
    responses=_errors(_BAD_PREFIX_ID),
    summary="Unwatch a prefix",
)
async def unwatch_prefix(cache_id: str, prefix_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    record = await _prefix(ctx, principal.cache_id, prefix_id)
    try:
        await store_call(ctx.store.unwatch_prefix, principal.cache_id, record.id)
    except ApiError as exc:
        if exc.problem is Problem.NO_CREDENTIAL:  # unwatched meanwhile
            raise ApiError(Problem.BAD_REQUEST, _BAD_PREFIX_ID) from None
        raise
    log_change(
        "prefix unwatched",
        cache=credential_ops.cache_name(ctx, principal.cache_id),
        prefix_id=record.id,
    )
    await _hand(ctx, principal.cache_id)
    return Response(status_code=204)


@router.get(
    "/introspection/prefixes/{prefix_id}/stats",
    operation_id="v2_introspection_prefix_stats",
    response_model=TimeSeriesList,
    responses=_errors(_BAD_PREFIX_ID),
    summary="Keys, bytes, hits, misses and mutations of a watched prefix over time",
)
async def prefix_stats(
    cache_id: str,
    prefix_id: str,
    request: Request,
    start_time: StartTime = None,
    end_time: EndTime = None,
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    record = await _prefix(ctx, principal.cache_id, prefix_id)
    start, end = _range(start_time, end_time)
    _on(ctx)
    found = await _views(ctx, principal.cache_id, {"view": "prefix", "prefix": record.name})
    return JSONResponse(views.prefix_series(found, start, end))


@router.get(
    "/introspection/prefixes/{prefix_id}/popular_items",
    operation_id="v2_introspection_prefix_popular_items",
    response_model=PopularItems,
    responses=_errors(_BAD_PREFIX_ID),
    summary="Most hit, missed and mutated keys of a watched prefix",
)
async def prefix_popular_items(cache_id: str, prefix_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    record = await _prefix(ctx, principal.cache_id, prefix_id)
    _on(ctx)
    found = await _views(ctx, principal.cache_id, {"view": "popular", "prefix": record.name})
    return JSONResponse(views.popular_items(found))


@router.get(
    "/insight/latency",
    operation_id="v2_insight_latency",
    response_model=LatencySeriesList,
    responses=_errors("startTime and endTime must be RFC 3339 times"),
    summary="How long a get takes on each server, in nanoseconds (probed every 20 s)",
)
async def latency(
    cache_id: str, request: Request, start_time: StartTime = None, end_time: EndTime = None
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    start, end = _range(start_time, end_time)
    servers = ctx.deployment.addresses(principal.cache_id)
    samples = await store_call(ctx.store.latency_samples, servers, start, end)
    rows = [(s.at, s.server, s.duration_ns) for s in samples]
    return JSONResponse(views.latency_series(rows, start, end))
