"""The project's C load generator (bench/loadgen/loadgen.c): built on demand, run pinned, with
the server's CPU time read from /proc exactly over the generator's timed phase."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import core_busy_seconds, cpu_seconds
from bench.servers import Server, pin

__all__ = ["BUILD_DIR", "SOURCE", "Load", "build", "preload", "run"]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "loadgen" / "loadgen.c"
BUILD_DIR = HERE / "build"  # git-ignored


@dataclass(frozen=True)
class Load:
    """One timed run of the generator against one server."""

    ops: int  # requests (a multi-get of 10 keys is one)
    seconds: float
    p50_us: float  # latency of a batch of `depth` requests
    p99_us: float
    errors: int
    gets: int
    sets: int
    keys: int  # keys asked for by gets
    hits: int
    cpu_seconds: float  # the server's, over the timed phase
    # CPU time other processes took on the server's and the generator's cores (when pinned)
    others_cpu_seconds: float | None = None

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6 if self.ops else 0.0

    @property
    def cpu_percent(self) -> float:
        """The server's CPU time as a share of one core over the timed phase."""
        return self.cpu_seconds / self.seconds * 100 if self.seconds else 0.0


def build(build_dir: Path = BUILD_DIR) -> Path:
    """Compile loadgen.c (when the binary is missing or older than the source)."""
    binary = build_dir / "loadgen"
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("bench needs a C compiler (apt-get install gcc)")
    build_dir.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".tmp")
    # OpenSSL for the TLS workload (-s): Debian's libssl-dev.
    command = [compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE), "-lssl", "-lcrypto"]
    if subprocess.run(command).returncode != 0:
        raise RuntimeError("building bench/loadgen/loadgen.c failed (it needs libssl-dev)")
    partial.replace(binary)
    return binary


def _target(server: Server, options: Sequence[str], auth: bool) -> list[str]:
    argv = ["127.0.0.1", ",".join(str(p) for p in server.ports), *options]
    if auth:
        if server.username is None or server.password is None:
            raise RuntimeError(f"{server.name} has no credentials")
        argv += ["-u", server.username, "-P", server.password]
    return argv


def run(
    binary: Path,
    server: Server,
    options: Sequence[str],
    core: int | None,
    auth: bool = False,
    timeout: float = 300.0,
    server_core: int | None = None,
) -> Load:
    """Run the generator (`options` as loadgen takes them) and read the server's CPU time when
    the timed phase begins (the generator prints `ready`) and when its result arrives. With
    `server_core` (the core the server is pinned to) and `core` (the generator's), the CPU time
    other processes took on those two cores meanwhile is measured too: a shared machine's noise."""
    argv = pin(core, [str(binary), *_target(server, options, auth), "-R"])
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout
    cpu_before: float | None = None
    cpu_after = own_after = 0.0
    server_before = 0.0
    core_before = core_after = 0.0
    cores = [c for c in (server_core, core) if c is not None]
    result: dict[str, float] | None = None
    try:
        for line in process.stdout:
            if line.strip() == "ready":
                server_before = cpu_seconds(server.pid)
                cpu_before = server_before + cpu_seconds(process.pid)
                core_before = sum(core_busy_seconds(c) for c in cores)
            elif line.startswith("{"):
                cpu_after = cpu_seconds(server.pid)
                own_after = cpu_after + cpu_seconds(process.pid)
                core_after = sum(core_busy_seconds(c) for c in cores)
                result = json.loads(line)
                break
            if time.monotonic() > deadline:
                break
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    if result is None or cpu_before is None or process.returncode != 0:
        raise RuntimeError(
            f"loadgen failed against {server.name} ({' '.join(argv)}): "
            f"exit {process.returncode}: {stderr.strip()}"
        )
    return Load(
        ops=int(result["ops"]),
        seconds=float(result["seconds"]),
        p50_us=float(result["p50_us"]),
        p99_us=float(result["p99_us"]),
        errors=int(result["errors"]),
        gets=int(result["gets"]),
        sets=int(result["sets"]),
        keys=int(result["keys"]),
        hits=int(result["hits"]),
        cpu_seconds=cpu_after - server_before,
        others_cpu_seconds=None
        if server_core is None or core is None
        else max(0.0, core_after - core_before - (own_after - cpu_before)),
    )


def preload(binary: Path, server: Server, items: int, value_bytes: int, core: int | None) -> float:
    """Store keys key:0 .. key:<items-1> (`value_bytes` each); returns the seconds it took."""
    options = ["-c", "1", "-k", str(items), "-v", str(value_bytes), "-o"]
    argv = pin(core, [str(binary), *_target(server, options, auth=False)])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"preload failed against {server.name}: {done.stderr or done.stdout}")
    seconds: float = json.loads(done.stdout)["seconds"]
    return seconds
