"""Issue 2's and issue 15's figures: the same `memcslap` (libmemcached's memslap) load on
both servers, an independent generator beside the project's own.

memcslap drives set and get with --concurrency threads of --execute-number operations each,
in every protocol it speaks (SLAP_PROTOCOLS): text, binary, and binary with SASL PLAIN (on
memcloud, with its credential: the hosted path; Debian's memcached has no SASL, as in
workload (c)). The operations are those the server itself counted (stats cmd_get +
cmd_set).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from bench.procs import cpu_seconds
from bench.servers import Server, pin, server_stats

__all__ = ["SLAP_PROTOCOLS", "SLAP_TESTS", "SlapMeasurement", "drive", "slap_table"]

SLAP_PROTOCOLS = ("text", "binary", "binary+SASL")
SLAP_TESTS = ("set", "get")


@dataclass(frozen=True)
class SlapMeasurement:
    server: str
    test: str
    ops: int
    seconds: float
    cpu_seconds: float

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6 if self.ops else 0.0


def _operations(port: int, login: tuple[str, str] | None) -> int:
    stats = server_stats(port, login)
    return int(stats["cmd_get"]) + int(stats["cmd_set"])


def drive(
    memcslap: str,
    server: Server,
    test: str,
    concurrency: int,
    execute_number: int,
    core: int | None,
    timeout: float = 300.0,
    protocol: str = "text",
) -> SlapMeasurement:
    port = server.ports[0]
    options = [
        f"--servers=127.0.0.1:{port}",
        f"--concurrency={concurrency}",
        f"--execute-number={execute_number}",
        f"--test={test}",
    ]
    if protocol != "text":
        options.append("--binary")
    login = None
    if protocol == "binary+SASL" and server.username and server.password:
        options += [f"--username={server.username}", f"--password={server.password}"]
        login = (server.username, server.password)  # its cache counts the operations
    argv = pin(core, [memcslap, *options])
    ops_before = _operations(port, login)
    cpu_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(server.pid)
    ops = _operations(port, login) - ops_before
    if done.returncode != 0:
        raise RuntimeError(f"memcslap failed on {server.name}: {done.stderr or done.stdout}")
    name = test if protocol == "text" else f"{test} {protocol}"
    return SlapMeasurement(server.name, name, ops, elapsed, cpu_after - cpu_before)


def slap_table(results: list[SlapMeasurement]) -> str:
    rows = [
        f"{'memcslap':<16} {'server':<10} {'ops':>9} {'seconds':>8} {'ops/s':>10} "
        f"{'CPU us/op':>10} {'ratio':>6} {'CPU ratio':>9}"
    ]
    by_test: dict[str, dict[str, SlapMeasurement]] = {}
    for m in results:
        by_test.setdefault(m.test, {})[m.server] = m
    for test, servers in by_test.items():
        base = servers.get("memcached")
        for name, m in servers.items():
            ratio = cpu_ratio = ""
            if name != "memcached" and base is not None and base.ops_per_second:
                ratio = f"{m.ops_per_second / base.ops_per_second:.2f}x"
                cpu_ratio = f"{m.cpu_us_per_op / base.cpu_us_per_op:.2f}x"
            rows.append(
                f"{test:<16} {name:<10} {m.ops:>9} {m.seconds:>8.2f} {m.ops_per_second:>10,.0f} "
                f"{m.cpu_us_per_op:>10.2f} {ratio:>6} {cpu_ratio:>9}"
            )
    return "\n".join(rows)
