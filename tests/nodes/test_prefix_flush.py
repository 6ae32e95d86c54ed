"""Prefix flush against `memcloud serve --nodes 2`, through each of its doors (a deploy-hook URL
with ?prefix, v1 and v2 with the query or a body field, the CLI, the dashboard's form, the text
protocol's `flush_prefix`): the keys starting with the prefix miss on every node, the others
hit, the stats come right as the nodes reclaim, a key written afterwards is kept, the flush log
names the prefix, and hostile prefixes are refused in each API's 400 shape, flushing nothing.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login, wait_for

PER_PREFIX = 300
# A large cache: the flush answers at once and the reclaim runs in slices meanwhile.
LARGE = 100_000
# Generous bounds for a loaded test machine; a flush that walked the keyspace inside the
# request, or a reclaim that held the loop, on a far larger cache would still pass them,
# so the unit tests (tests/storage/test_prefix_flush.py) show the laziness itself.
FLUSH_ANSWER_SECONDS = 3.0
GET_STALL_SECONDS = 1.0


@dataclass(frozen=True)
class Tenant:
    cache_id: int
    name: str
    username: str
    password: str


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("prefix") / "data"
    with ServerProcess(data, "--nodes", "2") as proc:
        yield proc


def _logs_in(port: int, tenant: Tenant) -> bool:
    conn = RawConnection(port)
    try:
        return conn.request(ascii_login(tenant.username, tenant.password)) == b"STORED\r\n"
    finally:
        conn.close()


def new_cache(d: ServerProcess, name: str, plan: str = "64MB") -> Tenant:
    """A cache of its own for each test (its stats are its keys alone), served by both nodes."""
    data: Any = d.cli_json("cache", "create", name, "--plan", plan)
    [cred] = data["credentials"]
    tenant = Tenant(int(data["id"]), name, cred["sasl_username"], cred["sasl_password"])
    for port in (int(server.rsplit(":", 1)[1]) for server in d.servers):
        assert wait_for(lambda port=port: _logs_in(port, tenant), timeout=10)  # type: ignore[misc]
    return tenant


def api(d: ServerProcess, tenant: Tenant) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{d.api_port}",
        auth=(tenant.username, tenant.password),
        timeout=30,
    )


def connect(server: str, tenant: Tenant) -> RawConnection:
    conn = RawConnection(int(server.rsplit(":", 1)[1]))
    assert conn.request(ascii_login(tenant.username, tenant.password)) == b"STORED\r\n"
    return conn


def keys(node: int, prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}{node}:{i}".encode() for i in range(count)]


def store(conn: RawConnection, names: list[bytes], batch: int = 5000) -> None:
    """Pipelined sets (noreply), then one get to know the server has read them all."""
    for start in range(0, len(names), batch):
        conn.send(
            b"".join(b"set %s 0 0 2 noreply\r\nvv\r\n" % k for k in names[start : start + batch])
        )
    assert conn.request(b"get nothing-here\r\n", b"END\r\n") == b"END\r\n"


def hits(conn: RawConnection, names: list[bytes], batch: int = 200) -> set[bytes]:
    found: set[bytes] = set()
    for start in range(0, len(names), batch):
        reply = conn.request(
            b"get " + b" ".join(names[start : start + batch]) + b"\r\n", b"END\r\n"
        )
        found.update(re.findall(rb"VALUE (\S+) 0 2\r\n", reply))
    return found


@dataclass
class Filled:
    views: dict[int, list[bytes]]
    sessions: dict[int, list[bytes]]
    conns: list[RawConnection]

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def fill(d: ServerProcess, tenant: Tenant, count: int = PER_PREFIX) -> Filled:
    """`count` keys under `views:` and under `sessions:` written through each node."""
    conns = [connect(server, tenant) for server in d.servers]
    views = {n: keys(n, "views:", count) for n in range(len(conns))}
    sessions = {n: keys(n, "sessions:", count) for n in range(len(conns))}
    for n, conn in enumerate(conns):
        store(conn, views[n] + sessions[n])
        assert hits(conn, views[n][:5] + sessions[n][:5]) == set(views[n][:5] + sessions[n][:5])
    return Filled(views, sessions, conns)


def assert_only_views_gone(filled: Filled) -> None:
    every_view = [k for names in filled.views.values() for k in names]
    for n, conn in enumerate(filled.conns):
        assert hits(conn, every_view) == set(), f"node {n} still answers a flushed key"
        assert hits(conn, filled.sessions[n]) == set(filled.sessions[n]), f"node {n} lost keys"


def curr_items(d: ServerProcess, tenant: Tenant) -> int:
    with api(d, tenant) as http:
        per_node = http.get(f"/api/v1/{tenant.cache_id}/stats").json()
    assert len(per_node) == len(d.servers)
    return sum(int(stats["curr_items"]) for stats in per_node.values())


def flush_log(d: ServerProcess, tenant: Tenant) -> list[dict[str, Any]]:
    with api(d, tenant) as http:
        entries: list[dict[str, Any]] = http.get(
            f"/api/v2/caches/{tenant.cache_id}/flush_log", params={"limit": 100}
        ).json()
    return entries


def test_a_deploy_hook_url_with_a_prefix_leaves_the_other_keys(d: ServerProcess) -> None:
    tenant = new_cache(d, "hooked")
    filled = fill(d, tenant)
    assert curr_items(d, tenant) == 4 * PER_PREFIX
    # As a deploy hook calls it: the credential in the URL's userinfo, the release's form.
    url = (
        f"http://{tenant.username}:{tenant.password}@127.0.0.1:{d.api_port}"
        f"/api/v1/{tenant.cache_id}/flush?prefix=views%3A"
    )
    form = {"app": "shop", "release": "v42", "head": "abc1234", "user": "dev@example.com"}
    reply = httpx.post(url, data=form, timeout=30)
    assert (reply.status_code, reply.json()) == (200, "")

    assert_only_views_gone(filled)
    assert wait_for(lambda: curr_items(d, tenant) == 2 * PER_PREFIX, timeout=10)
    [record] = flush_log(d, tenant)
    assert (record["source"], record["app"], record["release"]) == ("deploy_hook", "shop", "v42")
    assert record["details"]["prefix"] == "views:"
    # A key written after the flush is a fresh item, and stays.
    again = filled.conns[1]
    assert again.request(b"set views:again 0 0 2\r\nvv\r\n") == b"STORED\r\n"
    time.sleep(1.2)  # a few upkeep rounds
    assert hits(again, [b"views:again"]) == {b"views:again"}
    filled.close()


def test_v1_and_v2_take_the_prefix_in_the_query_or_the_body(d: ServerProcess) -> None:
    tenant = new_cache(d, "routes")
    filled = fill(d, tenant, 50)
    with api(d, tenant) as http:
        done = http.post(f"/api/v2/caches/{tenant.cache_id}/flush", params={"prefix": "views:0"})
        assert done.status_code == 204, done.text
        done = http.post(f"/api/v2/caches/{tenant.cache_id}/flush", json={"prefix": "views:1"})
        assert done.status_code == 204, done.text
        same = http.post(
            f"/api/v1/{tenant.cache_id}/flush?prefix=sessions%3A0", data={"prefix": "sessions:0"}
        )
        assert same.status_code == 200, same.text
    assert_only_views_gone(Filled(filled.views, {0: [], 1: filled.sessions[1]}, filled.conns))
    assert hits(filled.conns[0], filled.sessions[0]) == set()
    records = flush_log(d, tenant)
    assert [(r["source"], r["details"]["prefix"]) for r in records] == [
        ("api", "sessions:0"),
        ("api", "views:1"),
        ("api", "views:0"),
    ]
    filled.close()


HOSTILE_QUERIES = {
    "too long": "prefix=" + "p" * 251,
    "too long in bytes": "prefix=" + "%C3%A9" * 126,
    "space": "prefix=views%20x",
    "plus is a space": "prefix=views+x",
    "control": "prefix=views%0Aflush_all",
    "nul": "prefix=views%00",
    "delete": "prefix=views%7F",
    "not UTF-8": "prefix=views%FF",
    "two of them": "prefix=views&prefix=sessions",
}


@pytest.fixture(scope="module")
def hostile(d: ServerProcess) -> Tenant:
    """One cache for the refusals, holding a key under each prefix they name."""
    tenant = new_cache(d, "hostile")
    conn = connect(d.servers[0], tenant)
    store(conn, [b"views:kept", b"sessions:kept"])
    conn.close()
    return tenant


@pytest.mark.parametrize("query", list(HOSTILE_QUERIES.values()), ids=list(HOSTILE_QUERIES))
def test_hostile_prefixes_are_refused_in_each_apis_shape(
    d: ServerProcess, hostile: Tenant, query: str
) -> None:
    tenant = hostile
    with api(d, tenant) as http:
        v1 = http.post(f"/api/v1/{tenant.cache_id}/flush?{query}")
        v2 = http.post(f"/api/v2/caches/{tenant.cache_id}/flush?{query}")
    assert v1.status_code == 400 and isinstance(v1.json(), str) and "prefix" in v1.json()
    assert v2.status_code == 400 and set(v2.json()) == {"message"}
    assert "prefix" in v2.json()["message"]
    conn = connect(d.servers[0], tenant)
    assert hits(conn, [b"views:kept", b"sessions:kept"]) == {b"views:kept", b"sessions:kept"}
    conn.close()
    assert flush_log(d, tenant) == []


@pytest.mark.parametrize(
    "body",
    [b'{"prefix": 7}', b'{"prefix": ["views:"]}', b'{"prefix": "a b"}', b'{"prefix": "\\ud800"}'],
    ids=["number", "list", "space", "lone surrogate"],
)
def test_a_bodys_bad_prefix_is_refused(d: ServerProcess, hostile: Tenant, body: bytes) -> None:
    tenant = hostile
    with api(d, tenant) as http:
        v2 = http.post(
            f"/api/v2/caches/{tenant.cache_id}/flush",
            content=body,
            headers={"content-type": "application/json"},
        )
        conflict = http.post(
            f"/api/v1/{tenant.cache_id}/flush?prefix=views%3A", json={"prefix": "sessions:"}
        )
    assert v2.status_code == 400 and "prefix" in v2.json()["message"]
    assert conflict.status_code == 400 and "prefix" in conflict.json()
    assert flush_log(d, tenant) == []


def test_a_prefix_beside_a_deploy_hooks_fields_narrows_the_flush(d: ServerProcess) -> None:
    tenant = new_cache(d, "formed")
    filled = fill(d, tenant, 20)
    with api(d, tenant) as http:
        reply = http.post(
            f"/api/v1/{tenant.cache_id}/flush", data={"app": "shop", "prefix": "views:"}
        )
    assert reply.status_code == 200
    assert_only_views_gone(filled)
    [record] = flush_log(d, tenant)
    assert (record["source"], record["app"]) == ("deploy_hook", "shop")
    assert record["details"]["prefix"] == "views:"
    filled.close()


def test_the_cli_flushes_a_prefix_on_every_node(d: ServerProcess) -> None:
    tenant = new_cache(d, "cli")
    filled = fill(d, tenant)
    refused = d.cli("flush", tenant.name, "--prefix", "views: x", check=False)
    assert refused.returncode == 2 and "space" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert curr_items(d, tenant) == 4 * PER_PREFIX

    done = d.cli("flush", tenant.name, "--prefix", "views:")
    assert "views:" in done.stdout and "the others stay" in done.stdout
    assert_only_views_gone(filled)
    [record] = flush_log(d, tenant)
    assert (record["source"], record["details"]["prefix"]) == ("cli", "views:")
    shown = d.cli("flush-log", tenant.name).stdout
    assert "prefix" in shown.splitlines()[0] and "views:" in shown
    assert wait_for(lambda: curr_items(d, tenant) == 2 * PER_PREFIX, timeout=10)
    filled.close()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def test_the_dashboards_flush_form_takes_a_prefix(d: ServerProcess) -> None:
    tenant = new_cache(d, "board")
    filled = fill(d, tenant, 50)
    base = f"http://127.0.0.1:{d.api_port}"
    with httpx.Client(base_url=base, follow_redirects=False, timeout=15) as browser:
        login = browser.get("/dashboard/login").text
        signed_in = browser.post(
            "/dashboard/login",
            data={"csrf": _csrf(login), "username": tenant.username, "password": tenant.password},
        )
        assert signed_in.status_code == 303, signed_in.text
        page = f"/dashboard/caches/{tenant.cache_id}/flush"
        form = browser.get(page).text
        assert 'name="prefix"' in form
        token = _csrf(form)
        bad = browser.post(page, data={"csrf": token, "confirm": "yes", "prefix": "a\tb"})
        assert bad.headers["location"].endswith("notice=bad_prefix")
        assert flush_log(d, tenant) == []
        done = browser.post(page, data={"csrf": token, "confirm": "yes", "prefix": "views:"})
        assert done.headers["location"].endswith("notice=prefix_flushed")
        shown = browser.get(done.headers["location"]).text
        assert "Prefix flushed" in shown and "views:" in shown
    assert_only_views_gone(filled)
    [record] = flush_log(d, tenant)
    assert (record["source"], record["details"]["prefix"]) == ("dashboard", "views:")
    filled.close()


def test_the_text_protocols_flush_prefix(d: ServerProcess) -> None:
    # memcloud's extension, sent raw by a client that can (pymemcache's raw_command, nc):
    # the node it reaches flushes, as with flush_all.
    tenant = new_cache(d, "text")
    filled = fill(d, tenant, 50)
    host, port = d.servers[0].rsplit(":", 1)
    client = Client((host, int(port)), connect_timeout=5, timeout=5)
    assert client.set(tenant.username, tenant.password, noreply=False)
    assert client.raw_command(b"flush_prefix views:0:") == b"OK"
    with pytest.raises(MemcacheClientError, match="bad command line format"):
        client.raw_command(b"flush_prefix views\x01")
    client.close()
    conn = filled.conns[0]
    assert hits(conn, filled.views[0]) == set()
    assert hits(conn, filled.sessions[0]) == set(filled.sessions[0])
    assert wait_for(lambda: len(flush_log(d, tenant)) == 1, timeout=10)
    [record] = flush_log(d, tenant)
    assert (record["source"], record["details"]["prefix"]) == ("text", "views:0:")
    assert (record["node"], record["username"]) == (d.servers[0], tenant.username)
    filled.close()


def test_a_large_cache_answers_at_once_and_keeps_serving(d: ServerProcess) -> None:
    tenant = new_cache(d, "large", plan="128MB")
    loader = connect(d.servers[0], tenant)
    views = [b"views:%d" % i for i in range(LARGE // 2)]
    sessions = [b"sessions:%d" % i for i in range(LARGE // 2)]
    store(loader, views + sessions)
    assert curr_items(d, tenant) == LARGE

    stalls: list[float] = []
    stop = threading.Event()

    def keep_reading() -> None:
        reader = connect(d.servers[0], tenant)
        i = 0
        while not stop.is_set():
            key = sessions[i % len(sessions)]
            started = time.monotonic()
            assert reader.request(b"get %s\r\n" % key, b"END\r\n").startswith(b"VALUE")
            stalls.append(time.monotonic() - started)
            i += 1
        reader.close()

    thread = threading.Thread(target=keep_reading, daemon=True)
    thread.start()
    assert wait_for(lambda: len(stalls) > 10, timeout=10)
    with api(d, tenant) as http:
        started = time.monotonic()
        reply = http.post(f"/api/v2/caches/{tenant.cache_id}/flush", params={"prefix": "views:"})
        answered = time.monotonic() - started
    assert reply.status_code == 204, reply.text
    assert answered < FLUSH_ANSWER_SECONDS
    # Gone for every command at once, reclaimed or not yet.
    assert hits(loader, views[::97]) == set()
    assert hits(loader, sessions[::97]) == set(sessions[::97])
    reads_before = len(stalls)
    assert wait_for(lambda: curr_items(d, tenant) == LARGE // 2, timeout=60)
    stop.set()
    thread.join(timeout=10)
    assert len(stalls) > reads_before  # the data plane answered while the nodes reclaimed
    assert max(stalls) < GET_STALL_SECONDS
    assert hits(loader, sessions[::13]) == set(sessions[::13])
    loader.close()


def test_the_openapi_document_names_the_prefix(d: ServerProcess) -> None:
    document = httpx.get(f"http://127.0.0.1:{d.api_port}/openapi.json", timeout=15).json()
    for path in ("/api/v1/{cache_id}/flush", "/api/v2/caches/{cache_id}/flush"):
        operation = document["paths"][path]["post"]
        names = {(p["name"], p["in"]) for p in operation["parameters"]}
        assert ("prefix", "query") in names and ("cache_id", "path") in names
        assert "400" in operation["responses"]
