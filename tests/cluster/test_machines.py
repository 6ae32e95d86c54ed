"""One cache over three machines: network namespaces (tests/cluster/machines.py), one
`memcloud serve` each over a PostgreSQL control store the test starts, as docs/cluster.md
brings a deployment up.

Checked as the hosted service's users would: a client given one server, bmemcached's
replicating Client and pylibmc with ketama over all three read the same keys; `stats`
reads the cache's numbers on every node; a flush from the API empties every node; a node
killed with SIGKILL under load is marked down within five seconds, no client ever reads a
wrong value, the survivors serve its keys and it rejoins when it comes back; a plan with
replicas=2 loses no key with one node; a credential made on one machine works on another
within a second.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bmemcached
import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.control.open import open_store
from memcloud.testing import ServerProcess, wait_for
from postgres import PostgresServer

from .machines import Machines, require_namespaces

PORT = 11211
API_PORT = 11280
PLAN = 25 * 1024 * 1024
REPLICATED_PLAN = "30MB"  # --plans gives it replicas=2
PLANS = "dev=25MB,ha=30MB:replicas=2"


@dataclass
class Deployment:
    machines: Machines
    postgres: PostgresServer
    control_url: str  # as the machines reach it
    secret: str
    root: Path
    nodes: list[ServerProcess]
    username: str = ""
    password: str = ""

    def address(self, index: int) -> tuple[str, int]:
        return (self.machines.address(index), PORT)

    def server(self, index: int) -> str:
        return f"{self.machines.address(index)}:{PORT}"

    def start_node(self, index: int) -> ServerProcess:
        node = ServerProcess(
            self.root / f"machine-{index}" / "data",
            "--control-url", self.control_url,
            "--host", self.machines.address(index),
            "--port", str(PORT),
            "--api-port", str(API_PORT),
            "--machine", f"machine-{index}",
            "--plans", PLANS,
            env={"MEMCLOUD_CLUSTER_SECRET": self.secret},
            nodes=1,
            command_prefix=self.machines.command(index, []),
        )  # fmt: skip
        return node.start()

    def registry(self) -> dict[str, bool]:
        """address -> up, as the node registry says now."""
        store = open_store(Path(), create=False, control_url=self.postgres.url)
        try:
            return {node.address: node.up for node in store.list_nodes()}
        finally:
            store.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memcloud.cli", *args, "--control-url", self.postgres.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://{self.machines.address(0)}:{API_PORT}",
            auth=(self.username, self.password),
            timeout=15,
        )

    def formed(self, count: int) -> bool:
        """Every node of the default cache's cluster answers in the API's stats, each
        holding its share of the plan (it has seen the others)."""
        with self.api() as http:
            cache_id = http.get("/api/v1/login").json()["cache_id"]
            per_server = http.get(f"/api/v1/{cache_id}/stats").json()
        share = -(-PLAN // count)
        return len(per_server) == count and all(
            s["limit_maxbytes"] == share for s in per_server.values()
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_namespaces()
    root = tmp_path_factory.mktemp("machines")
    with Machines(3) as machines:
        postgres = PostgresServer(also_on=machines.host_address, network=machines.network)
        with postgres:
            url = postgres.url_on(machines.host_address)
            found = Deployment(machines, postgres, url, secrets.token_hex(32), root, [])
            try:
                # The first machine makes the `default` cache and prints its credential.
                found.nodes.append(found.start_node(0))
                found.username = found.nodes[0].username
                found.password = found.nodes[0].password
                found.nodes.extend(found.start_node(i) for i in (1, 2))
                assert wait_for(lambda: found.formed(3), timeout=30, interval=0.5)
                yield found
            finally:
                for node in found.nodes:
                    node.stop()


def text_client(
    deployment: Deployment, index: int, username: str = "", password: str = ""
) -> Client:
    client = Client(deployment.address(index), connect_timeout=5, timeout=5)
    login = (username or deployment.username, password or deployment.password)
    assert client.set(*login, noreply=False)
    return client


def test_every_client_layout_reads_the_same_keys(deployment: Deployment) -> None:
    single = text_client(deployment, 1)
    for i in range(200):
        assert single.set(f"layout-{i}", f"v{i}".encode(), noreply=False)
    servers = [deployment.server(i) for i in range(3)]
    replicating = bmemcached.Client(servers, deployment.username, deployment.password)
    for i in range(200):
        assert replicating.get(f"layout-{i}") == f"v{i}"
    for i in range(200, 300):
        assert replicating.set(f"layout-{i}", f"v{i}")
    replicating.disconnect_all()
    for index in range(3):
        reader = text_client(deployment, index)
        assert reader.get_many([f"layout-{i}" for i in range(300)]) == {
            f"layout-{i}": f"v{i}".encode() for i in range(300)
        }
        reader.close()
    _pylibmc_ketama_reads(deployment, [f"layout-{i}" for i in range(300)])
    single.close()


def _pylibmc_ketama_reads(deployment: Deployment, keys: list[str]) -> None:
    """pylibmc (binary, SASL, ketama over all three, as the hosted docs configure it) in a
    process of its own: libsasl2 reads SASL_PATH once, when it is first used."""
    plugins = sorted(glob.glob("/usr/lib/*/sasl2/libplain.so*"))
    if not plugins:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail("libsasl2-modules (SASL PLAIN plugin) is required in CI")
        pytest.skip("libsasl2-modules is not installed")
    script = (
        "import os, pylibmc\n"
        "c = pylibmc.Client(os.environ['SERVERS'].split(','), binary=True,"
        " username=os.environ['U'], password=os.environ['P'],"
        " behaviors={'ketama': True, 'remove_failed': 1, 'retry_timeout': 2,"
        " 'dead_timeout': 30, 'connect_timeout': 5000})\n"
        "keys = os.environ['KEYS'].split(',')\n"
        "got = c.get_multi(keys)\n"
        "assert got == {k: ('v' + k.split('-')[1]).encode() for k in keys}, got\n"
        "c.set('ketama-written', b'by pylibmc')\n"
        "print('ok')\n"
    )
    env = {
        **os.environ,
        "SASL_PATH": os.path.dirname(plugins[0]),
        "SERVERS": ",".join(deployment.server(i) for i in range(3)),
        "U": deployment.username,
        "P": deployment.password,
        "KEYS": ",".join(keys),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stdout + result.stderr
    reader = text_client(deployment, 2)
    assert reader.get("ketama-written") == b"by pylibmc"
    reader.close()


def test_cache_wide_stats_read_the_same_on_every_node(deployment: Deployment) -> None:
    client = text_client(deployment, 0)
    assert client.flush_all(noreply=False)
    for i in range(120):
        assert client.set(f"stats-{i}", b"x" * 100, noreply=False)
    seen = []
    for index in range(3):
        reader = text_client(deployment, index)
        stats = reader.stats()
        seen.append((stats[b"curr_items"], stats[b"bytes"], stats[b"limit_maxbytes"]))
        reader.close()
    assert len(set(seen)) == 1
    assert seen[0][0] == 120 and seen[0][2] == PLAN
    client.close()


def test_a_flush_from_the_api_empties_every_node(deployment: Deployment) -> None:
    client = text_client(deployment, 2)
    for i in range(90):
        assert client.set(f"api-{i}", b"v", noreply=False)
    with deployment.api() as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        assert http.post(f"/api/v1/{cache_id}/flush").status_code == 200
    for index in range(3):
        reader = text_client(deployment, index)
        assert reader.get_many([f"api-{i}" for i in range(90)]) == {}
        reader.close()
    client.close()


def test_a_credential_made_anywhere_works_on_another_machine_within_a_second(
    deployment: Deployment,
) -> None:
    made = deployment.cli("credentials", "create", "default", "--json")
    created = json.loads(made.stdout)
    started = time.monotonic()
    client = Client(deployment.address(2), connect_timeout=5, timeout=5)
    assert wait_for(
        lambda: client.set(created["sasl_username"], created["sasl_password"], noreply=False),
        timeout=3,
        interval=0.05,
    )
    assert time.monotonic() - started < 1.5  # the CLI's own exit is inside this too
    client.close()


class Load:
    """Clients of the first two machines writing and reading known values: any value
    read must be the one written for its key (or a miss)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.stop = threading.Event()
        self.wrong: list[str] = []
        self.errors = 0
        self.reads = 0
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in (0, 1)]

    def _run(self, index: int) -> None:
        client = text_client(self.deployment, index)
        n = 0
        while not self.stop.is_set() and n < 1_000_000:
            key = f"load-{n % 500}"
            try:
                client.set(key, key.encode(), noreply=False)
                value = client.get(f"load-{(n * 7) % 500}")
                self.reads += 1
                if value is not None and value != f"load-{(n * 7) % 500}".encode():
                    self.wrong.append(f"{key}: {value!r}")
            except Exception:
                self.errors += 1
                client.close()
                time.sleep(0.05)
                client = text_client(self.deployment, index)
            n += 1
        client.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_a_killed_node_is_marked_down_its_keys_served_and_it_rejoins(
    deployment: Deployment,
) -> None:
    victim = deployment.nodes[2]
    with Load(deployment) as load:
        time.sleep(1)
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        address = deployment.server(2)
        assert wait_for(lambda: deployment.registry().get(address) is False, timeout=8)
        assert time.monotonic() - killed <= 5.0
        # The survivors own its keys once they see it down: every key can be written and
        # read again through either of them.
        assert wait_for(lambda: deployment.formed(2), timeout=10, interval=0.5)
        reads_before = load.reads
        time.sleep(1)
        assert load.reads > reads_before  # the clients of live nodes kept working
    assert load.wrong == []
    for index in (0, 1):
        client = text_client(deployment, index)
        for i in range(100):
            assert client.set(f"after-{i}", b"v", noreply=False)
        assert len(client.get_many([f"after-{i}" for i in range(100)])) == 100
        client.close()
    # It comes back at its address and rejoins without an operator.
    victim.process.wait(timeout=10)
    deployment.nodes[2] = deployment.start_node(2)
    assert wait_for(lambda: deployment.registry().get(address) is True, timeout=15)
    assert wait_for(lambda: deployment.formed(3), timeout=15, interval=0.5)


def test_replicas_two_lose_no_key_with_one_node(deployment: Deployment) -> None:
    made = deployment.cli("cache", "create", "replicated", "--plan", REPLICATED_PLAN, "--json")
    [cred] = json.loads(made.stdout)["credentials"]
    user, password = cred["sasl_username"], cred["sasl_password"]
    client = Client(deployment.address(0), connect_timeout=5, timeout=5)
    assert wait_for(lambda: client.set(user, password, noreply=False), timeout=5)
    for i in range(300):
        assert client.set(f"kept-{i}", f"v{i}".encode(), noreply=False)
    # A cas reaches the replicas as its outcome (their uniques are their own): after the
    # failover the surviving copy holds the value the cas stored, never the one before.
    for i in range(0, 300, 3):
        value, unique = client.gets(f"kept-{i}")
        assert value == f"v{i}".encode()
        assert client.cas(f"kept-{i}", f"c{i}".encode(), unique, noreply=False) is True
        assert client.cas(f"kept-{i}", b"stale", unique, noreply=False) is False
    expected = {f"kept-{i}": (f"c{i}" if i % 3 == 0 else f"v{i}").encode() for i in range(300)}
    victim = deployment.nodes[1]
    assert victim.process is not None
    os.kill(victim.process.pid, signal.SIGKILL)
    address = deployment.server(1)
    assert wait_for(lambda: deployment.registry().get(address) is False, timeout=8)
    assert wait_for(lambda: deployment.formed(2), timeout=10, interval=0.5)
    reader = Client(deployment.address(2), connect_timeout=5, timeout=5)
    assert reader.set(user, password, noreply=False)
    assert reader.get_many(list(expected)) == expected
    victim.process.wait(timeout=10)
    deployment.nodes[1] = deployment.start_node(1)
    assert wait_for(lambda: deployment.formed(3), timeout=15, interval=0.5)
    client.close()
    reader.close()
