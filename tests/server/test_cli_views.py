"""What the CLI prints for people: `cache create`'s three MEMCACHIER_* lines (the servers from
the node registry, or a note when none is up), and `memcloud stats`'s summary (hit rate,
memory against the plan, connections, evictions) with `--json` keeping the raw counters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from memcloud.testing import ServerProcess, control_database, wait_for

from .helpers import create_cache, login, try_login

MB = 1024 * 1024


def _config_vars(text: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in text.splitlines() if line.startswith("MEMCACHIER_"))
    return {name: value for name, _, value in pairs}


def test_cache_create_prints_the_three_config_vars_of_every_node(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--nodes", "2") as server:
        created = server.cli("cache", "create", "shop", "--plan", "10MB")
        values = _config_vars(created.stdout)
        assert list(values) == ["MEMCACHIER_SERVERS", "MEMCACHIER_USERNAME", "MEMCACHIER_PASSWORD"]
        assert values["MEMCACHIER_SERVERS"] == ",".join(server.servers)
        # They are what an app needs: every listed server lets the new credential in.
        user, password = values["MEMCACHIER_USERNAME"], values["MEMCACHIER_PASSWORD"]

        def logs_in(port: int) -> bool:
            return try_login(port, user, password) == b"STORED\r\n"

        ports = [int(a.rpartition(":")[2]) for a in values["MEMCACHIER_SERVERS"].split(",")]
        assert wait_for(lambda: all(logs_in(port) for port in ports), timeout=5)
        # The JSON carries them as the v2 API's `info` does.
        again = server.cli_json("cache", "create", "other")
        assert again["servers"] == server.servers
        # A secondary credential gets the same three lines.
        secondary = _config_vars(server.cli("credentials", "create", "shop").stdout)
        assert secondary["MEMCACHIER_SERVERS"] == ",".join(server.servers)


def test_without_a_server_cache_create_says_where_the_servers_line_comes_from(
    tmp_path: Path,
) -> None:
    data = control_database(tmp_path / "data")
    argv = [sys.executable, "-m", "memcloud.cli", "cache", "create", "shop", "--data-dir"]
    done = subprocess.run([*argv, str(data)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert list(_config_vars(done.stdout)) == ["MEMCACHIER_USERNAME", "MEMCACHIER_PASSWORD"]
    assert (
        "# MEMCACHIER_SERVERS: no memcloud server of cluster default is up; `memcloud serve`"
        " prints it at start" in done.stdout
    )
    argv[5] = "other"
    as_json = subprocess.run(
        [*argv, str(data), "--json"], capture_output=True, text=True, timeout=60
    )
    assert json.loads(as_json.stdout)["servers"] == []


def test_stats_summarises_for_people_and_json_keeps_the_counters(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        tenant = create_cache(server, "observed", plan="5MB")
        conn = login(server.port, tenant.username, tenant.password)
        value = b"x" * 100_000
        for i in range(3):
            conn.request(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(value), value))
        conn.request(b"get k0\r\n", b"END\r\n")
        conn.request(b"get nope\r\n", b"END\r\n")
        conn.request(b"get k1\r\n", b"END\r\n")
        [cache_id] = [c["id"] for c in server.cli_json("cache", "list") if c["name"] == "observed"]
        raw = server.cli_json("stats", "observed")
        human = server.cli("stats", "observed").stdout
        conn.close()
    assert (int(raw["get_hits"]), int(raw["get_misses"]), int(raw["curr_items"])) == (2, 1, 3)
    assert int(raw["limit_maxbytes"]) == 5 * MB
    used = int(raw["bytes"])
    assert 300_000 < used < MB
    lines = human.splitlines()
    assert lines[0] == f"Cache observed (id {cache_id}, plan 5MB)"
    summary = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in lines[1:6])
    assert summary == {
        "hit rate": "66.7 % (2 hits, 1 misses)",
        "memory": f"{used / 1024:.1f} KB of 5 MB ({100 * used / (5 * MB):.1f} %)",
        "items": "3",
        "connections": summary["connections"],
        "evictions": "0",
    }
    assert re.fullmatch(r"1 open, \d+ since start", summary["connections"])
    # Then every counter, as memcached names them.
    assert lines[7] == "Counters (memcached's names; --json prints them raw):"
    counters = dict(line.split() for line in lines[8:])
    assert counters["get_hits"] == "2" and counters["limit_maxbytes"] == str(5 * MB)
