"""The composition root of the HTTP side: one ASGI app with the API (v1, v2, deploy hooks,
metrics), path normalisation, the error shapes of each version, the body limit, and then the
dashboard and provisioning, each given only what it needs.

Nothing but `api.server` (which serves it) imports this module, and the dashboard and
provisioning import nothing of the API's package (tests/test_layering.py): the dashboard's
context is built here from the API's. `ApiContext.deployment.flush` is the flush that reaches
every node and the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import re

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from memcloud import __version__
from memcloud.api import admin, alerts, clusters, docs, hook_routes, introspection, v1, v2
from memcloud.api.access_log import AccessLog, loggable_path
from memcloud.api.context import ApiContext, refresh_directory
from memcloud.api.errors import ApiError, Problem, render, version_of
from memcloud.api.health import install as install_health
from memcloud.api.limits import BodyLimit
from memcloud.api.metrics import metrics_endpoint
from memcloud.api.models import METRICS_RESPONSES
from memcloud.control.clusters import servers_of
from memcloud.dashboard import install as install_dashboard
from memcloud.dashboard.context import DashboardContext
from memcloud.dashboard.sessions import Signer, load_key
from memcloud.nodes import NodesFailed
from memcloud.provisioning import install as install_provisioning
from memcloud.stats.aggregate import aggregate_stats
from memcloud.webauth import LoginGuard

__all__ = ["NormalizePath", "create_app", "dashboard_context"]

log = logging.getLogger("memcloud.api")

_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")


class NormalizePath:
    """Treat repeated slashes as one, and ignore a trailing slash, before routing.

    The hosted service's deploy-hook instructions printed `.../api/v1//<id>/flush` for years.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if "//" in path or (len(path) > 1 and path.endswith("/")):
                scope = dict(scope)
                scope["path"] = _SLASHES.sub("/", path).rstrip("/") or "/"
                raw = scope.get("raw_path")
                if isinstance(raw, bytes):
                    scope["raw_path"] = _RAW_SLASHES.sub(b"/", raw).rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render(version_of(request.url.path), exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        error = ApiError(Problem.NOT_FOUND, headers=headers)
    elif exc.status_code == 405:
        error = ApiError(Problem.METHOD, headers=headers)
    elif exc.status_code == 413:
        error = ApiError(Problem.TOO_LARGE, headers=headers)
    else:
        response = render(
            version_of(request.url.path),
            ApiError(Problem.BAD_REQUEST, str(exc.detail), headers=headers),
        )
        response.status_code = exc.status_code
        return response
    return render(version_of(request.url.path), error)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        for e in exc.errors()
    )
    return render(version_of(request.url.path), ApiError(Problem.BAD_REQUEST, problems))


async def _gone(request: Request, exc: Exception) -> Response:
    # The client left (or was closed at a read deadline) before its body was in: nobody
    # reads this answer, and a hostile client must not fill the log with tracebacks.
    return Response(status_code=400, headers={"Connection": "close"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The path as the access log shows it: a deploy-hook token in it is masked.
    path = loggable_path(request.url.path, b"")
    log.error("unexpected error on %s %s: %r", request.method, path, exc)
    return render(version_of(request.url.path), ApiError(Problem.SERVER))


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="memcloud HTTP API",
        version=__version__,
        description=(
            "MemCachier-compatible analytics API (v1 and v2), deploy-hook flush, metrics. "
            "Authenticate with HTTP Basic using a cache credential that has the API "
            "capability. See docs/http-api.md."
        ),
        openapi_url="/openapi.json",
        # /docs and /redoc from bundled assets, not a CDN (api/docs.py).
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_health(app)  # /healthz, /readyz: unauthenticated, cheap
    app.include_router(v1.router)
    app.include_router(v2.router)
    app.include_router(alerts.router)
    app.include_router(introspection.router)
    app.include_router(clusters.router)
    app.include_router(admin.router)
    app.include_router(hook_routes.router)
    app.add_api_route(
        "/metrics",
        metrics_endpoint,
        methods=["GET"],
        summary="Prometheus metrics per cache and server",
        tags=["metrics"],
        response_model=None,
        operation_id="metrics",
        response_class=PlainTextResponse,
        responses=METRICS_RESPONSES,
    )
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _unexpected)
    # Every body is bounded before it is read (the partner API's and the dashboard's too).
    app.add_middleware(BodyLimit)
    app.add_middleware(NormalizePath)
    app.add_middleware(AccessLog)  # outermost: every request, as the client sent it
    # The dashboard for people (/dashboard), then the platform partner API and single
    # sign-on (/heroku, /sso), which open dashboard sessions and read its context.
    install_dashboard(app, dashboard_context(ctx))
    install_provisioning(app)
    docs.install(app)
    return app


def dashboard_context(api: ApiContext) -> DashboardContext:
    """What the dashboard and provisioning get of the API's context (dashboard/context.py)."""

    async def live_stats(cache_id: int) -> dict[str, int] | None:
        try:
            return aggregate_stats(await api.deployment.stats(cache_id))
        except NodesFailed:
            return None

    async def flush(cache_id: int, who: str, peer: str, prefix: bytes) -> bool:
        # The deployment returns once the flush log writer has the record: the page shown
        # next lists this flush.
        try:
            await api.deployment.flush(cache_id, "dashboard", who, peer, prefix=prefix)
        except NodesFailed:
            return False
        return True

    async def pending_flushes(cache_id: int) -> int:
        return int((await api.deployment.flush_log_pending(cache_id))["pending"])

    async def changed() -> None:
        await refresh_directory(api)

    async def servers(cluster: str) -> str:
        # The registry's live nodes of the cluster; this deployment when it lists none.
        nodes = await asyncio.to_thread(api.store.list_nodes)
        return ",".join(servers_of(nodes, cluster, api.deployment.addresses(0)))

    return DashboardContext(
        store=api.store,
        settings=api.settings,
        signer=Signer(load_key(api.settings.data_dir)),
        authenticate=lambda user, password: api.service.directory.authenticate(user, password),
        live_stats=live_stats,
        flush=flush,
        changed=changed,
        servers=servers,
        pending_flushes=pending_flushes,
        guard=LoginGuard.of(api.service),
        introspect=api.deployment.introspect,
        addresses=api.deployment.addresses,
    )
