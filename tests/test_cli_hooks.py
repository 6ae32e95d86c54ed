"""`memcloud hook create|list|revoke` against a real server: the printed URL flushes, a
listing never shows the token, a revoked token's URL stops working."""

from __future__ import annotations

import re

import httpx
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess


def test_hook_commands_make_list_and_revoke_tokens(server: ServerProcess) -> None:
    made = server.cli_json("hook", "create", "default", "--name", "deploy")
    token, url = made["token"], made["url"]
    assert url == f"http://127.0.0.1:{server.api_port}/api/v1/hooks/{token}/flush"
    assert made["path"] == f"/api/v1/hooks/{token}/flush" and made["name"] == "deploy"

    client = Client(server.address, timeout=5)
    assert client.set(server.username, server.password, noreply=False)
    assert client.set("item", b"v", noreply=False)
    assert httpx.post(url, timeout=10).status_code == 200
    assert client.get("item") is None

    listed = server.cli("hook", "list", "default").stdout
    assert token not in listed
    assert re.search(rf"{made['id']}\s+deploy\s+\(all\)\s+{re.escape(token[:8])}\.\.\.", listed)
    assert "active" in listed and "never" not in listed  # used once: its time is shown

    text = server.cli("hook", "create", "default", "--prefix", "views:").stdout
    assert "Token (shown only now" in text and "only keys starting with 'views:'" in text
    assert f"http://127.0.0.1:{server.api_port}/api/v1/hooks/mch_" in text
    public = server.cli_json("hook", "create", "default", "--api-url", "https://cache.example/")
    assert public["url"] == f"https://cache.example/api/v1/hooks/{public['token']}/flush"

    revoked = server.cli_json("hook", "revoke", "default", str(made["id"]))
    assert revoked["revoked"] is True
    assert httpx.post(url, timeout=10).status_code == 403
    assert "revoked" in server.cli("hook", "list", "default").stdout
    refused = server.cli("hook", "revoke", "default", "999999", check=False)
    assert refused.returncode == 1 and "no deploy hook with id 999999" in refused.stderr
    bad = server.cli("hook", "revoke", "default", "x1", check=False)
    assert bad.returncode == 2 and "invalid hook id" in bad.stderr
    client.close()
