"""/healthz and /readyz of a real `memcloud serve`: ready while the control store and every
node answer; 503 naming the store when its PostgreSQL stops, or naming the node a SIGSTOP
froze; liveness stays 200 throughout, and neither needs a credential."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pymemcache.client.base import Client

from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for
from postgres import PostgresServer

# Machines of one deployment share it (a deployment over PostgreSQL needs one).
CLUSTER_SECRET = secrets.token_hex(32)


def _get(server: ServerProcess, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.api_port}{path}", timeout=10)


def _ready(server: ServerProcess) -> tuple[int, Any]:
    reply = _get(server, "/readyz")
    return reply.status_code, reply.json()


def test_a_serving_server_is_alive_and_ready_without_credentials(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        alive = _get(server, "/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        assert _ready(server) == (200, {"status": "ready", "reasons": []})
        assert _get(server, "/readyz").headers["cache-control"] == "no-store"
        # Both are in the API's description, each with its own operation.
        spec = _get(server, "/openapi.json").json()
        assert spec["paths"]["/healthz"]["get"]["operationId"] == "healthz"
        assert "503" in spec["paths"]["/readyz"]["get"]["responses"]


def _store_stats(client: Client) -> tuple[int, int]:
    stats = client.stats()
    return int(stats[b"control_store_up"]), int(stats[b"control_store_age"])


def _store_metric(server: ServerProcess) -> float | None:
    text = _get(server, "/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "memcloud_control_store_up":
            return family.samples[0].value
    return None


def test_readyz_names_the_control_store_while_its_postgresql_is_down(tmp_path: Path) -> None:
    with PostgresServer() as pg:  # its own: this test stops it
        env = {"MEMCLOUD_CONTROL_URL": pg.url, "MEMCLOUD_CLUSTER_SECRET": CLUSTER_SECRET}
        with ServerProcess(tmp_path / "data", "--metrics-token", "", env=env) as server:
            assert _ready(server)[0] == 200
            client = Client(("127.0.0.1", server.port), timeout=5)
            assert client.set(server.username, server.password, noreply=False)
            assert _store_stats(client)[0] == 1 and _store_metric(server) == 1
            pg.stop_server()
            try:
                assert wait_for(lambda: _ready(server)[0] == 503, timeout=10)
                status, body = _ready(server)
                assert status == 503
                assert body == {"status": "unready", "reasons": ["control store unreachable"]}
                # The database's own error (hosts, ports) is not shown to anyone who asks.
                assert str(pg.port) not in json.dumps(body)
                assert _get(server, "/healthz").status_code == 200
                # The node says so in its stats and metrics, and serves what it knows.
                assert wait_for(lambda: _store_stats(client)[0] == 0, timeout=10)
                assert wait_for(lambda: _store_stats(client)[1] >= 2, timeout=10)
                assert _store_metric(server) == 0
                assert client.set("while-down", b"kept", noreply=False)
                assert client.get("while-down") == b"kept"
            finally:
                pg.start_server()
            assert wait_for(lambda: _ready(server)[0] == 200, timeout=15)
            assert wait_for(lambda: _store_stats(client) == (1, 0), timeout=15)
            assert _store_metric(server) == 1


def test_readyz_names_a_frozen_node(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, "--nodes", "2") as server:
        assert _ready(server) == (200, {"status": "ready", "reasons": []})
        child = json.loads(node_info_path(data, 1).read_text())
        os.kill(child["pid"], signal.SIGSTOP)
        try:
            assert wait_for(lambda: _ready(server)[0] == 503, timeout=10)
            status, body = _ready(server)
            assert status == 503
            assert body == {
                "status": "unready",
                "reasons": [f"node {server.servers[1]} did not answer"],
            }
            assert _get(server, "/healthz").status_code == 200
        finally:
            os.kill(child["pid"], signal.SIGCONT)
        assert wait_for(lambda: _ready(server)[0] == 200, timeout=10)
