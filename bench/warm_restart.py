"""Warm restart's cost: a `memcloud serve` holding N items (1,000,000 of 100 bytes by default)
is stopped with SIGTERM and started again. Reports the snapshot's save and load times (as the
server logs them), the pause each causes (SIGTERM to exit; start to the first reply, beside
an empty start with --no-warm-restart) and the file's size, and checks every item came back.

    .venv/bin/python -m bench.warm_restart                     # 1,000,000 items of 100 bytes
    .venv/bin/python -m bench.warm_restart --items 100000 --nodes 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from memcloud import native

START_TIMEOUT = 120.0
BATCH = 2000


@dataclass
class Run:
    started: float  # seconds from exec to the first reply
    stopped: float | None = None  # seconds from SIGTERM to exit
    saved: float | None = None  # the server's own figure for writing the snapshot
    loaded: float | None = None  # ... and for reading it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _request(sock: socket.socket, data: bytes, end: bytes) -> bytes:
    sock.sendall(data)
    reply = b""
    while not reply.endswith(end):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        reply += chunk
    return reply


class Server:
    def __init__(self, data_dir: Path, nodes: int, plan_mb: int, *extra: str) -> None:
        self.data_dir = data_dir
        self.port = _free_port() if nodes == 1 else 0
        self.log = data_dir.parent / "serve.log"
        argv = [
            sys.executable, "-m", "memcloud.cli", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--api-port", "0", "--data-dir", str(data_dir),
            "--anonymous-cache", "bench", "--nodes", str(nodes),
            "--memory", f"{plan_mb}MB", "--default-plan", f"{plan_mb}MB",
            "--log-format", "json", *extra,
        ]  # fmt: skip
        (data_dir / "server.json").unlink(missing_ok=True)
        self.began = time.perf_counter()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        self.ports = self._wait_first_reply()
        self.started = time.perf_counter() - self.began

    def _wait_first_reply(self) -> list[int]:
        """Polls until node 0 answers a get: the pause a client sees."""
        deadline = time.monotonic() + START_TIMEOUT
        info = self.data_dir / "server.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"memcloud serve exited: {self.log.read_text()[-2000:]}")
            port = self.port
            if not port and info.exists():
                port = json.loads(info.read_text())["port"]
            if port:
                try:
                    with _connect(port) as sock:
                        _request(sock, b"get key:0\r\n", b"END\r\n")
                except OSError:
                    pass
                else:
                    while not info.exists():
                        time.sleep(0.01)
                    servers = json.loads(info.read_text())["servers"]
                    return [int(address.rsplit(":", 1)[1]) for address in servers]
            time.sleep(0.005)
        raise RuntimeError("memcloud serve did not answer in time")

    def stop(self) -> float:
        began = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=600)
        return time.perf_counter() - began

    def logged_seconds(self, word: str) -> list[float]:
        """The seconds of every `<word> ... in X s` snapshot line this server logged."""
        found = []
        for line in self.log.read_text().splitlines():
            message = json.loads(line).get("message", "") if line.startswith("{") else ""
            match = re.match(rf"{word} \d+ items .* in ([0-9.]+) s", message)
            if match:
                found.append(float(match[1]))
        return found


def _fill(ports: list[int], items: int, value: bytes) -> None:
    """key:i on node i % len(ports), as a client hashing over the nodes would place it."""
    socks = [_connect(port) for port in ports]
    try:
        for start in range(0, items, BATCH):
            batches: list[list[bytes]] = [[] for _ in socks]
            for i in range(start, min(items, start + BATCH)):
                batches[i % len(socks)].append(
                    b"set key:%d %d 0 %d noreply\r\n%s\r\n" % (i, i % 65536, len(value), value)
                )
            for sock, batch in zip(socks, batches, strict=True):
                sock.sendall(b"".join(batch))
        for sock in socks:
            _request(sock, b"version\r\n", b"\r\n")  # every set before it is done
    finally:
        for sock in socks:
            sock.close()


def _items(ports: list[int]) -> int:
    total = 0
    for port in ports:
        with _connect(port) as sock:
            reply = _request(sock, b"stats\r\n", b"END\r\n").decode()
        total += int(re.search(r"STAT curr_items (\d+)", reply)[1])  # type: ignore[index]
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1)
    args = parser.parse_args(argv)
    value = b"v" * args.value_bytes
    # The plan: the items with memcloud's accounting (key + value + 50), and room to spare.
    plan_mb = max(64, args.items * (len("key:999999") + args.value_bytes + 50) * 2 // 2**20)
    with tempfile.TemporaryDirectory(prefix="warm-restart-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        # The first start makes the data dir; the second is the empty start to compare with.
        Server(data, args.nodes, plan_mb, "--no-warm-restart").stop()
        empty = Server(data, args.nodes, plan_mb, "--no-warm-restart")
        empty.stop()
        first = Server(data, args.nodes, plan_mb)
        began = time.perf_counter()
        _fill(first.ports, args.items, value)
        filled = time.perf_counter() - began
        assert _items(first.ports) == args.items, "not every item was stored"
        stop_pause = first.stop()
        saved = first.logged_seconds("saved")
        size = sum(f.stat().st_size for f in data.glob("node-*.snapshot"))
        second = Server(data, args.nodes, plan_mb)
        loaded = second.logged_seconds("restored")
        restored = _items(second.ports)
        second.stop()
    print(f"memcloud warm restart, {args.items:,} items of {args.value_bytes} bytes,"
          f" {args.nodes} node(s), data plane: {native.in_use()}")  # fmt: skip
    print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"  filled in {filled:.2f} s; snapshot {size / 2**20:.1f} MiB")
    print(f"  save (server's figure, per node): {', '.join(f'{s:.2f} s' for s in saved)}")
    print(f"  SIGTERM -> exit: {stop_pause:.2f} s")
    print(f"  load (server's figure, per node): {', '.join(f'{s:.2f} s' for s in loaded)}")
    print(f"  start -> first reply: {second.started:.2f} s (empty start: {empty.started:.2f} s)")
    print(f"  items after the restart: {restored:,} of {args.items:,}")
    return 0 if restored == args.items else 1


if __name__ == "__main__":
    raise SystemExit(main())
