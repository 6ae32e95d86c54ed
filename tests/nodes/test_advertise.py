"""`--advertise HOST:PORT`: the address a node registers and clients are given, when the
bound one is not what other machines reach; with `--nodes N`, node i advertises PORT+i.
A malformed value is refused with one line that says what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from memcloud.testing import ServerProcess, read_env_file, wait_for


def test_every_door_hands_out_the_advertised_addresses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    advertised = ["cache1.example.com:21211", "cache1.example.com:21212"]
    with ServerProcess(data, "--nodes", "2", "--advertise", "cache1.example.com:21211") as server:
        assert wait_for(lambda: len(server.cli_json("nodes")) == 2, timeout=5)
        assert sorted(n["address"] for n in server.cli_json("nodes")) == advertised
        # The start's .env, the v2 info and `cache create`: the same two, in order.
        assert read_env_file(data)["MEMCACHIER_SERVERS"] == ",".join(advertised)
        [cache] = server.cli_json("cache", "list")
        info = httpx.get(
            f"http://127.0.0.1:{server.api_port}/api/v2/caches/{cache['id']}/info",
            auth=(server.username, server.password),
            timeout=10,
        ).json()
        assert info["servers"] == advertised
        created = server.cli("cache", "create", "shop").stdout
        assert f"MEMCACHIER_SERVERS={','.join(advertised)}" in created
    assert f"MEMCACHIER_SERVERS={','.join(advertised)}" in server.stdout


def _serve(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memcloud.cli", "serve", "--port", "0", "--api-port", "0",
         "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cache1.example.com", "not HOST:PORT: 'cache1.example.com'"),
        ("http://cache1:11211", "not HOST:PORT: 'http://cache1:11211'"),
        ("user@cache1:11211", "not HOST:PORT: 'user@cache1:11211'"),
        ("cache1:0", "not a port from 1 to 65535 in 'cache1:0'"),
        ("cache1:70000", "not a port from 1 to 65535 in 'cache1:70000'"),
        ("2001:db8::1:11211", "not HOST:PORT: '2001:db8::1:11211'"),
        (":11211", "not HOST:PORT: ':11211'"),
    ],
)
def test_a_malformed_advertise_is_refused_in_one_line(
    tmp_path: Path, value: str, message: str
) -> None:
    done = _serve("--advertise", value, "--nodes", "1", tmp_path=tmp_path)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if line.strip()][-1:]
    assert "--advertise" in line and message in line
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_advertised_ports_must_fit_the_nodes(tmp_path: Path) -> None:
    done = _serve("--advertise", "[2001:db8::1]:65535", "--nodes", "2", tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "memcloud: error: --advertise [2001:db8::1]:65535 with --nodes 2 would advertise port"
        " 65536 (node i advertises PORT+i); give a lower port"
    )
