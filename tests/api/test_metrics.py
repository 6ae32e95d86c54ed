"""GET /metrics: Prometheus text, per cache and server; bearer token when configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from memcloud.testing import ServerProcess

from .conftest import Api

TOKEN = "s3cret-metrics-token"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_open_metrics(api: Api) -> None:
    client = api.memcache()
    client.set("m", b"12345", noreply=False)
    client.get("m")
    client.get("nope")
    reply = api.http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = _samples(reply.text)
    labels = (("cache", "default"), ("cache_id", str(api.main.cache_id)))
    server = (("server", f"127.0.0.1:{api.proc.port}"),)

    def value(name: str, extra: tuple[tuple[str, str], ...] = ()) -> float:
        return samples[(name, tuple(sorted(labels + server + extra)))]

    assert value("memcloud_cache_hits_total", (("command", "get"),)) >= 1
    assert value("memcloud_cache_misses_total", (("command", "get"),)) >= 1
    assert value("memcloud_cache_commands_total", (("command", "set"),)) >= 1
    assert value("memcloud_cache_items") >= 1
    assert value("memcloud_cache_bytes") > 0
    assert value("memcloud_cache_limit_bytes") == 25 * 1024 * 1024
    assert value("memcloud_cache_connections") >= 1
    assert ("memcloud_cache_evictions_total", tuple(sorted(labels + server))) in samples
    assert ("memcloud_cache_flushes_total", tuple(sorted(labels + server))) in samples
    assert samples[("memcloud_cache_plan_bytes", labels)] == 25 * 1024 * 1024
    client.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("metrics") / "data"
    with ServerProcess(Path(data), env={"MEMCLOUD_METRICS_TOKEN": TOKEN}) as proc:
        yield proc


def test_metrics_token(guarded: ServerProcess) -> None:
    url = f"http://127.0.0.1:{guarded.api_port}/metrics"
    refused = httpx.get(url)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "memcloud_cache_items" in ok.text
