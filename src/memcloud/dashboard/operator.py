"""The operator view: sign in with the admin token, list every cache (with its cluster),
create, resize, delete; and the server panel (issue 14 item 9): every registered node with
its health, uptime and connections, and per cluster the memory budget against the plans
placed on it, connections against the nodes' bounds, and a warning when plans overcommit
the memory (memcloud.control.clusters computes it, as for the API and the CLI)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from memcloud.auth_throttle import ADMIN_USERNAME
from memcloud.config import format_size, parse_size, plan_bytes
from memcloud.control import clusters
from memcloud.control.base import ControlError, StoreFailed
from memcloud.control.models import CacheRecord, CredentialRecord, NodeRecord
from memcloud.dashboard.access import admin_ok
from memcloud.dashboard.charts import format_bytes
from memcloud.dashboard.context import DashboardContext, dashboard_context
from memcloud.dashboard.web import (
    PREFIX,
    check_form,
    current_session,
    redirect,
    render,
    throttled,
)
from memcloud.logs import log_change

__all__ = ["ADMIN", "router"]

router = APIRouter()
ADMIN = f"{PREFIX}/admin"

# How long the page waits for the caches' stats (all at once) before it shows them unknown.
LIVE_STATS_SECONDS = 2.0

NOTICES = {
    "resized": "Plan changed. A smaller plan evicts the least recently used items.",
    "deleted": "Cache deleted, with its credentials.",
    "confirm": "Type the cache's name to confirm deleting it.",
    "bad_plan": "Not a plan: give a plan name (like 100) or a size (like 64MB).",
}


def _plan(ctx: DashboardContext, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    size = plan_bytes(ctx.settings.plans, text)
    if size is None:
        try:
            size = parse_size(text)
        except ValueError:
            return None
    return size if size > 0 else None


@router.get(f"{ADMIN}/login", include_in_schema=False)
async def admin_login_form(request: Request) -> Response:
    return render(request, "admin_login.html")


@router.post(f"{ADMIN}/login", include_in_schema=False)
async def admin_login(request: Request) -> Response:
    form = await check_form(request)
    ctx = dashboard_context(request)
    token = ctx.settings.admin_token or ""
    given = form.get("token", "").strip()
    wait = ctx.guard.refusal(request, ADMIN_USERNAME)
    if wait is not None:
        return throttled(request, "admin_login.html", wait)
    if not token or not hmac.compare_digest(token.encode(), given.encode()):
        ctx.guard.failed(request, ADMIN_USERNAME)
        return render(
            request,
            "admin_login.html",
            status_code=401,
            error="That is not this server's admin token.",
        )
    session = current_session(request).signed_in(
        kind="admin", admin=ctx.signer.admin_fingerprint(token), via="admin"
    )
    return redirect(request, ADMIN, session)


def _panel(nodes: list[NodeRecord], caches: list[CacheRecord]) -> list[dict[str, Any]]:
    """The server panel's clusters, with what the template shows of each."""
    return [
        {
            "budget": budget,
            "warning": clusters.overcommit_warning(budget, format_bytes),
            "nodes": [
                {"node": node, "uptime": clusters.format_uptime(node.uptime)}
                for node in budget.nodes
            ],
        }
        for budget in clusters.budgets(nodes, caches)
    ]


async def _live_stats(ctx: DashboardContext, cache_id: int) -> dict[str, int] | None:
    """A cache's stats, or None if its nodes did not all answer in time: the page (and its
    server panel, which tells which node is down) must show while a node is frozen."""
    try:
        return await asyncio.wait_for(ctx.live_stats(cache_id), LIVE_STATS_SECONDS)
    except TimeoutError:
        return None


async def _servers_line(ctx: DashboardContext, cache: CacheRecord) -> str:
    servers = await ctx.servers(cache.cluster)
    if servers:
        return f"MEMCACHIER_SERVERS={servers}"
    return f"# MEMCACHIER_SERVERS: no server of cluster {cache.cluster} is up"


async def _admin_page(request: Request, **values: Any) -> Response:
    ctx = dashboard_context(request)
    caches: list[CacheRecord] = await asyncio.to_thread(ctx.store.list_caches)
    nodes: list[NodeRecord] = await asyncio.to_thread(ctx.store.list_nodes)
    credentials: list[CredentialRecord] = await asyncio.to_thread(ctx.store.list_credentials)
    counts: dict[int, int] = {}
    for record in credentials:
        counts[record.cache_id] = counts.get(record.cache_id, 0) + 1
    rows = []
    answers = await asyncio.gather(*(_live_stats(ctx, cache.id) for cache in caches))
    for cache, answer in zip(caches, answers, strict=True):
        live = answer or {}
        used = live.get("bytes", 0)
        rows.append(
            {
                "cache": cache,
                "known": answer is not None,
                "plan": format_size(cache.plan),
                "used": used,
                "percent": 100.0 * used / cache.plan if cache.plan else 0.0,
                "item_count": live.get("curr_items", 0),
                "connections": live.get("curr_connections", 0),
                "credentials": counts.get(cache.id, 0),
            }
        )
    new = values.get("new")
    panel = _panel(nodes, caches)
    return render(
        request,
        "admin.html",
        rows=rows,
        plans=[(slug, format_size(size)) for slug, size in ctx.settings.plans],
        notice=NOTICES.get(request.query_params.get("notice", "")),
        servers_line=await _servers_line(ctx, new[0]) if new else "",
        panel=panel,
        warnings=[entry["warning"] for entry in panel if entry["warning"]],
        **values,
    )


@router.get(ADMIN, include_in_schema=False)
async def admin_home(request: Request) -> Response:
    if not admin_ok(dashboard_context(request), current_session(request)):
        return redirect(request, f"{ADMIN}/login")
    return await _admin_page(request)


async def _admin_post(request: Request) -> tuple[Mapping[str, str], DashboardContext] | Response:
    """A form posted to the operator pages: the checked form (CSRF first) and the context;
    or the redirect to the operator sign-in when the session is not the operator's."""
    form = await check_form(request)
    ctx = dashboard_context(request)
    if not admin_ok(ctx, current_session(request)):
        return redirect(request, f"{ADMIN}/login")
    return form, ctx


@router.post(f"{ADMIN}/caches", include_in_schema=False)
async def admin_create(request: Request) -> Response:
    posted = await _admin_post(request)
    if isinstance(posted, Response):
        return posted
    form, ctx = posted
    plan = _plan(ctx, form.get("plan", "")) or ctx.settings.default_plan
    name = form.get("name", "").strip()
    try:
        nodes = await asyncio.to_thread(ctx.store.list_nodes)
        cluster = clusters.cluster_for_new_cache(nodes)
        cache = await asyncio.to_thread(ctx.store.create_cache, name, plan, cluster=cluster)
        created = await asyncio.to_thread(ctx.store.create_credential, cache.id, primary=True)
        log_change("cache created", cache=cache.name, plan=plan, credential=created.record.username)
        await ctx.changed()
    except StoreFailed:
        raise  # the database failed: a server error, not a refused request
    except ControlError as exc:
        return await _admin_page(request, error=str(exc))
    # The primary credential's password is shown now and never again.
    return await _admin_page(request, new=(cache, created.record, created.password))


@router.post(ADMIN + "/caches/{cache_id}/resize", include_in_schema=False)
async def admin_resize(request: Request, cache_id: int) -> Response:
    posted = await _admin_post(request)
    if isinstance(posted, Response):
        return posted
    form, ctx = posted
    plan = _plan(ctx, form.get("plan", ""))
    if plan is None:
        return redirect(request, f"{ADMIN}?notice=bad_plan")
    try:
        resized = await asyncio.to_thread(ctx.store.update_cache, cache_id, plan=plan)
        log_change("cache plan changed", cache=resized.name, plan=plan)
        await ctx.changed()
    except StoreFailed:
        raise  # the database failed: a server error, not a refused request
    except ControlError as exc:
        return await _admin_page(request, error=str(exc))
    return redirect(request, f"{ADMIN}?notice=resized")


@router.post(ADMIN + "/caches/{cache_id}/delete", include_in_schema=False)
async def admin_delete(request: Request, cache_id: int) -> Response:
    posted = await _admin_post(request)
    if isinstance(posted, Response):
        return posted
    form, ctx = posted
    try:
        cache = await asyncio.to_thread(ctx.store.find_cache, cache_id)
        if form.get("confirm_name", "").strip() != cache.name:
            return redirect(request, f"{ADMIN}?notice=confirm")
        await asyncio.to_thread(ctx.store.delete_cache, cache_id)
        log_change("cache deleted", cache=cache.name)
        await ctx.changed()
    except StoreFailed:
        raise  # the database failed: a server error, not a refused request
    except ControlError as exc:
        return await _admin_page(request, error=str(exc))
    return redirect(request, f"{ADMIN}?notice=deleted")
