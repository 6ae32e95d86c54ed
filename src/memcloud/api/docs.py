"""The API's documentation: `/openapi.json` finished, `/docs` and `/redoc` served offline, `/`.

- `/openapi.json` is FastAPI's document with what FastAPI cannot know: the security schemes
  (a cache credential over HTTP Basic on `/api/`, the platform's add-on id and password over
  HTTP Basic on `/heroku/`, the bearer token on `/metrics`), and without the 422 answer
  FastAPI adds to every route with parameters: this API answers a request it cannot
  validate with 400 in its own error shape (api/app.py), never 422.
- `/docs` (Swagger UI) and `/redoc` load their scripts from this server: the assets are
  the ones the `fastapi-offline` package ships (Swagger UI 5 and Redoc 2, updated with
  their releases), so the pages work on a host without internet and send nothing to a CDN.
  Their Content-Security-Policy keeps them to this origin.
- `GET /` sends a browser to the dashboard, whose home signs it in (or opens its cache).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from memcloud.dashboard.web import PREFIX as DASHBOARD

__all__ = [
    "ASSETS_URL",
    "DOCS_URL",
    "REDOC_URL",
    "SECURITY_SCHEMES",
    "assets_dir",
    "finish_openapi",
    "install",
]

DOCS_URL: Final = "/docs"
REDOC_URL: Final = "/redoc"
ASSETS_URL: Final = "/docs/assets"

SECURITY_SCHEMES: Final[dict[str, dict[str, str]]] = {
    "cacheCredential": {
        "type": "http",
        "scheme": "basic",
        "description": "A cache credential (SASL username and password) with the API "
        "capability, as MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD give it.",
    },
    "partnerCredential": {
        "type": "http",
        "scheme": "basic",
        "description": "The platform's add-on id and password (memcloud serve "
        "--provision-user and --provision-password).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The metrics token (--metrics-token, else DATA_DIR/metrics-token); "
        "not needed when the server runs with --metrics-token ''.",
    },
}
# Which scheme guards which paths, first match wins; a path none matches is open.
_SECURITY_BY_PREFIX: Final = (
    ("/api/", "cacheCredential"),
    ("/heroku/", "partnerCredential"),
    ("/metrics", "metricsToken"),
)
_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")
_HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})

# The pages' own inline start-up script and the viewers' inline styles and workers are
# allowed; nothing may be loaded from, or sent to, another origin.
_CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_SWAGGER_PARAMETERS: Final[dict[str, Any]] = {
    # Swagger UI would otherwise send the document to an online validator for its badge.
    "validatorUrl": None,
    "tryItOutEnabled": False,
    "displayOperationId": True,
}


def assets_dir() -> Path:
    """The folder of Swagger UI's and Redoc's files inside the fastapi-offline package."""
    return Path(str(files("fastapi_offline") / "static"))


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in _HTTP_METHODS:
                yield path, operation


def _scheme_of(path: str) -> str | None:
    return next((name for prefix, name in _SECURITY_BY_PREFIX if path.startswith(prefix)), None)


def _is_generated_422(response: dict[str, Any]) -> bool:
    content = response.get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"))


def finish_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the security schemes and each operation's, drop FastAPI's generated 422 (and its
    schemas once nothing refers to them). Idempotent: FastAPI keeps the document it made."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, operation in _operations(schema):
        scheme = _scheme_of(path)
        if scheme is not None:
            operation.setdefault("security", [{scheme: []}])
        responses = operation.get("responses", {})
        if "422" in responses and _is_generated_422(responses["422"]):
            del responses["422"]
    # ValidationError is referred to by HTTPValidationError only.
    if '/HTTPValidationError"' not in json.dumps(schema.get("paths", {})):
        for name in _VALIDATION_SCHEMAS:
            components.get("schemas", {}).pop(name, None)
    return schema


def _openapi_of(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        return finish_openapi(FastAPI.openapi(app))

    return openapi


def install(app: FastAPI) -> None:
    """Attach the documentation to an app made with `docs_url=None, redoc_url=None`."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise RuntimeError("create the app with docs_url=None and redoc_url=None")
    openapi_url = app.openapi_url or "/openapi.json"
    # FastAPI calls `app.openapi()` for /openapi.json: this instance's finishes the document.
    app.openapi = _openapi_of(app)  # type: ignore[method-assign]
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="api-docs-assets")

    async def swagger_ui(request: Request) -> Response:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **_SWAGGER_PARAMETERS},
        )
        page.headers.update(_PAGE_HEADERS)
        return page

    async def redoc(request: Request) -> Response:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(_PAGE_HEADERS)
        return page

    async def root(request: Request) -> Response:
        # 303: whatever the method, the browser follows with a GET of the dashboard.
        return RedirectResponse(DASHBOARD, status_code=303)

    app.add_api_route(DOCS_URL, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(REDOC_URL, redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
