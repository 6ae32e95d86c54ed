"""Analytics API v1 routes against a real server, with the documentation's quirks."""

from __future__ import annotations

import re

from memcloud.stats.names import API_STAT_NAMES
from memcloud.testing import wait_for

from .conftest import Api, Cred

PLAN = 25 * 1024 * 1024


def test_stats_keyed_by_server(api: Api) -> None:
    client = api.memcache()
    client.set("a", b"1", noreply=False)
    client.get("a")
    client.get("missing")
    reply = api.request("GET", f"/api/v1/{api.main.cache_id}/stats", api.main)
    assert reply.status_code == 200
    data = reply.json()
    assert list(data) == [f"127.0.0.1:{api.proc.port}"]
    stats = data[f"127.0.0.1:{api.proc.port}"]
    assert list(stats) == list(API_STAT_NAMES) and len(stats) == 31
    assert all(isinstance(v, int) for v in stats.values())
    assert stats["limit_maxbytes"] == PLAN
    assert stats["curr_items"] >= 1 and stats["get_hits"] >= 1 and stats["get_misses"] >= 1
    assert stats["curr_connections"] >= 1
    client.close()


def test_history_shape(api: Api) -> None:
    path = f"/api/v1/{api.main.cache_id}/history"
    assert wait_for(lambda: len(api.request("GET", path, api.main).json()) >= 2, timeout=5)
    samples = api.request("GET", path, api.main).json()
    for sample in samples:
        assert set(sample) == {"memcachier_id", "server", "stats", "timestamp"}
        assert sample["memcachier_id"] == str(api.main.cache_id)
        # With its port, as /stats names it (issue 12: without it, nodes of one machine
        # could not be told apart).
        assert sample["server"] == f"127.0.0.1:{api.proc.port}"
        assert re.fullmatch(r"\d{13}", sample["timestamp"])
        assert list(sample["stats"]) == list(API_STAT_NAMES)
        assert abs(int(sample["timestamp"]) // 1000 - sample["stats"]["time"]) <= 1
    stamps = [int(s["timestamp"]) for s in samples]
    assert stamps == sorted(stamps)


def test_credentials_lifecycle(api: Api) -> None:
    base = f"/api/v1/{api.main.cache_id}/credentials"
    listed = api.request("GET", base, api.main).json()
    assert all("sasl_password" not in c for c in listed)
    mine = next(c for c in listed if c["sasl_username"] == api.main.username)
    assert mine == {
        "cache_id": api.main.cache_id,
        "id": mine["id"],
        "sasl_username": api.main.username,
        "uuid": None,
        "primary": True,
        "flush_capability": True,
        "write_capability": True,
        "api_capability": True,
    }

    created = api.request("POST", base, api.main)
    assert created.status_code == 200
    new = created.json()
    assert re.fullmatch(r"[0-9A-F]{32}", new["sasl_password"])
    assert new["primary"] is False and new["uuid"] is None
    assert new["flush_capability"] and new["write_capability"] and new["api_capability"]
    cred = Cred(new["sasl_username"], new["sasl_password"], api.main.cache_id)
    # The data plane knows it at once (the API reloads this node's directory).
    api.memcache(cred).close()
    assert api.request("GET", "/api/v1/login", cred).json() == {"cache_id": api.main.cache_id}

    # The documented example: PATCH by username, JSON sent as a form, a string boolean.
    reply = api.request(
        "PATCH",
        f"{base}/{cred.username}",
        api.main,
        content='{"flush_capability":"false"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (reply.status_code, reply.json()) == (
        200,
        {"flush_capability": False, "write_capability": True, "api_capability": True},
    )
    # The documented request line: POST by id, here as query parameters.
    reply = api.request(
        "POST", f"{base}/{new['id']}?write_capability=false&api_capability=true", api.main
    )
    assert reply.json() == {
        "flush_capability": False,
        "write_capability": False,
        "api_capability": True,
    }
    assert api.request("POST", f"/api/v1/{api.main.cache_id}/flush", cred).status_code == 403
    bad = api.request("PATCH", f"{base}/{cred.username}", api.main, json={"api_capability": "x"})
    assert (bad.status_code, bad.json()) == (400, "api_capability must be true or false")
    missing = api.request("PATCH", f"{base}/NOSUCH", api.main, json={})
    assert (missing.status_code, missing.json()) == (404, "No credential found.")

    # Promote, by username; exactly one primary remains.
    promoted = api.request("POST", f"{base}/primary/{cred.username}", api.main).json()
    assert promoted["primary"] is True and promoted["sasl_username"] == cred.username
    assert "sasl_password" not in promoted
    primaries = [c for c in api.request("GET", base, api.main).json() if c["primary"]]
    assert [c["sasl_username"] for c in primaries] == [cred.username]
    # The primary cannot be deleted; promote the original back, then delete.
    refused = api.request("DELETE", f"{base}/{cred.username}", api.main)
    assert refused.status_code == 400 and "primary" in refused.json()
    api.request("POST", f"{base}/primary/{api.main.username}", api.main)
    deleted = api.request("DELETE", f"{base}/primary/{cred.username}", api.main)
    assert (deleted.status_code, deleted.json()) == (200, "")
    assert api.request("GET", "/api/v1/login", cred).status_code == 403


def test_delete_by_plain_path_and_id(api: Api) -> None:
    base = f"/api/v1/{api.main.cache_id}/credentials"
    new = api.request("POST", base, api.main).json()
    reply = api.request("DELETE", f"{base}/{new['id']}", api.main)
    assert (reply.status_code, reply.json()) == (200, "")
    names = [c["sasl_username"] for c in api.request("GET", base, api.main).json()]
    assert new["sasl_username"] not in names


def test_flush_accepts_json_and_empty_bodies(api: Api) -> None:
    path = f"/api/v1/{api.main.cache_id}/flush"
    for kwargs in ({}, {"json": {"anything": 1}}, {"content": b"\xff\xfe not text"}):
        client = api.memcache()
        client.set("x", b"1", noreply=False)
        reply = api.request("POST", path, api.main, **kwargs)
        assert (reply.status_code, reply.json()) == (200, "")
        assert client.get("x") is None
        client.close()
