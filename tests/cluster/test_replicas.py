"""A plan with replicas=2 over three local nodes (`memcloud serve --nodes 3`): every change
reaches the key's owner and its replica, the meta commands' too, yet the cache's stats
count each request once; with the owner frozen, the replica serves what the owner last
made (a value set by `ms`, a counter moved by `ma`, never a key `md` deleted).

The same commands go to a cache whose plan keeps one copy: its stats are the reference
the replicated cache's must equal.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for

NODES = 3
PLANS = "dev=25MB,ha=30MB:replicas=2"
KEYS = 120
# Request counters that a replica's copies would count a second time.
REQUEST_COUNTERS = (
    "cmd_get",
    "cmd_set",
    "cmd_delete",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "total_items",
)


class Raw:
    """A logged-in text connection for the meta commands pymemcache does not speak."""

    def __init__(self, address: tuple[str, int], username: str, password: str) -> None:
        self.conn = socket.create_connection(address, timeout=5)
        self.buffer = b""
        assert self.ask(f"set {username} 0 0 {len(password)}\r\n{password}\r\n".encode()) == (
            b"STORED"
        )

    def ask(self, command: bytes) -> bytes:
        """One command whose reply is one line (meta flags without `v`)."""
        self.conn.sendall(command)
        while b"\r\n" not in self.buffer:
            chunk = self.conn.recv(65536)
            assert chunk, "connection closed"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def close(self) -> None:
        self.conn.close()


def addresses(server: ServerProcess) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, port in (s.rsplit(":", 1) for s in server.servers)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("replicas") / "data"
    with ServerProcess(data, "--plans", PLANS, nodes=NODES) as running:
        assert wait_for(lambda: formed(running, NODES), timeout=20, interval=0.5)
        yield running


def formed(server: ServerProcess, live: int) -> bool:
    """The default cache (plan `dev`, one copy) answers from `live` nodes, each holding
    its share of the plan: every live node's route has `live` members."""
    auth = (server.username, server.password)
    with httpx.Client(base_url=f"http://127.0.0.1:{server.api_port}", auth=auth) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        reply = http.get(f"/api/v1/{cache_id}/stats", timeout=10)
    if reply.status_code != 200:  # a node is down and not yet marked so
        return False
    share = -(-25 * 1024 * 1024 // live)
    per_server = reply.json()
    return len(per_server) == live and all(
        s["limit_maxbytes"] == share for s in per_server.values()
    )


def new_cache(server: ServerProcess, name: str, plan: str) -> tuple[str, str, int]:
    made = server.cli_json("cache", "create", name, "--plan", plan)
    [cred] = made["credentials"]
    return cred["sasl_username"], cred["sasl_password"], made["id"]


def totals(server: ServerProcess, user: str, password: str, cache_id: int) -> dict[str, int]:
    """The cache's request counters summed over its servers (the API's per-server stats)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.api_port}", auth=(user, password)) as h:
        per_server = h.get(f"/api/v1/{cache_id}/stats").json()
    return {name: sum(int(s[name]) for s in per_server.values()) for name in REQUEST_COUNTERS}


def drive(node: tuple[str, int], user: str, password: str) -> None:
    """The same requests for either cache, through one node."""
    client = Client(node, connect_timeout=5, timeout=5)
    assert wait_for(lambda: client.set(user, password, noreply=False), timeout=5)
    raw = Raw(node, user, password)
    for i in range(KEYS):
        assert client.set(f"plain-{i}", f"v{i}".encode(), noreply=False)
        assert raw.ask(b"ms meta-%d 2 T0\r\nm%d\r\n" % (i, i % 10)) == b"HD"
        assert raw.ask(b"ma count-%d N0 J5 D3\r\n" % i) == b"HD"  # made at 5 ...
        assert raw.ask(b"ma count-%d D3\r\n" % i) == b"HD"  # ... then 8
    for i in range(0, KEYS, 2):
        assert raw.ask(b"md meta-%d\r\n" % i) == b"HD"
        assert client.delete(f"plain-{i}", noreply=False)
        assert client.incr(f"absent-{i}", 1, noreply=False) is None
    for i in range(1, KEYS, 4):
        _, unique = client.gets(f"plain-{i}")
        assert client.cas(f"plain-{i}", b"cas'd", unique, noreply=False) is True
        assert client.touch(f"plain-{i}", 0, noreply=False)
    assert len(client.get_many([f"plain-{i}" for i in range(KEYS)])) == KEYS // 2
    client.close()
    raw.close()


def test_replicas_count_each_request_once_and_keep_meta_changes(server: ServerProcess) -> None:
    nodes = addresses(server)
    single = new_cache(server, "one-copy", "25MB")
    replicated = new_cache(server, "two-copies", "30MB")
    for user, password, _ in (single, replicated):
        drive(nodes[0], user, password)
    assert totals(server, *replicated) == totals(server, *single)

    # The owner of most keys stops answering: the replicas serve what it last made.
    child = json.loads(node_info_path(server.data_dir, 1).read_text())
    frozen = ("127.0.0.1", child["port"])
    [survivor, *_] = [node for node in nodes if node != frozen]  # (servers are not in order)
    os.kill(child["pid"], signal.SIGSTOP)
    try:
        assert wait_for(lambda: formed(server, NODES - 1), timeout=15, interval=0.5)
        user, password, _ = replicated
        raw = Raw(survivor, user, password)
        for i in range(KEYS):
            head = raw.ask(b"mg meta-%d v\r\n" % i)
            if i % 2 == 0:  # deleted by md: never back from a replica
                assert head == b"EN", i
            else:
                assert (head, raw.ask(b"")) == (b"VA 2", b"m%d" % (i % 10)), i
            assert raw.ask(b"ma count-%d D0 v\r\n" % i) == b"VA 1"
            assert raw.ask(b"") == b"8"
        reader = Client(survivor, connect_timeout=5, timeout=5)
        assert reader.set(user, password, noreply=False)
        expected = {
            f"plain-{i}": b"cas'd" if i % 4 == 1 else f"v{i}".encode() for i in range(1, KEYS, 2)
        }
        assert reader.get_many([f"plain-{i}" for i in range(KEYS)]) == expected
        reader.close()
        raw.close()
    finally:
        os.kill(child["pid"], signal.SIGCONT)
    assert wait_for(lambda: formed(server, NODES), timeout=20, interval=0.5)
