"""The dashboard for people: a cache's overview, credentials, flush and deploy-hook helper,
and the operator's view of every cache. Server-rendered HTML with a small hand-written script.

`install(app, context)` attaches the pages and their static files to a FastAPI app.
"""

from __future__ import annotations

import time

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from memcloud.api.context import ApiContext
from memcloud.dashboard import operator, pages
from memcloud.dashboard.context import DashboardContext
from memcloud.dashboard.web import PREFIX, STATIC_DIR, FormExpired, load_session, render

__all__ = ["DashboardContext", "install"]


def install(app: FastAPI, api: ApiContext | DashboardContext) -> None:
    """Attach the dashboard to the API's app (`api` is its context, or a ready-made one)."""
    context = api if isinstance(api, DashboardContext) else DashboardContext.from_api(api)
    app.state.dashboard = context
    app.state.dashboard_started = time.time()
    # The operator's routes first: /dashboard/admin must not be read as a cache page.
    # Every page reads its session first, so a signed-out cookie is refused everywhere.
    signed = [Depends(load_session)]
    app.include_router(operator.router, dependencies=signed)
    app.include_router(pages.router, dependencies=signed)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    _install_error_pages(app)
    # Platforms' provisioning and single sign-on open dashboard sessions, so they come along.
    from memcloud.provisioning import install as install_provisioning

    install_provisioning(app)


def _install_error_pages(app: FastAPI) -> None:
    """A form whose CSRF token does not match gets an HTML page, not a JSON error."""

    async def handler(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", status_code=403, message=str(exc))

    app.add_exception_handler(FormExpired, handler)
