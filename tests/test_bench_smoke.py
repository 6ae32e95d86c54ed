"""The benchmark's machinery, quickly: loadgen built and run against memcached for a second, and
the table with its ratios and targets. The suite itself (`make bench`) is not part of the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.report import Comparison, MemoryResult, memory_table, table
from bench.run import parse_args
from bench.servers import Server, make_certificate, memcached, memcloud
from bench.workloads import TLS, WORKLOADS

from conftest import require_tool
from memcloud import native


def _load(ops: int, cpu: float) -> loadgen.Load:
    return loadgen.Load(ops, 1.0, 100.0, 200.0, 0, ops, 0, ops, ops, cpu)


def test_table_ratios_and_targets() -> None:
    a = Comparison(WORKLOADS[0], "memcached", "memcloud", pinned=True)
    a.add("memcached", _load(90_000, 0.9))
    a.add("memcloud", _load(99_000, 1.188))
    assert a.ratio == pytest.approx(1.1)
    assert a.cpu_ratio == pytest.approx(1.2)
    assert a.verdict() == ">=1.0x ok, CPU <=1.2x ok"
    b = Comparison(WORKLOADS[1], "memcached", "memcloud", pinned=True)
    b.add("memcached", _load(150_000, 0.9))
    b.add("memcloud", _load(300_000, 0.6))
    assert b.verdict() == ">=2.5x MISS"
    text = table([a, b])
    assert "1.10x" in text and "2.00x" in text and "90,000" in text
    memory = memory_table(
        [
            MemoryResult("memcached", 1_000_000, 1_000_000, 5_000_000, 205_000_000, 1.0),
            MemoryResult("memcloud", 1_000_000, 1_000_000, 60_000_000, 660_000_000, 1.0),
        ]
    )
    assert "3.00x  <=3.0x ok" in memory


def test_loadgen_against_memcached(tmp_path: Path) -> None:
    binary = require_tool("memcached")
    require_tool("gcc")  # the bench compiles its load generator
    generator = loadgen.build(tmp_path)
    with memcached(binary, core=None) as server:
        options = ["-c", "4", "-d", "1", "-k", "200", "-m", "3", "-r", "4"]
        load = loadgen.run(generator, server, options, core=None)
        assert load.ops > 0 and load.errors == 0
        assert load.gets + load.sets == load.ops
        assert load.keys == 3 * load.gets and load.hits == load.keys
        assert load.cpu_seconds >= 0
        assert loadgen.preload(generator, server, 1000, 100, core=None) >= 0


def _plain_reply(server: Server) -> bytes:
    """What a plain-text `version` gets from the server's port (b"" when it speaks TLS)."""
    with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5) as sock:
        sock.sendall(b"version\r\n")
        sock.settimeout(1)
        try:
            return sock.recv(100)
        except (TimeoutError, ConnectionResetError):
            return b""


def test_tls_workload_against_both_servers(tmp_path: Path) -> None:
    binary = require_tool("memcached")
    require_tool("gcc")
    require_tool("openssl")
    assert parse_args(["--only", "t"]).selected == {"t"}
    generator = loadgen.build(tmp_path)
    certificate = make_certificate(tmp_path / "tls")
    options = [*TLS.options, "-c", "4", "-d", "1", "-k", "200"]
    with (
        memcached(binary, None, tls=certificate) as base,
        memcloud(tmp_path / "data", None, tls=certificate) as subject,
    ):
        for server in (base, subject):
            # Its port speaks only TLS: a plain request gets no memcache answer.
            assert not _plain_reply(server).startswith(b"VERSION"), server.name
            load = loadgen.run(generator, server, options, core=None)
            assert load.ops > 0 and load.errors == 0, server.name
            assert load.gets + load.sets == load.ops
            assert load.hits == load.keys == load.gets


def test_protocol_micro_benchmark_runs() -> None:
    # Every case answers real requests (a reply of the wrong size would show as an error
    # elsewhere; here: it runs, and says which data plane it measured).
    run = subprocess.run(
        [sys.executable, "-m", "bench.micro", "--requests", "320", "--passes", "1"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = run.stdout.splitlines()
    assert lines[0] == f"data plane: {native.in_use()}"
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "text get",
        "text set",
        "text set noreply",
        "text get, 16 pipelined",
        "text multi-get, per key",
        "binary get",
        "binary getkq + noop",
        "binary set",
    ]
    assert all(float(line.split()[-2]) > 0 for line in lines[1:])
