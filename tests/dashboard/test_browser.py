"""The dashboard in a real headless Chromium against a real `memcloud serve`."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import httpx
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, wait_for

from .conftest import SSO_SALT, admin_token, base_url, screenshot


def memcache(server: ServerProcess, username: str, password: str) -> Client:
    client = Client(("127.0.0.1", server.port), timeout=5)
    client.set(username, password, noreply=False)
    return client


def sign_in(tab: Any, server: ServerProcess, username: str, password: str) -> None:
    tab.goto(f"{base_url(server)}/dashboard/login")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", password)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"/dashboard/caches/\d+$"))


def metric(tab: Any, name: str) -> str:
    return str(tab.inner_text(f"[data-metric={name}]")).strip()


def test_overview_numbers_follow_real_traffic(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    sign_in(page, server, server.username, server.password)
    assert metric(page, "items") == "0"
    assert metric(page, "hit-rate") == "—"
    screenshot(page, "login-empty-overview", tmp_path)

    client = memcache(server, server.username, server.password)
    for i in range(40):
        client.set(f"key{i}", b"v" * 1000, noreply=False)
    for i in range(50):
        client.get(f"key{i}")  # 40 hits, 10 misses
    client.incr("key-that-is-missing", 1)
    client.delete("key1")
    time.sleep(1.2)  # a few stats samples for the graphs

    page.reload()
    assert metric(page, "items") == "39"
    assert metric(page, "hit-rate") == "80.0%"
    assert "good" in (page.get_attribute("[data-metric=hit-rate]", "class") or "")
    assert metric(page, "connections") == "1"
    assert metric(page, "connection-limit") == "250"  # a 25 MB plan: 10 per MB
    assert metric(page, "set") == "40"
    assert page.inner_text("tr[data-command=get] td.hit") == "40"
    assert page.inner_text("tr[data-command=get] td.miss") == "10"
    assert page.inner_text("tr[data-command=incr] td.miss") == "1"
    assert page.locator("svg.chart polyline").count() >= 3
    screenshot(page, "overview", tmp_path)
    page.click("text=last day")
    assert "range=day" in page.url
    client.close()


def test_credentials_capabilities_and_the_api(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    sign_in(page, server, server.username, server.password)
    page.click("nav.tabs >> text=Settings")
    page.click("text=Create credential")
    username = page.inner_text("[data-new-username]").strip()
    password = page.inner_text("[data-new-password]").strip()
    assert re.fullmatch(r"[0-9A-F]{6}", username) and re.fullmatch(r"[0-9A-F]{32}", password)
    screenshot(page, "credential-created", tmp_path)

    api = base_url(server)
    login = httpx.get(f"{api}/api/v1/login", auth=(username, password))
    assert login.status_code == 200, login.text
    cache_id = login.json()["cache_id"]

    # The password is shown once: the settings page no longer has it.
    page.click("text=Done")
    assert password not in page.content()
    row = page.locator(f"tr[data-username='{username}']")
    row.locator("input[name=api]").uncheck()
    row.locator("text=Save").click()
    page.wait_for_selector("text=Capabilities saved.")
    assert not page.locator(f"tr[data-username='{username}'] input[name=api]").is_checked()
    assert httpx.get(f"{api}/api/v1/login", auth=(username, password)).status_code == 403
    flush = httpx.post(f"{api}/api/v1/{cache_id}/flush", auth=(username, password))
    assert flush.status_code == 403
    screenshot(page, "settings", tmp_path)

    # No self-lockout: the signed-in credential's API box cannot be unticked or deleted.
    own = page.locator(f"tr[data-username='{server.username}']")
    assert own.locator("input[type=checkbox][name=api]").is_disabled()
    assert own.locator("text=Delete").count() == 0

    # Promote the new credential, then delete it again after promoting the old one back.
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f"tr[data-username='{username}']").locator("text=Promote").click()
    page.wait_for_selector("text=Primary credential changed.")
    assert page.locator(f"tr[data-username='{username}'] .badge").first.inner_text() == "primary"
    page.locator(f"tr[data-username='{server.username}']").locator("text=Promote").click()
    page.wait_for_selector("text=Primary credential changed.")
    page.locator(f"tr[data-username='{username}']").locator("text=Delete").click()
    page.wait_for_selector("text=Credential deleted.")
    assert page.locator(f"tr[data-username='{username}']").count() == 0
    assert httpx.get(f"{api}/api/v1/login", auth=(username, password)).status_code == 403


def test_flush_button_empties_the_cache_and_is_logged(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    client = memcache(server, server.username, server.password)
    for i in range(25):
        client.set(f"flushme{i}", b"x", noreply=False)
    sign_in(page, server, server.username, server.password)
    assert int(metric(page, "items")) >= 25
    page.click("text=Flush cache…")
    screenshot(page, "flush", tmp_path)
    page.on("dialog", lambda dialog: dialog.accept())
    page.check("input[name=confirm]")
    page.click("button:has-text('Flush cache')")
    page.wait_for_selector("text=Cache flushed")
    log_row = page.locator("#flush-log tbody tr").first
    assert "dashboard" in log_row.inner_text() and server.username in log_row.inner_text()
    page.click("nav.tabs >> text=Overview")
    assert metric(page, "items") == "0"
    assert client.get("flushme1") is None
    client.close()


def test_flush_page_flushes_only_a_prefix(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    client = memcache(server, server.username, server.password)
    for i in range(20):
        client.set(f"views:{i}", b"x", noreply=False)
        client.set(f"session:{i}", b"y", noreply=False)
    sign_in(page, server, server.username, server.password)
    page.click("nav.tabs >> text=Flush")
    page.fill("input[name=prefix]", "views:")
    page.on("dialog", lambda dialog: dialog.accept())
    page.check("input[name=confirm]")
    screenshot(page, "flush-prefix", tmp_path)
    page.click("button:has-text('Flush cache')")
    page.wait_for_selector("text=Prefix flushed")
    log_row = page.locator("#flush-log tbody tr").first
    assert log_row.locator("[data-flush-prefix]").inner_text() == "views:"
    assert "dashboard" in log_row.inner_text()
    assert client.get("views:1") is None and client.get("views:19") is None
    assert client.get("session:1") == b"y" and client.get("session:19") == b"y"
    client.close()


def test_deploy_hook_helper_shows_a_prefix_url_that_works(
    platform_server: ServerProcess, page: Any
) -> None:
    server = platform_server
    client = memcache(server, server.username, server.password)
    client.set("views:home", b"x", noreply=False)
    client.set("session:me", b"y", noreply=False)
    sign_in(page, server, server.username, server.password)
    page.click("text=Deploy hook")
    hook_url = page.inner_text("[data-hook=url-prefix]")
    assert hook_url.endswith("/flush?prefix=views%3A")
    reply = httpx.post(hook_url.replace("PASSWORD", server.password))
    assert reply.status_code == 200, reply.text
    assert client.get("views:home") is None and client.get("session:me") == b"y"
    client.close()


def test_deploy_hook_helper_shows_working_commands(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    sign_in(page, server, server.username, server.password)
    page.click("text=Deploy hook")
    flush = page.inner_text("[data-hook=flush]")
    hook_url = page.inner_text("[data-hook=url]")
    api = base_url(server)
    assert flush.startswith(f'curl "{api}/api/v1/')
    assert f"--user {server.username}:PASSWORD" in flush
    assert hook_url.startswith(f"http://{server.username}:PASSWORD@127.0.0.1:{server.api_port}/")
    screenshot(page, "deploy-hook", tmp_path)
    # The command works once the placeholder is the password.
    command = page.inner_text("[data-hook=flush]").replace("PASSWORD", server.password)
    url = re.search(r'"([^"]+)"', command)
    assert url is not None
    reply = httpx.post(url.group(1), auth=(server.username, server.password))
    assert reply.status_code == 200, reply.text


def test_operator_view_creates_resizes_and_deletes(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    api = base_url(server)
    page.goto(f"{api}/dashboard/admin")
    page.wait_for_url(re.compile(r"/admin/login$"))
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert page.locator("text=not this server's admin token").count() == 1
    page.fill("input[name=token]", admin_token(server))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/admin$"))
    assert page.locator("tr[data-cache=default]").count() == 1, page.content()[:3000]

    page.fill("#new-cache-name, input[name=name]", "shop")
    page.fill("form[action$='/admin/caches'] input[name=plan]", "100")
    page.click("text=Create cache")
    assert "MEMCACHIER_PASSWORD=" in page.inner_text("#new-cache")
    screenshot(page, "operator", tmp_path)
    row = page.locator("tr[data-cache=shop]")
    assert "100MB" in (row.locator("input[name=plan]").input_value())
    row.locator("input[name=plan]").fill("64MB")
    row.locator("text=Resize").click()
    page.wait_for_selector("text=Plan changed.")
    assert page.locator("tr[data-cache=shop] input[name=plan]").input_value() == "64MB"
    assert server.cli_json("cache", "list")[-1]["plan"] == 64 * 1024 * 1024

    row = page.locator("tr[data-cache=shop]")
    row.locator("summary").click()
    row.locator("input[name=confirm_name]").fill("shop")
    row.locator("text=Delete cache and credentials").click()
    page.wait_for_selector("text=Cache deleted")
    assert page.locator("tr[data-cache=shop]").count() == 0


def test_sso_from_a_platform_opens_the_dashboard(
    platform_server: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = platform_server
    api = base_url(server)
    uuid = "0b3a2f6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    provisioned = httpx.post(
        f"{api}/heroku/resources",
        json={"uuid": uuid, "plan": "memcachier:dev"},
        auth=("memcachier", "super-secret"),
    )
    assert provisioned.status_code == 200, provisioned.text
    timestamp = str(int(time.time()))
    token = hashlib.sha1(f"{uuid}:{SSO_SALT}:{timestamp}".encode()).hexdigest()
    # The platform's page posts a form from another origin; Chromium follows the redirect.
    page.set_content(
        f'<form method="post" action="{api}/sso/login">'
        f'<input name="resource_id" value="{uuid}"><input name="timestamp" value="{timestamp}">'
        f'<input name="resource_token" value="{token}"><button>open</button></form>'
    )
    page.click("button")
    page.wait_for_url(re.compile(r"/dashboard/caches/\d+$"))
    assert page.inner_text(".cache-name") == uuid
    assert page.inner_text(".who") == "single sign-on"
    cookie = next(c for c in page.context.cookies() if c["name"] == "memcloud_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time()

    # Rotating the SSO secret ends this session.
    config = provisioned.json()["config"]
    cache_id = page.url.rsplit("/", 1)[1]
    rotated = httpx.post(
        f"{api}/api/v2/caches/{cache_id}/rotate_sso",
        auth=(config["MEMCACHIER_USERNAME"], config["MEMCACHIER_PASSWORD"]),
    )
    assert rotated.status_code == 200 and rotated.json() == "SSO rotation successful"
    page.reload()
    assert wait_for(lambda: "/dashboard/login" in page.url)


def test_phone_sized_screen(platform_server: ServerProcess, browser: Any, tmp_path: Path) -> None:
    server = platform_server
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    tab = context.new_page()
    sign_in(tab, server, server.username, server.password)
    # Nothing wider than the screen: no sideways scrolling of the page itself.
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    screenshot(tab, "overview-phone", tmp_path)
    context.close()
