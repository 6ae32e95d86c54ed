"""A cache's Deploy hook page: its hook tokens first (create, list, revoke; a new token's
URL shown once, with the commands for Heroku, GitHub and GitLab), then the legacy commands
that carry a credential, with why a token is better.

Anyone signed in to the cache sees the page. Creating a token needs what flushing and the
settings page need (the flush and API capabilities, single sign-on or the operator): a
token is a flush. Revoking one needs the API capability. The rules are the store's
(memcloud.control.hooks); a refusal is shown on the page (400) in its words.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from memcloud.control.base import ControlError, StoreFailed
from memcloud.control.hook_records import NewHook
from memcloud.control.hooks import hook_url
from memcloud.dashboard.access import Viewer, viewer_for
from memcloud.dashboard.context import dashboard_context
from memcloud.dashboard.pages import cache_pages, credential_hooks
from memcloud.dashboard.web import PREFIX, check_form, current_session, redirect, render
from memcloud.logs import log_change

__all__ = ["HOOK_NOTICES", "router"]

router = APIRouter()

HOOK_NOTICES = {
    "revoked": "Deploy hook revoked: its URL no longer flushes.",
    "not_allowed": "This credential may not do that (it lacks the flush or API capability).",
    "gone": "That deploy hook no longer exists.",
}


def _base(cache_id: int) -> str:
    return f"{PREFIX}/caches/{cache_id}/deploy"


def _commands(url: str) -> dict[str, str]:
    """What to paste where, for a token's URL."""
    return {
        "curl": f'curl -X POST "{url}"',
        "heroku": f'heroku addons:create deployhooks:http --url="{url}"',
        "webhook": f"heroku webhooks:add -i api:release -l notify -u {url}",
    }


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    status: int = 200,
    new: NewHook | None = None,
    **values: Any,
) -> Response:
    ctx = dashboard_context(request)
    cache_id = viewer.cache.id

    def load() -> tuple[Any, Any]:
        return ctx.store.list_hooks(cache_id), ctx.store.list_credentials(cache_id)

    hooks, credentials = await asyncio.to_thread(load)
    wanted = request.query_params.get("credential", "").upper()
    usable = [c for c in credentials if c.api and c.flush]
    chosen = next((c for c in credentials if c.username == wanted), None)
    if chosen is None:
        chosen = next((c for c in usable if c.primary), None)
    if chosen is None and (usable or credentials):
        chosen = (usable or credentials)[0]
    shown = None
    if new is not None:
        url = hook_url(str(request.base_url), new.token)
        shown = {"record": new.record, "token": new.token, "url": url, **_commands(url)}
    return render(
        request,
        "deploy.html",
        status_code=status,
        viewer=viewer,
        cache=viewer.cache,
        pages=cache_pages(cache_id),
        active="deploy",
        notice=HOOK_NOTICES.get(request.query_params.get("notice", "")),
        tokens=[h for h in hooks if not h.revoked],
        revoked=[h for h in hooks if h.revoked],
        new=shown,
        example=_commands(hook_url(str(request.base_url), "TOKEN")),
        credentials=credentials,
        chosen=chosen,
        hooks=credential_hooks(request, viewer, chosen, None),
        **values,
    )


@router.get(PREFIX + "/caches/{cache_id}/deploy", include_in_schema=False)
async def deploy_page(request: Request, cache_id: int) -> Response:
    viewer = await viewer_for(request, current_session(request), cache_id)
    if viewer is None:
        return redirect(request, f"{PREFIX}/login?next={_base(cache_id)}")
    return await _page(request, viewer)


async def _posted(request: Request, cache_id: int, *, create: bool) -> Any:
    """The form's fields and the viewer, or the redirect that refuses the post."""
    form = await check_form(request)
    viewer = await viewer_for(request, current_session(request), cache_id)
    if viewer is None:
        return redirect(request, f"{PREFIX}/login?next={_base(cache_id)}")
    if not viewer.can_manage or (create and not viewer.can_flush):
        return redirect(request, f"{_base(cache_id)}?notice=not_allowed")
    return form, viewer


@router.post(PREFIX + "/caches/{cache_id}/deploy/hooks", include_in_schema=False)
async def create_hook(request: Request, cache_id: int) -> Response:
    posted = await _posted(request, cache_id, create=True)
    if isinstance(posted, Response):
        return posted
    form, viewer = posted
    store = dashboard_context(request).store
    try:
        new = await asyncio.to_thread(
            store.create_hook,
            cache_id,
            name=form.get("name", ""),
            prefix=form.get("prefix", "").strip(),
            now=time.time(),
        )
    except StoreFailed:
        raise
    except ControlError as exc:
        return await _page(request, viewer, status=400, error=str(exc))
    log_change("deploy hook created", cache=viewer.cache.name, hook=new.record.id)
    # Rendered here, not redirected: the token is shown once and is stored nowhere.
    return await _page(request, viewer, new=new)


@router.post(PREFIX + "/caches/{cache_id}/deploy/hooks/{hook_id}/revoke", include_in_schema=False)
async def revoke_hook(request: Request, cache_id: int, hook_id: int) -> Response:
    posted = await _posted(request, cache_id, create=False)
    if isinstance(posted, Response):
        return posted
    _, viewer = posted
    store = dashboard_context(request).store
    try:
        await asyncio.to_thread(store.revoke_hook, cache_id, hook_id, time.time())
    except StoreFailed:
        raise
    except ControlError:
        return redirect(request, f"{_base(cache_id)}?notice=gone")
    log_change("deploy hook revoked", cache=viewer.cache.name, hook=hook_id)
    return redirect(request, f"{_base(cache_id)}?notice=revoked")
