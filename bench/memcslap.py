"""Issue 2's figures: the same `memcslap` (libmemcached's memslap) load on both servers.

memcslap drives text set/get with --concurrency threads of --execute-number operations each;
the operations are those the server itself counted (stats cmd_get + cmd_set).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from bench.procs import cpu_seconds
from bench.servers import Server, pin, server_stats

__all__ = ["SlapMeasurement", "drive", "slap_table"]


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


def _operations(port: int) -> int:
    stats = server_stats(port)
    return int(stats["cmd_get"]) + int(stats["cmd_set"])


def drive(
    memcslap: str,
    server: Server,
    test: str,
    concurrency: int,
    execute_number: int,
    core: int | None,
    timeout: float = 300.0,
) -> SlapMeasurement:
    port = server.ports[0]
    argv = pin(
        core,
        [
            memcslap,
            f"--servers=127.0.0.1:{port}",
            f"--concurrency={concurrency}",
            f"--execute-number={execute_number}",
            f"--test={test}",
        ],
    )
    ops_before = _operations(port)
    cpu_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(server.pid)
    ops = _operations(port) - ops_before
    if done.returncode != 0:
        raise RuntimeError(f"memcslap failed on {server.name}: {done.stderr or done.stdout}")
    return SlapMeasurement(server.name, test, ops, elapsed, cpu_after - cpu_before)


def slap_table(results: list[SlapMeasurement]) -> str:
    rows = [
        f"{'memcslap':<9} {'server':<10} {'ops':>9} {'seconds':>8} {'ops/s':>10} "
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
                f"{test:<9} {name:<10} {m.ops:>9} {m.seconds:>8.2f} {m.ops_per_second:>10,.0f} "
                f"{m.cpu_us_per_op:>10.2f} {ratio:>6} {cpu_ratio:>9}"
            )
    return "\n".join(rows)
