"""/metrics as existing dashboards read it: memcached_exporter's `memcached_*` families (with
a `cache` label) beside memcloud's own, no two families of one name, node health for every
node, the counters of refusals, throttled logins and flushes, and the Grafana dashboard in
docs/ asking only for families that exist."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pymemcache.client.base import Client

from conftest import require_tool
from memcloud.api.memcached_metrics import MEMCACHED_FAMILIES
from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for

MB = 1024 * 1024
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "memcloud.json"
# prometheus/memcached_exporter's collector (pkg/exporter/exporter.go): family, type, labels
# (without ours). memcached_uptime_seconds is its one counter without `_total`: a gauge here.
EXPORTER = {
    "memcached_up": ("gauge", ()),
    "memcached_uptime_seconds": ("gauge", ()),
    "memcached_time_seconds": ("gauge", ()),
    "memcached_version": ("gauge", ("version",)),
    "memcached_read_bytes": ("counter", ()),
    "memcached_written_bytes": ("counter", ()),
    "memcached_current_connections": ("gauge", ()),
    "memcached_max_connections": ("gauge", ()),
    "memcached_connections": ("counter", ()),
    "memcached_current_bytes": ("gauge", ()),
    "memcached_limit_bytes": ("gauge", ()),
    "memcached_commands": ("counter", ("command", "status")),
    "memcached_current_items": ("gauge", ()),
    "memcached_items": ("counter", ()),
    "memcached_items_evicted": ("counter", ()),
}
# Queries of the stock memcached Grafana dashboards (grafana.com 37 and the exporter's
# mixin): what an operator already has.
STOCK_PANEL_QUERIES = (
    'sum(rate(memcached_commands_total{instance=~"$node"}[5m])) by (command, status)',
    'sum(memcached_current_items{instance=~"$node"})',
    "memcached_current_bytes / memcached_limit_bytes",
    "rate(memcached_items_evicted_total[5m])",
    "memcached_current_connections",
    "rate(memcached_read_bytes_total[1m])",
    "rate(memcached_written_bytes_total[1m])",
    "memcached_up == 0",
)


def _scrape(proc: ServerProcess, timeout: float = 5) -> str:
    reply = httpx.get(f"http://127.0.0.1:{proc.api_port}/metrics", timeout=timeout)
    assert reply.status_code == 200
    return reply.text


def _samples(text: str, name: str) -> list[Sample]:
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def _value(text: str, name: str, **labels: str) -> float:
    [sample] = [s for s in _samples(text, name) if labels.items() <= s.labels.items()]
    return sample.value


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (what is not a function, label or keyword)."""
    no_strings = re.sub(r'"[^"]*"', "", expr)
    no_matchers = re.sub(r"\{[^}]*\}|\[[^]]*\]|by \([^)]*\)|without \([^)]*\)", "", no_strings)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_matchers))
    return {w for w in words if w.startswith(("memcached_", "memcloud_"))}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("families") / "data"
    env = {"MEMCLOUD_LOGIN_FREE_FAILURES": "1"}
    with ServerProcess(data, "--metrics-token", "", env=env, nodes=2) as proc:
        yield proc


def _traffic(proc: ServerProcess) -> None:
    client = Client(("127.0.0.1", proc.port), timeout=5)
    assert client.set(proc.username, proc.password, noreply=False)
    assert client.set("k", b"12345", noreply=False)
    assert client.get("k") == b"12345"
    assert client.get("missing") is None
    assert client.delete("missing", noreply=False) is False
    client.close()


def test_memcached_families_have_the_exporters_names_types_and_labels(
    served: ServerProcess,
) -> None:
    _traffic(served)
    text = _scrape(served)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, labels) in EXPORTER.items():
        family = families[name]
        assert family.type == kind, name
        assert family.samples, name
        for sample in family.samples:
            assert set(sample.labels) == {"cache", *labels}, name
    shown = {s.name for f in families.values() for s in f.samples if s.name.startswith("memcached")}
    assert shown == set(MEMCACHED_FAMILIES)

    def value(name: str, **labels: str) -> float:
        return _value(text, name, cache="default", **labels)

    assert value("memcached_commands_total", command="get", status="hit") >= 1
    assert value("memcached_commands_total", command="get", status="miss") >= 1
    assert value("memcached_commands_total", command="delete", status="miss") >= 1
    assert value("memcached_commands_total", command="set", status="hit") >= 1
    assert value("memcached_current_items") >= 1
    assert value("memcached_items_total") >= 1
    assert value("memcached_current_bytes") > 0
    assert value("memcached_limit_bytes") == 25 * MB  # the plan, over both nodes
    assert value("memcached_read_bytes_total") > 0 and value("memcached_up") == 1
    assert value("memcached_version", version=metadata.version("memcloud")) == 1
    assert _value(text, "memcloud_build_info", version=metadata.version("memcloud")) == 1


def test_a_stock_memcached_panels_queries_find_memcloud_series(served: ServerProcess) -> None:
    text = _scrape(served)
    present = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    for query in STOCK_PANEL_QUERIES:
        names = _metric_names(query)
        assert names and names <= present, query
    assert any(s.labels["cache"] == "default" for s in _samples(text, "memcached_commands_total"))
    assert any(s.labels["cache"] == "default" for s in _samples(text, "memcached_current_items"))


def test_no_two_families_share_a_name_and_promtool_accepts_them(served: ServerProcess) -> None:
    text = _scrape(served)
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert "memcloud_cache_stored_items" in names and "memcloud_cache_items" in names
    for process_wide in ("memcloud_open_connections", "memcloud_uptime_seconds", "memcloud_caches"):
        [sample] = _samples(text, process_wide)
        assert sample.labels == {"server": f"127.0.0.1:{served.port}"}
    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    # promtool lints too (it would name a family without HELP, or a counter without _total).
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_grafana_dashboard_asks_only_for_families_that_exist(served: ServerProcess) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = _scrape(served)
    present = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    assert len(queries) >= 10
    asked = set().union(*(_metric_names(q) for q in queries))
    assert asked and asked <= present, asked - present
    for family in (
        "memcloud_node_up",
        "memcloud_connection_refusals_total",
        "memcloud_throttled_logins_total",
        "memcloud_flushes_total",
    ):
        assert family in asked


def test_flushes_are_counted_by_source(served: ServerProcess) -> None:
    before = _scrape(served)
    client = Client(("127.0.0.1", served.port), timeout=5)
    assert client.set(served.username, served.password, noreply=False)
    assert client.flush_all(noreply=False)
    client.close()
    login = httpx.get(
        f"http://127.0.0.1:{served.api_port}/api/v1/login", auth=(served.username, served.password)
    )
    cache_id = login.json()["cache_id"]
    flushed = httpx.post(
        f"http://127.0.0.1:{served.api_port}/api/v1/{cache_id}/flush",
        auth=(served.username, served.password),
    )
    assert flushed.status_code == 200

    def grew(source: str) -> bool:
        now = _value(_scrape(served), "memcloud_flushes_total", source=source)
        return now == _value(before, "memcloud_flushes_total", source=source) + 1

    # Both reached node 0 (the client is connected to it): its flush log writer counts them.
    assert wait_for(lambda: grew("api") and grew("text"), timeout=5)


def test_throttled_logins_are_counted(served: ServerProcess) -> None:
    before = _value(_scrape(served), "memcloud_throttled_logins_total", outcome="refused")
    url = f"http://127.0.0.1:{served.api_port}/api/v1/login"
    answers = [httpx.get(url, auth=(served.username, "wrong")).status_code for _ in range(4)]
    assert 429 in answers
    after = _value(_scrape(served), "memcloud_throttled_logins_total", outcome="refused")
    assert after >= before + answers.count(429)


def test_connection_refusals_are_counted(tmp_path: Path) -> None:
    # 8 unauthenticated connections per address at most (admission.MIN_PER_ADDRESS).
    with ServerProcess(tmp_path / "data", "--metrics-token", "", "--max-connections", "20") as proc:
        held = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(12)]
        try:
            assert wait_for(
                lambda: (
                    _value(_scrape(proc), "memcloud_connection_refusals_total", reason="address")
                    >= 4
                ),
                timeout=5,
            )
        finally:
            for sock in held:
                sock.close()


def test_logins_refused_at_a_caches_connection_limit_are_counted(tmp_path: Path) -> None:
    plans = "dev=25MB:connections=1"  # the default cache (25 MB) holds one connection
    with ServerProcess(tmp_path / "data", "--metrics-token", "", "--plans", plans) as proc:
        first = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        second = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        try:
            login = b"set %s 0 0 %d\r\n%s\r\n" % (
                proc.username.encode(),
                len(proc.password),
                proc.password.encode(),
            )
            first.sendall(login)
            assert first.recv(100) == b"STORED\r\n"
            second.sendall(login)
            assert second.recv(100).startswith(b"SERVER_ERROR")
            assert _value(_scrape(proc), "memcloud_connection_refusals_total", reason="cache") == 1
        finally:
            first.close()
            second.close()


def test_node_up_is_one_or_zero_for_every_node(served: ServerProcess) -> None:
    text = _scrape(served)
    ups = {s.labels["server"]: s.value for s in _samples(text, "memcloud_node_up")}
    assert ups == dict.fromkeys(served.servers, 1.0)
    child = json.loads(node_info_path(served.data_dir, 1).read_text())
    frozen = served.servers[1]
    os.kill(child["pid"], signal.SIGSTOP)
    try:
        time.sleep(5.0)  # down by then (3 s without a heartbeat), and every view has seen it
        text = _scrape(served, timeout=30)
    finally:
        os.kill(child["pid"], signal.SIGCONT)
    ups = {s.labels["server"]: s.value for s in _samples(text, "memcloud_node_up")}
    assert ups == {served.servers[0]: 1.0, frozen: 0.0}
    # The cache itself stays up: the live node owns the frozen one's keys (issue 11).
    assert _value(text, "memcached_up", cache="default") == 1
    assert wait_for(
        lambda: _value(_scrape(served), "memcloud_node_up", server=frozen) == 1, timeout=10
    )
