"""insight's get_expired_rate over the API, from real expired gets: the commands count
get_expired, the node's sampler stores it (stamped by the injected clock), the route
differences it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from memcloud.api.insight import format_time
from memcloud.config import Settings
from memcloud.testing import InProcessServer, wait_for
from server.helpers import login

KEYS = 6


def test_get_expired_rate_counts_expired_gets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMCLOUD_STATS_SAMPLE_SECONDS", "0.1")
    with InProcessServer(Settings(data_dir=tmp_path / "data")) as srv:
        assert srv.runtime is not None and srv.runtime.api_port
        http = httpx.Client(
            base_url=f"http://127.0.0.1:{srv.runtime.api_port}",
            auth=(srv.username, srv.password),
            timeout=10,
        )
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        start = srv.clock.now()
        params = {
            "names": "get_expired_rate,get_rate",
            "startTime": format_time(start - 120),
            "endTime": format_time(start + 180),
        }
        path = f"/api/v2/caches/{cache_id}/insight/processed_stats"

        def rows() -> list[list[object]]:
            reply = http.get(path, params=params)
            assert reply.status_code == 200, reply.text
            values: list[list[object]] = reply.json()[0]["values"]
            return values

        assert wait_for(lambda: len(rows()) == 1)  # samples of this minute, before the gets
        srv.clock.advance(60)  # the next minute's bucket
        conn = login(srv.port, srv.username, srv.password)
        past = int(start) - 3600  # an absolute exptime: stored already expired
        keys = [b"k%d" % i for i in range(KEYS)]
        sets = b"".join(b"set %s 0 %d 1 noreply\r\nv\r\n" % (k, past) for k in keys)
        # one write: the upkeep cannot reclaim them between the sets and the get
        assert conn.request(sets + b"get " + b" ".join(keys) + b"\r\n", b"END\r\n") == b"END\r\n"
        conn.close()
        # Every sample of a minute carries the clock's same time: the rate is exact.
        rate = round(KEYS / 60, 6)
        assert wait_for(lambda: len(rows()) == 2 and rows()[1][1:] == [rate, rate])
        first, _ = rows()
        assert first[1:] == [None, None]  # nothing to difference the first bucket against
        http.close()
