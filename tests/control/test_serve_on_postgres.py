"""`memcloud serve --control-url postgresql://…` as an operator runs it: the control plane
lives in PostgreSQL (no SQLite file is made), commands run from anywhere with the same URL
reach the running server, and the URL's password shows nowhere."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import bmemcached
import psycopg
from pymemcache.client.base import Client

from conftest import api_status
from memcloud.testing import ServerProcess, wait_for
from postgres import PostgresServer

# Machines of one deployment share it (a deployment over PostgreSQL needs one).
CLUSTER_SECRET = secrets.token_hex(32)


def _logs_in(port: int, username: str, password: str) -> bool:
    client = bmemcached.Client([f"127.0.0.1:{port}"], username, password, socket_timeout=5)
    try:
        return bool(client.set("probe", "1")) and client.get("probe") == "1"
    except Exception:
        return False
    finally:
        client.disconnect_all()


def test_serve_and_commands_on_one_postgres_database(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.fresh_database("serve_on_postgres")
    env = {"MEMCLOUD_CONTROL_URL": url, "MEMCLOUD_CLUSTER_SECRET": CLUSTER_SECRET}
    with ServerProcess(tmp_path / "node", env=env) as server:
        # The first start's `default` cache and credential are PostgreSQL's.
        assert _logs_in(server.port, server.username, server.password)
        assert not (tmp_path / "node" / "memcloud.db").exists()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT name FROM caches").fetchall() == [("default",)]

        # Another machine (another data dir) creates a cache with the same URL only.
        created = subprocess.run(
            [sys.executable, "-m", "memcloud.cli", "cache", "create", "shop", "--plan", "10MB",
             "--json", "--data-dir", str(tmp_path / "elsewhere")],
            capture_output=True, text=True, timeout=60, env={**os.environ, **env}, check=True,
        )  # fmt: skip
        shop = json.loads(created.stdout)
        assert shop["name"] == "shop"
        username = shop["credentials"][0]["sasl_username"]
        password = shop["credentials"][0]["sasl_password"]
        # And the node's own data dir lists it: one control plane, wherever it is asked.
        listed = server.cli_json("cache", "list")
        assert [cache["name"] for cache in listed] == ["default", "shop"]
        # PostgreSQL's NOTIFY wakes the server: the new credential works within a second.
        known = time.monotonic()
        assert wait_for(
            lambda: api_status(server.api_port or 0, username, password) == 200, timeout=1.0
        ), f"not known {time.monotonic() - known:.2f} s after it was created"
        assert _logs_in(server.port, username, password)
        pymemcache = Client(("127.0.0.1", server.port), timeout=5)
        try:
            pymemcache.set(username, password)  # the hosted service's text login
            pymemcache.set("k", b"v")
            assert pymemcache.get("k") == b"v"
        finally:
            pymemcache.close()
    logs = server.stdout + server.stderr
    assert postgres_server.password not in logs
