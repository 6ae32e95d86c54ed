"""The dashboard for people: a cache's overview, credentials, alerts, flush and deploy-hook
helper, and the operator's view of every cache. Server-rendered HTML with a small hand-written
script.

`install(app, context)` attaches the pages and their static files to a FastAPI app; the
composition root (`memcloud.api.app`) builds the context and installs provisioning after it.
"""

from __future__ import annotations

import time

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from memcloud.dashboard import alerts, hooks, introspection, operator, pages
from memcloud.dashboard.context import DashboardContext
from memcloud.dashboard.web import PREFIX, STATIC_DIR, FormExpired, load_session, render

__all__ = ["DashboardContext", "install"]


def install(app: FastAPI, context: DashboardContext) -> None:
    """Attach the dashboard to the API's app."""
    app.state.dashboard = context
    app.state.dashboard_started = time.time()
    # The operator's routes first: /dashboard/admin must not be read as a cache page.
    # Every page reads its session first, so a signed-out cookie is refused everywhere.
    signed = [Depends(load_session)]
    app.include_router(operator.router, dependencies=signed)
    app.include_router(pages.router, dependencies=signed)
    app.include_router(alerts.router, dependencies=signed)
    app.include_router(introspection.router, dependencies=signed)
    app.include_router(hooks.router, dependencies=signed)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    _install_error_pages(app)


def _install_error_pages(app: FastAPI) -> None:
    """A form whose CSRF token does not match gets an HTML page, not a JSON error."""

    async def handler(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", status_code=403, message=str(exc))

    app.add_exception_handler(FormExpired, handler)
