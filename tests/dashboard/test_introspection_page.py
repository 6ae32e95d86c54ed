"""The Introspection page and the overview's latency in a real headless Chromium against a
real two-node `memcloud serve`: hot keys of a skewed load, a key lookup, a watched prefix
with its keys, the recent requests of each server (never a value); a credential without the
API capability sees the page but cannot watch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, wait_for

from .conftest import base_url, screenshot


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("introspection-page") / "data"
    env = {"MEMCLOUD_LATENCY_PROBE_SECONDS": "0.3", "MEMCLOUD_STATS_SAMPLE_SECONDS": "0.5"}
    with ServerProcess(data, env=env, nodes=2) as proc:
        yield proc


def _sign_in(tab: Any, server: ServerProcess, username: str, password: str) -> None:
    tab.goto(f"{base_url(server)}/dashboard/login")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", password)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"/dashboard/caches/\d+$"))


def _client(server: ServerProcess, address: str) -> Client:
    host, port = address.rsplit(":", 1)
    client = Client((host, int(port)), timeout=5)
    assert client.set(server.username, server.password, noreply=False)
    return client


def test_hot_keys_lookup_prefixes_and_recent_requests(
    server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    first, second = (_client(server, a) for a in server.servers)
    first.set("user:1", b"SECRET-ONE", noreply=False)
    second.set("user:2", b"SECRET-TWO", noreply=False)
    for index in range(600):
        first.get("user:1")
        first.get("user:1")
        if index % 3 == 0:
            second.get("user:2")
        first.get(f"page:{index}")
    _sign_in(page, server, server.username, server.password)
    # The overview shows the probe's latency (every 0.3 s here).
    assert wait_for(
        lambda: page.reload() or "µs" in page.inner_text("[data-metric=latency]"), timeout=15
    )
    assert "Latency of a get" in page.inner_text("#graphs")
    screenshot(page, "overview-latency", tmp_path)

    page.click("nav.tabs >> text=Introspection")
    page.wait_for_url(re.compile(r"/introspection$"))
    hit = page.locator("#most-hit li")
    assert hit.nth(0).inner_text().startswith("user:1")
    assert "user:2" in hit.nth(1).inner_text()
    assert page.locator("#most-missed li").first.inner_text().startswith("page:")
    prefixes = page.locator("#popular-prefixes li")
    assert prefixes.nth(0).inner_text().startswith("user:")  # 1,400 requests against 600
    assert prefixes.nth(1).inner_text().startswith("page:")

    page.fill("#key-lookup input[name=key]", "user:1")
    page.click("#key-lookup button[type=submit]")
    page.wait_for_url(re.compile(r"key=user%3A1"))
    assert page.inner_text("[data-metric=in-cache]") == "yes"
    assert int(page.inner_text("[data-metric=key-hits]").replace(",", "")) > 500

    page.fill("#watch-prefix input[name=name]", "user:")
    page.click("#watch-prefix button[type=submit]")
    page.wait_for_selector("text=Prefix watched")
    first.set("user:3", b"v", noreply=False)
    second.set("user:4", b"v", noreply=False)
    page.reload()
    row = page.locator("#watched-prefixes tr[data-prefix]").first
    assert row.locator("td").nth(1).inner_text() == "2"  # keys stored since it was watched

    recent = page.inner_text("#recent-requests")
    for address in server.servers:
        assert address in recent
    assert "user:1" in recent and "page:599" in recent
    assert "SECRET" not in page.content() and server.password not in page.content()
    screenshot(page, "introspection", tmp_path)

    page.click("#watched-prefixes button:has-text('Unwatch')")
    page.wait_for_selector("text=Prefix unwatched.")
    assert "No prefix is watched." in page.inner_text("#watched-prefixes")
    first.close()
    second.close()


def test_without_the_api_capability_the_page_shows_but_cannot_watch(
    server: ServerProcess, page: Any
) -> None:
    made = server.cli_json("credentials", "create", "default", "--no-api")
    username, password = made["sasl_username"], made["sasl_password"]
    api = f"{base_url(server)}/api/v2/caches/0/stats"
    assert wait_for(lambda: httpx.get(api, auth=(username, password)).status_code != 401)
    _sign_in(page, server, username, password)
    page.click("nav.tabs >> text=Introspection")
    page.wait_for_url(re.compile(r"/introspection$"))
    assert page.locator("#watch-prefix").count() == 0
    assert page.locator("#hot-keys").count() == 1
