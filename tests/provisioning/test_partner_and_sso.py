"""The platform's documented requests, sent with curl and httpx to a real server."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from pymemcache.client.base import Client

from conftest import require_tool
from memcloud.provisioning.tokens import resource_token, token_ok, user_scoped_token
from memcloud.testing import ServerProcess, wait_for

USER, PASSWORD, SALT = "memcachier", "super-secret", "2f97bfa52ca102f8874716e2eb1d3b4920ad0be4"
UUID = "01234567-89ab-cdef-0123-456789abcdef"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "MEMCLOUD_PROVISION_USER": USER,
        "MEMCLOUD_PROVISION_PASSWORD": PASSWORD,
        "MEMCLOUD_SSO_SALT": SALT,
    }
    data_dir = tmp_path_factory.mktemp("provisioning") / "data"
    with ServerProcess(data_dir, "--plans", "dev=25MB,100=100MB,tiny=1MB", env=env) as proc:
        yield proc


def api(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.api_port}"


def curl(*args: str) -> tuple[int, str]:
    out = subprocess.run(
        [require_tool("curl"), "-s", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def memcache(config: dict[str, str]) -> Client:
    host, port = config["MEMCACHIER_SERVERS"].split(",")[0].split(":")
    client = Client((host, int(port)), timeout=5)
    client.set(config["MEMCACHIER_USERNAME"], config["MEMCACHIER_PASSWORD"], noreply=False)
    return client


def test_the_reference_example_token() -> None:
    # The platform documentation's legacy v1 example.
    assert resource_token("123", SALT, "1267597772") == "bb466eb1d6bc345d11072c3cd25c311f21be130d"
    scoped = user_scoped_token(UUID, SALT, "1", "u-1", "a@example.com")
    assert token_ok(
        scoped,
        resource_id=UUID,
        salt=SALT,
        timestamp="1",
        user_id="u-1",
        user_email="a@example.com",
    )
    assert not token_ok(scoped, resource_id=UUID, salt=SALT, timestamp="1")


def test_provision_use_change_plan_deprovision_with_curl(server: ServerProcess) -> None:
    base = f"{api(server)}/heroku/resources"
    body = json.dumps(
        {
            "callback_url": f"https://api.heroku.com/addons/{UUID}",
            "name": "acme-inc-cache",
            "oauth_grant": {
                "code": "x",
                "expires_at": "2016-03-03T18:01:31-0800",
                "type": "authorization_code",
            },
            "options": {"foo": "bar"},
            "plan": "memcachier:100",
            "region": "amazon-web-services::us-east-1",
            "uuid": UUID,
            "log_input_url": "https://token:t.x@1.us.logplex.io/logs",
            "log_drain_token": "d.x",
        }
    )
    headers = [
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/vnd.heroku-addons+json; version=3",
    ]
    status, text = curl("-X", "POST", "--user", f"{USER}:{PASSWORD}", *headers, base, "-d", body)
    assert status == 200, text
    answer = json.loads(text)
    assert answer["id"] == UUID and answer["message"]
    config = answer["config"]
    assert set(config) == {"MEMCACHIER_SERVERS", "MEMCACHIER_USERNAME", "MEMCACHIER_PASSWORD"}
    assert config["MEMCACHIER_SERVERS"] == f"127.0.0.1:{server.port}"

    # Delivered twice: the same answer, one cache.
    again = curl("-X", "POST", "--user", f"{USER}:{PASSWORD}", *headers, base, "-d", body)
    assert again[0] == 200 and json.loads(again[1])["config"] == config
    assert [c["name"] for c in server.cli_json("cache", "list")].count(UUID) == 1
    cache = next(c for c in server.cli_json("cache", "list") if c["name"] == UUID)
    assert cache["plan"] == 100 * MIB

    client = memcache(config)
    value = b"v" * 20_000
    for i in range(100):  # about 2 MB
        client.set(f"k{i}", value, noreply=False)

    # Growing keeps every item.
    status, text = curl(
        "-X",
        "PUT",
        "--user",
        f"{USER}:{PASSWORD}",
        *headers,
        f"{base}/{UUID}",
        "-d",
        '{"plan": "memcachier:dev"}',
    )
    assert status == 200, text
    assert json.loads(text)["config"]["MEMCACHIER_PASSWORD"] == config["MEMCACHIER_PASSWORD"]
    assert wait_for(lambda: server.cli_json("stats", UUID)["limit_maxbytes"] == 25 * MIB)
    assert client.get("k0") == value and client.get("k99") == value

    # Shrinking evicts the least recently used down to the new size.
    status, text = curl(
        "-X",
        "PUT",
        "--user",
        f"{USER}:{PASSWORD}",
        *headers,
        f"{base}/{UUID}",
        "-d",
        '{"plan": "tiny"}',
    )
    assert status == 200, text
    assert wait_for(lambda: server.cli_json("stats", UUID)["limit_maxbytes"] == MIB)
    stats = server.cli_json("stats", UUID)
    assert stats["bytes"] <= MIB and stats["evictions"] > 0
    # k0 and k99 were read last; k1 was the least recently used.
    assert client.get("k99") == value and client.get("k1") is None
    client.close()

    status, _ = curl("-X", "DELETE", "--user", f"{USER}:{PASSWORD}", f"{base}/{UUID}")
    assert status == 204
    assert UUID not in [c["name"] for c in server.cli_json("cache", "list")]
    assert curl("-X", "DELETE", "--user", f"{USER}:{PASSWORD}", f"{base}/{UUID}")[0] == 204
    # Its credentials went with it.
    gone = httpx.get(
        f"{api(server)}/api/v1/login",
        auth=(config["MEMCACHIER_USERNAME"], config["MEMCACHIER_PASSWORD"]),
    )
    assert gone.status_code == 403


def test_partner_api_refusals(server: ServerProcess) -> None:
    base = f"{api(server)}/heroku/resources"
    good = {"uuid": "aaaaaaaa-0000-0000-0000-000000000001", "plan": "dev"}
    assert httpx.post(base, json=good).status_code == 401
    assert httpx.post(base, json=good, auth=(USER, "wrong")).status_code == 401
    # The documentation's example header.
    header = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert httpx.post(base, json=good, headers={"Authorization": header}).status_code == 200
    unknown = httpx.post(base, json={**good, "plan": "gold"}, auth=(USER, PASSWORD))
    assert unknown.status_code == 422 and "plans" in unknown.json()["message"]
    assert httpx.post(base, json={"plan": "dev"}, auth=(USER, PASSWORD)).status_code == 422
    put = httpx.put(
        f"{base}/bbbbbbbb-0000-0000-0000-000000000002", json={"plan": "dev"}, auth=(USER, PASSWORD)
    )
    assert put.status_code == 404
    # An operator's cache is not a platform resource.
    assert (
        httpx.put(f"{base}/default", json={"plan": "dev"}, auth=(USER, PASSWORD)).status_code == 404
    )


def _sso(
    server: ServerProcess, uuid: str, timestamp: int, token: str | None = None, **extra: str
) -> httpx.Response:
    token = token or resource_token(uuid, SALT, str(timestamp))
    return httpx.post(
        f"{api(server)}/sso/login",
        data={"resource_id": uuid, "timestamp": str(timestamp), "resource_token": token, **extra},
    )


def test_sso_tokens_and_rotation(server: ServerProcess) -> None:
    uuid = "cccccccc-0000-0000-0000-000000000003"
    provisioned = httpx.post(
        f"{api(server)}/heroku/resources", json={"uuid": uuid, "plan": "dev"}, auth=(USER, PASSWORD)
    ).json()
    now = int(time.time())
    ok = _sso(server, uuid, now)
    assert ok.status_code == 302 and ok.headers["location"].startswith("/dashboard/caches/")
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    dashboard = httpx.get(api(server) + ok.headers["location"], cookies=ok.cookies)
    assert dashboard.status_code == 200 and uuid in dashboard.text

    assert _sso(server, uuid, now).status_code == 403  # replayed
    assert _sso(server, uuid, now - 301).status_code == 403  # older than five minutes
    assert _sso(server, uuid, now + 1, token="0" * 40).status_code == 403
    assert _sso(server, "dddddddd-0000-0000-0000-000000000004", now).status_code == 403
    scoped = user_scoped_token(uuid, SALT, str(now + 1), "user-1", "dev@example.com")
    assert (
        _sso(
            server, uuid, now + 1, token=scoped, user_id="user-1", email="dev@example.com"
        ).status_code
        == 302
    )

    # rotate_sso: tokens made before it, and sessions opened by them, no longer work.
    cache_id = ok.headers["location"].rsplit("/", 1)[1]
    config = provisioned["config"]
    creds = (config["MEMCACHIER_USERNAME"], config["MEMCACHIER_PASSWORD"])
    assert httpx.post(f"{api(server)}/api/v2/caches/{cache_id}/rotate_sso").status_code == 401
    rotated = httpx.post(f"{api(server)}/api/v2/caches/{cache_id}/rotate_sso", auth=creds)
    assert rotated.status_code == 200, rotated.text
    assert _sso(server, uuid, now - 1).status_code == 403  # made before the rotation
    stale = httpx.get(api(server) + ok.headers["location"], cookies=ok.cookies)
    assert stale.status_code == 303 and "/dashboard/login" in stale.headers["location"]
    later = int(time.time()) + 1
    assert _sso(server, uuid, later).status_code == 302


def test_forms_need_the_csrf_token(server: ServerProcess) -> None:
    with httpx.Client(base_url=api(server)) as browser:
        form = browser.get("/dashboard/login")
        assert form.status_code == 200
        refused = browser.post(
            "/dashboard/login", data={"username": server.username, "password": server.password}
        )
        assert refused.status_code == 403
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed_in = browser.post(
            "/dashboard/login",
            data={"csrf": token, "username": server.username, "password": server.password},
        )
        assert signed_in.status_code == 303
        # Signing in replaced the nonce: the old token no longer posts anything.
        overview = browser.get(signed_in.headers["location"])
        assert overview.status_code == 200
        flush = browser.post(
            signed_in.headers["location"] + "/flush", data={"csrf": token, "confirm": "yes"}
        )
        assert flush.status_code == 403
        # A forged cookie is no session.
        browser.cookies.set("memcloud_session", "eyJ9.forged")
        assert browser.get(signed_in.headers["location"]).status_code == 303
