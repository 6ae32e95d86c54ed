"""Plumbing shared by the dashboard's pages: templates, cookies, CSRF, security headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from memcloud.dashboard.charts import format_bytes, format_number
from memcloud.dashboard.context import dashboard_context
from memcloud.dashboard.sessions import COOKIE_NAME, SESSION_SECONDS, DashboardSession
from memcloud.logs import act_as

__all__ = [
    "PREFIX",
    "STATIC_DIR",
    "FormExpired",
    "Page",
    "check_form",
    "current_session",
    "end_session",
    "load_session",
    "redirect",
    "render",
    "set_session",
    "throttled",
]

PREFIX = "/dashboard"
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# Everything comes from this server: no inline scripts or styles, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages carry credentials and CSRF tokens: never from a shared cache or the back button.
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["bytes"] = format_bytes
_env.filters["number"] = format_number
_env.filters["strftime"] = lambda at: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def current_session(request: Request) -> DashboardSession:
    """The request's session, or a fresh anonymous one (set on the response by `render`).
    `load_session` has already refused a signed-out cookie on the dashboard's routes."""
    cached = getattr(request.state, "dashboard_session", None)
    if isinstance(cached, DashboardSession):
        return cached
    ctx = dashboard_context(request)
    session = ctx.signer.loads(request.cookies.get(COOKIE_NAME), ctx.now())
    if session is None:
        session = DashboardSession.anonymous(ctx.now())
        request.state.dashboard_session_new = True
    request.state.dashboard_session = session
    return session


async def load_session(request: Request) -> None:
    """Read the request's session before its route runs, refusing a signed-out one (one
    primary-key read of the control store, off the event loop; anonymous sessions skip it).
    A dependency of every dashboard route."""
    session = current_session(request)
    if session.kind == "anon":
        return
    ctx = dashboard_context(request)
    if await asyncio.to_thread(ctx.store.session_revoked, session.digest, int(ctx.now())):
        request.state.dashboard_session = DashboardSession.anonymous(ctx.now())
        request.state.dashboard_session_new = True
        return
    # What this request changes is logged under the signed-in name (memcloud.logs).
    act_as(who=session.username or ("operator" if session.kind == "admin" else session.via))


async def end_session(request: Request) -> None:
    """Sign the request's session out for good: remembered until it would have expired."""
    session = current_session(request)
    if session.kind == "anon":
        return
    ctx = dashboard_context(request)
    await asyncio.to_thread(
        ctx.store.revoke_session, session.digest, session.expires, int(ctx.now())
    )


def set_session(request: Request, response: Response, session: DashboardSession | None) -> None:
    """Put `session` in the cookie (None: sign out). HttpOnly, SameSite=Lax, expiring."""
    ctx = dashboard_context(request)
    # Behind a TLS proxy the scheme is in X-Forwarded-Proto; trusting it only adds Secure.
    secure = request.url.scheme == "https" or (
        request.headers.get("x-forwarded-proto", "").lower() == "https"
    )
    if session is None:
        response.delete_cookie(COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="lax")
        return
    response.set_cookie(
        COOKIE_NAME,
        ctx.signer.dumps(session),
        max_age=max(int(session.expires - ctx.now()), 0) or SESSION_SECONDS,
        path="/",
        secure=secure,
        httponly=True,
        # Lax, not Strict: a platform's SSO form posts from its own site and redirects here.
        samesite="lax",
    )


def _apply_headers(response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    ctx = dashboard_context(request)
    session = current_session(request)
    page = _env.get_template(template).render(
        request=request,
        session=session,
        csrf=ctx.signer.csrf_token(session),
        prefix=PREFIX,
        **values,
    )
    response = HTMLResponse(page, status_code=status_code)
    _apply_headers(response)
    if getattr(request.state, "dashboard_session_new", False):
        set_session(request, response, session)
    return response


def throttled(request: Request, template: str, retry_after: str, **values: Any) -> HTMLResponse:
    """A sign-in form refused by the login throttle: 429 with Retry-After (auth_throttle)."""
    error = f"Too many failed sign-ins. Try again in {retry_after} s."
    response = render(request, template, status_code=429, error=error, **values)
    response.headers["Retry-After"] = retry_after
    return response


def redirect(
    request: Request, url: str, session: DashboardSession | bool | None = False
) -> Response:
    """A 303 to `url`; with a session (or None to sign out) the cookie changes too."""
    response = RedirectResponse(url, status_code=303)
    _apply_headers(response)
    if session is not False:
        set_session(request, response, session if isinstance(session, DashboardSession) else None)
    return response


async def check_form(request: Request) -> Mapping[str, str]:
    """The posted form, once its CSRF token matches the session's; 403 otherwise."""
    ctx = dashboard_context(request)
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    session = current_session(request)
    if not ctx.signer.check_csrf(session, fields.get("csrf", "")):
        raise FormExpired("The form expired or did not come from this site; go back and try again.")
    return fields


class FormExpired(Exception):
    """A posted form without this session's CSRF token (answered 403 with an HTML page)."""


@dataclass(frozen=True, slots=True)
class Page:
    """Navigation entries of a cache's dashboard."""

    key: str
    title: str
    path: str
