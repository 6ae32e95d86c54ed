"""Single sign-on into a cache's dashboard.

`POST /sso/login` (a form the platform's browser posts: `resource_id`, `timestamp`,
`resource_token` or `user_scoped_resource_token`, and for the latter `user_id`/`email`)
opens a dashboard session for the cache provisioned with that resource uuid and redirects
(302) to its overview; anything wrong answers 403. Rotating a cache's SSO secret
(`POST /api/v2/caches/<id>/rotate_sso`, which refuses tokens made before it and ends earlier
SSO sessions) is a v2 API route, with the API's credentials and error shapes: api/v2.py.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from memcloud.auth_throttle import sso_username
from memcloud.control.base import NotFound
from memcloud.dashboard.context import dashboard_context
from memcloud.dashboard.web import PREFIX, current_session, redirect
from memcloud.provisioning.partner import UUID_RE
from memcloud.provisioning.tokens import TOKEN_SECONDS, token_hash, token_ok

__all__ = ["router"]

router = APIRouter()
# Resource ids are at most 64 characters (UUID_RE); longer ones are counted by their start.
MAX_RESOURCE_CHARS = 64


def _forbidden(reason: str) -> Response:
    return PlainTextResponse(f"Forbidden: {reason}", status_code=403)


@router.post("/sso/login", include_in_schema=False)
async def sso_login(request: Request) -> Response:
    ctx = dashboard_context(request)
    salt = ctx.settings.sso_salt
    if not salt:
        return _forbidden("single sign-on is not enabled (memcloud serve --sso-salt)")
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    resource_id = fields.get("resource_id") or fields.get("id") or ""
    timestamp = fields.get("timestamp", "")
    token = fields.get("user_scoped_resource_token") or fields.get("resource_token") or ""
    if not (resource_id and timestamp.isdigit() and token):
        return _forbidden("resource_id, timestamp and resource_token are required")
    now = ctx.now()
    if abs(now - int(timestamp)) > TOKEN_SECONDS:
        return _forbidden("the token has expired")
    # Bad tokens are guesses: bounded per address prefix and per resource (auth_throttle).
    throttle_name = sso_username(resource_id[:MAX_RESOURCE_CHARS])
    wait = ctx.guard.refusal(request, throttle_name)
    if wait is not None:
        refused = PlainTextResponse("Too many failed sign-ins; try again later", 429)
        refused.headers["Retry-After"] = wait
        return refused
    if not token_ok(
        token,
        resource_id=resource_id,
        salt=salt,
        timestamp=timestamp,
        user_id=fields.get("user_id", ""),
        user_email=fields.get("email") or fields.get("user_email", ""),
    ):
        ctx.guard.failed(request, throttle_name)
        return _forbidden("the token does not match")
    if not UUID_RE.match(resource_id) or resource_id.isdigit():
        return _forbidden("no such resource")
    try:
        cache = await asyncio.to_thread(ctx.store.find_cache, resource_id)
        version, not_before = await asyncio.to_thread(ctx.store.sso_state, cache.id)
    except NotFound:
        return _forbidden("no such resource")
    if int(timestamp) <= not_before:
        return _forbidden("the token was made before the SSO secret was rotated")
    # A token opens one session: remembered (in its canonical spelling) in the control
    # store until it could no longer pass the time check, so neither another spelling nor
    # a restart reopens it.
    used = await asyncio.to_thread(
        ctx.store.use_sso_token, token_hash(token), int(timestamp) + TOKEN_SECONDS + 1, int(now)
    )
    if not used:
        return _forbidden("the token was used already")
    session = current_session(request).signed_in(
        kind="cache",
        cache_id=cache.id,
        via="sso",
        sso_version=version,
        generation=cache.generation,
    )
    response = redirect(request, f"{PREFIX}/caches/{cache.id}", session)
    response.status_code = 302
    return response
