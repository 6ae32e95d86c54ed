"""The issue's three steps, as a new user types them: login, flush, and a deploy hook's POST
to `http://USER:PASS@HOST:PORT/api/v1//N/flush` with the hook's form body."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from conftest import require_tool
from memcloud.testing import ServerProcess, wait_for

from .conftest import SAMPLE_ENV, Api

HOOK_FORM = {
    "app": "shiny-app",
    "user": "deployer@example.com",
    "url": "https://shiny-app.example.com",
    "head": "4f2a9c1",
    "head_long": "4f2a9c1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a",
    "git_log": "  * Ada: fix the cache keys",
    "prev_head": "0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d",
    "release": "v42",
}


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data", env=SAMPLE_ENV) as proc:
        yield proc


def _fill(api: Api, count: int = 50) -> None:
    client = api.memcache()
    for i in range(count):
        assert client.set(f"key{i}", b"value", noreply=False)
    assert client.get("key7") == b"value"
    client.close()


def _empty(api: Api) -> bool:
    client = api.memcache()
    try:
        return all(client.get(f"key{i}") is None for i in range(50))
    finally:
        client.close()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    curl = require_tool("curl")
    return subprocess.run(
        [curl, "--silent", "--show-error", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )


def test_three_steps_with_curl(seeded: ServerProcess) -> None:
    proc = seeded
    api = Api(proc)
    host, port, user, password = "127.0.0.1", proc.api_port, proc.username, proc.password
    # Step 1: login answers the cache id.
    out = _curl(f"http://{host}:{port}/api/v1/login", "--user", f"{user}:{password}")
    body = json.loads(out.stdout)
    assert body == {"cache_id": api.main.cache_id}
    n = body["cache_id"]
    # Step 2: flush with POST empties the cache a memcache client filled.
    _fill(api)
    out = _curl(
        f"http://{host}:{port}/api/v1/{n}/flush", "-X", "POST", "--user", f"{user}:{password}"
    )
    assert out.stdout == '""'
    assert _empty(api)
    # Step 3: the deploy hook, credentials in the URL, the double slash, the form body.
    _fill(api)
    hook_url = f"http://{user}:{password}@{host}:{port}/api/v1//{n}/flush"
    out = _curl(
        hook_url,
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data",
        urlencode(HOOK_FORM),
        "--write-out",
        "\n%{http_code}",
    )
    assert out.stdout.splitlines() == ['""', "200"]
    assert _empty(api)
    # The flush log shows the hook's release and commit (API and CLI).
    assert wait_for(lambda: _hook_logged(api), timeout=5)
    table = proc.cli("flush-log", "default").stdout
    assert "deploy_hook" in table and "v42" in table and "4f2a9c1e8b7d" in table
    api.close()


def _hook_logged(api: Api) -> bool:
    log = api.request("GET", f"/api/v2/caches/{api.main.cache_id}/flush_log", api.main).json()
    hooks = [e for e in log if e["source"] == "deploy_hook"]
    if not hooks:
        return False
    entry = hooks[0]
    assert entry["app"] == "shiny-app"
    assert entry["release"] == "v42"
    assert entry["commit"] == HOOK_FORM["head_long"]
    assert entry["username"] == api.main.username
    assert entry["details"]["user"] == "deployer@example.com"
    assert entry["peer"].startswith("127.0.0.1:")
    return True


def test_three_steps_with_httpx(api: Api) -> None:
    user, password, port = api.proc.username, api.proc.password, api.proc.api_port
    login = httpx.get(f"http://127.0.0.1:{port}/api/v1/login", auth=(user, password))
    assert login.status_code == 200
    assert login.headers["content-type"] == "application/json"
    n = login.json()["cache_id"]
    _fill(api)
    flush = httpx.post(f"http://127.0.0.1:{port}/api/v1/{n}/flush", auth=(user, password))
    assert (flush.status_code, flush.text) == (200, '""')
    assert _empty(api)
    _fill(api)
    # httpx turns the URL's userinfo into an Authorization: Basic header, as hook clients do.
    hook = httpx.post(
        f"http://{user}:{password}@127.0.0.1:{port}/api/v1//{n}/flush", data=HOOK_FORM
    )
    assert (hook.status_code, hook.text) == (200, '""')
    assert _empty(api)


def test_double_slash_on_the_wire(api: Api) -> None:
    """Exactly the request line a hook sends, on a raw socket (no client normalises it)."""
    _fill(api)
    body = urlencode(HOOK_FORM).encode()
    auth = api.main.headers["Authorization"]
    request = (
        f"POST /api/v1//{api.main.cache_id}/flush HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{api.proc.api_port}\r\n"
        f"Authorization: {auth}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", api.proc.api_port), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b'\r\n\r\n""')
    assert _empty(api)


def test_get_does_not_flush(api: Api) -> None:
    _fill(api)
    reply = api.request("GET", f"/api/v1/{api.main.cache_id}/flush", api.main)
    assert reply.status_code == 405
    assert not _empty(api)
