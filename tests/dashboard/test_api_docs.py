"""`/docs` (Swagger UI) and `/redoc` in a real headless Chromium, with every request that
leaves the loopback refused: both pages must render every operation from this server's own
assets, and ask nothing of any other host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from memcloud.testing import ServerProcess

from .conftest import screenshot

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
# Redoc always shows its attribution logo from its own CDN (no option turns it off): the
# page's Content-Security-Policy keeps the browser from fetching it, and Redoc hides it.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("docs") / "data") as proc:
        yield proc


@pytest.fixture(scope="module")
def operation_ids(docs_server: ServerProcess) -> list[str]:
    doc = httpx.get(f"http://127.0.0.1:{docs_server.api_port}/openapi.json", timeout=10).json()
    return [
        op["operationId"]
        for item in doc["paths"].values()
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]


class Offline:
    """Lets loopback requests through and refuses (and remembers) every other one."""

    def __init__(self, tab: Any) -> None:
        self.refused: list[str] = []
        self.blocked: list[str] = []
        self.problems: list[str] = []
        tab.route("**/*", self.handle)
        tab.on("console", self.console)
        tab.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def handle(self, route: Any) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in LOCAL_SCHEMES or url.hostname in LOOPBACK:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def console(self, message: Any) -> None:
        # What the Content-Security-Policy blocks shows here, never as a request.
        if message.type != "error":
            return
        if "violates the following Content Security Policy" in message.text:
            self.blocked.append(message.text.split("'")[1])
        else:
            self.problems.append(message.text)


def test_swagger_ui_renders_every_operation_offline(
    docs_server: ServerProcess, page: Any, operation_ids: list[str], tmp_path: Path
) -> None:
    offline = Offline(page)
    page.goto(f"http://127.0.0.1:{docs_server.api_port}/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == len(operation_ids)
    shown = page.locator(".opblock-summary-operation-id").all_inner_texts()
    assert sorted(shown) == sorted(operation_ids)
    # The security schemes are declared: Swagger UI offers to authorize.
    assert page.locator("button.authorize").count() >= 1
    screenshot(page, "api-docs-swagger", tmp_path)
    assert offline.refused == []
    assert offline.blocked == []
    assert offline.problems == []


def test_redoc_renders_every_operation_offline(
    docs_server: ServerProcess, page: Any, operation_ids: list[str], tmp_path: Path
) -> None:
    offline = Offline(page)
    page.goto(f"http://127.0.0.1:{docs_server.api_port}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']")
    sections = page.locator("[data-section-id^='operation/']")
    ids = {str(sections.nth(i).get_attribute("data-section-id")) for i in range(sections.count())}
    assert ids == {f"operation/{op}" for op in operation_ids}
    screenshot(page, "api-docs-redoc", tmp_path)
    assert offline.refused == []
    assert set(offline.blocked) <= {REDOC_LOGO}
    assert offline.problems == []


def test_the_docs_assets_come_from_this_server(docs_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{docs_server.api_port}"
    for path in ("/docs", "/redoc"):
        page = httpx.get(base + path, timeout=10)
        assert page.status_code == 200
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text
        assert "connect-src 'self'" in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        reply = httpx.get(f"{base}/docs/assets/{asset}", timeout=10)
        assert reply.status_code == 200 and len(reply.content) > 10_000
