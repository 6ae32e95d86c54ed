"""The dashboard's settings page refuses to delete the primary credential, with a message."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from conftest import api_status
from memcloud.testing import ServerProcess, wait_for


def _sign_in(http: httpx.Client, base: str, username: str, password: str) -> None:
    form = http.get(f"{base}/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    reply = http.post(
        f"{base}/dashboard/login",
        data={"csrf": csrf[1], "username": username, "password": password},
    )
    assert reply.status_code == 303, reply.text


def test_settings_page_refuses_to_delete_the_primary_credential(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        base = f"http://127.0.0.1:{server.api_port}"
        other = server.cli_json("credentials", "create", "1")
        user, password = other["sasl_username"], other["sasl_password"]
        assert server.api_port is not None
        assert wait_for(lambda: api_status(server.api_port or 0, user, password) == 200)
        primary_id = next(
            c["id"] for c in server.cli_json("credentials", "list", "1") if c["primary"]
        )
        settings = f"{base}/dashboard/caches/1/settings"
        with httpx.Client(follow_redirects=False) as http:
            # Signed in with the secondary one, so it is not the self-delete refusal.
            _sign_in(http, base, user, password)
            page = http.get(settings)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert page.status_code == 200 and csrf is not None
            reply = http.post(
                f"{base}/dashboard/caches/1/credentials/{primary_id}/delete",
                data={"csrf": csrf[1]},
            )
            assert reply.status_code == 303
            assert reply.headers["location"].endswith("/settings?notice=primary_delete")
            shown = html.unescape(http.get(f"{settings}?notice=primary_delete").text)
        assert "The primary credential cannot be deleted; promote another one first." in shown
        still = server.cli_json("credentials", "list", "1")
        assert [c["id"] for c in still if c["primary"]] == [primary_id]
