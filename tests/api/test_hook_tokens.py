"""Deploy-hook tokens over a real server: made and revoked with the v2 routes, flushing by
token alone, through credential rotation, from GitHub and GitLab webhooks, throttled, and
never written to a log."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.api.hooks_models import HookToken, NewHookToken
from memcloud.testing import ServerProcess, wait_for

from .conftest import SAMPLE_ENV, Api, Cred

LOG_ARGS = ("--log-level", "INFO", "--log-format", "json")


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("hooks") / "data"
    with ServerProcess(data, *LOG_ARGS, env=SAMPLE_ENV) as proc:
        yield proc


@pytest.fixture(scope="module")
def api(hooked: ServerProcess) -> Iterator[Api]:
    client = Api(hooked)
    yield client
    client.close()


def _create(api: Api, cred: Cred, **body: str) -> dict[str, Any]:
    reply = api.request("POST", f"/api/v2/caches/{cred.cache_id}/hooks", cred, json=body)
    assert reply.status_code == 201, reply.text
    data: dict[str, Any] = reply.json()
    NewHookToken.model_validate(data)
    return data


def _fill(client: Client, *keys: str) -> None:
    for key in keys:
        assert client.set(key, b"v", noreply=False)


def _flush_log(api: Api, cred: Cred) -> list[dict[str, Any]]:
    reply = api.request("GET", f"/api/v2/caches/{cred.cache_id}/flush_log", cred)
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()
    return entries


def _hook_flushes(api: Api, cred: Cred) -> list[dict[str, Any]]:
    return [e for e in _flush_log(api, cred) if e["source"] == "hook"]


def _post(api: Api, url: str, **kwargs: Any) -> httpx.Response:
    # The hook URL is absolute (the API's base as the request named it).
    assert url.startswith(api.base + "/api/v1/hooks/mch_")
    return httpx.post(url, timeout=10, **kwargs)


def test_a_token_flushes_without_a_credential_and_is_shown_once(api: Api) -> None:
    cred = api.new_cache("plain-hook")
    client = api.memcache(cred)
    _fill(client, "a", "b")
    made = _create(api, cred, name="ci")
    token, url = made["token"], made["url"]
    assert url == f"{api.base}/api/v1/hooks/{token}/flush"
    assert (made["name"], made["prefix"], made["revoked"], made["last_used_at"]) == (
        "ci",
        "",
        False,
        None,
    )
    listed = api.request("GET", f"/api/v2/caches/{cred.cache_id}/hooks", cred)
    assert listed.status_code == 200 and token not in listed.text
    [shown] = listed.json()
    HookToken.model_validate(shown)
    assert shown["hint"] == token[:8] and shown["id"] == made["id"]

    reply = _post(api, url)
    assert (reply.status_code, reply.json()) == (200, "")
    assert client.get("a") is None and client.get("b") is None
    assert wait_for(lambda: bool(_hook_flushes(api, cred)), timeout=5)
    [entry] = _hook_flushes(api, cred)
    assert entry["username"] == f"hook:{made['id']}"
    assert entry["details"]["hook_name"] == "ci" and entry["details"]["sender"] == "plain"
    used = api.request("GET", f"/api/v2/caches/{cred.cache_id}/hooks", cred).json()[0]
    assert used["last_used_at"] is not None
    client.close()


def test_a_token_still_flushes_after_every_credential_was_rotated(api: Api) -> None:
    first = api.new_cache("rotated")
    made = _create(api, first)
    # Rotation as the hosted service documents it, with both API versions: new credentials,
    # promote the newest, delete every older one.
    v1_new = api.request("POST", f"/api/v1/{first.cache_id}/credentials", first)
    assert v1_new.status_code == 200, v1_new.text
    second = Cred(v1_new.json()["sasl_username"], v1_new.json()["sasl_password"], first.cache_id)
    assert wait_for(lambda: api.knows(second), timeout=5)
    v2_new = api.request("POST", f"/api/v2/caches/{first.cache_id}/credentials", second)
    assert v2_new.status_code == 201, v2_new.text
    third = Cred(v2_new.json()["sasl_username"], v2_new.json()["sasl_password"], first.cache_id)
    assert wait_for(lambda: api.knows(third), timeout=5)
    path = f"/api/v2/caches/{first.cache_id}/credentials"
    assert api.request("POST", f"{path}/primary/{third.username}", third).status_code == 200
    assert api.request("DELETE", f"{path}/{first.username}", third).status_code == 200
    v1_path = f"/api/v1/{first.cache_id}/credentials"
    assert api.request("DELETE", f"{v1_path}/{second.username}", third).status_code == 200
    listed = api.request("GET", path, third).json()
    assert [c["sasl_username"] for c in listed] == [third.username]
    assert wait_for(lambda: not api.knows(first), timeout=5)

    client = api.memcache(third)
    _fill(client, "kept-until-the-hook")
    reply = _post(api, made["url"])
    assert reply.status_code == 200, reply.text
    assert client.get("kept-until-the-hook") is None
    client.close()


def test_a_revoked_token_is_refused_and_says_so(api: Api) -> None:
    cred = api.new_cache("revoking")
    made = _create(api, cred)
    client = api.memcache(cred)
    _fill(client, "stays")
    gone = api.request("DELETE", f"/api/v2/caches/{cred.cache_id}/hooks/{made['id']}", cred)
    assert gone.status_code == 200, gone.text
    HookToken.model_validate(gone.json())
    assert gone.json()["revoked"] is True and gone.json()["revoked_at"]
    reply = _post(api, made["url"])
    assert reply.status_code == 403
    assert "revoked" in reply.json()
    assert client.get("stays") == b"v"
    # Unknown tokens, of the right form or not, are refused the same way as v1 refuses.
    for token in ("mch_" + "A" * 43, "nope"):
        refused = httpx.post(f"{api.base}/api/v1/hooks/{token}/flush", timeout=10)
        assert (refused.status_code, refused.json()) == (403, "Unknown deploy hook token.")
    assert client.get("stays") == b"v"
    missing = api.request("DELETE", f"/api/v2/caches/{cred.cache_id}/hooks/999999", cred)
    assert (missing.status_code, missing.json()) == (404, {"message": "Deploy hook not found."})
    client.close()


def test_a_token_of_one_cache_never_touches_another(api: Api) -> None:
    a = api.new_cache("tenant-a")
    b = api.new_cache("tenant-b")
    made = _create(api, a)
    client_a, client_b = api.memcache(a), api.memcache(b)
    _fill(client_a, "shared-name")
    _fill(client_b, "shared-name")
    assert _post(api, made["url"]).status_code == 200
    assert client_a.get("shared-name") is None
    assert client_b.get("shared-name") == b"v"
    # B's credential neither lists nor revokes A's hooks.
    assert api.request("GET", f"/api/v2/caches/{b.cache_id}/hooks", b).json() == []
    across = api.request("DELETE", f"/api/v2/caches/{b.cache_id}/hooks/{made['id']}", b)
    assert across.status_code == 404
    assert api.request("GET", f"/api/v2/caches/{a.cache_id}/hooks", b).status_code == 403
    assert _post(api, made["url"]).status_code == 200  # still A's, still working
    client_a.close()
    client_b.close()


def test_creating_a_token_needs_the_flush_capability_and_a_valid_body(api: Api) -> None:
    owner = api.new_cache("capable")
    no_flush = api.new_credential("capable", "--no-flush")
    path = f"/api/v2/caches/{owner.cache_id}/hooks"
    assert api.request("POST", path, no_flush, json={}).status_code == 403
    assert api.request("GET", path, no_flush).status_code == 200  # listing needs the API only
    bad = api.request("POST", path, owner, json={"name": "x", "secret": "y"})
    assert (bad.status_code, bad.json()) == (400, {"message": "unknown fields: secret"})
    spaced = api.request("POST", path, owner, json={"prefix": "has space"})
    assert spaced.status_code == 400 and "prefix" in spaced.json()["message"]
    assert api.request("POST", path, owner, content=b"[1]").status_code == 400


def _github(
    url: str, secret: str, event: str, payload: dict[str, Any], *, form: bool = False
) -> httpx.Response:
    """As GitHub sends it: JSON, or (the webhook's other content type) a form whose
    `payload` field is the JSON; signed over the raw body."""
    body = json.dumps(payload).encode()
    if form:
        body = urlencode({"payload": body.decode()}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    headers = {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={signature}",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }
    return httpx.post(url, content=body, headers=headers, timeout=10)


PUSH = {
    "ref": "refs/heads/main",
    "after": "9b1c0f0a4d1e8c2b7a6f5e4d3c2b1a0f9e8d7c6b",
    "deleted": False,
    "repository": {"full_name": "octo/shop"},
    "pusher": {"name": "octocat"},
    "head_commit": {
        "id": "9b1c0f0a4d1e8c2b7a6f5e4d3c2b1a0f9e8d7c6b",
        "message": "Render prices in cents\n\nlonger text",
        "author": {"name": "Mona", "username": "mona"},
    },
}


def test_github_signed_webhooks_flush_and_bad_signatures_are_refused(api: Api) -> None:
    cred = api.new_cache("github")
    made = _create(api, cred)
    client = api.memcache(cred)
    _fill(client, "page")

    wrong = _github(made["url"], "not-the-token", "push", PUSH)
    assert wrong.status_code == 401 and "X-Hub-Signature-256 does not match" in wrong.json()
    unsigned = httpx.post(made["url"], json=PUSH, headers={"X-GitHub-Event": "push"}, timeout=10)
    assert unsigned.status_code == 401 and "must be signed" in unsigned.json()
    assert client.get("page") == b"v"

    ping = _github(made["url"], made["token"], "ping", {"zen": "Keep it simple."})
    assert ping.status_code == 200 and "pong" in ping.json()
    issue = _github(made["url"], made["token"], "issues", {"action": "opened"})
    assert issue.status_code == 200 and "ignored" in issue.json()
    assert client.get("page") == b"v"

    pushed = _github(made["url"], made["token"], "push", PUSH)
    assert (pushed.status_code, pushed.json()) == (200, "")
    assert client.get("page") is None
    assert wait_for(lambda: bool(_hook_flushes(api, cred)), timeout=5)
    [entry] = _hook_flushes(api, cred)
    assert (entry["app"], entry["commit"]) == ("octo/shop", PUSH["after"])
    details = entry["details"]
    assert (details["user"], details["sender"], details["event"]) == ("mona", "github", "push")
    assert (details["ref"], details["message"]) == ("refs/heads/main", "Render prices in cents")

    _fill(client, "page")
    deployed = {
        "deployment_status": {"state": "success"},
        "deployment": {
            "sha": "abc123",
            "ref": "main",
            "environment": "production",
            "creator": {"login": "hubot"},
        },
        "repository": {"full_name": "octo/shop"},
    }
    pending = {**deployed, "deployment_status": {"state": "pending"}}
    assert _github(made["url"], made["token"], "deployment_status", pending).status_code == 200
    assert client.get("page") == b"v"
    done = _github(made["url"], made["token"], "deployment_status", deployed)
    assert done.status_code == 200 and client.get("page") is None
    assert wait_for(lambda: len(_hook_flushes(api, cred)) == 2, timeout=5)
    newest = _hook_flushes(api, cred)[0]
    assert (newest["commit"], newest["details"]["environment"]) == ("abc123", "production")
    assert newest["details"]["user"] == "hubot"

    _fill(client, "page")
    as_form = _github(made["url"], made["token"], "push", {**PUSH, "after": "f0f0"}, form=True)
    assert as_form.status_code == 200 and client.get("page") is None
    assert wait_for(lambda: len(_hook_flushes(api, cred)) == 3, timeout=5)
    assert _hook_flushes(api, cred)[0]["commit"] == "f0f0"
    client.close()


def test_gitlab_webhooks_need_the_token_header(api: Api) -> None:
    cred = api.new_cache("gitlab")
    made = _create(api, cred)
    client = api.memcache(cred)
    _fill(client, "page")
    push = {
        "object_kind": "push",
        "ref": "refs/heads/main",
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "user_username": "jsmith",
        "project": {"path_with_namespace": "group/shop"},
        "commits": [
            {"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "message": "Fix cart\n"},
        ],
    }
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"}
    refused = httpx.post(made["url"], json=push, headers=headers, timeout=10)
    assert refused.status_code == 401 and "X-Gitlab-Token" in refused.json()
    missing = httpx.post(made["url"], json=push, headers={"X-Gitlab-Event": "Push Hook"})
    assert missing.status_code == 401
    assert client.get("page") == b"v"
    headers["X-Gitlab-Token"] = made["token"]
    reply = httpx.post(made["url"], json=push, headers=headers, timeout=10)
    assert (reply.status_code, reply.json()) == (200, "")
    assert client.get("page") is None
    assert wait_for(lambda: bool(_hook_flushes(api, cred)), timeout=5)
    [entry] = _hook_flushes(api, cred)
    assert (entry["app"], entry["commit"]) == ("group/shop", push["checkout_sha"])
    details = entry["details"]
    assert (details["user"], details["message"], details["sender"]) == (
        "jsmith",
        "Fix cart",
        "gitlab",
    )
    client.close()


def test_heroku_deploy_hook_forms_are_recorded_as_before(api: Api) -> None:
    cred = api.new_cache("heroku")
    made = _create(api, cred)
    form = {"app": "shop", "release": "v7", "head_long": "4f2a9c1e", "user": "dev@example.com"}
    assert _post(api, made["url"], data=form).status_code == 200
    assert wait_for(lambda: bool(_hook_flushes(api, cred)), timeout=5)
    [entry] = _hook_flushes(api, cred)
    assert (entry["app"], entry["release"], entry["commit"]) == ("shop", "v7", "4f2a9c1e")
    assert entry["details"]["sender"] == "heroku"


def test_a_token_of_a_deleted_cache_is_refused(api: Api, hooked: ServerProcess) -> None:
    cred = api.new_cache("short-lived")
    made = _create(api, cred)
    hooked.cli("cache", "delete", "short-lived")
    assert wait_for(lambda: _post(api, made["url"]).status_code == 403, timeout=5)
    assert _post(api, made["url"]).json() == "Unknown deploy hook token."


def test_prefixes_stay_within_the_tokens_own(api: Api) -> None:
    cred = api.new_cache("prefixed")
    made = _create(api, cred, prefix="views:")
    assert made["prefix"] == "views:"
    outside = _post(api, made["url"] + "?prefix=sessions:")
    assert outside.status_code == 403 and "views:" in outside.json()
    spaced = _post(api, made["url"] + "?prefix=a%20b")
    assert spaced.status_code == 400 and "without spaces" in spaced.json()
    twice = _post(api, made["url"] + "?prefix=views:a&prefix=views:b")
    assert (twice.status_code, twice.json()) == (400, "give one prefix, not several")


def test_a_prefix_token_flushes_only_its_prefix(api: Api) -> None:
    cred = api.new_cache("prefix-flush")
    made = _create(api, cred, prefix="views:")
    client = api.memcache(cred)
    _fill(client, "views:home", "views:cart", "views:about", "sessions:1")
    narrowed = _post(api, made["url"] + "?prefix=views:c")
    assert (narrowed.status_code, narrowed.json()) == (200, "")
    assert client.get("views:cart") is None
    assert client.get("views:home") == b"v" and client.get("sessions:1") == b"v"
    assert _post(api, made["url"]).status_code == 200
    assert client.get("views:home") is None and client.get("views:about") is None
    assert client.get("sessions:1") == b"v"
    assert wait_for(lambda: len(_hook_flushes(api, cred)) == 2, timeout=5)
    assert [e["details"]["prefix"] for e in _hook_flushes(api, cred)] == ["views:", "views:c"]
    client.close()


def test_bodies_are_bounded(api: Api) -> None:
    cred = api.new_cache("bounded")
    made = _create(api, cred)
    reply = _post(api, made["url"], content=b"x" * (1024 * 1024 + 1))
    assert reply.status_code == 413


def test_the_token_is_in_no_log_line(api: Api, hooked: ServerProcess) -> None:
    cred = api.new_cache("logged")
    made = _create(api, cred)
    assert _post(api, made["url"] + "?prefix=").status_code == 200
    log = hooked.data_dir.parent / f"{hooked.data_dir.name}-serve.err"

    def access_lines() -> list[dict[str, Any]]:
        records = [json.loads(line) for line in log.read_text().splitlines() if line]
        return [r for r in records if r.get("logger") == "memcloud.access"]

    assert wait_for(
        lambda: any(r["path"].startswith("/api/v1/hooks/***/flush") for r in access_lines()),
        timeout=5,
    )
    assert made["token"] not in log.read_text()
    assert made["token"][4:] not in log.read_text()


def test_guessing_tokens_is_throttled(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as proc:
        base = f"http://127.0.0.1:{proc.api_port}"
        statuses = []
        for n in range(12):
            guess = f"mch_{n:043d}"
            statuses.append(httpx.post(f"{base}/api/v1/hooks/{guess}/flush", timeout=10))
        codes = [r.status_code for r in statuses]
        assert codes[:5] == [403] * 5
        assert 429 in codes
        throttled = next(r for r in statuses if r.status_code == 429)
        assert throttled.headers["Retry-After"].isdigit()
