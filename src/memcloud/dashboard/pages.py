"""A cache's dashboard: sign-in, overview, settings (credentials), flush, and the credential
commands the deploy-hook page (dashboard/hooks.py) shows after its tokens."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from memcloud.admission import plan_connection_limit
from memcloud.control.base import Conflict, ControlError, StoreFailed
from memcloud.control.models import CredentialRecord
from memcloud.dashboard import charts, latency, metrics
from memcloud.dashboard.access import Viewer, admin_ok, viewer_for
from memcloud.dashboard.context import dashboard_context
from memcloud.dashboard.web import (
    PREFIX,
    Page,
    check_form,
    current_session,
    end_session,
    redirect,
    render,
    throttled,
)
from memcloud.logs import log_change
from memcloud.protocol.prefix import prefix_error
from memcloud.stats.sampling import sample_interval

__all__ = ["NOTICES", "cache_pages", "credential_hooks", "router"]

router = APIRouter()

# Messages shown after a form redirects back: keys in the URL, never free text.
NOTICES = {
    "created": "Credential created.",
    "updated": "Capabilities saved.",
    "promoted": "Primary credential changed. Update MEMCACHIER_USERNAME/PASSWORD of your app.",
    "deleted": "Credential deleted.",
    "flushed": "Cache flushed: every item is gone.",
    "prefix_flushed": "Prefix flushed: every item whose key starts with it is gone; the others"
    " stay (the item count drops as the servers reclaim them).",
    "bad_prefix": "That prefix cannot begin a key: at most 250 bytes, no space or control"
    " character.",
    "enabled": "Cache enabled.",
    "self_delete": "You cannot delete the credential you are signed in with.",
    "self_api": "You cannot remove the API capability from the credential you are signed in "
    "with: you would lose access to this page's settings.",
    "primary_delete": "The primary credential cannot be deleted; promote another one first.",
    "not_allowed": "This credential may not do that (it lacks the capability).",
    "confirm": "Tick the confirmation box to flush.",
    "flush_failed": "The flush did not reach every server; try again.",
    "gone": "That credential no longer exists.",
}

FLUSH_LOG_LIMIT = 50
# The all-time stats card: commands with hits and misses, as the hosted dashboard shows them.
COMMANDS = ("get", "delete", "incr", "decr", "cas", "touch")


def cache_pages(cache_id: int) -> list[Page]:
    base = f"{PREFIX}/caches/{cache_id}"
    return [
        Page("overview", "Overview", base),
        Page("settings", "Settings", f"{base}/settings"),
        Page("alerts", "Alerts", f"{base}/alerts"),
        Page("introspection", "Introspection", f"{base}/introspection"),
        Page("flush", "Flush", f"{base}/flush"),
        Page("deploy", "Deploy hook", f"{base}/deploy"),
    ]


def _login_redirect(request: Request) -> Response:
    target = quote(request.url.path, safe="/")
    return redirect(request, f"{PREFIX}/login?next={target}")


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


async def _viewer(request: Request, cache_id: int) -> Viewer | None:
    return await viewer_for(request, current_session(request), cache_id)


async def _form_post(
    request: Request, cache_id: int, *, flush: bool = False
) -> tuple[Mapping[str, str], Viewer, str] | Response:
    """A posted form of a cache's settings (or, with `flush`, flush) page: the checked form,
    the viewer and the page to redirect back to; or the redirect that refuses the post."""
    form = await check_form(request)
    viewer = await _viewer(request, cache_id)
    if viewer is None:
        return _login_redirect(request)
    base = f"{PREFIX}/caches/{cache_id}/{'flush' if flush else 'settings'}"
    if not (viewer.can_flush if flush else viewer.can_manage):
        return redirect(request, f"{base}?notice=not_allowed")
    return form, viewer, base


def _page(request: Request, viewer: Viewer, key: str, template: str, **values: Any) -> Response:
    return render(
        request,
        template,
        viewer=viewer,
        cache=viewer.cache,
        pages=cache_pages(viewer.cache.id),
        active=key,
        notice=_notice(request),
        **values,
    )


# -- sign-in ---------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str | None:
    """Only our own dashboard paths: never an open redirect."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return None


@router.get(PREFIX, include_in_schema=False)
@router.get(f"{PREFIX}/", include_in_schema=False)
async def home(request: Request) -> Response:
    session = current_session(request)
    if admin_ok(dashboard_context(request), session):
        return redirect(request, f"{PREFIX}/admin")
    if session.kind == "cache":
        return redirect(request, f"{PREFIX}/caches/{session.cache_id}")
    return redirect(request, f"{PREFIX}/login")


@router.get(f"{PREFIX}/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_safe_next(request.query_params.get("next")))


@router.post(f"{PREFIX}/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await check_form(request)
    ctx = dashboard_context(request)
    username = form.get("username", "").strip().upper()
    wait = ctx.guard.refusal(request, username)
    if wait is not None:
        next_page = _safe_next(form.get("next"))
        return throttled(request, "login.html", wait, username=username, next=next_page)
    principal = ctx.authenticate(username, form.get("password", "").strip())
    if principal is None:
        ctx.guard.failed(request, username)
        return render(
            request,
            "login.html",
            status_code=401,
            error="Unknown username or wrong password (or the cache is disabled).",
            username=username,
            next=_safe_next(form.get("next")),
        )
    session = current_session(request).signed_in(
        kind="cache",
        cache_id=principal.cache_id,
        credential_id=principal.credential_id,
        username=principal.username,
        via="password",
        generation=principal.generation,
    )
    home = f"{PREFIX}/caches/{principal.cache_id}"
    target = _safe_next(form.get("next")) or home
    if not (target == home or target.startswith(home + "/")):
        target = home
    return redirect(request, target, session)


@router.post(f"{PREFIX}/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    await check_form(request)
    await end_session(request)
    return redirect(request, f"{PREFIX}/login", None)


# -- overview --------------------------------------------------------------------------------


@router.get(PREFIX + "/caches/{cache_id}", include_in_schema=False)
async def overview(request: Request, cache_id: int) -> Response:
    viewer = await _viewer(request, cache_id)
    if viewer is None:
        return _login_redirect(request)
    ctx = dashboard_context(request)
    span_name = request.query_params.get("range", "hour")
    if span_name not in metrics.RANGES:
        span_name = "hour"
    span = metrics.RANGES[span_name]
    now = ctx.now()
    samples = await asyncio.to_thread(
        ctx.store.stats_samples, cache_id, now - max(span, metrics.HOUR) - 60, now
    )
    readings = [(s.at, s.server, s.stats) for s in samples]
    history = metrics.complete(metrics.merge_samples(readings, sample_interval()))
    live = await ctx.live_stats(cache_id) or {"limit_maxbytes": viewer.cache.plan}
    started = getattr(request.app.state, "dashboard_started", now)
    card = metrics.overview(live, history, now, started)
    points = [p for p in history if p.at >= now - span] + [metrics.Point(now, live)]
    lines = metrics.series(points)
    start = now - span
    graphs = [
        await latency.latency_chart(ctx, cache_id, start, now),
        charts.memory_chart(lines["bytes"], lines["limit"], start, now),
        charts.line_chart(
            "Hit rate (%)",
            [charts.Line("hit rate", "c2", lines["hit_rate"])],
            start,
            now,
            y_max=100.0,
        ),
        charts.line_chart(
            "Connections",
            [
                charts.Line("active", "c3", lines["connections"]),
                charts.Line("new per second", "c4", lines["new_connections"]),
            ],
            start,
            now,
        ),
        charts.line_chart(
            "Items and evictions",
            [
                charts.Line("items", "c1", lines["items"]),
                charts.Line("evictions", "c5", lines["evictions"]),
            ],
            start,
            now,
        ),
    ]
    rows = [(name, live.get(f"{name}_hits", 0), live.get(f"{name}_misses", 0)) for name in COMMANDS]
    return _page(
        request,
        viewer,
        "overview",
        "overview.html",
        card=card,
        connection_limit=plan_connection_limit(viewer.cache.plan, ctx.settings),
        latency_us=await latency.latency_now(ctx, cache_id, now),
        donut=charts.donut(card.memory_percent, "good" if card.memory_percent < 90 else "warn"),
        graphs=graphs,
        ranges=list(metrics.RANGES),
        range=span_name,
        rows=rows,
        bars=charts.bars(rows),
        totals={
            "set": live.get("cmd_set", 0),
            "flush": live.get("cmd_flush", 0),
            "cas_badval": live.get("cas_badval", 0),
        },
    )


# -- settings: cache facts and credentials ----------------------------------------------------


async def _settings_page(
    request: Request, viewer: Viewer, new: tuple[CredentialRecord, str] | None = None
) -> Response:
    ctx = dashboard_context(request)
    credentials = await asyncio.to_thread(ctx.store.list_credentials, viewer.cache.id)
    return _page(
        request,
        viewer,
        "settings",
        "settings.html",
        credentials=credentials,
        servers=await ctx.servers(viewer.cache.cluster),
        new=new,
        hooks=credential_hooks(request, viewer, new[0], new[1]) if new else None,
    )


@router.get(PREFIX + "/caches/{cache_id}/settings", include_in_schema=False)
async def settings_page(request: Request, cache_id: int) -> Response:
    viewer = await _viewer(request, cache_id)
    if viewer is None:
        return _login_redirect(request)
    return await _settings_page(request, viewer)


@router.post(PREFIX + "/caches/{cache_id}/credentials", include_in_schema=False)
async def create_credential(request: Request, cache_id: int) -> Response:
    posted = await _form_post(request, cache_id)
    if isinstance(posted, Response):
        return posted
    form, viewer, _ = posted
    ctx = dashboard_context(request)
    created = await asyncio.to_thread(
        ctx.store.create_credential,
        cache_id,
        write="write" in form,
        flush="flush" in form,
        api="api" in form,
    )
    log_change("credential created", cache=viewer.cache.name, credential=created.record.username)
    await ctx.changed()
    # Rendered here, not redirected: the password is shown once and is stored nowhere.
    return await _settings_page(request, viewer, (created.record, created.password))


async def _credential_action(
    request: Request, cache_id: int, credential_id: int, action: str
) -> Response:
    posted = await _form_post(request, cache_id)
    if isinstance(posted, Response):
        return posted
    form, viewer, base = posted
    ctx = dashboard_context(request)
    store = ctx.store
    try:
        record = await asyncio.to_thread(store.find_credential, cache_id, credential_id)
    except StoreFailed:
        raise  # the database failed: not a credential that is gone
    except ControlError:
        return redirect(request, f"{base}?notice=gone")
    is_self = viewer.credential is not None and viewer.credential.id == record.id
    if action == "capabilities":
        api = "api" in form
        if is_self and not api:
            return redirect(request, f"{base}?notice=self_api")
        await asyncio.to_thread(
            store.update_credential,
            record.id,
            write="write" in form,
            flush="flush" in form,
            api=api,
        )
        notice = "updated"
    elif action == "promote":
        await asyncio.to_thread(store.promote_credential, record.id)
        notice = "promoted"
    else:
        if is_self:
            return redirect(request, f"{base}?notice=self_delete")
        if record.primary:
            return redirect(request, f"{base}?notice=primary_delete")
        try:
            await asyncio.to_thread(store.delete_credential, record.id)
        except Conflict:
            # Promoted by someone else since it was read: the store refuses it as primary.
            return redirect(request, f"{base}?notice=primary_delete")
        notice = "deleted"
    log_change(f"credential {notice}", cache=viewer.cache.name, credential=record.username)
    await ctx.changed()
    return redirect(request, f"{base}?notice={notice}")


@router.post(
    PREFIX + "/caches/{cache_id}/credentials/{credential_id}/capabilities", include_in_schema=False
)
async def update_capabilities(request: Request, cache_id: int, credential_id: int) -> Response:
    return await _credential_action(request, cache_id, credential_id, "capabilities")


@router.post(
    PREFIX + "/caches/{cache_id}/credentials/{credential_id}/promote", include_in_schema=False
)
async def promote(request: Request, cache_id: int, credential_id: int) -> Response:
    return await _credential_action(request, cache_id, credential_id, "promote")


@router.post(
    PREFIX + "/caches/{cache_id}/credentials/{credential_id}/delete", include_in_schema=False
)
async def delete(request: Request, cache_id: int, credential_id: int) -> Response:
    return await _credential_action(request, cache_id, credential_id, "delete")


@router.post(PREFIX + "/caches/{cache_id}/enable", include_in_schema=False)
async def enable(request: Request, cache_id: int) -> Response:
    posted = await _form_post(request, cache_id)
    if isinstance(posted, Response):
        return posted
    _, viewer, base = posted
    ctx = dashboard_context(request)
    await asyncio.to_thread(ctx.store.update_cache, cache_id, enabled=True)
    log_change("cache enabled", cache=viewer.cache.name)
    await ctx.changed()
    return redirect(request, f"{base}?notice=enabled")


# -- flush -----------------------------------------------------------------------------------


@router.get(PREFIX + "/caches/{cache_id}/flush", include_in_schema=False)
async def flush_page(request: Request, cache_id: int) -> Response:
    viewer = await _viewer(request, cache_id)
    if viewer is None:
        return _login_redirect(request)
    ctx = dashboard_context(request)
    log = await asyncio.to_thread(ctx.store.flush_log, cache_id, FLUSH_LOG_LIMIT)
    live = await ctx.live_stats(cache_id) or {}
    return _page(
        request,
        viewer,
        "flush",
        "flush.html",
        log=log,
        pending=await ctx.pending_flushes(cache_id) if ctx.pending_flushes else 0,
        items=live.get("curr_items", 0),
        used=live.get("bytes", 0),
    )


@router.post(PREFIX + "/caches/{cache_id}/flush", include_in_schema=False)
async def flush(request: Request, cache_id: int) -> Response:
    posted = await _form_post(request, cache_id, flush=True)
    if isinstance(posted, Response):
        return posted
    form, viewer, base = posted
    if form.get("confirm") != "yes":
        return redirect(request, f"{base}?notice=confirm")
    prefix = form.get("prefix", "").encode("utf-8", "replace")
    if prefix_error(prefix):
        return redirect(request, f"{base}?notice=bad_prefix")
    peer = request.client.host if request.client else ""
    done = await dashboard_context(request).flush(cache_id, viewer.who, peer, prefix)
    notice = ("prefix_flushed" if prefix else "flushed") if done else "flush_failed"
    return redirect(request, f"{base}?notice={notice}")


# -- the deploy-hook page's legacy commands (its page: dashboard/hooks.py) ----------------


def credential_hooks(
    request: Request, viewer: Viewer, credential: CredentialRecord | None, password: str | None
) -> dict[str, str] | None:
    """The exact commands and URLs for this cache on this server (password if known)."""
    if credential is None:
        return None
    base = str(request.base_url).rstrip("/")
    scheme, _, hostport = base.partition("://")
    user = credential.username
    secret = password or "PASSWORD"
    cache_id = viewer.cache.id
    basic = (
        base64.b64encode(f"{user}:{secret}".encode()).decode()
        if password
        else "BASE64_OF_USERNAME:PASSWORD"
    )
    return {
        "login": f'curl "{base}/api/v1/login" --user {user}:{secret}',
        "flush_v1": f'curl "{base}/api/v1/{cache_id}/flush" -X POST --user {user}:{secret}',
        "flush_v2": f'curl "{base}/api/v2/caches/{cache_id}/flush" -X POST --user {user}:{secret}',
        "hook_url": f"{scheme}://{user}:{secret}@{hostport}/api/v1/{cache_id}/flush",
        "hook_url_prefix": f"{scheme}://{user}:{secret}@{hostport}/api/v1/{cache_id}/flush"
        "?prefix=views%3A",
        "heroku_hook": f'heroku addons:create deployhooks:http --url="{scheme}://{user}:{secret}'
        f'@{hostport}/api/v1/{cache_id}/flush"',
        "webhook": f"heroku webhooks:add -i api:release -l notify -u "
        f"{base}/api/v2/caches/{cache_id}/flush -t 'Basic {basic}'",
    }
