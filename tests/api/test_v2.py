"""Analytics API v2 routes against a real server."""

from __future__ import annotations

import datetime as dt

from memcloud.control.open import open_store
from memcloud.stats.names import API_STAT_NAMES
from memcloud.testing import wait_for

from .conftest import Api, Cred


def _v2(api: Api, action: str) -> str:
    return f"/api/v2/caches/{api.main.cache_id}/{action}"


def test_info(api: Api) -> None:
    info = api.request("GET", _v2(api, "info"), api.main).json()
    assert info["id"] == api.main.cache_id and info["name"] == "default"
    assert info["plan"] == 25 * 1024 * 1024 and info["enabled"] is True
    assert info["servers"] == [f"127.0.0.1:{api.proc.port}"]
    assert info["cache_type"] == "memcachier"
    assert info["can_manage_credentials"] is True
    cred = next(c for c in info["credentials"] if c["sasl_username"] == api.main.username)
    assert set(cred) == {
        "id",
        "cache_id",
        "sasl_username",
        "sasl_password",
        "write_capability",
        "flush_capability",
        "api_capability",
        "primary",
    }
    assert cred["sasl_password"] is None  # stored hashed only


def test_credentials(api: Api) -> None:
    created = api.request("POST", _v2(api, "credentials"), api.main)
    assert created.status_code == 201
    new = created.json()
    assert new["sasl_password"] and new["primary"] is False and new["api_capability"] is True
    cred = Cred(new["sasl_username"], new["sasl_password"], api.main.cache_id)
    assert api.request("GET", _v2(api, "stats"), cred).status_code == 200

    # Update: omitted capabilities become false.
    path = _v2(api, f"credentials/{cred.username}")
    reply = api.request("PATCH", path, api.main, json={"write_capability": True})
    assert (reply.status_code, reply.json()) == (
        200,
        {"flush_capability": False, "write_capability": True, "api_capability": False},
    )
    assert api.request("GET", _v2(api, "stats"), cred).status_code == 403
    reply = api.request(
        "PATCH",
        path,
        api.main,
        json={"write_capability": True, "flush_capability": False, "api_capability": True},
    )
    assert reply.json() == {
        "flush_capability": False,
        "write_capability": True,
        "api_capability": True,
    }
    bad = api.request("PATCH", path, api.main, content=b"{not json")
    assert bad.status_code == 400 and "message" in bad.json()
    listed = api.request("GET", _v2(api, "credentials"), api.main).json()
    assert {c["sasl_username"] for c in listed} >= {cred.username, api.main.username}

    promoted = api.request("POST", _v2(api, f"credentials/primary/{cred.username}"), api.main)
    assert promoted.status_code == 200
    assert promoted.json()["primary"] is True
    api.request("POST", _v2(api, f"credentials/primary/{api.main.username}"), api.main)

    deleted = api.request("DELETE", path, api.main)
    assert (deleted.status_code, deleted.json()) == (200, "Delete successful")
    gone = api.request("DELETE", path, api.main)
    assert (gone.status_code, gone.json()) == (404, {"message": "Credential not found."})


def test_flush_and_webhook(api: Api) -> None:
    client = api.memcache()
    client.set("w", b"1", noreply=False)
    reply = api.request("POST", _v2(api, "flush"), api.main)
    assert (reply.status_code, reply.content) == (204, b"")
    assert client.get("w") is None
    client.set("w", b"1", noreply=False)
    webhook = {
        "id": "5f8e6b1c-0000-4000-8000-000000000001",
        "resource": "release",
        "action": "update",
        "actor": {"email": "ops@example.com"},
        "data": {
            "app": {"name": "shiny-app"},
            "slug": {"commit": "c0ffee1234", "commit_description": "fix"},
            "status": "succeeded",
            "version": 77,
        },
    }
    reply = api.request("POST", _v2(api, "flush"), api.main, json=webhook)
    assert reply.status_code == 204
    assert client.get("w") is None
    client.close()

    def logged() -> bool:
        entries = api.request("GET", _v2(api, "flush_log"), api.main).json()
        hooks = [e for e in entries if e["source"] == "webhook"]
        return bool(hooks) and (hooks[0]["app"], hooks[0]["release"], hooks[0]["commit"]) == (
            "shiny-app",
            "v77",
            "c0ffee1234",
        )

    assert wait_for(logged, timeout=5)


def test_stats_and_reset(api: Api) -> None:
    client = api.memcache()
    client.set("s", b"1", noreply=False)
    client.get("s")
    stats = api.request("GET", _v2(api, "stats"), api.main).json()
    assert list(stats) == list(API_STAT_NAMES)
    assert stats["cmd_get"] >= 1 and stats["curr_items"] >= 1
    reply = api.request("POST", _v2(api, "reset_stats"), api.main)
    assert (reply.status_code, reply.content) == (204, b"")
    after = api.request("GET", _v2(api, "stats"), api.main).json()
    assert after["cmd_get"] == 0 and after["get_hits"] == 0
    assert after["curr_items"] >= 1  # the contents stay
    client.close()


def test_enable_cache(api: Api) -> None:
    cache = api.new_cache("sleepy")
    store = open_store(api.proc.data_dir)
    try:
        store.update_cache(cache.cache_id, enabled=False)
    finally:
        store.close()
    stats = f"/api/v2/caches/{cache.cache_id}/stats"
    assert wait_for(lambda: api.request("GET", stats, cache).status_code == 401, timeout=5)
    reply = api.request("POST", f"/api/v2/caches/{cache.cache_id}/enable_cache", cache)
    assert (reply.status_code, reply.json()) == (200, "Enabled cache successfully")
    assert api.request("GET", stats, cache).status_code == 200
    api.memcache(cache).close()
    # A wrong password stays refused for a disabled cache too.
    wrong = Cred(cache.username, "F" * 32, cache.cache_id)
    assert (
        api.request("POST", f"/api/v2/caches/{cache.cache_id}/enable_cache", wrong).status_code
        == 401
    )


def test_processed_stats(api: Api) -> None:
    path = _v2(api, "insight/processed_stats")
    missing = api.request("GET", path, api.main)
    assert (missing.status_code, missing.json()) == (
        400,
        {"message": "query parameter names is required"},
    )
    unknown = api.request("GET", path, api.main, params={"names": "hit_rate,bogus"})
    assert unknown.status_code == 400 and "bogus" in unknown.json()["message"]
    bad_time = api.request("GET", path, api.main, params={"names": "items", "startTime": "nope"})
    assert bad_time.status_code == 400
    now = dt.datetime.now(dt.UTC)
    params = {
        "names": "hit_rate,get_rate,items,max_bytes",
        "startTime": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": (now + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert wait_for(
        lambda: api.request("GET", path, api.main, params=params).json()[0]["values"], timeout=5
    )
    series = api.request("GET", path, api.main, params=params).json()
    assert len(series) == 1 and series[0]["name"] == "processed_stats"
    assert series[0]["columns"] == ["time", "hit_rate", "get_rate", "items", "max_bytes"]
    row = series[0]["values"][-1]
    assert row[0].endswith(":00Z") and row[4] == 25 * 1024 * 1024
    per_server = api.request(
        "GET", _v2(api, "insight/processed_stats/per_server"), api.main, params=params
    ).json()
    assert per_server[0]["tags"] == {"server": f"127.0.0.1:{api.proc.port}"}


def test_flush_log_limit(api: Api) -> None:
    for _ in range(3):
        api.request("POST", _v2(api, "flush"), api.main)
    path = _v2(api, "flush_log")
    assert wait_for(lambda: len(api.request("GET", path, api.main).json()) >= 3, timeout=5)
    assert len(api.request("GET", path, api.main, params={"limit": 2}).json()) == 2
    bad = api.request("GET", path, api.main, params={"limit": "lots"})
    assert bad.status_code == 400 and "message" in bad.json()
    entries = api.request("GET", path, api.main).json()
    times = [e["timestamp"] for e in entries]
    assert times == sorted(times, reverse=True)
