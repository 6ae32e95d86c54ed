"""A fair share of connections: one tenant at its plan's limit never keeps another out
(issue 9, finding 5). Real servers over real sockets, with a small --max-connections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bmemcached
import httpx
import pytest
from bmemcached.exceptions import MemcachedException

from binary.wire import BinaryConnection
from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login, wait_for
from server.helpers import Tenant, create_cache, login, stats_of

TOO_MANY = b"SERVER_ERROR Too many open connections\r\n"
MAX_CONNECTIONS = 50
# The default rule: max(20, 10 per MB) = 250 for a 25 MB cache, capped at half the server.
HALF = MAX_CONNECTIONS // 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("fair") / "data"
    args = (
        "--max-connections",
        str(MAX_CONNECTIONS),
        "--plans",
        "dev=25MB,small=1MB:connections=3",
    )
    with ServerProcess(data_dir, *args) as proc:
        yield proc


def fill(server: ServerProcess, tenant: Tenant, attempts: int) -> tuple[list[RawConnection], bytes]:
    """Log in until the server refuses (at most `attempts` times): the held connections and
    the refusal."""
    held: list[RawConnection] = []
    for _ in range(attempts):
        conn = RawConnection(server.port)
        reply = conn.request(ascii_login(tenant.username, tenant.password))
        if reply != b"STORED\r\n":
            assert conn.is_closed()
            conn.close()
            return held, reply
        held.append(conn)
    return held, b""


def test_a_tenant_filling_the_server_cannot_keep_another_out(server: ServerProcess) -> None:
    greedy, other = create_cache(server, "greedy"), create_cache(server, "other")
    held, refusal = fill(server, greedy, MAX_CONNECTIONS + 10)
    try:
        assert refusal == TOO_MANY
        assert len(held) == HALF
        assert stats_of(held[0])["curr_connections"] == str(HALF)
        # Every other tenant still connects, as many times as it likes within its own limit.
        others = [login(server.port, other.username, other.password) for _ in range(10)]
        assert others[-1].request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert stats_of(others[0])["curr_connections"] == "10"
        for conn in others:
            conn.close()
        # A slot given back is a slot the tenant may use again.
        held.pop().close()
        again = None
        for _ in range(50):  # bounded: the server sees the close within a few reads
            conn = RawConnection(server.port)
            if conn.request(ascii_login(greedy.username, greedy.password)) == b"STORED\r\n":
                again = conn
                break
            conn.close()
        assert again is not None
        held.append(again)
    finally:
        for conn in held:
            conn.close()


def test_a_plans_own_limit_from_plans(server: ServerProcess) -> None:
    # `small=1MB:connections=3`: a 1 MB cache gets the plan's 3, not the size rule's 20.
    small = create_cache(server, "small-plan", plan="1MB")
    held, refusal = fill(server, small, 10)
    try:
        assert (len(held), refusal) == (3, TOO_MANY)
    finally:
        for conn in held:
            conn.close()


def test_a_smaller_plan_keeps_open_connections_and_refuses_new_ones(
    server: ServerProcess,
) -> None:
    tenant = create_cache(server, "shrinking", plan="2MB")  # the size rule's floor: 20
    held = [login(server.port, tenant.username, tenant.password) for _ in range(4)]
    try:
        server.cli("cache", "resize", "shrinking", "--plan", "1MB")  # small: 3 connections

        def refused() -> bool:
            conn = RawConnection(server.port)
            try:
                return conn.request(ascii_login(tenant.username, tenant.password)) == TOO_MANY
            finally:
                conn.close()

        assert wait_for(refused, timeout=5, interval=0.2)
        assert held[0].request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert stats_of(held[0])["curr_connections"] == "4"
        for conn in held[2:]:
            conn.close()
        del held[2:]
        assert wait_for(lambda: stats_of(held[0])["curr_connections"] == "2", timeout=5)
        held.append(login(server.port, tenant.username, tenant.password))
    finally:
        for conn in held:
            conn.close()


def test_binary_login_at_the_limit_is_refused_then_closed(server: ServerProcess) -> None:
    tenant = create_cache(server, "binary-small", plan="1MB")
    held = [BinaryConnection(server.port) for _ in range(4)]
    try:
        answers = [
            (r.status, r.value) for r in (c.login(tenant.username, tenant.password) for c in held)
        ]
        assert answers == [(0, b"Authenticated")] * 3 + [(0x86, b"Too many open connections")]
        assert held[3].is_closed()
        assert not held[0].is_closed(timeout=0.2)
    finally:
        for conn in held:
            conn.close()


def test_python_binary_memcached_reports_the_limit(server: ServerProcess) -> None:
    tenant = create_cache(server, "bmemcached-small", plan="1MB")
    address = f"127.0.0.1:{server.port}"
    clients = [bmemcached.Client([address], tenant.username, tenant.password) for _ in range(4)]
    try:
        for client in clients[:3]:
            assert client.set("k", "v") is True
        with pytest.raises(MemcachedException) as refused:
            clients[3].get("k")
        assert (refused.value.code, str(refused.value)) == (
            134,
            "Code: 134 Message: b'Too many open connections' (code 134)",
        )
        assert clients[0].get("k") == "v"
    finally:
        for client in clients:
            client.disconnect_all()


def test_v2_info_shows_the_connection_limit(server: ServerProcess) -> None:
    tenant = create_cache(server, "info-limit", plan="1MB")
    [cache] = [c for c in server.cli_json("cache", "list") if c["name"] == "info-limit"]
    url = f"http://127.0.0.1:{server.api_port}/api/v2/caches/{cache['id']}/info"
    info = httpx.get(url, auth=(tenant.username, tenant.password), timeout=10).json()
    assert info["connection_limit"] == 3
