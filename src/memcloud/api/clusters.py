"""A cache's cluster over the v2 API: what `info` says of it (`cluster_name`, `servers`,
`can_switch`, from the node registry through memcloud.control.clusters) and
`POST /api/v2/caches/<id>/switch_cluster` (reference §2.3).

A switch moves the cache's placement in the control store; every node follows within a
second. Items do not travel: the cache starts empty on the new cluster, as the hosted
service's emergency switch does, so the route needs the flush capability as well as the
API one. The body may name the target (`{"cluster": "eu-1"}`, or a form field); without it
the first other cluster with a live node is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.api import credential_ops
from memcloud.api.auth import authorize
from memcloud.api.context import ApiContext, context, refresh_directory
from memcloud.api.errors import ApiError, Problem
from memcloud.api.hooks import parse_fields, read_body
from memcloud.api.models import V2SwitchDone, errors
from memcloud.api.shapes import store_call
from memcloud.control import clusters
from memcloud.control.models import CacheRecord, NodeRecord
from memcloud.logs import log_change

__all__ = ["CacheCluster", "cache_cluster", "registered_nodes", "router"]

router = APIRouter(prefix="/api/v2/caches/{cache_id}", tags=["v2"])

# A cluster name as the control store takes it (rules.validate_cluster_name checks it again).
_MAX_CLUSTER_FIELD = 200

_SWITCH_ERRORS = errors(
    "v2",
    e400=(
        "The specified cache ID is invalid (not a number). / Unknown cluster NAME. / Cluster"
        " NAME has no live server. / The cache is already on cluster NAME. / No other"
        " cluster has a live server."
    ),
    e401="Unauthorized to access cache with this ID. / Bad user",
    e403="Forbidden to access cache with this ID. (the credential needs the flush capability)",
    e404="Cache not found.",
    e413="Request Entity Too Large",
    e429="Too many failed logins. Try again later. (see Retry-After)",
    e500="Unexpected error.",
)
_SWITCH_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "cluster": {
                            "type": "string",
                            "description": "the target cluster (default: the first other"
                            " cluster with a live server)",
                        }
                    },
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"cluster": {"type": "string"}}}
            },
        },
    }
}


@dataclass(frozen=True, slots=True)
class CacheCluster:
    """What the v2 `info` says of a cache's placement."""

    cluster_name: str
    servers: list[str]
    can_switch: bool


async def registered_nodes(ctx: ApiContext) -> list[NodeRecord]:
    return await store_call(ctx.store.list_nodes)


async def cache_cluster(ctx: ApiContext, cache: CacheRecord) -> CacheCluster:
    nodes = await registered_nodes(ctx)
    return CacheCluster(
        cluster_name=cache.cluster,
        servers=clusters.servers_of(nodes, cache.cluster, ctx.deployment.addresses(cache.id)),
        can_switch=clusters.can_switch(nodes, cache.cluster),
    )


def _named_target(body: bytes) -> str | None:
    fields = parse_fields(body)
    if fields is None:
        if body.strip():
            raise ApiError(Problem.BAD_REQUEST, "The request body must be a JSON object.")
        return None
    value = fields.get("cluster", fields.get("cluster_name"))
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > _MAX_CLUSTER_FIELD:
        raise ApiError(Problem.BAD_REQUEST, "cluster must be a cluster's name.")
    return value


@router.post(
    "/switch_cluster",
    operation_id="v2_switch_cluster",
    response_model=V2SwitchDone,
    responses=_SWITCH_ERRORS,
    openapi_extra=_SWITCH_BODY,
    summary="Move the cache to another cluster (it starts empty there); answers the new name",
)
async def switch_cluster(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id, flush=True)
    target = _named_target(await read_body(request))
    cache = await store_call(ctx.store.find_cache, principal.cache_id, not_found=Problem.NO_CACHE)
    nodes = await registered_nodes(ctx)
    if target is None:
        target = clusters.switch_target(nodes, cache.cluster)
        if target is None:
            raise ApiError(Problem.BAD_REQUEST, "No other cluster has a live server.")
    refusal = clusters.switch_refusal(nodes, cache.cluster, target)
    if refusal is not None:
        raise ApiError(Problem.BAD_REQUEST, refusal)
    moved = await store_call(
        ctx.store.update_cache, cache.id, cluster=target, not_found=Problem.NO_CACHE
    )
    log_change(
        "cache switched cluster",
        cache=credential_ops.cache_name(ctx, cache.id),
        cluster=moved.cluster,
        previous_cluster=cache.cluster,
    )
    await refresh_directory(ctx)
    return JSONResponse(moved.cluster)
