"""memcloud against Debian's memcached, side by side on loopback, with the same load.

    make bench                      # or: .venv/bin/python -m bench.run [--execute-number N]

Starts `memcached -t 1` and `memcloud serve --anonymous-cache bench` (text protocol, no
authentication) on free loopback ports, each pinned to core 0 with taskset when it exists,
and drives each with the same `memcslap` command pinned to core 1. For every test it measures
the operations the server itself counted (stats cmd_get + cmd_set), the wall time of memcslap
and the server's CPU seconds (utime + stime of its process tree, from /proc), and prints
ops/s, CPU seconds per million operations and memcloud's ratio to memcached. One JSON record
per run, with a description of the machine, is appended to bench/results/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results" / "results.jsonl"
START_TIMEOUT = 30.0
MEMORY_MB = 1024
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measurement:
    server: str
    test: str
    ops: int
    seconds: float
    cpu_seconds: float

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_seconds / self.ops * 1e6 if self.ops else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and every process below it."""
    total = 0
    pending = [pid]
    for _ in range(1000):  # bounded walk
        if not pending:
            break
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        pending += _children(current)
    return total / TICKS


def server_stats(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while not data.endswith(b"END\r\n") and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    values = {}
    for line in data.decode().split("\r\n"):
        if line.startswith("STAT "):
            _, name, value = line.split(" ", 2)
            values[name] = value
    return values


def operations(port: int) -> int:
    stats = server_stats(port)
    return int(stats["cmd_get"]) + int(stats["cmd_set"])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


@contextmanager
def running(argv: Sequence[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()


def pin(core: int, argv: list[str], enabled: bool) -> list[str]:
    taskset = shutil.which("taskset")
    if enabled and taskset and (os.cpu_count() or 1) > core:
        return [taskset, "-c", str(core), *argv]
    return argv


def memcached_argv(binary: str, port: int, pinned: bool) -> list[str]:
    argv = [binary, "-t", "1", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    argv += ["-m", str(MEMORY_MB), "-c", "4096"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without -u
    return pin(0, argv, pinned)


def memcloud_argv(port: int, data_dir: Path, pinned: bool) -> list[str]:
    serve = [sys.executable, "-m", "memcloud.cli", "serve"]
    argv = [
        *serve,
        "--host", "127.0.0.1", "--port", str(port), "--api-port", "0",
        "--data-dir", str(data_dir), "--anonymous-cache", "bench",
        "--memory", f"{MEMORY_MB}MB", "--default-plan", f"{MEMORY_MB}MB",
        "--log-level", "WARNING",
    ]  # fmt: skip
    help_text = subprocess.run([*serve, "--help"], capture_output=True, text=True).stdout
    if "--nodes" in help_text:
        argv += ["--nodes", "1"]  # one process, as memcached runs one worker thread
    return pin(0, argv, pinned)


def drive(
    memcslap: str, port: int, server_pid: int, name: str, test: str, args: argparse.Namespace
) -> Measurement:
    argv = [
        memcslap,
        f"--servers=127.0.0.1:{port}",
        f"--concurrency={args.concurrency}",
        f"--execute-number={args.execute_number}",
        f"--test={test}",
    ]
    argv = pin(1, argv, args.pin)
    ops_before = operations(port)
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout)
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(server_pid)
    ops = operations(port) - ops_before
    if done.returncode != 0:
        raise RuntimeError(f"memcslap failed on {name}: {done.stderr or done.stdout}")
    return Measurement(name, test, ops, elapsed, cpu_after - cpu_before)


def machine(memcached: str, memcslap: str, pinned: bool) -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run([memcached, "-V"], capture_output=True, text=True).stdout.strip()
    slap = subprocess.run([memcslap, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu_model": cpu,
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "memcached": version,
        "memcslap": slap.splitlines()[0] if slap else "",
        "pinned": pinned and shutil.which("taskset") is not None,
    }


def table(results: list[Measurement]) -> str:
    rows = [
        f"{'test':<6} {'server':<10} {'ops':>9} {'seconds':>8} {'ops/s':>10} "
        f"{'cpu s':>7} {'cpu s/Mop':>10} {'ops/s ratio':>12} {'cpu ratio':>10}"
    ]
    by_test: dict[str, dict[str, Measurement]] = {}
    for m in results:
        by_test.setdefault(m.test, {})[m.server] = m
    for test, servers in by_test.items():
        base = servers.get("memcached")
        for name, m in servers.items():
            ratio = cpu_ratio = ""
            if name == "memcloud" and base is not None and base.ops_per_second:
                ratio = f"{m.ops_per_second / base.ops_per_second:.2f}x"
                cpu_ratio = f"{m.cpu_per_million / base.cpu_per_million:.2f}x"
            rows.append(
                f"{test:<6} {name:<10} {m.ops:>9} {m.seconds:>8.2f} {m.ops_per_second:>10.0f} "
                f"{m.cpu_seconds:>7.2f} {m.cpu_per_million:>10.2f} {ratio:>12} {cpu_ratio:>10}"
            )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=50, help="memcslap threads")
    parser.add_argument(
        "--execute-number", type=int, default=10000, help="operations per memcslap thread"
    )
    parser.add_argument("--tests", default="set,get", help="memcslap tests, comma-separated")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not use taskset")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per memcslap run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    memcached = shutil.which("memcached")
    memcslap = shutil.which("memcslap")
    if memcached is None or memcslap is None:
        print("bench needs memcached and memcslap (apt-get install memcached libmemcached-tools)")
        return 2
    tests = [t for t in args.tests.split(",") if t]
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="memcloud-bench-") as tmp:
        for name in ("memcached", "memcloud"):
            port = free_port()
            if name == "memcached":
                command = memcached_argv(memcached, port, args.pin)
            else:
                command = memcloud_argv(port, Path(tmp) / "data", args.pin)
            with running(command, port) as process:
                for test in tests:
                    results.append(drive(memcslap, port, process.pid, name, test, args))
    print(table(results))
    record = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(memcached, memcslap, args.pin),
        "memcslap_args": {
            "concurrency": args.concurrency,
            "execute_number": args.execute_number,
            "tests": tests,
        },
        "results": [
            {**asdict(m), "ops_per_second": m.ops_per_second, "cpu_per_million": m.cpu_per_million}
            for m in results
        ],
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as out:
        out.write(json.dumps(record) + "\n")
    print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
