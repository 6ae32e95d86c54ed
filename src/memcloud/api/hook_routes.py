"""Deploy hooks that survive credential rotation (memcloud's extension, issue 13):
`POST /api/v1/hooks/<token>/flush`, and the v2 routes that manage a cache's tokens.

The flush route takes no credential: the token in its path is the secret, and it can only
flush its cache (only its prefix, if it has one). Guessing is throttled as logins are
(auth_throttle, on one name for every token): a token of the right form that matches no
hook counts as a failed login, and while the client's network must wait the route answers
429 before looking anything up. A revoked token is told so (it cannot be guessed), and a
token never reaches a cache made after its own was deleted (the cache's generation). GitHub
and GitLab requests must also prove they know the token (api/hook_senders.py). Answers are
v1's flush answers: 200 with `""` once flushed, v1's error strings otherwise.

Managing tokens is v2's: a credential with the API capability lists and revokes them;
creating one also needs the flush capability (a token is a flush).
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.api.alerts_models import body_doc
from memcloud.api.auth import authorize
from memcloud.api.context import ApiContext, context
from memcloud.api.credential_ops import cache_name
from memcloud.api.errors import ApiError, Problem
from memcloud.api.hook_senders import read_hook
from memcloud.api.hooks import read_body
from memcloud.api.hooks_models import HookBody, HookFlushDone, HookToken, NewHookToken
from memcloud.api.models import errors
from memcloud.api.record_json import hook_json
from memcloud.api.shapes import nodes_call, peer_of, store_call
from memcloud.api.v1 import FLUSH_BODY_DOC
from memcloud.auth_throttle import HOOK_USERNAME
from memcloud.control.base import ControlError
from memcloud.control.hook_records import HookRecord
from memcloud.control.hooks import HOOK_PATH, hook_url, is_token_form, validate_hook
from memcloud.logs import log_change
from memcloud.webauth import LoginGuard

__all__ = ["router"]

router = APIRouter(tags=["hooks"])
_MANAGE = "/api/v2/caches/{cache_id}/hooks"

_UNKNOWN = "Unknown deploy hook token."
_REVOKED = "This deploy hook token was revoked; create a new one and update the hook."
_DISABLED = "The cache of this deploy hook is disabled."
_NEW_MESSAGE = (
    "The token is shown only now: the hook URL carries it and no credential, so rotating "
    "credentials leaves the hook working. For GitHub, set the webhook's secret to the token;"
    " for GitLab, its secret token."
)

_FLUSH_ERRORS = errors(
    "v1",
    e400="what is wrong with the prefix",
    e401="A GitHub or GitLab request whose signature or token header does not match",
    e403="Unknown deploy hook token. / This deploy hook token was revoked ... / disabled",
    e413="Request body too large.",
    e429="Too many failed logins. Try again later. (see Retry-After)",
    e500="Server error: host:port,... (the servers that failed)",
)
_MANAGE_ERRORS = errors(
    "v2",
    e400="The specified cache ID is invalid (not a number). / what is wrong with the body",
    e401="Unauthorized to access cache with this ID. / Bad user",
    e403="Forbidden to access cache with this ID.",
    e404="Cache not found. / Deploy hook not found.",
    e413="Request Entity Too Large",
    e429="Too many failed logins. Try again later. (see Retry-After)",
    e500="Unexpected error.",
)


# The query parameter (read from the request itself, as the v1 flush reads its own).
_PREFIX_PARAMETER: dict[str, Any] = {
    "name": "prefix",
    "in": "query",
    "required": False,
    "description": "flush only keys starting with this, within the token's own prefix",
    "schema": {"type": "string"},
}
_FLUSH_DOC = {**FLUSH_BODY_DOC, "parameters": [_PREFIX_PARAMETER]}


def _flush_prefix(request: Request, hook: HookRecord) -> str:
    """The prefix to flush: the query's (checked as a token's prefix is), which must lie
    within the token's own; the token's when the query names none."""
    given = request.query_params.getlist("prefix")
    if len(given) > 1:
        raise ApiError(Problem.BAD_REQUEST, "give one prefix, not several")
    asked = given[0] if given else ""
    try:
        validate_hook("", asked)
    except ControlError as exc:
        raise ApiError(Problem.BAD_REQUEST, str(exc)) from None
    if not asked:
        return hook.prefix
    if not asked.startswith(hook.prefix):
        raise ApiError(
            Problem.HOOK_REFUSED,
            f"This deploy hook may only flush keys starting with {hook.prefix!r}.",
        )
    return asked


async def _hook_of(ctx: ApiContext, request: Request, token: str) -> HookRecord:
    """The live hook of `token`, or the refusal (throttled as a login)."""
    guard = LoginGuard.of(ctx.service)
    wait = guard.refusal(request, HOOK_USERNAME)
    if wait is not None:
        raise ApiError(Problem.THROTTLED, headers={"Retry-After": wait})
    hook = (
        await store_call(ctx.store.use_hook, token, time.time()) if is_token_form(token) else None
    )
    if hook is None:
        if is_token_form(token):
            # A token of the right form is a guess; any other string cannot match any hook.
            guard.failed(request, HOOK_USERNAME)
        raise ApiError(Problem.HOOK_REFUSED, _UNKNOWN)
    if hook.revoked:
        raise ApiError(Problem.HOOK_REFUSED, _REVOKED)
    cache = ctx.service.directory.caches.get(hook.cache_id)
    if cache is None or cache.generation != hook.generation:
        raise ApiError(Problem.HOOK_REFUSED, _UNKNOWN)
    if not cache.enabled:
        raise ApiError(Problem.HOOK_REFUSED, _DISABLED)
    return hook


@router.post(
    HOOK_PATH,
    operation_id="hook_flush",
    response_model=HookFlushDone,
    responses=_FLUSH_ERRORS,
    openapi_extra=_FLUSH_DOC,
    summary="Flush the token's cache (deploy hooks; GitHub and GitLab webhooks) - memcloud",
)
async def hook_flush(token: str, request: Request) -> Response:
    ctx = context(request)
    body = await read_body(request)
    # The signature proves knowledge of the token in the path, so it is checked first: a
    # refusal here says nothing about whether the token exists.
    verdict = read_hook(request.headers, body, token)
    hook = await _hook_of(ctx, request, token)
    if not verdict.flush:
        return JSONResponse(verdict.reason)
    wanted = _flush_prefix(request, hook)
    details = {"hook": str(hook.id), "sender": verdict.sender, **verdict.details}
    if hook.name:
        details["hook_name"] = hook.name
    if verdict.event:
        details["event"] = verdict.event
    await nodes_call(
        ctx.deployment.flush(
            hook.cache_id,
            "hook",
            f"hook:{hook.id}",
            peer_of(request),
            details,
            prefix=wanted.encode(),
        )
    )
    return JSONResponse("")


# -- management (v2) -------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_body(request)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ApiError(Problem.BAD_REQUEST, "The request body must be a JSON object.")
    unknown = sorted(set(data) - {"name", "prefix"})
    if unknown:
        raise ApiError(Problem.BAD_REQUEST, f"unknown fields: {', '.join(unknown)}")
    return data


@router.get(
    _MANAGE,
    operation_id="v2_list_hooks",
    response_model=list[HookToken],
    responses=_MANAGE_ERRORS,
    summary="List the cache's deploy-hook tokens (never the tokens) - memcloud",
)
async def list_hooks(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    hooks = await store_call(ctx.store.list_hooks, principal.cache_id, not_found=Problem.NO_CACHE)
    return JSONResponse([hook_json(h) for h in hooks])


@router.post(
    _MANAGE,
    operation_id="v2_create_hook",
    status_code=201,
    response_model=NewHookToken,
    responses=_MANAGE_ERRORS,
    openapi_extra=body_doc(HookBody, required=False),
    summary="Create a deploy-hook token (shown this once; needs the flush capability) - memcloud",
)
async def create_hook(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id, flush=True)
    data = await _body(request)
    new = await store_call(
        ctx.store.create_hook,
        principal.cache_id,
        name=data.get("name", ""),
        prefix=data.get("prefix", ""),
        now=time.time(),
        not_found=Problem.NO_CACHE,
    )
    log_change(
        "deploy hook created",
        cache=cache_name(ctx, principal.cache_id),
        hook=new.record.id,
        prefix=new.record.prefix,
    )
    url = hook_url(str(request.base_url), new.token)
    shown = {**hook_json(new.record), "token": new.token, "url": url, "message": _NEW_MESSAGE}
    return JSONResponse(shown, status_code=201)


@router.delete(
    _MANAGE + "/{hook_id}",
    operation_id="v2_revoke_hook",
    response_model=HookToken,
    responses=_MANAGE_ERRORS,
    summary="Revoke a deploy-hook token (its hook is refused from now on) - memcloud",
)
async def revoke_hook(cache_id: str, hook_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    if not hook_id.isascii() or not hook_id.isdigit() or len(hook_id) > 18:
        raise ApiError(Problem.NO_HOOK)
    record = await store_call(
        ctx.store.revoke_hook,
        principal.cache_id,
        int(hook_id),
        time.time(),
        not_found=Problem.NO_HOOK,
    )
    log_change("deploy hook revoked", cache=cache_name(ctx, principal.cache_id), hook=record.id)
    return JSONResponse(hook_json(record))
