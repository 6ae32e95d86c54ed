"""The platform add-on partner API: provision, change plan, deprovision (Heroku v3 shapes).

* `POST /heroku/resources` `{"uuid", "plan", ...}` creates a cache named by the uuid and its
  primary credential and answers `{"id", "config": {MEMCACHIER_*}, "message"}`. Requests may
  come more than once: the same uuid answers the same config again. The password is derived
  from the uuid with the data dir's secret key, so it never has to be stored in clear.
* `PUT /heroku/resources/<uuid>` `{"plan"}` resizes (growing keeps every item; shrinking
  evicts the least recently used down to the new size).
* Both answer 2xx with a `warnings` list: empty, or the operator's overcommit warning when
  the plans placed on the cache's cluster now exceed its live nodes' memory (also in the
  `X-Memcloud-Warning` header, as `GET /api/admin/servers` gives it). A hosted service does
  not refuse a sale for it: the warning is for the operator, who adds memory or nodes.
* `DELETE /heroku/resources/<uuid>` removes the cache and its credentials (204, also when it
  was already gone: deprovisioning is retried too).

Every call needs HTTP Basic with the provision user and password of `memcloud serve`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from memcloud.auth_throttle import PARTNER_USERNAME
from memcloud.config import format_size, plan_bytes
from memcloud.control import clusters
from memcloud.control.base import Conflict, ControlError, NotFound, StoreFailed
from memcloud.control.clusters import cluster_for_new_cache
from memcloud.control.models import CacheRecord, CredentialRecord
from memcloud.control.secrets import verify_password
from memcloud.dashboard.context import DashboardContext, dashboard_context
from memcloud.logs import log_change
from memcloud.provisioning.models import PARTNER_ERRORS, PlanChanged, Provisioned, partner_errors

__all__ = ["RESOURCES", "UUID_RE", "WARNING_HEADER", "provision_password", "router"]

router = APIRouter(tags=["provisioning"])
RESOURCES = "/heroku/resources"
# Resource ids are UUIDs; they become the cache's name (which must fit the name alphabet).
UUID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{7,63}$")
# The overcommit warnings joined by "; ", for a platform that logs headers, not bodies.
WARNING_HEADER = "X-Memcloud-Warning"
# Provisioning one uuid at a time in this process keeps retries from racing each other.
_lock = asyncio.Lock()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _authorized(ctx: DashboardContext, request: Request) -> JSONResponse | None:
    """None when the request carries the provision user and password; else the refusal."""
    user, password = ctx.settings.provision_user, ctx.settings.provision_password
    if not user or not password:
        return _error(
            503,
            "provisioning is not enabled (memcloud serve --provision-user/--provision-password)",
        )
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    expected = f"{user}:{password}".encode()
    # One secret, so one throttle name whatever user is given (auth_throttle).
    wait = ctx.guard.refusal(request, PARTNER_USERNAME)
    if wait is not None:
        response = _error(429, "too many failed logins; try again later")
        response.headers["Retry-After"] = wait
        return response
    if scheme.lower() != "basic" or not hmac.compare_digest(given, expected):
        if header:  # no credentials at all is no guess
            ctx.guard.failed(request, PARTNER_USERNAME)
        response = _error(401, "unauthorized")
        response.headers["WWW-Authenticate"] = 'Basic realm="memcloud provisioning"'
        return response
    return None


async def _body(request: Request) -> dict[str, Any] | JSONResponse:
    # BodyLimit (api/limits.py) has refused a larger Content-Length before any of the body
    # was read; a chunked body is cut once it streams past the limit, by a 413 HTTPException
    # (its BodyTooLarge) raised while reading: caught by its status, since provisioning sits
    # below the API's package (tests/test_layering.py).
    try:
        raw = await request.body()
    except HTTPException as exc:
        if exc.status_code != 413:
            raise
        response = _error(413, "request body too large")
        response.headers["Connection"] = "close"
        return response
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    return body


async def _authorized_body(request: Request) -> tuple[DashboardContext, dict[str, Any]] | Response:
    """The context and JSON body of an authorized partner call; or the refusal."""
    ctx = dashboard_context(request)
    refused = _authorized(ctx, request)
    if refused is not None:
        return refused
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    return ctx, body


def provision_password(ctx: DashboardContext, uuid: str) -> str:
    """The primary credential's password of a provisioned resource: same uuid, same password."""
    return ctx.signer.derive("provision", uuid)[:32].upper()


async def _config(
    ctx: DashboardContext, uuid: str, cache: CacheRecord, credentials: list[CredentialRecord]
) -> dict[str, str] | None:
    """The config vars of a provisioned cache, if its provisioned credential still exists."""
    password = provision_password(ctx, uuid)
    ordered = sorted(credentials, key=lambda c: not c.primary)
    for record in ordered:
        if verify_password(record, password):
            return {
                "MEMCACHIER_SERVERS": await ctx.servers(cache.cluster),
                "MEMCACHIER_USERNAME": record.username,
                "MEMCACHIER_PASSWORD": password,
            }
    return None


async def _overcommit(ctx: DashboardContext, cache: CacheRecord) -> list[str]:
    """The operator's warning when the plans on the cache's cluster now exceed the memory of
    its live nodes (memcloud.control.clusters); empty when they fit."""
    nodes = await asyncio.to_thread(ctx.store.list_nodes)
    caches = await asyncio.to_thread(ctx.store.list_caches)
    found = []
    for budget in clusters.budgets(nodes, caches):
        warning = clusters.overcommit_warning(budget, format_size)
        if budget.name == cache.cluster and warning is not None:
            found.append(warning)
    return found


def _answer(body: dict[str, object], warnings: list[str]) -> JSONResponse:
    headers = {WARNING_HEADER: "; ".join(warnings)} if warnings else None
    return JSONResponse({**body, "warnings": warnings}, headers=headers)


def _plan(ctx: DashboardContext, slug: object) -> int | None:
    return plan_bytes(ctx.settings.plans, slug) if isinstance(slug, str) else None


def _unknown_plan(ctx: DashboardContext, slug: object) -> JSONResponse:
    names = ", ".join(name for name, _ in ctx.settings.plans)
    return _error(422, f"unknown plan {slug!r}; plans: {names}")


_BODY_ERRORS = {
    **PARTNER_ERRORS,
    **partner_errors(
        e400="the body is not JSON / must be a JSON object",
        e413="request body too large",
    ),
}


@router.post(
    RESOURCES,
    operation_id="partner_provision",
    response_model=Provisioned,
    responses={
        **_BODY_ERRORS,
        **partner_errors(e422="no valid uuid, an unknown plan, or the credential was rotated"),
    },
    summary="Provision a cache for a platform resource",
)
async def provision(request: Request) -> Response:
    checked = await _authorized_body(request)
    if isinstance(checked, Response):
        return checked
    ctx, body = checked
    uuid = body.get("uuid")
    if not isinstance(uuid, str) or not UUID_RE.match(uuid) or uuid.isdigit():
        return _error(422, "uuid is required (the platform's resource id)")
    size = _plan(ctx, body.get("plan"))
    if size is None:
        return _unknown_plan(ctx, body.get("plan"))
    store = ctx.store
    async with _lock:
        try:
            cache: CacheRecord = await asyncio.to_thread(store.find_cache, uuid)
            created = False
        except NotFound:
            try:
                nodes = await asyncio.to_thread(store.list_nodes)
                cluster = cluster_for_new_cache(nodes)
                cache = await asyncio.to_thread(store.create_cache, uuid, size, cluster=cluster)
                await asyncio.to_thread(
                    store.create_credential,
                    cache.id,
                    primary=True,
                    password=provision_password(ctx, uuid),
                )
            except StoreFailed:
                raise  # the database failed: a 500 the platform retries, not a 422
            except (Conflict, ControlError) as exc:
                return _error(422, str(exc))
            created = True
            await ctx.changed()
        credentials = await asyncio.to_thread(store.list_credentials, cache.id)
    config = await _config(ctx, uuid, cache, credentials)
    if config is None:
        return _error(
            422, "this resource is provisioned, but its original credential was rotated away"
        )
    if created:
        log_change("cache provisioned", cache=uuid, plan=size)
    warnings = await _overcommit(ctx, cache)
    plan = format_size(cache.plan)
    message = f"Your {plan} cache is ready." if created else f"Your {plan} cache is ready (again)."
    return _answer({"id": uuid, "config": config, "message": message}, warnings)


@router.put(
    RESOURCES + "/{uuid}",
    operation_id="partner_change_plan",
    response_model=PlanChanged,
    responses={
        **_BODY_ERRORS,
        **partner_errors(e404="no resource <uuid>", e422="unknown plan"),
    },
    summary="Change a resource's plan",
)
async def change_plan(request: Request, uuid: str) -> Response:
    checked = await _authorized_body(request)
    if isinstance(checked, Response):
        return checked
    ctx, body = checked
    size = _plan(ctx, body.get("plan"))
    if size is None:
        return _unknown_plan(ctx, body.get("plan"))
    store = ctx.store
    try:
        cache = await asyncio.to_thread(store.find_cache, uuid)
        if not UUID_RE.match(uuid) or uuid.isdigit():
            raise NotFound(uuid)
        old = cache.plan
        cache = await asyncio.to_thread(store.update_cache, cache.id, plan=size)
        credentials = await asyncio.to_thread(store.list_credentials, cache.id)
    except NotFound:
        return _error(404, f"no resource {uuid}")
    log_change("cache plan changed", cache=uuid, plan=size, previous_plan=old)
    await ctx.changed()
    config = await _config(ctx, uuid, cache, credentials) or {
        "MEMCACHIER_SERVERS": await ctx.servers(cache.cluster)
    }
    change = "kept every item" if size >= old else "evicted the least recently used items"
    message = f"Plan changed from {format_size(old)} to {format_size(size)}; {change}."
    return _answer({"config": config, "message": message}, await _overcommit(ctx, cache))


@router.delete(
    RESOURCES + "/{uuid}",
    operation_id="partner_deprovision",
    status_code=204,
    response_class=Response,
    responses=PARTNER_ERRORS,
    summary="Deprovision a resource (also when it is already gone)",
)
async def deprovision(request: Request, uuid: str) -> Response:
    ctx = dashboard_context(request)
    refused = _authorized(ctx, request)
    if refused is not None:
        return refused
    if UUID_RE.match(uuid) and not uuid.isdigit():
        try:
            cache = await asyncio.to_thread(ctx.store.find_cache, uuid)
            await asyncio.to_thread(ctx.store.delete_cache, cache.id)
            log_change("cache deprovisioned", cache=uuid)
            await ctx.changed()
        except NotFound:
            pass  # already gone: a retried deprovision succeeds too
    return Response(status_code=204)
