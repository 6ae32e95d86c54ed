"""`memcloud serve --nodes 2`: two data-plane processes, one deployment."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, wait_for

PLAN = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("nodes") / "data"
    with ServerProcess(data, "--nodes", "2") as proc:
        yield proc


def client(deployment: ServerProcess, server: str) -> Client:
    host, port = server.split(":")
    c = Client((host, int(port)), connect_timeout=5, timeout=5)
    assert c.set(deployment.username, deployment.password, noreply=False)
    return c


def api(deployment: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{deployment.api_port}",
        auth=(deployment.username, deployment.password),
        timeout=15,
    )


def node_pid(data_dir: Path, index: int) -> int:
    return int(json.loads((data_dir / f"node-{index}.json").read_text())["pid"])


def test_servers_are_consecutive_ports_and_printed(deployment: ServerProcess) -> None:
    ports = [int(s.split(":")[1]) for s in deployment.servers]
    assert len(ports) == 2 and ports[1] == ports[0] + 1
    env = (deployment.data_dir / ".env").read_text()
    assert f"MEMCACHIER_SERVERS={','.join(deployment.servers)}" in env


def test_each_node_holds_its_share_and_the_api_sees_both(deployment: ServerProcess) -> None:
    for index, server in enumerate(deployment.servers):
        c = client(deployment, server)
        for i in range(10):
            assert c.set(f"node{index}-{i}", b"v", noreply=False)
        c.close()
    with api(deployment) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        per_server = http.get(f"/api/v1/{cache_id}/stats").json()
        assert sorted(per_server) == sorted(deployment.servers)
        # Each key lives on its owner (whichever node took it): the two shares add up to
        # the 20 keys, and each node holds some of them.
        for stats in per_server.values():
            assert stats["limit_maxbytes"] == PLAN // 2
            assert stats["curr_items"] > 0
        assert sum(s["curr_items"] for s in per_server.values()) >= 20
        total = http.get(f"/api/v2/caches/{cache_id}/stats").json()
        assert total["limit_maxbytes"] == PLAN
        assert total["curr_items"] == sum(s["curr_items"] for s in per_server.values())


def test_api_flush_empties_every_node_and_is_logged_once(deployment: ServerProcess) -> None:
    clients = [client(deployment, server) for server in deployment.servers]
    for index, c in enumerate(clients):
        assert c.set(f"flushme{index}", b"v", noreply=False)
    with api(deployment) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        before = len(deployment.cli_json("flush-log", "default"))
        response = http.post(f"/api/v1/{cache_id}/flush")
        assert response.status_code == 200
        for index, c in enumerate(clients):
            assert c.get(f"flushme{index}") is None
        assert wait_for(lambda: len(deployment.cli_json("flush-log", "default")) == before + 1)
    # A flush sent to node 1 with the memcache protocol empties every node (they are one
    # cache: issue 11), and is logged once.
    assert clients[0].set("goes-too", b"v", noreply=False)
    assert clients[1].set("goes", b"v", noreply=False)
    clients[1].flush_all(noreply=False)
    assert clients[0].get("goes-too") is None and clients[1].get("goes") is None
    assert wait_for(lambda: len(deployment.cli_json("flush-log", "default")) == before + 2)
    for c in clients:
        c.close()


def test_cli_flush_and_stats_reach_every_node(deployment: ServerProcess) -> None:
    clients = [client(deployment, server) for server in deployment.servers]
    for index, c in enumerate(clients):
        assert c.set(f"cli{index}", b"v", noreply=False)
    stats = deployment.cli_json("stats", "default")
    assert stats["curr_items"] >= 2
    deployment.cli("flush", "default")
    for index, c in enumerate(clients):
        assert c.get(f"cli{index}") is None
        c.close()


def test_a_killed_node_is_reported_then_restarted(deployment: ServerProcess) -> None:
    data_dir = deployment.data_dir
    old_pid = node_pid(data_dir, 1)
    os.kill(old_pid, signal.SIGKILL)
    with api(deployment) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        failed = http.get(f"/api/v1/{cache_id}/stats")
        if failed.status_code == 500:  # the supervisor may already have brought it back
            assert failed.json() == f"Server error: {deployment.servers[1]}"

        def back() -> bool:
            info = data_dir / "node-1.json"
            return info.exists() and node_pid(data_dir, 1) != old_pid

        assert wait_for(back, timeout=20)
        c = client(deployment, deployment.servers[1])  # same port as before
        assert c.set("after-restart", b"v", noreply=False)
        c.close()
        # The deployment reaches it again once it rejoined the registry (its channel's new
        # port: within a heartbeat or a revision).
        assert wait_for(lambda: http.get(f"/api/v1/{cache_id}/stats").status_code == 200, timeout=5)
        token = (data_dir / "metrics-token").read_text().strip()
        metrics = httpx.get(
            f"http://127.0.0.1:{deployment.api_port}/metrics",
            headers={"Authorization": f"Bearer {token}"},
        ).text
        assert "memcloud_node_restarts_total 1.0" in metrics
    assert deployment.cli_json("stats", "default")["node_restarts"] == 1
