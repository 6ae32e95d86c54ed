"""Two clusters of live nodes over one PostgreSQL control store, as an operator runs them on
two machines: `info` tells each cache's cluster, servers and whether it can switch; the
servers list follows nodes joining and leaving; `switch_cluster` moves a cache (and refuses
the same cluster, an unknown one and one with no live node); `memcloud cache
switch-cluster` does the same from the CLI; /metrics and the operator's server panel
(`GET /api/admin/servers`, `memcloud server`) show every registered node, a frozen one as
down."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from memcloud.testing import ServerProcess, wait_for
from postgres import PostgresServer

PARTNER_PASSWORD = "partner-secret"

# Machines of one deployment share it (a deployment over PostgreSQL needs one).
CLUSTER_SECRET = secrets.token_hex(32)


@pytest.fixture
def two_clusters(
    postgres_server: PostgresServer, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess, dict[str, str]]]:
    """Node `us` (cluster us-1, the first: it makes the `default` cache there) and node
    `eu` (cluster eu-1), each with its own data dir, one control store."""
    env = {
        "MEMCLOUD_CONTROL_URL": postgres_server.fresh_database("two_clusters"),
        "MEMCLOUD_CLUSTER_SECRET": CLUSTER_SECRET,
        "MEMCLOUD_PROVISION_USER": "platform",
        "MEMCLOUD_PROVISION_PASSWORD": PARTNER_PASSWORD,
    }
    us = ServerProcess(
        tmp_path / "us", "--cluster", "us-1", "--machine", "m-us", "--metrics-token", "",
        "--memory", "64MB", "--max-connections", "500", env=env,
    )  # fmt: skip
    with us:
        eu = ServerProcess(tmp_path / "eu", "--cluster", "eu-1", "--machine", "m-eu", env=env)
        with eu:
            yield us, eu, env


def _info(server: ServerProcess, user: str, password: str, cache_id: int) -> dict[str, Any]:
    reply = httpx.get(
        f"http://127.0.0.1:{server.api_port}/api/v2/caches/{cache_id}/info",
        auth=(user, password),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def _switch(
    server: ServerProcess, user: str, password: str, cache_id: int, body: object = None
) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{server.api_port}/api/v2/caches/{cache_id}/switch_cluster",
        auth=(user, password),
        json=body,
        timeout=10,
    )


def _address(server: ServerProcess) -> str:
    return f"127.0.0.1:{server.port}"


def test_info_switch_cluster_and_the_servers_list(
    two_clusters: tuple[ServerProcess, ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    us, eu, env = two_clusters
    user, password = us.username, us.password
    [default] = us.cli_json("cache", "list")
    cache_id = default["id"]
    assert default["cluster_name"] == "us-1"  # the first node's cluster
    info = _info(us, user, password, cache_id)
    assert (info["cluster_name"], info["servers"], info["can_switch"]) == (
        "us-1",
        [_address(us)],
        True,
    )
    # The same answer from the other cluster's API: one control plane.
    assert _info(eu, user, password, cache_id)["servers"] == [_address(us)]

    # Each refusal, with the reference's 400 and a message that says why.
    for body, message in (
        ({"cluster": "us-1"}, "The cache is already on cluster us-1."),
        ({"cluster": "ap-9"}, "Unknown cluster ap-9."),
        ({"cluster": 5}, "cluster must be a cluster's name."),
    ):
        reply = _switch(us, user, password, cache_id, body)
        assert (reply.status_code, reply.json()) == (400, {"message": message})
    # A credential without the flush capability may not empty the cache by moving it.
    reader = us.cli_json("credentials", "create", "default", "--no-flush")
    refused = _switch(us, reader["sasl_username"], reader["sasl_password"], cache_id, None)
    assert (refused.status_code, refused.json()) == (
        403,
        {"message": "Forbidden to access cache with this ID."},
    )
    assert us.cli_json("cache", "list")[0]["cluster_name"] == "us-1"

    # Without a body: the first other cluster with a live node.
    moved = _switch(us, user, password, cache_id)
    assert (moved.status_code, moved.json()) == (200, "eu-1")
    info = _info(us, user, password, cache_id)
    assert (info["cluster_name"], info["servers"], info["can_switch"]) == (
        "eu-1",
        [_address(eu)],
        True,
    )
    # A node joining eu-1 is listed (by port on one host), and is gone once it stops.
    with ServerProcess(tmp_path / "eu2", "--cluster", "eu-1", env=env) as eu2:
        both = sorted([_address(eu), _address(eu2)], key=lambda a: int(a.rpartition(":")[2]))
        assert wait_for(lambda: _info(us, user, password, cache_id)["servers"] == both, timeout=5)
        cli_created = us.cli("cache", "create", "shop", "--json")
        # `cache create` hands out its cluster's live nodes (us-1: node `us`).
        assert cli_created.stdout.count(_address(us)) == 1
    assert _info(us, user, password, cache_id)["servers"] == [_address(eu)]

    # Named, back to us-1 (form fields work as in curl -d).
    back = httpx.post(
        f"http://127.0.0.1:{us.api_port}/api/v2/caches/{cache_id}/switch_cluster",
        auth=(user, password),
        data={"cluster": "us-1"},
        timeout=10,
    )
    assert (back.status_code, back.json()) == (200, "us-1")

    # A cluster whose only node is down: known, not live. Freeze eu until it counts down.
    os.kill(_pid(eu), signal.SIGSTOP)
    try:
        assert wait_for(lambda: not _info(us, user, password, cache_id)["can_switch"], timeout=6)
        reply = _switch(us, user, password, cache_id, {"cluster": "eu-1"})
        assert (reply.status_code, reply.json()) == (
            400,
            {"message": "Cluster eu-1 has no live server."},
        )
        reply = _switch(us, user, password, cache_id)
        assert (reply.status_code, reply.json()) == (
            400,
            {"message": "No other cluster has a live server."},
        )
        # /metrics of `us` reports the other machine's node, from the registry: 0.
        assert _node_up(us) == {_address(us): 1.0, _address(eu): 0.0}
        panel = _panel(us)
        assert panel["nodes_down"] == [_address(eu)]
        # The CLI refuses the same move with the same reason.
        cli = us.cli("cache", "switch-cluster", "default", "eu-1", check=False)
        assert cli.returncode != 0 and "Cluster eu-1 has no live server" in cli.stderr
        # An operator forgets the down node (never an up one); it rejoins once it resumes.
        up = us.cli("nodes", "--remove", _address(us), check=False)
        assert up.returncode == 1 and "is up: stop it first" in up.stderr
        removed = us.cli("nodes", "--remove", _address(eu))
        assert f"Removed node {_address(eu)} from the registry." in removed.stdout
        assert [n["address"] for n in us.cli_json("nodes")] == [_address(us)]
        assert not _info(us, user, password, cache_id)["can_switch"]
    finally:
        os.kill(_pid(eu), signal.SIGCONT)
    assert wait_for(lambda: _node_up(us).get(_address(eu)) == 1.0, timeout=6)
    cli_moved = us.cli_json("cache", "switch-cluster", "default", "eu-1")
    assert (cli_moved["cluster_name"], cli_moved["servers"]) == ("eu-1", [_address(eu)])
    assert _info(us, user, password, cache_id)["cluster_name"] == "eu-1"
    # The dashboard's settings page of the cache, served by `us`, names eu's server.
    settings = _settings_page(us, user, password)
    assert "<code data-cluster>eu-1</code>" in settings
    assert f"<code data-servers>{_address(eu)}</code>" in settings


def _settings_page(server: ServerProcess, user: str, password: str) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.api_port}", timeout=10) as browser:
        form = browser.get("/dashboard/login")
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed_in = browser.post(
            "/dashboard/login", data={"csrf": token, "username": user, "password": password}
        )
        assert signed_in.status_code == 303, signed_in.text
        page = browser.get(signed_in.headers["location"] + "/settings")
        assert page.status_code == 200
        return page.text


def _pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def _node_up(server: ServerProcess) -> dict[str, float]:
    reply = httpx.get(f"http://127.0.0.1:{server.api_port}/metrics", timeout=30)
    assert reply.status_code == 200
    return {
        s.labels["server"]: s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
        if s.name == "memcloud_node_up"
    }


def _admin_token(server: ServerProcess) -> str:
    return (server.data_dir / "admin-token").read_text().strip()


def _panel(server: ServerProcess) -> dict[str, Any]:
    reply = httpx.get(
        f"http://127.0.0.1:{server.api_port}/api/admin/servers",
        headers={"Authorization": f"Bearer {_admin_token(server)}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def test_the_server_panel_over_two_machines_and_its_overcommit_warning(
    two_clusters: tuple[ServerProcess, ServerProcess, dict[str, str]],
) -> None:
    us, _, _ = two_clusters
    url = f"http://127.0.0.1:{us.api_port}/api/admin/servers"
    assert httpx.get(url, timeout=10).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and "admin token" in wrong.json()["detail"]
    assert wrong.headers["www-authenticate"].startswith("Bearer")

    # Two memcache connections to `us`: its next heartbeat carries the count.
    held = [socket.create_connection(us.address, timeout=5) for _ in range(2)]
    try:
        assert wait_for(lambda: _cluster(_panel(us), "us-1")["connections"] >= 2, timeout=5)
    finally:
        for conn in held:
            conn.close()
    panel = _panel(us)
    us1, eu1 = _cluster(panel, "us-1"), _cluster(panel, "eu-1")
    [us_node] = us1["nodes"]
    assert (us_node["address"], us_node["machine"], us_node["state"]) == (
        _address(us),
        "m-us",
        "up",
    )
    assert (us_node["memory"], us_node["max_connections"]) == (64 << 20, 500)
    assert us_node["uptime_seconds"] >= 0
    assert (us1["memory"], us1["max_connections"], us1["caches"], us1["plans"]) == (
        64 << 20,
        500,
        1,
        25 << 20,
    )
    assert not us1["overcommitted"] and us1["warning"] is None
    assert [n["machine"] for n in eu1["nodes"]] == ["m-eu"]
    assert (eu1["memory"], eu1["caches"]) == (1 << 30, 0)  # eu's default --memory
    assert panel["nodes_down"] == [] and panel["warnings"] == []
    assert "x-memcloud-warning" not in httpx.get(url, headers=_bearer(us), timeout=10).headers

    # 25 MB + 50 MB of plans on 64 MB: the CLI warns at create, the API and panel too.
    created = us.cli("cache", "create", "big", "--plan", "50MB")
    assert "Warning: plans on cluster us-1 (75 MB) exceed the memory of its live nodes" in (
        created.stderr
    )
    assert "MEMCACHIER_SERVERS=" + _address(us) in created.stdout
    reply = httpx.get(url, headers=_bearer(us), timeout=10)
    us1 = _cluster(reply.json(), "us-1")
    assert us1["overcommitted"] and us1["plans"] == 75 << 20
    assert "exceed the memory" in us1["warning"] and reply.json()["warnings"] == [us1["warning"]]
    assert "cluster us-1" in reply.headers["x-memcloud-warning"]
    # Resizing back under the budget says nothing more.
    resized = us.cli("cache", "resize", "big", "--plan", "30MB")
    assert "Warning" not in resized.stderr
    resized = us.cli("cache", "resize", "big", "--plan", "40MB")
    assert "Warning: plans on cluster us-1 (65 MB)" in resized.stderr

    text = us.cli("server").stdout
    assert "Cluster us-1: 1 of 1 node(s) up; plans 65 MB (2 cache(s)) on 64 MB" in text
    assert "Cluster eu-1: 1 of 1 node(s) up" in text
    assert f"{_address(us)}  m-us" in text
    assert "Warning: plans on cluster us-1 (65 MB) exceed" in text
    assert us.cli_json("server")["warnings"] == [_cluster(_panel(us), "us-1")["warning"]]


def _bearer(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {_admin_token(server)}"}


def _cluster(panel: dict[str, Any], name: str) -> dict[str, Any]:
    [cluster] = [c for c in panel["clusters"] if c["name"] == name]
    assert isinstance(cluster, dict)
    return cluster


def test_provisioning_hands_out_the_servers_of_the_cache_s_cluster(
    two_clusters: tuple[ServerProcess, ServerProcess, dict[str, str]],
) -> None:
    """Asked of eu's API, a new resource goes to the first cluster with a live node (us-1,
    no live node serves `default`), and its config vars name us-1's server, not eu."""
    us, eu, _ = two_clusters
    uuid = "abcdef01-0000-0000-0000-000000000001"
    partner = ("platform", PARTNER_PASSWORD)
    base = f"http://127.0.0.1:{eu.api_port}/heroku/resources"
    made = httpx.post(base, json={"uuid": uuid, "plan": "dev"}, auth=partner, timeout=10)
    assert made.status_code in (200, 201, 202), made.text
    config = made.json()["config"]
    assert config["MEMCACHIER_SERVERS"] == _address(us)
    [cache] = [c for c in us.cli_json("cache", "list") if c["name"] == uuid]
    assert cache["cluster_name"] == "us-1"
    moved = _switch(us, config["MEMCACHIER_USERNAME"], config["MEMCACHIER_PASSWORD"], cache["id"])
    assert (moved.status_code, moved.json()) == (200, "eu-1")
    changed = httpx.put(f"{base}/{uuid}", json={"plan": "100"}, auth=partner, timeout=10)
    assert changed.status_code == 200, changed.text
    assert changed.json()["config"]["MEMCACHIER_SERVERS"] == _address(eu)


def test_serve_on_postgres_makes_its_data_dir(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """docs/cluster.md's first start on a machine: no data dir exists yet."""
    data = tmp_path / "fresh" / "data"
    env = {
        **os.environ,
        "MEMCLOUD_CONTROL_URL": postgres_server.fresh_database("fresh_dir"),
        "MEMCLOUD_CLUSTER_SECRET": CLUSTER_SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "memcloud.cli", "serve", "--port", "0", "--api-port", "0",
         "--nodes", "1", "--data-dir", str(data), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert wait_for(
            lambda: (data / "server.json").exists() or process.poll() is not None, timeout=30
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert data.stat().st_mode & 0o777 == 0o700
    finally:
        process.terminate()
        process.wait(timeout=20)
