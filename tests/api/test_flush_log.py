"""Every kind of flush reaches the audit log: text protocol, CLI, API; and the CLI shows it."""

from __future__ import annotations

import json

from memcloud.testing import wait_for

from .conftest import Api


def _sources(api: Api) -> list[str]:
    path = f"/api/v2/caches/{api.main.cache_id}/flush_log"
    return [e["source"] for e in api.request("GET", path, api.main).json()]


def test_protocol_cli_and_api_flushes_are_logged(api: Api) -> None:
    client = api.memcache()
    client.flush_all(noreply=False)
    client.close()
    api.proc.cli("flush", "default")
    api.request("POST", f"/api/v1/{api.main.cache_id}/flush", api.main)
    assert wait_for(lambda: {"text", "cli", "api"} <= set(_sources(api)), timeout=5)
    entries = api.request("GET", f"/api/v2/caches/{api.main.cache_id}/flush_log", api.main)
    text = next(e for e in entries.json() if e["source"] == "text")
    assert text["username"] == api.main.username
    assert text["peer"].startswith("127.0.0.1:")
    assert text["node"] == f"127.0.0.1:{api.proc.port}"


def test_cli_flush_log(api: Api) -> None:
    api.request("POST", f"/api/v1/{api.main.cache_id}/flush", api.main, data={"release": "v9"})
    assert wait_for(lambda: "deploy_hook" in _sources(api), timeout=5)
    table = api.proc.cli("flush-log", "default").stdout
    assert table.splitlines()[0].split() == [
        "time",
        "source",
        "credential",
        "peer",
        "app",
        "release",
        "commit",
    ]
    assert "v9" in table
    data = json.loads(api.proc.cli("flush-log", str(api.main.cache_id), "--json").stdout)
    assert data[0]["source"] == "deploy_hook" and data[0]["release"] == "v9"
    missing = api.proc.cli("flush-log", "nosuchcache", check=False)
    assert missing.returncode == 1 and "nosuchcache" in missing.stderr
