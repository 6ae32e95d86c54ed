"""Every node answers for every key: `memcloud serve --nodes 3` on one machine is three
members of one cluster, and a client that knows any one of them sees the whole cache.

Keys are owned by consistent hashing (memcloud.placement); a node forwards what it does not
own over the node-to-node channel. These tests talk to one node at a time with real clients
and check that the others' keys, counters, CAS uniques, flushes and stats are the cache's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import bmemcached
import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, wait_for

PLAN = 25 * 1024 * 1024
NODES = 3


def stats_of(address: tuple[str, int], username: str, password: str) -> dict[str, str]:
    """`stats` over a raw text connection (after the text login)."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(f"set {username} 0 0 {len(password)}\r\n{password}\r\n".encode())
        assert _read_until(conn, b"\r\n") == b"STORED\r\n"
        conn.sendall(b"stats\r\n")
        reply = _read_until(conn, b"END\r\n").decode()
    return {
        fields[1]: fields[2]
        for fields in (line.split(" ") for line in reply.splitlines())
        if len(fields) == 3 and fields[0] == "STAT"
    }


def _read_until(conn: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = conn.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def addresses(server: ServerProcess) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, port in (s.rsplit(":", 1) for s in server.servers)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("cluster") / "data"
    with ServerProcess(data, nodes=NODES) as server:
        nodes = addresses(server)
        assert len(nodes) == NODES
        # Each node forms its route from the registry within a heartbeat or two: once all
        # three see each other, each holds a third of the plan (the API's per-server stats).
        assert wait_for(lambda: cluster_formed(server), timeout=20, interval=0.5)
        yield server


def cluster_formed(server: ServerProcess) -> bool:
    auth = (server.username, server.password)
    with httpx.Client(base_url=f"http://127.0.0.1:{server.api_port}", auth=auth) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        per_server = http.get(f"/api/v1/{cache_id}/stats").json()
    share = -(-PLAN // NODES)
    return len(per_server) == NODES and all(
        s["limit_maxbytes"] == share for s in per_server.values()
    )


def text_client(server: ServerProcess, node: tuple[str, int]) -> Client:
    client = Client(node, connect_timeout=5, timeout=5)
    assert client.set(server.username, server.password, noreply=False)
    return client


def test_a_client_of_one_node_reads_what_another_node_took(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    writer = text_client(cluster, nodes[0])
    values = {f"key-{i}": f"value-{i}".encode() * (1 + i % 7) for i in range(300)}
    for key, value in values.items():
        assert writer.set(key, value, expire=0, noreply=False)
    for node in nodes[1:]:
        reader = text_client(cluster, node)
        for key, value in values.items():
            assert reader.get(key) == value
        # A multi-get spanning every owner answers in the order of its keys.
        keys = list(values)[:120]
        assert reader.get_many(keys) == {key: values[key] for key in keys}
        reader.close()
    writer.close()


def test_a_raw_multi_get_keeps_the_order_of_its_keys(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    client = text_client(cluster, nodes[0])
    keys = [f"order-{i}" for i in range(60)]
    for key in keys:
        assert client.set(key, key.encode(), noreply=False)
    client.close()
    with socket.create_connection(nodes[1], timeout=5) as conn:
        login = f"set {cluster.username} 0 0 {len(cluster.password)}\r\n{cluster.password}\r\n"
        conn.sendall(login.encode())
        assert _read_until(conn, b"\r\n") == b"STORED\r\n"
        asked = [*keys, "order-missing", *reversed(keys[:5])]
        conn.sendall(b"get " + " ".join(asked).encode() + b"\r\n")
        reply = _read_until(conn, b"END\r\n")
    expected = b"".join(
        b"VALUE %s 0 %d\r\n%s\r\n" % (k.encode(), len(k), k.encode())
        for k in asked
        if k != "order-missing"
    )
    assert reply == expected + b"END\r\n"


def test_bmemcached_writing_to_every_server_stores_each_key_once(
    cluster: ServerProcess,
) -> None:
    servers = [f"{host}:{port}" for host, port in addresses(cluster)]
    client = bmemcached.Client(servers, cluster.username, cluster.password)
    client.flush_all()
    for i in range(500):
        assert client.set(f"b-{i}", f"v{i}")
    for i in range(500):
        assert client.get(f"b-{i}") == f"v{i}"
    client.disconnect_all()
    # curr_items, bytes and limit_maxbytes are the cache's on every node.
    seen = [stats_of(node, cluster.username, cluster.password) for node in addresses(cluster)]
    assert {s["curr_items"] for s in seen} == {"500"}
    assert len({s["bytes"] for s in seen}) == 1
    assert {s["limit_maxbytes"] for s in seen} == {str(PLAN)}


def test_counters_cas_touch_and_delete_through_any_node(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    a, b, c = (text_client(cluster, node) for node in nodes)
    for i in range(30):
        key = f"counter-{i}"
        assert a.set(key, b"10", noreply=False)
        assert b.incr(key, 5) == 15
        assert c.decr(key, 3) == 12
        assert a.get(key) == b"12"
        value, cas = b.gets(key)
        assert value == b"12"
        assert c.cas(key, b"13", cas, noreply=False) is True
        assert a.cas(key, b"14", cas, noreply=False) is False  # the unique moved on
        assert b.append(key, b"x", noreply=False)
        assert c.get(key) == b"13x"
        assert a.touch(key, 100, noreply=False)
        assert b.delete(key, noreply=False)
        assert c.get(key) is None
        assert a.delete(key, noreply=False) is False
    for client in (a, b, c):
        client.close()


def test_cas_uniques_differ_across_nodes(cluster: ServerProcess) -> None:
    client = text_client(cluster, addresses(cluster)[0])
    uniques = set()
    for i in range(200):
        assert client.set(f"u-{i}", b"v", noreply=False)
        uniques.add(client.gets(f"u-{i}")[1])
    assert len(uniques) == 200
    client.close()


def test_binary_clients_of_one_node_see_the_whole_cache(cluster: ServerProcess) -> None:
    first, second = (f"{h}:{p}" for h, p in addresses(cluster)[:2])
    one = bmemcached.Client([first], cluster.username, cluster.password)
    other = bmemcached.Client([second], cluster.username, cluster.password)
    assert one.flush_all()
    for i in range(200):
        assert one.set(f"bin-{i}", f"v{i}")
    assert other.get_multi([f"bin-{i}" for i in range(200)]) == {
        f"bin-{i}": f"v{i}" for i in range(200)
    }
    assert one.set("bin-counter", "5")
    assert other.incr("bin-counter", 2) == 7
    assert other.delete("bin-3")
    assert one.get("bin-3") is None
    stats = other.stats()
    assert [int(s["curr_items"]) for s in stats.values()] == [200]
    one.disconnect_all()
    other.disconnect_all()


def test_flush_all_on_one_node_empties_every_node(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    clients = [text_client(cluster, node) for node in nodes]
    for i in range(90):
        assert clients[0].set(f"flush-{i}", b"v", noreply=False)
    assert clients[2].flush_all(noreply=False)
    for client in clients:
        assert all(client.get(f"flush-{i}") is None for i in range(90))
    assert {stats_of(n, cluster.username, cluster.password)["curr_items"] for n in nodes} == {"0"}
    for client in clients:
        client.close()


def test_the_api_flush_empties_every_node_once(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    client = text_client(cluster, nodes[1])
    for i in range(90):
        assert client.set(f"api-flush-{i}", b"v", noreply=False)
    auth = (cluster.username, cluster.password)
    with httpx.Client(base_url=f"http://127.0.0.1:{cluster.api_port}", auth=auth) as http:
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        before = http.get(f"/api/v2/caches/{cache_id}/stats").json()["cmd_flush"]
        assert http.post(f"/api/v1/{cache_id}/flush").status_code == 200
        assert http.get(f"/api/v2/caches/{cache_id}/stats").json()["cmd_flush"] == before + 1
    assert all(client.get(f"api-flush-{i}") is None for i in range(90))
    client.close()


def test_tenants_stay_apart_on_forwarded_keys(cluster: ServerProcess) -> None:
    [other] = cluster.cli_json("cache", "create", "other-tenant", "--plan", "10MB")["credentials"]
    username, password = other["sasl_username"], other["sasl_password"]
    nodes = addresses(cluster)
    mine = text_client(cluster, nodes[0])
    theirs = Client(nodes[1], connect_timeout=5, timeout=5)
    assert wait_for(lambda: theirs.set(username, password, noreply=False), timeout=5)
    for i in range(60):
        assert mine.set(f"shared-{i}", b"mine", noreply=False)
    assert all(theirs.get(f"shared-{i}") is None for i in range(60))
    for i in range(60):
        assert theirs.set(f"shared-{i}", b"theirs", noreply=False)
    assert all(mine.get(f"shared-{i}") == b"mine" for i in range(60))
    mine.close()
    theirs.close()


def test_a_read_only_credential_cannot_write_through_another_node(
    cluster: ServerProcess,
) -> None:
    ro = cluster.cli_json("credentials", "create", "default", "--no-write", "--no-flush")
    nodes = addresses(cluster)
    writer = text_client(cluster, nodes[0])
    for i in range(30):
        assert writer.set(f"ro-{i}", b"kept", noreply=False)
    reader = Client(nodes[1], connect_timeout=5, timeout=5)
    assert wait_for(
        lambda: reader.set(ro["sasl_username"], ro["sasl_password"], noreply=False), timeout=5
    )
    for i in range(30):
        assert reader.get(f"ro-{i}") == b"kept"
        assert reader.set(f"ro-{i}", b"changed", noreply=False) is False
    assert all(writer.get(f"ro-{i}") == b"kept" for i in range(30))
    writer.close()
    reader.close()


def test_meta_commands_reach_the_owner_of_their_key(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    login = f"set {cluster.username} 0 0 {len(cluster.password)}\r\n{cluster.password}\r\n"
    with socket.create_connection(nodes[0], timeout=5) as writer:
        writer.sendall(login.encode())
        assert _read_until(writer, b"\r\n") == b"STORED\r\n"
        sets = b"".join(b"ms meta-%d 2 T0 q\r\nv%d\r\n" % (i, i % 10) for i in range(40))
        writer.sendall(sets + b"mn\r\n")
        assert _read_until(writer, b"MN\r\n") == b"MN\r\n"  # quiet: only the end marker
    with socket.create_connection(nodes[1], timeout=5) as reader:
        reader.sendall(login.encode())
        assert _read_until(reader, b"\r\n") == b"STORED\r\n"
        gets = b"".join(b"mg meta-%d v k O%d\r\n" % (i, i) for i in range(40))
        reader.sendall(gets + b"mn\r\n")
        reply = _read_until(reader, b"MN\r\n")
        expected = b"".join(b"VA 2 kmeta-%d O%d\r\nv%d\r\n" % (i, i, i % 10) for i in range(40))
        assert reply == expected + b"MN\r\n"
        reader.sendall(b"md meta-7\r\nmg meta-7 v\r\nma meta-missing\r\n")
        assert _read_until(reader, b"NF\r\n") == b"HD\r\nEN\r\nNF\r\n"


def test_a_text_prefix_flush_on_one_node_reaches_every_node(cluster: ServerProcess) -> None:
    nodes = addresses(cluster)
    client = text_client(cluster, nodes[0])
    for i in range(60):
        assert client.set(f"page:{i}", b"v", noreply=False)
        assert client.set(f"session:{i}", b"v", noreply=False)
    other = text_client(cluster, nodes[2])
    assert other.raw_command(b"flush_prefix page:", b"\r\n") == b"OK"
    assert client.get_many([f"page:{i}" for i in range(60)]) == {}
    assert len(client.get_many([f"session:{i}" for i in range(60)])) == 60
    client.close()
    other.close()


def test_members_of_one_serve_forward_over_unix_sockets_in_the_data_dir(
    cluster: ServerProcess,
) -> None:
    """The three members share a data dir: each listens on `channel-<port>.sock` there
    (owner only) and the others forward to it on that socket, not over TLS."""
    sockets = sorted(cluster.data_dir.resolve().glob("channel-*.sock"))
    assert len(sockets) == NODES
    assert all(path.is_socket() and path.stat().st_mode & 0o077 == 0 for path in sockets)
    client = text_client(cluster, addresses(cluster)[0])
    assert len(client.get_many([f"any-{i}" for i in range(30)] + ["plain:1"])) <= 31
    client.close()
    names = {str(path) for path in sockets}
    connected = 0
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path: St 03 is a connected socket.
        if len(fields) == 8 and fields[7] in names and fields[5] == "03":
            connected += 1
    assert connected >= 2, "no member reached another on its Unix socket"
