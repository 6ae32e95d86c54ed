"""Starting the servers under test: Debian's memcached and memcloud, on loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MEMORY_MB",
    "Certificate",
    "Server",
    "free_ports",
    "make_certificate",
    "memcached",
    "memcloud",
    "pin",
    "server_stats",
]

START_TIMEOUT = 60.0
MEMORY_MB = 1024


@dataclass
class Server:
    """A running server: its root process (CPU and memory are read over its process tree)."""

    name: str
    pid: int
    ports: list[int]
    username: str | None = None
    password: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files), for the TLS workload."""

    cert: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    """One P-256 certificate made with `openssl req` (both servers present the same one)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the TLS workload needs openssl (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    made = Certificate(directory / "cert.pem", directory / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(made.key), "-out", str(made.cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return made


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int = 1) -> list[int]:
    """`count` consecutive free loopback ports (memcloud's nodes take consecutive ports)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first: int = sock.getsockname()[1]
        ports = list(range(first, first + count))
        if ports[-1] < 65536 and all(_port_free(p) for p in ports[1:]):
            return ports
    raise RuntimeError("no free consecutive ports")


def pin(core: int | None, argv: Sequence[str]) -> list[str]:
    """`argv` run on one core with taskset (when it exists and the core does); else as is."""
    taskset = shutil.which("taskset")
    if core is not None and taskset and (os.cpu_count() or 1) > core:
        return [taskset, "-c", str(core), *argv]
    return list(argv)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait(process: subprocess.Popen[bytes], ready: Iterator[bool] | None, ports: list[int]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server {process.args!r} exited with {process.returncode}")
        if (ready is None or next(ready)) and all(_listening(p) for p in ports):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server {process.args!r} did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def memcached(binary: str, core: int | None, tls: Certificate | None = None) -> Iterator[Server]:
    """`memcached -t 1` (one worker thread) with 1 GB of memory, text and binary, no SASL;
    with `tls`, its port speaks only TLS (`-Z`)."""
    port = free_ports()[0]
    argv = [binary, "-t", "1", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    argv += ["-m", str(MEMORY_MB), "-c", "4096"]
    if tls is not None:
        argv += ["-Z", "-o", f"ssl_chain_cert={tls.cert},ssl_key={tls.key}"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without -u
    process = subprocess.Popen(pin(core, argv), stdout=subprocess.DEVNULL)
    try:
        _wait(process, None, [port])
        yield Server("memcached", process.pid, [port])
    finally:
        _stop(process)


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


@contextmanager
def memcloud(
    data_dir: Path,
    core: int | None,
    nodes: int = 1,
    tls: Certificate | None = None,
    replicas: int = 1,
    introspection: bool | None = None,
) -> Iterator[Server]:
    """`memcloud serve` with an anonymous cache `bench` (text, no login) and a 1 GB plan; the
    SASL credentials it prints on first start are those of the hosted user's real path. With
    `tls`, `--tls-only` on the same ports; with `replicas`, the plan keeps that many copies
    of each key. `introspection` True or False: named for it, and False runs it with
    --no-introspection (None: the default, on)."""
    ports = free_ports(nodes)
    serve = [sys.executable, "-m", "memcloud.cli", "serve"]
    argv = [
        *serve,
        "--host", "127.0.0.1", "--port", str(ports[0]), "--api-port", "0",
        "--data-dir", str(data_dir), "--anonymous-cache", "bench",
        "--memory", f"{MEMORY_MB * nodes}MB", "--default-plan", f"{MEMORY_MB * nodes}MB",
        "--log-level", "WARNING", "--nodes", str(nodes),
    ]  # fmt: skip
    if replicas > 1:
        argv += ["--plans", f"bench={MEMORY_MB * nodes}MB:replicas={replicas}"]
    if tls is not None:
        argv += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
                 "--tls-port", str(ports[0]), "--tls-only"]  # fmt: skip
    if introspection is False:
        argv.append("--no-introspection")
    data_dir.mkdir(parents=True, exist_ok=True)
    server_json = data_dir / "server.json"

    def ready() -> Iterator[bool]:
        while True:
            yield server_json.exists() and (data_dir / ".env").exists()

    process = subprocess.Popen(pin(core, argv), stdout=subprocess.DEVNULL)
    try:
        _wait(process, ready(), ports)
        env = _env_file(data_dir / ".env")
        info = json.loads(server_json.read_text())
        name = f"memcloud x{nodes}" if nodes > 1 else "memcloud"
        if introspection is not None:
            name = "intro on" if introspection else "intro off"
        yield Server(
            f"{name} r{replicas}" if replicas > 1 else name,
            process.pid,
            ports,
            username=env.get("MEMCACHIER_USERNAME"),
            password=env.get("MEMCACHIER_PASSWORD"),
            extra={"servers": info.get("servers", [])},
        )
    finally:
        _stop(process)


def server_stats(port: int, login: tuple[str, str] | None = None) -> dict[str, str]:
    """The text protocol's `stats` of one port: of memcloud's anonymous cache, or with
    `login` (username, password) of that credential's cache (the text `set` login)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if login is not None:
            username, password = login
            sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (username.encode(), len(password),
                                                       password.encode()))  # fmt: skip
        sock.sendall(b"stats\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while not data.endswith(b"END\r\n") and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    values = {}
    for line in data.decode(errors="replace").split("\r\n"):
        if line.startswith("STAT "):
            _, name, value = line.split(" ", 2)
            values[name] = value
    return values
