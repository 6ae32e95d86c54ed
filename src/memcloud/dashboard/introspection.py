"""A cache's Introspection page: hot keys (most hit, missed and mutated of the last
minutes), popular prefixes, watched prefixes (watch, unwatch, each with its keys and hot
keys), a key lookup and the recent requests of every server. The data are those of the
API's introspection routes, from every node through the dashboard context (`introspect`),
merged by memcloud.introspection.views.

Anyone signed in to the cache sees the page; watching and unwatching need what the settings
page needs (the API capability, single sign-on or the operator).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from memcloud.control.base import ControlError
from memcloud.control.introspection import MAX_PREFIX_BYTES, MAX_WATCHED_PREFIXES
from memcloud.dashboard.access import Viewer, viewer_for
from memcloud.dashboard.context import DashboardContext, dashboard_context
from memcloud.dashboard.pages import cache_pages
from memcloud.dashboard.web import PREFIX, check_form, current_session, redirect, render
from memcloud.introspection import views

__all__ = ["INTROSPECTION_NOTICES", "router"]

router = APIRouter()
SHOWN: Final = 10

INTROSPECTION_NOTICES = {
    "watched": "Prefix watched: its requests are counted from now on.",
    "unwatched": "Prefix unwatched.",
    "not_allowed": "This credential may not change watched prefixes (it lacks the API capability).",
    "gone": "That prefix is not watched.",
}


def _base(cache_id: int) -> str:
    return f"{PREFIX}/caches/{cache_id}/introspection"


async def _views(
    ctx: DashboardContext, cache_id: int, query: Mapping[str, Any]
) -> dict[str, dict[str, Any]] | None:
    """Every node's view with the cache's watched prefixes, or None if a node failed."""
    if ctx.introspect is None or not ctx.settings.introspection:
        return None
    watched = await asyncio.to_thread(ctx.store.list_watched_prefixes, cache_id)
    try:
        return await ctx.introspect(cache_id, {"watched": [w.name for w in watched], **query})
    except Exception:  # a node that failed: the page says so instead of failing
        return None


async def _page(request: Request, viewer: Viewer, *, status: int = 200, **values: Any) -> Response:
    ctx = dashboard_context(request)
    cache_id = viewer.cache.id
    watched = await asyncio.to_thread(ctx.store.list_watched_prefixes, cache_id)
    popular = await _views(ctx, cache_id, {"view": "popular"})
    recent = await _views(ctx, cache_id, {"view": "recent"})
    per_prefix = []
    for record in watched:
        found = await _views(ctx, cache_id, {"view": "prefix", "prefix": record.name})
        hot = await _views(ctx, cache_id, {"view": "popular", "prefix": record.name})
        keys = sum(int(v["series"][-1][1]) for v in (found or {}).values() if v.get("series"))
        size = sum(int(v["series"][-1][2]) for v in (found or {}).values() if v.get("series"))
        per_prefix.append(
            {
                "record": record,
                "key_count": keys,
                "byte_count": size,
                "hot": views.popular_items(hot)["most_hit_keys"][:SHOWN] if hot else [],
            }
        )
    key = request.query_params.get("key", "").strip()
    key_error = ""
    key_stats = None
    if key:
        if len(key.encode("utf-8", "surrogateescape")) > MAX_PREFIX_BYTES:
            key_error = f"A key is at most {MAX_PREFIX_BYTES} bytes."
        else:
            found = await _views(ctx, cache_id, {"view": "key", "key": key})
            key_stats = views.key_stats(key, found, ctx.now())[0] if found else None
    merged = views.popular_items(popular) if popular else None
    return render(
        request,
        "introspection.html",
        status_code=status,
        viewer=viewer,
        cache=viewer.cache,
        pages=cache_pages(cache_id),
        active="introspection",
        notice=INTROSPECTION_NOTICES.get(request.query_params.get("notice", "")),
        enabled=ctx.settings.introspection,
        available=popular is not None,
        popular=merged,
        shown=SHOWN,
        recent=views.recent_logs(recent) if recent else {},
        watched=per_prefix,
        max_watched=MAX_WATCHED_PREFIXES,
        key=key,
        key_error=key_error,
        key_stats=key_stats,
        **values,
    )


@router.get(PREFIX + "/caches/{cache_id}/introspection", include_in_schema=False)
async def introspection_page(request: Request, cache_id: int) -> Response:
    viewer = await viewer_for(request, current_session(request), cache_id)
    if viewer is None:
        return redirect(request, f"{PREFIX}/login?next={_base(cache_id)}")
    return await _page(request, viewer)


async def _manage(request: Request, cache_id: int) -> tuple[Mapping[str, str], Viewer] | Response:
    form = await check_form(request)
    viewer = await viewer_for(request, current_session(request), cache_id)
    if viewer is None:
        return redirect(request, f"{PREFIX}/login?next={_base(cache_id)}")
    if not viewer.can_manage:
        return redirect(request, f"{_base(cache_id)}?notice=not_allowed")
    return form, viewer


async def _hand(ctx: DashboardContext, cache_id: int) -> None:
    """Every node gets the changed watched prefixes now (the probe's loop also does)."""
    await _views(ctx, cache_id, {"view": "none"})


@router.post(PREFIX + "/caches/{cache_id}/introspection/prefixes", include_in_schema=False)
async def watch(request: Request, cache_id: int) -> Response:
    posted = await _manage(request, cache_id)
    if isinstance(posted, Response):
        return posted
    form, viewer = posted
    ctx = dashboard_context(request)
    try:
        await asyncio.to_thread(ctx.store.watch_prefix, cache_id, form.get("name", "").strip())
    except ControlError as exc:
        return await _page(request, viewer, status=400, error=str(exc))
    await _hand(ctx, cache_id)
    return redirect(request, f"{_base(cache_id)}?notice=watched")


@router.post(
    PREFIX + "/caches/{cache_id}/introspection/prefixes/{prefix_id}/delete",
    include_in_schema=False,
)
async def unwatch(request: Request, cache_id: int, prefix_id: int) -> Response:
    posted = await _manage(request, cache_id)
    if isinstance(posted, Response):
        return posted
    ctx = dashboard_context(request)
    try:
        await asyncio.to_thread(ctx.store.unwatch_prefix, cache_id, prefix_id)
    except ControlError:
        return redirect(request, f"{_base(cache_id)}?notice=gone")
    await _hand(ctx, cache_id)
    return redirect(request, f"{_base(cache_id)}?notice=unwatched")
