"""The logs an operator reads: JSON lines (`--log-format json`), the start log, the HTTP
access log, flushes, credential changes and the control-plane change line, and no secret in
any of them over a whole scenario."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import bmemcached
import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.api.access_log import basic_username, loggable_path
from memcloud.auth import Directory
from memcloud.control.models import CacheRecord, CredentialRecord
from memcloud.logs import JsonLineFormatter, TextFormatter
from memcloud.server.background import describe_changes
from memcloud.testing import ServerProcess, wait_for

ADMIN_TOKEN = "admin-token-that-must-never-be-logged-0001"
METRICS_TOKEN = "metrics-token-that-must-never-be-logged-02"
PROVISION_PASSWORD = "provision-password-never-logged-03"
SSO_SALT = "sso-salt-never-logged-04"
WRONG_PASSWORD = "WRONGPASSWORDNEVERLOGGED05"


def _log_path(proc: ServerProcess) -> Path:
    return proc.data_dir.parent / f"{proc.data_dir.name}-serve.err"


def _records(proc: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _log_path(proc).read_text().splitlines() if line]


def _find(proc: ServerProcess, **wanted: object) -> list[dict[str, Any]]:
    return [r for r in _records(proc) if all(r.get(k) == v for k, v in wanted.items())]


def _form(http: httpx.Client, page: str, path: str = "", **fields: str) -> httpx.Response:
    """Post a dashboard form with the CSRF token of the page that shows it."""
    shown = http.get(page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text)
    assert csrf is not None, shown.text
    return http.post(path or page, data={"csrf": csrf[1], **fields})


def _has(proc: ServerProcess, **wanted: object) -> bool:
    return bool(_find(proc, **wanted))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("logs") / "data"
    env = {
        "MEMCLOUD_ADMIN_TOKEN": ADMIN_TOKEN,
        "MEMCLOUD_METRICS_TOKEN": METRICS_TOKEN,
        "MEMCLOUD_PROVISION_USER": "partner",
        "MEMCLOUD_PROVISION_PASSWORD": PROVISION_PASSWORD,
        "MEMCLOUD_SSO_SALT": SSO_SALT,
    }
    args = ("--log-level", "INFO", "--log-format", "json", "--anonymous-cache", "anon")
    with ServerProcess(data, *args, env=env, nodes=2) as proc:
        yield proc


def test_every_line_is_one_json_object_with_time_level_logger_and_message(
    served: ServerProcess,
) -> None:
    records = _records(served)
    assert len(records) > 5
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["time"].endswith("Z") and "T" in record["time"]
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def test_the_start_log_gives_version_listeners_dashboard_and_the_anonymous_warning(
    served: ServerProcess,
) -> None:
    version = metadata.version("memcloud")
    [start] = _find(served, version=version)
    assert start["message"].startswith(f"memcloud {version} starting 2 node(s)")
    listeners = _find(served, listener="memcache")
    assert {r["node_index"] for r in listeners} == {0, 1}
    assert any(f"127.0.0.1:{served.port}" in r["message"] for r in listeners)
    assert _has(served, message=f"HTTP API listening on 127.0.0.1:{served.api_port}")
    url = f"http://127.0.0.1:{served.api_port}/dashboard"
    assert _has(served, dashboard_url=url, message=f"dashboard at {url}")
    [warning] = _find(served, anonymous_cache="anon")
    assert warning["level"] == "WARNING"
    assert f"127.0.0.1:{served.port}" in warning["message"]
    assert "without a password" in warning["message"]


def test_a_scenario_logs_who_did_what_and_never_a_secret(served: ServerProcess) -> None:
    user, password = served.username, served.password
    base = f"http://127.0.0.1:{served.api_port}"
    # Logins: a binary SASL client, a text-protocol login, and failures of both kinds.
    binary = bmemcached.Client([f"127.0.0.1:{served.port}"], user, password)
    assert binary.set("k", "v")
    binary.disconnect_all()
    text = Client(("127.0.0.1", served.port), timeout=5)
    assert text.set(user, password, noreply=False)
    text.close()
    refused = Client(("127.0.0.1", served.port), timeout=5)
    with contextlib.suppress(Exception):  # refused (and closed) in whatever way
        refused.set(user, WRONG_PASSWORD, noreply=False)
    refused.close()
    assert httpx.get(f"{base}/api/v1/login", auth=(user, WRONG_PASSWORD)).status_code == 403
    # A credential made through the API: its password is in the answer, and nowhere in a log.
    cache_id = httpx.get(f"{base}/api/v1/login", auth=(user, password)).json()["cache_id"]
    made = httpx.post(f"{base}/api/v1/{cache_id}/credentials", auth=(user, password))
    assert made.status_code == 200, made.text
    new_user, new_password = made.json()["sasl_username"], made.json()["sasl_password"]
    # A deploy hook: credentials in the URL's userinfo, as platforms send them.
    hook = httpx.post(
        f"http://{user}:{password}@127.0.0.1:{served.api_port}/api/v1/{cache_id}/flush",
        data={"app": "shop", "release": "v42", "head": "abc123", "user": "dev@example.com"},
    )
    assert hook.status_code == 200, hook.text
    metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert metrics.status_code == 200
    # The operator makes a cache on the dashboard; a platform provisions one.
    with httpx.Client(base_url=base) as operator:
        assert _form(operator, "/dashboard/admin/login", token=ADMIN_TOKEN).status_code == 303
        made_cache = _form(operator, "/dashboard/admin", "/dashboard/admin/caches", name="blog")
        assert made_cache.status_code == 200, made_cache.text
    provisioned = httpx.post(
        f"{base}/heroku/resources",
        auth=("partner", PROVISION_PASSWORD),
        json={"uuid": "app-0123456789", "plan": "dev"},
    )
    assert provisioned.status_code == 200, provisioned.text
    # The node that made the change logged who made it (below); the other node learns it
    # from the control store and says what changed, naming itself.
    [other] = [node for node in served.servers if node != f"127.0.0.1:{served.port}"]

    def changed_on_the_other_node() -> bool:
        return any(
            r["message"].startswith(f"control plane changed: revision {r['revision']} on node")
            and f"credential {new_user} created in cache default" in r["changes"]
            and f"credential {new_user} created in cache default" in r["message"]
            for r in _find(served, node=other)
            if "revision" in r
        )

    assert wait_for(changed_on_the_other_node, timeout=5)
    assert wait_for(lambda: _has(served, event="flush"), timeout=5)

    [created] = _find(served, change="credential created")
    assert (created["cache"], created["credential"]) == ("default", new_user)
    assert (created["who"], created["via"], created["peer"]) == (user, "api", "127.0.0.1")
    [operator_made] = _find(served, change="cache created")
    assert (operator_made["cache"], operator_made["who"]) == ("blog", "operator")
    assert (operator_made["via"], operator_made["peer"]) == ("dashboard", "127.0.0.1")
    [platform_made] = _find(served, change="cache provisioned")
    assert (platform_made["cache"], platform_made["who"]) == ("app-0123456789", "partner")
    assert platform_made["via"] == "provisioning"
    [flush] = _find(served, event="flush")
    assert (flush["cache"], flush["via"], flush["who"]) == ("default", "deploy_hook", user)
    assert (flush["app"], flush["release"]) == ("shop", "v42")
    assert flush["peer"].startswith("127.0.0.1")
    [access] = _find(served, logger="memcloud.access", path=f"/api/v1/{cache_id}/credentials")
    assert (access["method"], access["status"], access["username"]) == ("POST", 200, user)
    assert access["duration_ms"] >= 0 and access["client"] == "127.0.0.1"
    [failed] = _find(served, logger="memcloud.access", path="/api/v1/login", status=403)
    assert failed["username"] == user
    assert _has(served, logger="memcloud.access", path="/metrics", username="bearer")

    assert wait_for(lambda: _has(served, level="WARNING", logger="memcloud.service"), timeout=5)
    logs = _log_path(served).read_text()
    for secret in (
        password,
        new_password,
        WRONG_PASSWORD,
        ADMIN_TOKEN,
        METRICS_TOKEN,
        PROVISION_PASSWORD,
        SSO_SALT,
    ):
        assert secret not in logs


def test_access_log_paths_lose_userinfo_and_secret_query_values() -> None:
    assert loggable_path("/a//u:pw@host/x", b"") == "/a//host/x"
    shown = loggable_path("/sso/login", b"id=7&token=t0k&timestamp=1&nav-data=x&sig=s1")
    assert shown == "/sso/login?id=7&token=***&timestamp=1&nav-data=x&sig=***"
    assert "\n" not in loggable_path("/x\ny", b"") and "\\n" in loggable_path("/x\ny", b"")
    assert basic_username(b"Basic dXNlcjpwYXNzd29yZA==") == "user"  # user:password
    assert basic_username(b"Bearer abc") == "bearer"
    assert basic_username(b"Basic !!!") == ""


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("memcloud.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.__dict__.update(extra)
    return record


def test_both_formats_carry_the_fields() -> None:
    fields = {"cache": "shop", "who": "line\nbreak"}
    as_json = json.loads(JsonLineFormatter().format(_record(**fields)))
    assert as_json["message"] == "hello you" and as_json["logger"] == "memcloud.x"
    assert (as_json["level"], as_json["cache"], as_json["who"]) == ("INFO", "shop", "line\nbreak")
    text = TextFormatter().format(_record(**fields))
    assert text.endswith("INFO memcloud.x: hello you cache=shop who='line\\nbreak'")
    assert "\n" not in text


def test_the_change_line_says_what_changed() -> None:
    shop = CacheRecord(1, "shop", 100)
    cred = CredentialRecord(5, 1, "ABC", b"s", b"h")
    before = Directory([shop], [cred], 1)
    other = CredentialRecord(6, 1, "DEF", b"s", b"h", write=False)
    after = Directory([CacheRecord(1, "shop", 200), CacheRecord(2, "blog", 25)], [other], 2)
    assert describe_changes(before, after) == [
        "cache shop plan 100 -> 200 bytes",
        "cache blog created",
        "credential DEF created in cache shop",
        "credential ABC deleted from cache shop",
    ]
    assert describe_changes(after, after) == []
