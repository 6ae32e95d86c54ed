"""The benchmark's machinery, quickly: loadgen built and given bounded runs (so the test knows
exactly what it must have done) against memcached, over TLS against both servers, the protocol
micro-benchmark, and the table with its ratios and targets. The suite itself (`make bench`) is
not part of the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.memcslap import SLAP_PROTOCOLS, drive
from bench.report import Comparison, MemoryResult, memory_table, table
from bench.run import parse_args
from bench.servers import Server, make_certificate, memcached, memcloud, server_stats
from bench.workloads import TLS, WORKLOADS

from conftest import require_tool
from data_plane import PURE_ENV, assert_runs_expected


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
    assert "3.00x  <=3.0x ok, <=1.25x MISS" in memory
    # One group per value size, each against memcached's figure for the same size; the
    # targets only at 100 bytes.
    sizes = memory_table(
        [
            MemoryResult("memcached", 1_000_000, 1_000_000, 0, 100_000_000, 1.0, 10),
            MemoryResult("memcloud", 1_000_000, 1_000_000, 0, 160_000_000, 1.0, 10),
            MemoryResult("memcached", 1_000_000, 1_000_000, 0, 200_000_000, 1.0),
            MemoryResult("memcloud", 1_000_000, 1_000_000, 0, 240_000_000, 1.0),
        ]
    )
    assert "1.60x  none (reported)" in sizes and "1.20x  <=3.0x ok, <=1.25x ok" in sizes
    assert sizes.index("10-byte") < sizes.index("100-byte")


# Counters of memcached's `stats` that a run moves.
_COUNTERS = ("cmd_get", "cmd_set", "get_hits", "get_misses", "curr_items")


def _counters(server: Server) -> dict[str, int]:
    stats = server_stats(server.ports[0])
    return {name: int(stats[name]) for name in _COUNTERS}


def test_loadgen_against_memcached(tmp_path: Path) -> None:
    binary = require_tool("memcached")
    require_tool("gcc")  # the bench compiles its load generator
    generator = loadgen.build(tmp_path)
    with memcached(binary, core=None) as server:
        # A bounded run: 4 connections of 5,000 requests; connection i's k-th request is a
        # set when (i + k) % 5 == 0, so each makes 1,000 sets and 4,000 gets of 3 keys.
        options = ["-c", "4", "-n", "5000", "-d", "120", "-k", "200", "-m", "3", "-r", "4"]
        before = _counters(server)
        load = loadgen.run(generator, server, options, core=None)
        after = _counters(server)
        done = (load.ops, load.sets, load.gets, load.keys, load.hits, load.errors)
        assert done == (20_000, 4_000, 16_000, 48_000, 48_000, 0)
        assert load.seconds > 0 and load.cpu_seconds > 0 and load.p99_us >= load.p50_us > 0
        # memcached saw the same: the generator's preload of the 200 keys, then the run.
        moved = {name: after[name] - before[name] for name in _COUNTERS}
        assert moved == {
            "cmd_get": 48_000,
            "cmd_set": 200 + 4_000,
            "get_hits": 48_000,
            "get_misses": 0,
            "curr_items": 200,
        }
        # A preload stores key:0 .. key:9999, 100 bytes each (the run's 200 among them).
        assert loadgen.preload(generator, server, 10_000, 100, core=None) > 0
        assert _counters(server)["curr_items"] == 10_000
        assert _counters(server)["cmd_set"] == after["cmd_set"] + 10_000
        with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5) as sock:
            sock.sendall(b"get key:9999\r\n")
            reply = b""
            while not reply.endswith(b"END\r\n"):
                chunk = sock.recv(4096)
                assert chunk, reply
                reply += chunk
        assert reply == b"VALUE key:9999 0 100\r\n" + b"x" * 100 + b"\r\nEND\r\n"


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
    # A bounded run: 4 connections of 550 requests, 1 set per 10 gets (each makes 50 sets).
    options = [*TLS.options, "-c", "4", "-n", "550", "-d", "120", "-k", "200"]
    with (
        memcached(binary, None, tls=certificate) as base,
        memcloud(tmp_path / "data", None, tls=certificate) as subject,
    ):
        for server in (base, subject):
            # Its port speaks only TLS: a plain request gets no memcache answer.
            assert not _plain_reply(server).startswith(b"VERSION"), server.name
            load = loadgen.run(generator, server, options, core=None)
            done = (load.ops, load.sets, load.gets, load.keys, load.hits, load.errors)
            assert done == (2_200, 200, 2_000, 2_000, 2_000, 0), server.name
            assert load.cpu_seconds > 0, server.name


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "default"])
def test_protocol_micro_benchmark_runs(pure: bool) -> None:
    # Every case answers real requests (a reply of the wrong size would show as an error
    # elsewhere; here: it runs, and says which data plane it measured).
    run = subprocess.run(
        [sys.executable, "-m", "bench.micro", "--requests", "320", "--passes", "1"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, PURE_ENV: "1" if pure else ""},
    )
    lines = run.stdout.splitlines()
    assert lines[0].startswith("data plane: ")
    assert_runs_expected(lines[0].removeprefix("data plane: "), pure)
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "text get",
        "text set",
        "text set noreply",
        "text get, 16 pipelined",
        "text multi-get, per key",
        "meta get (mg <key> v)",
        "meta get, parsed (mg v f)",
        "meta set (ms)",
        "binary get",
        "binary getkq + noop",
        "binary set",
    ]
    assert all(float(line.split()[-2]) > 0 for line in lines[1:])


def test_memcslap_drives_memcloud_in_each_protocol_it_speaks(tmp_path: Path) -> None:
    memcslap = require_tool("memcslap")
    assert parse_args([]).memcslap is True  # `make bench` alone runs it
    assert parse_args(["--only", "a"]).memcslap is False
    assert parse_args(["--only", "a", "--memcslap"]).memcslap is True
    with memcloud(tmp_path / "data", None) as subject:
        for protocol in SLAP_PROTOCOLS:
            done = drive(memcslap, subject, "set", 2, 100, None, protocol=protocol)
            # The server counted every set memcslap made, in that protocol.
            assert done.ops == 200, protocol  # (CPU: too few ticks to count here)
            assert done.test == ("set" if protocol == "text" else f"set {protocol}")
        # Text and binary reached the anonymous cache, SASL the credential's own.
        assert int(server_stats(subject.ports[0])["cmd_set"]) == 400
