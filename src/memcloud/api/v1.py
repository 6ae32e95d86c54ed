"""Analytics API v1 (`/api/v1/<id>/...`), with the documentation's quirks accepted.

- login also at `/api/login` (the documented request line) besides `/api/v1/login`;
- flush is POST only (GET does not flush); the body may be a deploy hook's form or a
  release webhook's JSON, recorded in the flush log; `?prefix=P` flushes only the keys
  starting with P (memcloud extension, api/flush_prefix.py);
- update credentials with POST, PATCH or PUT, by username or id, booleans as JSON or as
  strings ("false"), in the query string or the body (JSON even when sent as a form);
  omitted capabilities stay as they are;
- delete credentials also at `DELETE .../credentials/primary/<username>`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.api import credential_ops
from memcloud.api.auth import authenticate, authorize
from memcloud.api.context import ApiContext, context
from memcloud.api.credential_ops import CAPABILITY_FIELDS, capabilities_body
from memcloud.api.errors import ApiError, Problem
from memcloud.api.flush_prefix import PREFIX_PARAMETER, flush_prefix
from memcloud.api.hooks import flush_details, parse_fields, read_body
from memcloud.api.models import (
    Capabilities,
    V1Credential,
    V1CredentialList,
    V1Done,
    V1HistoryList,
    V1Login,
    V1NewCredential,
    V1StatsByServer,
    errors,
)
from memcloud.api.shapes import (
    capabilities_json,
    credential_v1,
    nodes_call,
    parse_bool,
    peer_of,
    pick_stats,
    store_call,
)

__all__ = ["FLUSH_BODY_DOC", "flush_cache", "router"]

router = APIRouter(tags=["v1"])

# What every route may answer besides its success (api/errors.py's v1 table), as JSON strings.
_V1_ERRORS = errors(
    "v1",
    e403="You are not authorized to perform this action. (no, bad or unfit credentials)",
    e404="No cache found. (or No credential found.)",
    e429="Too many failed logins. Try again later. (see Retry-After)",
    e500="Server error: host:port,... (the servers that failed)",
)
# Routes that change credentials may also refuse the request itself (a capability that is
# not a boolean, deleting the primary while others remain).
_V1_CHANGE_ERRORS = {**errors("v1", e400="what is wrong with the request"), **_V1_ERRORS}
# Routes that read a body: above its limit, 413 before it is read. A flush ignores a body
# it cannot read (it only feeds the flush log); it answers 400 only for a prefix it refuses.
_TOO_LARGE = errors("v1", e413="Request body too large.")
_V1_FLUSH_ERRORS = {
    **errors("v1", e400="what is wrong with the prefix"),
    **_V1_ERRORS,
    **_TOO_LARGE,
}
_V1_BODY_ERRORS = {**_V1_CHANGE_ERRORS, **_TOO_LARGE}
# Documents (for /openapi.json) the prefix and the bodies flush accepts; the route reads the
# raw query string and body.
FLUSH_BODY_DOC: dict[str, Any] = {
    "parameters": [PREFIX_PARAMETER],
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "app",
                            "user",
                            "url",
                            "head",
                            "head_long",
                            "git_log",
                            "prev_head",
                            "release",
                            "prefix",  # the same as the query's `prefix`
                        )
                    },
                }
            },
            "application/json": {
                "schema": {"type": "object", "properties": {"prefix": {"type": "string"}}}
            },
        },
    },
}


async def flush_cache(ctx: ApiContext, request: Request, cache_ref: str) -> None:
    """Authorize, read what the body says (deploy hook, webhook) and the prefix, flush on
    every node."""
    principal = await authorize(ctx, request, cache_ref, flush=True)
    fields = parse_fields(await read_body(request))
    source, details = flush_details(fields)
    prefix = flush_prefix(request, fields)
    await nodes_call(
        ctx.deployment.flush(
            principal.cache_id, source, principal.username, peer_of(request), details, prefix=prefix
        )
    )


@router.get(
    "/api/v1/login",
    operation_id="v1_login",
    response_model=V1Login,
    responses=_V1_ERRORS,
    summary="The cache id of a credential",
)
@router.get(
    "/api/login",
    operation_id="v1_login_documented",
    response_model=V1Login,
    responses=_V1_ERRORS,
    summary="Same as /api/v1/login (the v1 documentation's request line)",
)
async def login(request: Request) -> Response:
    ctx = context(request)
    principal = authenticate(ctx, request)
    if ctx.service.registry.get(principal.cache_id) is None:
        raise ApiError(Problem.NO_CACHE)
    return JSONResponse({"cache_id": principal.cache_id})


@router.get(
    "/api/v1/{cache_id}/stats",
    operation_id="v1_stats",
    response_model=V1StatsByServer,
    responses=_V1_ERRORS,
    summary="Stats per server",
)
async def stats(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    per_node = await nodes_call(ctx.deployment.stats(principal.cache_id))
    return JSONResponse({address: pick_stats(s) for address, s in per_node.items()})


@router.get(
    "/api/v1/{cache_id}/history",
    operation_id="v1_history",
    response_model=V1HistoryList,
    responses=_V1_ERRORS,
    summary="Sampled stats",
)
async def history(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    samples = await store_call(
        ctx.store.stats_samples, principal.cache_id, 0.0, time.time(), not_found=Problem.NO_CACHE
    )
    return JSONResponse(
        [
            {
                "memcachier_id": str(sample.cache_id),
                # host:port, as the stats route keys its servers: with several nodes on a
                # machine, the host alone would not tell their samples apart.
                "server": sample.server,
                "stats": pick_stats(sample.stats),
                "timestamp": str(int(sample.at * 1000)),
            }
            for sample in samples
        ]
    )


@router.post(
    "/api/v1/{cache_id}/flush",
    operation_id="v1_flush",
    response_model=V1Done,
    responses=_V1_FLUSH_ERRORS,
    openapi_extra=FLUSH_BODY_DOC,
    summary="Flush the cache (deploy hooks POST their form here)",
)
async def flush(cache_id: str, request: Request) -> Response:
    await flush_cache(context(request), request, cache_id)
    return JSONResponse("")


@router.get(
    "/api/v1/{cache_id}/credentials",
    operation_id="v1_list_credentials",
    response_model=V1CredentialList,
    responses=_V1_ERRORS,
    summary="List credentials (without passwords)",
)
async def list_credentials(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    records = await credential_ops.list_records(ctx, principal.cache_id)
    return JSONResponse([credential_v1(r) for r in records])


@router.post(
    "/api/v1/{cache_id}/credentials",
    operation_id="v1_create_credential",
    response_model=V1NewCredential,
    responses=_V1_CHANGE_ERRORS,
    summary="Create a credential (its password is shown this once)",
)
async def create_credential(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    new = await credential_ops.create(ctx, principal.cache_id)
    return JSONResponse(credential_v1(new.record, new.password))


async def _capability_changes(request: Request) -> dict[str, bool]:
    fields: dict[str, Any] = dict(request.query_params)
    body = parse_fields(await read_body(request))
    if body:
        fields.update(body)
    return {
        key: parse_bool(fields[field], field) for field, key in CAPABILITY_FIELDS if field in fields
    }


_V1_CAPABILITIES_BODY = capabilities_body({"oneOf": [{"type": "boolean"}, {"type": "string"}]})


# One route per method, so each has its own operationId (the documentation's request line
# says POST, its example PATCH; PUT is accepted too).
@router.post(
    "/api/v1/{cache_id}/credentials/{credential}",
    operation_id="v1_update_credential",
    response_model=Capabilities,
    responses=_V1_BODY_ERRORS,
    summary="Update a credential's capabilities (by username or id)",
    openapi_extra=_V1_CAPABILITIES_BODY,
)
@router.patch(
    "/api/v1/{cache_id}/credentials/{credential}",
    operation_id="v1_update_credential_patch",
    response_model=Capabilities,
    responses=_V1_BODY_ERRORS,
    summary="Update a credential's capabilities (as the documentation's example does)",
    openapi_extra=_V1_CAPABILITIES_BODY,
)
@router.put(
    "/api/v1/{cache_id}/credentials/{credential}",
    operation_id="v1_update_credential_put",
    response_model=Capabilities,
    responses=_V1_BODY_ERRORS,
    summary="Update a credential's capabilities (same as POST)",
    openapi_extra=_V1_CAPABILITIES_BODY,
)
async def update_credential(cache_id: str, credential: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    changes = await _capability_changes(request)
    record = await credential_ops.update_capabilities(ctx, principal.cache_id, credential, changes)
    return JSONResponse(capabilities_json(record))


@router.post(
    "/api/v1/{cache_id}/credentials/primary/{credential}",
    operation_id="v1_promote_credential",
    response_model=V1Credential,
    responses=_V1_CHANGE_ERRORS,
    summary="Make a credential the primary one",
)
async def promote_credential(cache_id: str, credential: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    record = await credential_ops.promote(ctx, principal.cache_id, credential)
    return JSONResponse(credential_v1(record))


async def _delete(ctx: ApiContext, request: Request, cache_id: str, credential: str) -> Response:
    principal = await authorize(ctx, request, cache_id)
    await credential_ops.delete(ctx, principal.cache_id, credential)
    return JSONResponse("")


@router.delete(
    "/api/v1/{cache_id}/credentials/{credential}",
    operation_id="v1_delete_credential",
    response_model=V1Done,
    responses=_V1_CHANGE_ERRORS,
    summary="Delete a credential (not the primary)",
)
async def delete_credential(cache_id: str, credential: str, request: Request) -> Response:
    return await _delete(context(request), request, cache_id, credential)


@router.delete(
    "/api/v1/{cache_id}/credentials/primary/{credential}",
    operation_id="v1_delete_credential_documented",
    response_model=V1Done,
    responses=_V1_CHANGE_ERRORS,
    summary="Delete a credential (the path the v1 documentation's example uses)",
)
async def delete_credential_documented(
    cache_id: str, credential: str, request: Request
) -> Response:
    return await _delete(context(request), request, cache_id, credential)
