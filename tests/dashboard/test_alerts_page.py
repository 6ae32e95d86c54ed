"""The Alerts page in a real headless Chromium against a real `memcloud serve`: add a signed
webhook (its secret shown once) and an alert, see it fire from real missing gets and its
delivery listed, disable, enable and delete it; a credential without the API capability
sees the page but cannot change it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client

from alerts.receivers import HttpReceiver, http_receiver
from memcloud.testing import ServerProcess

from .conftest import base_url, screenshot


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("alerts-page") / "data"
    env = {"MEMCLOUD_ALERT_SECONDS": "0.3"}
    with ServerProcess(data, "--alert-private-targets", env=env) as proc:
        yield proc


def _sign_in(tab: Any, server: ServerProcess, username: str, password: str) -> None:
    tab.goto(f"{base_url(server)}/dashboard/login")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", password)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"/dashboard/caches/\d+$"))
    tab.click("nav.tabs >> text=Alerts")
    tab.wait_for_url(re.compile(r"/alerts$"))


def test_alerts_are_added_fire_and_are_removed_on_the_page(
    server: ServerProcess, hook: HttpReceiver, page: Any, tmp_path: Path
) -> None:
    _sign_in(page, server, server.username, server.password)
    assert "No alerts yet." in page.inner_text("#alerts")
    page.select_option("#add-config select[name=delivery_type]", "webhook")
    page.fill("#add-config input[name=target]", hook.url())
    page.click("#add-config button[type=submit]")
    secret = page.inner_text("[data-new-secret]").strip()
    assert secret.startswith("whsec_")
    page.click("#new-secret >> text=Done")
    assert secret not in page.content()  # shown once only

    page.select_option("#add-alert select[name=trigger_type]", "hit_rate")
    page.fill("#add-alert input[name=trigger_threshold]", "50")
    page.fill("#add-alert input[name=description]", "cache is cold")
    page.click("#add-alert button[type=submit]")
    page.wait_for_selector("text=Alert added.")
    row = page.locator("#alerts tr[data-alert]").first
    assert "Hit rate under (%) 50" in row.inner_text() and "ok" in row.inner_text()

    client = Client(server.address, timeout=5)
    assert client.set(server.username, server.password, noreply=False)
    deadline = time.monotonic() + 30
    n = 0
    while not hook.received("/hook"):
        assert time.monotonic() < deadline, "the alert never fired"
        for _ in range(20):
            n += 1
            client.get(f"missing-{n}")
        time.sleep(0.05)
    client.close()
    page.reload()
    assert "firing" in page.locator("#alerts tr[data-alert]").first.inner_text()
    delivery = page.locator("#deliveries tr[data-delivery]").first
    assert "hit rate is 0%, under 50%" in delivery.inner_text()
    assert "delivered" in delivery.inner_text()
    screenshot(page, "alerts", tmp_path)

    # A config an alert uses is not deleted: the refusal is shown.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#configs tr[data-config] button:has-text('Delete')")
    assert "is used by an alert" in page.inner_text("p.error")
    page.click("#alerts tr[data-alert] button:has-text('Disable')")
    page.wait_for_selector("text=Alert disabled.")
    assert "disabled" in page.locator("#alerts tr[data-alert]").first.inner_text()
    page.click("#alerts tr[data-alert] button:has-text('Enable')")
    page.wait_for_selector("text=Alert enabled.")
    page.click("#alerts tr[data-alert] button:has-text('Delete')")
    page.wait_for_selector("text=Alert deleted.")
    page.click("#configs tr[data-config] button:has-text('Delete')")
    page.wait_for_selector("text=Delivery config deleted.")
    assert "No delivery configs yet." in page.inner_text("#configs")


def test_a_refused_target_is_shown_and_a_credential_without_api_only_looks(
    server: ServerProcess, page: Any
) -> None:
    _sign_in(page, server, server.username, server.password)
    page.select_option("#add-config select[name=delivery_type]", "slack")
    page.fill("#add-config input[name=target]", "file:///etc/passwd")
    page.click("#add-config button[type=submit]")
    assert "only http and https URLs are accepted" in page.inner_text("p.error")

    viewer = server.cli_json("credentials", "create", "default", "--no-api")
    page.click("button:has-text('Sign out')")
    _sign_in(page, server, viewer["sasl_username"], viewer["sasl_password"])
    assert page.locator("#add-config").count() == 0 and page.locator("#add-alert").count() == 0


def test_a_latency_threshold_reads_in_microseconds_not_an_exponent(
    server: ServerProcess, hook: HttpReceiver, page: Any
) -> None:
    _sign_in(page, server, server.username, server.password)
    page.select_option("#add-config select[name=delivery_type]", "webhook")
    page.fill("#add-config input[name=target]", hook.url())
    page.click("#add-config button[type=submit]")
    page.click("#new-secret >> text=Done")
    page.select_option("#add-alert select[name=trigger_type]", "latency")
    page.fill("#add-alert input[name=trigger_threshold]", "3000000")
    page.click("#add-alert button[type=submit]")
    page.wait_for_selector("text=Alert added.")
    row = page.locator("#alerts tr[data-alert]", has_text="atency").first
    assert "3000000" in row.inner_text() and "e+06" not in row.inner_text()
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Delete')").click()
    page.wait_for_selector("text=Alert deleted.")
    page.click("#configs tr[data-config] button:has-text('Delete')")
    page.wait_for_selector("text=Delivery config deleted.")
