"""The Deploy hook page in a real headless Chromium: a hook token made there flushes by its
URL alone, the token is shown once, the token section comes before the credential URL, and
revoking it stops the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from memcloud.testing import ServerProcess

from .conftest import screenshot
from .test_browser import memcache, sign_in


def test_hook_tokens_are_made_used_and_revoked_on_the_page(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    client = memcache(server, server.username, server.password)
    assert client.set("rendered:home", b"x", noreply=False)
    sign_in(page, server, server.username, server.password)
    page.click("nav.tabs >> text=Deploy hook")
    # Tokens first, the credential URL after them, with why a token is better.
    order = page.eval_on_selector_all("section.card", "els => els.map(e => e.id)")
    assert order.index("hook-tokens") < order.index("deploy")
    assert "rotating or deleting credentials leaves the hook working" in page.inner_text(
        "#hook-tokens"
    )
    assert "Every rotation of that credential breaks the hook" in page.inner_text("#deploy")
    assert page.locator("text=No hook tokens yet.").count() == 1

    page.fill("#add-hook input[name=name]", "production")
    page.click("#add-hook button[type=submit]")
    url = page.inner_text("[data-new-hook-url]").strip()
    token = page.inner_text("[data-new-hook-token]").strip()
    assert url == f"http://127.0.0.1:{server.api_port}/api/v1/hooks/{token}/flush"
    assert page.inner_text("[data-new-hook=heroku]") == (
        f'heroku addons:create deployhooks:http --url="{url}"'
    )
    screenshot(page, "deploy-hook-token", tmp_path)

    reply = httpx.post(url, data={"app": "shop", "release": "v3"}, timeout=10)
    assert (reply.status_code, reply.json()) == (200, "")
    assert client.get("rendered:home") is None

    # Shown once: the page no longer has the token, only its first characters.
    page.click("#new-hook >> text=Done")
    assert token not in page.content()
    row = page.locator("table.hooks tbody tr").first
    assert "production" in row.inner_text() and token[:8] in row.inner_text()
    assert "never" not in row.inner_text()  # its use is shown

    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("text=Revoke").click()
    page.wait_for_selector("text=Deploy hook revoked")
    assert page.locator("table.hooks").count() == 0
    assert page.locator("[data-revoked-hook]").count() == 1
    refused = httpx.post(url, timeout=10)
    assert refused.status_code == 403 and "revoked" in refused.json()

    # A prefix the store refuses is shown on the page in its words.
    page.fill("#add-hook input[name=prefix]", "has space")
    page.click("#add-hook button[type=submit]")
    assert "prefix must be at most 250 bytes" in page.inner_text("#hook-tokens")
    client.close()
