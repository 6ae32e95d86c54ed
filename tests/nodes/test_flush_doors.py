"""Every front door of a flush, against `memcloud serve --nodes 2`: the deployment's doors
(v1 and v2 API, deploy hook, release webhook, dashboard, CLI over the operator socket) empty
every node and are in the flush log, once, when they answer; the data plane's (text
`flush_all`, binary Flush) empty the node they reach and are logged once by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import bmemcached
import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, wait_for

Door = Callable[[ServerProcess, int], None]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("doors") / "data"
    with ServerProcess(data, "--nodes", "2") as proc:
        yield proc


def _api(d: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{d.api_port}", auth=(d.username, d.password), timeout=15
    )


def _client(d: ServerProcess, server: str) -> Client:
    host, port = server.split(":")
    c = Client((host, int(port)), connect_timeout=5, timeout=5)
    assert c.set(d.username, d.password, noreply=False)
    return c


def _flush_log(d: ServerProcess, cache_id: int) -> list[dict[str, object]]:
    with _api(d) as http:
        entries: list[dict[str, object]] = http.get(
            f"/api/v2/caches/{cache_id}/flush_log", params={"limit": 1000}
        ).json()
    return entries


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def _v1(d: ServerProcess, cache_id: int) -> None:
    with _api(d) as http:
        assert http.post(f"/api/v1/{cache_id}/flush").status_code == 200


def _v2(d: ServerProcess, cache_id: int) -> None:
    with _api(d) as http:
        assert http.post(f"/api/v2/caches/{cache_id}/flush").status_code == 204


def _deploy_hook(d: ServerProcess, cache_id: int) -> None:
    with _api(d) as http:
        form = {"app": "shop", "release": "v7", "head": "abc123"}
        assert http.post(f"/api/v1/{cache_id}/flush", data=form).status_code == 200


def _webhook(d: ServerProcess, cache_id: int) -> None:
    release = {
        "resource": "release",
        "action": "update",
        "data": {"version": 8, "app": {"name": "shop"}, "status": "succeeded"},
    }
    with _api(d) as http:
        assert http.post(f"/api/v1/{cache_id}/flush", json=release).status_code == 200


def _dashboard(d: ServerProcess, cache_id: int) -> None:
    base = f"http://127.0.0.1:{d.api_port}"
    with httpx.Client(base_url=base, follow_redirects=False, timeout=15) as browser:
        login = browser.get("/dashboard/login").text
        signed_in = browser.post(
            "/dashboard/login",
            data={"csrf": _csrf(login), "username": d.username, "password": d.password},
        )
        assert signed_in.status_code == 303, signed_in.text
        page = f"/dashboard/caches/{cache_id}/flush"
        token = _csrf(browser.get(page).text)
        done = browser.post(page, data={"csrf": token, "confirm": "yes"})
        assert done.status_code == 303
        assert done.headers["location"].endswith("notice=flushed")


def _cli(d: ServerProcess, cache_id: int) -> None:
    d.cli("flush", "default")


def _text(d: ServerProcess, cache_id: int) -> None:
    c = _client(d, d.servers[1])
    assert c.flush_all(noreply=False)
    c.close()


def _binary(d: ServerProcess, cache_id: int) -> None:
    c = bmemcached.Client([d.servers[1]], d.username, d.password, socket_timeout=5)
    assert c.flush_all(0) is True
    c.disconnect_all()


@dataclass(frozen=True)
class Case:
    door: Door
    source: str
    # The deployment's doors reach every node and are logged before they answer; the data
    # plane's reach the node they were sent to (node 1 here), which logs them by itself.
    every_node: bool


CASES = {
    "v1": Case(_v1, "api", True),
    "v2": Case(_v2, "api", True),
    "deploy_hook": Case(_deploy_hook, "deploy_hook", True),
    "webhook": Case(_webhook, "webhook", True),
    "dashboard": Case(_dashboard, "dashboard", True),
    "cli": Case(_cli, "cli", True),
    "text": Case(_text, "text", False),
    "binary": Case(_binary, "binary", False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_door_flushes_and_is_logged_exactly_once(deployment: ServerProcess, name: str) -> None:
    case = CASES[name]
    d = deployment
    with _api(d) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
    clients = [_client(d, server) for server in d.servers]
    for index, c in enumerate(clients):
        assert c.set(f"{name}-{index}", b"v", noreply=False)
    before = len(_flush_log(d, cache_id))

    case.door(d, cache_id)

    if case.every_node:
        # No polling: the door answered once the flush log writer had the record.
        entries = _flush_log(d, cache_id)
        node = d.servers[0]
        for index, c in enumerate(clients):
            assert c.get(f"{name}-{index}") is None, f"node {index} kept its item"
    else:
        assert wait_for(lambda: len(_flush_log(d, cache_id)) > before, timeout=10)
        entries = _flush_log(d, cache_id)
        node = d.servers[1]
        assert clients[1].get(f"{name}-1") is None
    for c in clients:
        c.close()
    assert len(entries) == before + 1, entries[: len(entries) - before]
    newest = entries[0]
    assert (newest["source"], newest["node"]) == (case.source, node)
    assert newest["username"] == (d.username if case.source != "cli" else "operator")
