"""The introspection routes (reference §2.7) and insight/latency (§2.5) over a real
two-node `memcloud serve`: real memcache clients make the traffic, httpx reads the routes.
Each route has its happy path and an error path; keys and values here are unique to each
test, so the module's one server serves them all."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from api.conftest import SAMPLE_ENV, Api, Cred
from memcloud.testing import ServerProcess, wait_for

ENV = {**SAMPLE_ENV, "MEMCLOUD_LATENCY_PROBE_SECONDS": "0.2"}
BASE = "/api/v2/caches/{}/introspection"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("introspection") / "data"
    with ServerProcess(data, env=ENV, nodes=2) as running:
        yield running


@pytest.fixture(scope="module")
def api(proc: ServerProcess) -> Iterator[Api]:
    client = Api(proc)
    yield client
    client.close()


def clients(api: Api, cred: Cred) -> list[Client]:
    """A logged-in text client on each node of the cache. The API knowing the new cache
    does not mean every node has polled the control store yet (each does within a second,
    longer on a loaded machine), so a refused login is tried again on a new connection."""
    found = []
    for server in api.proc.servers:
        host, port = server.rsplit(":", 1)

        def logged_in(host: str = host, port: str = port) -> bool:
            client = Client((host, int(port)), timeout=5)
            try:
                accepted = bool(client.set(cred.username, cred.password, noreply=False))
            except MemcacheClientError:  # "authentication failure": not known there yet
                accepted = False
            if accepted:
                found.append(client)
            else:
                client.close()
            return accepted

        assert wait_for(logged_in, timeout=10), f"{server} never accepted {cred.username}"
    return found


def get(api: Api, cred: Cred, path: str, **params: Any) -> Any:
    reply = api.request("GET", BASE.format(cred.cache_id) + path, cred, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["name"] for entry in entries]


def test_recent_logs_per_server_never_hold_values_or_passwords(api: Api) -> None:
    cred = api.new_cache("logs")
    for index, client in enumerate(clients(api, cred)):
        client.set(f"rl:key{index}", b"SECRET-VALUE-%d" % index, noreply=False)
        assert client.get(f"rl:key{index}") == b"SECRET-VALUE-%d" % index
        assert client.get("rl:absent") is None
    logs = get(api, cred, "/recent_logs")
    assert sorted(logs) == sorted(api.proc.servers)
    lines = [line for per_server in logs.values() for line in per_server]
    for line in lines:
        assert set(line) == {"timestamp", "key", "command", "status", "size"}
        assert RFC3339.match(line["timestamp"])
    seen = {(line["key"], line["command"], line["status"]) for line in lines}
    assert ("rl:key0", "SET", "STORED") in seen
    assert ("rl:key0", "GET", "HIT") in seen
    assert ("rl:absent", "GET", "MISS") in seen
    sized = [
        line["size"] for line in lines if line["key"] == "rl:key0" and line["command"] == "GET"
    ]
    assert sized == [len(b"SECRET-VALUE-0")]
    text = str(logs)
    assert "SECRET-VALUE" not in text
    assert cred.password not in text and cred.username not in text  # the login `set`


def test_recent_logs_keep_the_last_100_requests(api: Api) -> None:
    cred = api.new_cache("ring")
    client = clients(api, cred)[0]
    # Each key's owner records it (the node a client talks to forwards the rest): 300 keys
    # over two nodes leave well over 100 on each, and each keeps its last 100, in order.
    for index in range(300):
        client.get(f"ring:{index}")
    logs = get(api, cred, "/recent_logs")
    assert sorted(logs) == sorted(api.proc.servers)
    last = []
    for lines in logs.values():
        indices = [int(line["key"].split(":")[1]) for line in lines]
        assert len(indices) == 100
        assert indices == sorted(indices)
        last.append(indices[-1])
    assert max(last) == 299


def test_recent_logs_refuse_a_wrong_password(api: Api) -> None:
    cred = api.new_cache("logs-refused")
    wrong = Cred(cred.username, "0" * 32, cred.cache_id)
    reply = api.request("GET", BASE.format(cred.cache_id) + "/recent_logs", wrong)
    assert reply.status_code == 401
    assert reply.json() == {"message": "Bad user"}


def test_a_skewed_load_shows_the_hottest_key_first(api: Api) -> None:
    cred = api.new_cache("skewed")
    client = clients(api, cred)[0]
    client.set("hot:one", b"x", noreply=False)
    client.set("warm:two", b"x", noreply=False)
    for index in range(1200):
        client.get("hot:one")
        if index % 4 == 0:
            client.get("warm:two")
        client.get(f"cold:{index}")  # 2,400 distinct misses
        client.get(f"cold:{index}b")
    for index in range(300):
        client.set("mut:counter", b"%d" % index, noreply=False)
    popular = get(api, cred, "/popular_items")
    assert set(popular) == {
        "time_slice",
        "most_hit_keys",
        "most_missed_keys",
        "most_mutated_keys",
        "popular_prefixes",
    }
    assert names(popular["most_hit_keys"])[:2] == ["hot:one", "warm:two"]
    assert popular["most_hit_keys"][0]["popularity"] > popular["most_hit_keys"][1]["popularity"]
    assert names(popular["most_mutated_keys"])[0] == "mut:counter"
    assert all(name.startswith("cold:") for name in names(popular["most_missed_keys"]))
    assert names(popular["popular_prefixes"])[:2] == ["cold:", "hot:"]
    assert 0 < popular["time_slice"] <= 4 * 60 * 10**9


def test_popular_items_refuse_another_tenants_cache(api: Api) -> None:
    mine, theirs = api.new_cache("pop-a"), api.new_cache("pop-b")
    reply = api.request("GET", BASE.format(theirs.cache_id) + "/popular_items", mine)
    assert reply.status_code == 403
    assert reply.json() == {"message": "Forbidden to access cache with this ID."}


def test_a_cache_never_sees_another_caches_keys(api: Api) -> None:
    a, b = api.new_cache("iso-a"), api.new_cache("iso-b")
    for client in clients(api, b):
        client.set("b-secret:key", b"v", noreply=False)
        for _ in range(20):
            client.get("b-secret:key")
    for client in clients(api, a):
        client.set("a:key", b"v", noreply=False)
    answers = [
        get(api, a, "/recent_logs"),
        get(api, a, "/popular_items"),
        get(api, a, "/key_stats", key="b-secret:key"),
    ]
    assert "b-secret" not in str(answers[:2])
    [stats] = answers[2]
    assert stats["in_cache"] is False and stats["hit_count"] == 0
    assert "a:key" in str(answers[0])


def test_key_stats_of_a_key(api: Api) -> None:
    cred = api.new_cache("keys")
    client = clients(api, cred)[0]
    client.set("ks:item", b"12345", noreply=False)
    for _ in range(1600):
        client.get("ks:item")
    [stats] = get(api, cred, "/key_stats", key="ks:item")
    assert set(stats) == {
        "timestamp",
        "name",
        "size",
        "hit_count",
        "miss_count",
        "mutation_count",
        "in_cache",
    }
    assert stats["name"] == "ks:item" and stats["in_cache"] is True and stats["size"] == 5
    assert stats["hit_count"] >= 800  # estimated from about one request in 32
    client.delete("ks:item")
    [gone] = get(api, cred, "/key_stats", key="ks:item")
    assert gone["in_cache"] is False and gone["size"] == 0


def test_key_stats_without_a_key_is_400(api: Api) -> None:
    cred = api.main
    reply = api.request("GET", BASE.format(cred.cache_id) + "/key_stats", cred)
    assert reply.status_code == 400
    assert reply.json() == {"message": "query parameter key is required"}


def test_compound_stats_follow_the_history(api: Api) -> None:
    cred = api.new_cache("compound")
    client = clients(api, cred)[0]
    for index in range(5):
        client.set(f"c:{index}", b"vv", noreply=False)

    def series() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = get(api, cred, "/compound_stats")
        return result

    assert wait_for(lambda: any(row[1] == 5 for row in series()[0]["values"]), timeout=10)
    [one] = series()
    assert one["name"] == "compound_stats"
    assert one["columns"] == [
        "time",
        "num_keys",
        "total_size",
        "total_hits_rate",
        "total_misses_rate",
        "total_mutations_rate",
    ]
    assert RFC3339.match(one["values"][-1][0])


def test_compound_stats_refuse_a_bad_time(api: Api) -> None:
    cred = api.main
    path = BASE.format(cred.cache_id) + "/compound_stats"
    reply = api.request("GET", path, cred, params={"startTime": "yesterday"})
    assert reply.status_code == 400
    assert reply.json() == {"message": "startTime and endTime must be RFC 3339 times"}


def test_watch_list_and_unwatch_prefixes(api: Api) -> None:
    cred = api.new_cache("watch")
    path = BASE.format(cred.cache_id) + "/prefixes"
    made = api.request("POST", path, cred, json={"name": "user:"})
    assert made.status_code == 200, made.text
    watched = made.json()
    assert set(watched) == {"id", "name"} and watched["name"] == "user:"
    again = api.request("POST", path, cred, json={"name": "user:"})
    assert again.json() == watched  # watching it again is the same prefix
    assert get(api, cred, "/prefixes") == [watched]
    gone = api.request("DELETE", f"{path}/{watched['id']}", cred)
    assert gone.status_code == 204
    assert get(api, cred, "/prefixes") == []


def test_watch_refuses_a_nameless_prefix_and_the_eleventh(api: Api) -> None:
    cred = api.new_cache("watch-refused")
    path = BASE.format(cred.cache_id) + "/prefixes"
    nameless = api.request("POST", path, cred, json={})
    assert nameless.status_code == 400
    assert nameless.json() == {
        "message": "The prefix could not be watched. A prefix requires a name."
    }
    spaced = api.request("POST", path, cred, json={"name": "a b"})
    assert spaced.status_code == 400
    for index in range(10):
        assert api.request("POST", path, cred, json={"name": f"p{index}:"}).status_code == 200
    eleventh = api.request("POST", path, cred, json={"name": "p10:"})
    assert eleventh.status_code == 400
    assert "at most 10 prefixes" in eleventh.json()["message"]


def test_unwatch_refuses_an_unknown_or_foreign_prefix(api: Api) -> None:
    mine, theirs = api.new_cache("unwatch-a"), api.new_cache("unwatch-b")
    theirs_path = BASE.format(theirs.cache_id) + "/prefixes"
    foreign = api.request("POST", theirs_path, theirs, json={"name": "x:"}).json()
    mine_path = BASE.format(mine.cache_id) + "/prefixes"
    for ref in (str(foreign["id"]), "abc", "99999"):
        reply = api.request("DELETE", f"{mine_path}/{ref}", mine)
        assert reply.status_code == 400, ref
        assert "invalid (not a number)" in reply.json()["message"]
    assert get(api, theirs, "/prefixes") == [foreign]


def test_prefix_stats_and_popular_items_of_a_watched_prefix(api: Api) -> None:
    cred = api.new_cache("prefix-stats")
    path = BASE.format(cred.cache_id) + "/prefixes"
    watched = api.request("POST", path, cred, json={"name": "session:"}).json()
    client = clients(api, cred)[0]
    for index in range(8):
        client.set(f"session:{index}", b"abcd", noreply=False)
    client.set("other:1", b"abcd", noreply=False)
    for _ in range(300):
        client.get("session:3")
    stats = get(api, cred, f"/prefixes/{watched['id']}/stats")
    [series] = stats
    assert series["name"] == "prefix_stats"
    last = series["values"][-1]
    assert last[1] == 8  # num_keys: the prefix's keys, not other:1
    assert last[2] == 8 * (len("session:0") + 4 + 50)  # key + value + item overhead
    popular = get(api, cred, f"/prefixes/{watched['id']}/popular_items")
    assert names(popular["most_hit_keys"])[0] == "session:3"
    assert popular["popular_prefixes"] == []
    assert all(name.startswith("session:") for name in names(popular["most_mutated_keys"]))


def test_prefix_routes_refuse_an_unknown_prefix(api: Api) -> None:
    cred = api.main
    for tail in ("/prefixes/4242/stats", "/prefixes/nope/popular_items"):
        reply = api.request("GET", BASE.format(cred.cache_id) + tail, cred)
        assert reply.status_code == 400, tail
        assert reply.json()["message"].startswith("The specified prefix ID is invalid")


def test_latency_per_server_in_nanoseconds(api: Api) -> None:
    cred = api.main
    path = f"/api/v2/caches/{cred.cache_id}/insight/latency"

    def series() -> list[dict[str, Any]]:
        reply = api.request("GET", path, cred)
        assert reply.status_code == 200, reply.text
        result: list[dict[str, Any]] = reply.json()
        return result

    assert wait_for(lambda: len(series()) == 2, timeout=10)
    found = series()
    assert sorted(s["tags"]["server"] for s in found) == sorted(api.proc.servers)
    for one in found:
        assert one["name"] == "latency" and one["columns"] == ["time", "duration"]
        when, duration = one["values"][-1]
        assert RFC3339.match(when)
        assert 1_000 < duration < 5 * 10**9  # nanoseconds: more than a µs, less than 5 s


def test_the_probe_counts_in_no_tenants_stats(api: Api) -> None:
    cred = api.new_cache("probe-free")
    stats_path = f"/api/v2/caches/{cred.cache_id}/stats"
    before = api.request("GET", stats_path, cred).json()
    latency = f"/api/v2/caches/{cred.cache_id}/insight/latency"
    assert wait_for(lambda: len(api.request("GET", latency, cred).json()) == 2, timeout=10)
    time.sleep(1.5)  # about seven probes of each node (every 0.2 s here)
    after = api.request("GET", stats_path, cred).json()
    for name in ("cmd_get", "get_misses", "total_connections", "auth_cmds"):
        assert after[name] == before[name], name


def test_latency_refuses_a_reversed_range(api: Api) -> None:
    cred = api.main
    path = f"/api/v2/caches/{cred.cache_id}/insight/latency"
    params = {"startTime": "2024-01-02T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"}
    reply = api.request("GET", path, cred, params=params)
    assert reply.status_code == 400
    assert reply.json() == {"message": "endTime must be after startTime"}


def test_introspection_off_answers_400(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--no-introspection", env=ENV) as off:
        api = Api(off)
        try:
            client = api.memcache()
            client.set("k", b"v", noreply=False)
            reply = api.request("GET", BASE.format(api.main.cache_id) + "/recent_logs", api.main)
            assert reply.status_code == 400
            assert "--no-introspection" in reply.json()["message"]
        finally:
            api.close()
