"""For platforms: the add-on partner API (`/heroku/resources`) and single sign-on
(`/sso/login`; rotating the SSO secret is a v2 API route, api/v2.py).

`install(app)` attaches both to the API's FastAPI app; it needs the dashboard installed
first (SSO opens dashboard sessions, and both read the dashboard's context). The composition
root (`memcloud.api.app`) installs them in that order.
"""

from __future__ import annotations

from fastapi import FastAPI

from memcloud.provisioning import partner, sso

__all__ = ["install"]


def install(app: FastAPI) -> None:
    if not hasattr(app.state, "dashboard"):
        raise RuntimeError("install the dashboard before provisioning (SSO opens its sessions)")
    app.include_router(partner.router)
    app.include_router(sso.router)
