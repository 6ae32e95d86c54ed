"""Fixtures for the dashboard: one server with provisioning and SSO on, and headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require_tool
from memcloud.testing import ServerProcess

PROVISION_USER = "memcachier"
PROVISION_PASSWORD = "super-secret"
SSO_SALT = "2f97bfa52ca102f8874716e2eb1d3b4920ad0be4"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# `MEMCLOUD_SCREENSHOTS=docs/screenshots make test` refreshes the README's screenshots.
SCREENSHOTS_ENV = "MEMCLOUD_SCREENSHOTS"
SCREENSHOT_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def platform_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the partner API and SSO on, sampling stats twice a second."""
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    env = {
        "MEMCLOUD_PROVISION_USER": PROVISION_USER,
        "MEMCLOUD_PROVISION_PASSWORD": PROVISION_PASSWORD,
        "MEMCLOUD_SSO_SALT": SSO_SALT,
        "MEMCLOUD_STATS_SAMPLE_SECONDS": "0.5",
    }
    with ServerProcess(data_dir, env=env) as proc:
        yield proc


def admin_token(server: ServerProcess) -> str:
    return (server.data_dir / "admin-token").read_text().strip()


def base_url(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.api_port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(tab: Any, name: str, tmp_path: Path) -> None:
    """Save a page's screenshot: to docs/screenshots when asked, else next to the test."""
    target = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(target) if target else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    # /redoc is over 60 000 px tall: capturing it whole takes 20 s and more on a loaded
    # machine, past the pages' 10 s default (a screenshot is no assertion).
    tab.screenshot(path=str(folder / f"{name}.png"), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
