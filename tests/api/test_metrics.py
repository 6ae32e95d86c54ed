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


def _generated_token(proc: ServerProcess) -> str:
    return (proc.data_dir / "metrics-token").read_text().strip()


def test_metrics_per_cache_and_server(api: Api) -> None:
    client = api.memcache()
    client.set("m", b"12345", noreply=False)
    client.get("m")
    client.get("nope")
    bearer = {"Authorization": f"Bearer {_generated_token(api.proc)}"}
    reply = api.http.get("/metrics", headers=bearer)
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


def test_a_token_is_generated_at_the_first_start(tmp_path: Path) -> None:
    """Finding 11: /metrics named every tenant to anyone; now it needs the generated token."""
    data = tmp_path / "data"
    with ServerProcess(data) as proc:
        url = f"http://127.0.0.1:{proc.api_port}/metrics"
        refused = httpx.get(url)
        token = _generated_token(proc)
        ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        wrong = httpx.get(url, headers={"Authorization": f"Bearer {token}x"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="memcloud metrics"'
    assert "memcloud_cache" not in refused.text and "default" not in refused.text
    assert wrong.status_code == 401
    assert ok.status_code == 200 and "memcloud_cache_items" in ok.text
    assert len(token) >= 40
    assert (data / "metrics-token").stat().st_mode & 0o777 == 0o600
    assert proc.stdout.splitlines().count(f"MEMCLOUD_METRICS_TOKEN={token}") == 1
    assert token not in proc.stderr
    with ServerProcess(data) as again:  # kept: the same token, not printed again
        reply = httpx.get(
            f"http://127.0.0.1:{again.api_port}/metrics",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert reply.status_code == 200
    assert "MEMCLOUD_METRICS_TOKEN" not in again.stdout


def test_an_explicitly_empty_token_opens_metrics_with_a_warning(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--metrics-token", "") as proc:
        reply = httpx.get(f"http://127.0.0.1:{proc.api_port}/metrics")
    assert reply.status_code == 200 and "memcloud_cache_items" in reply.text
    assert "WARNING memcloud.api: /metrics is open (--metrics-token '')" in proc.stderr
    assert "MEMCLOUD_METRICS_TOKEN" not in proc.stdout
    assert not (tmp_path / "data" / "metrics-token").exists()
