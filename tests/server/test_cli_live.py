"""`memcloud flush CACHE` and `memcloud stats CACHE` against a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memcloud.testing import ServerProcess

from .helpers import create_cache, login, stats_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("cli-live") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


def test_stats_of_a_running_cache(server: ServerProcess) -> None:
    tenant = create_cache(server, "observed", plan="5MB")
    conn = login(server.port, tenant.username, tenant.password)
    conn.send(b"".join(b"set k%d 0 0 3 noreply\r\nabc\r\n" % i for i in range(10)))
    assert conn.request(b"get k0 nope\r\n", b"END\r\n") == b"VALUE k0 0 3\r\nabc\r\nEND\r\n"
    data: Any = server.cli_json("stats", "observed")
    flat = data if "curr_items" in data else next(iter(data.values()))
    assert int(flat["curr_items"]) == 10
    assert int(flat["limit_maxbytes"]) == 5 * 1024 * 1024
    assert int(flat["get_hits"]) == 1 and int(flat["get_misses"]) == 1
    assert int(flat["bytes"]) == int(stats_of(conn)["bytes"])
    human = server.cli("stats", "observed").stdout
    assert "curr_items" in human and "10" in human
    conn.close()


def test_flush_a_running_cache_only(server: ServerProcess) -> None:
    flushed = create_cache(server, "flushed")
    kept = create_cache(server, "kept")
    a = login(server.port, flushed.username, flushed.password)
    b = login(server.port, kept.username, kept.password)
    assert a.request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert b.request(b"set k 0 0 1\r\ny\r\n") == b"STORED\r\n"
    result = server.cli("flush", "flushed")
    assert result.returncode == 0, result.stderr
    assert a.request(b"get k\r\n", b"END\r\n") == b"END\r\n"
    assert b.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\ny\r\nEND\r\n"
    assert stats_of(a)["cmd_flush"] == "1"
    a.close()
    b.close()


def test_flush_and_stats_of_unknown_cache_fail_cleanly(server: ServerProcess) -> None:
    for command in ("flush", "stats"):
        result = server.cli(command, "no-such-cache", check=False)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
