"""The container image (Containerfile, packaging/build-image.sh), built and run for real.

The test starts its own Docker daemon (Debian's docker.io) in a temporary directory, builds
the image with `packaging/build-image.sh` (the Debian base tarballs are cached under
~/.cache/memcloud/base, so only the first run on a machine runs debootstrap), starts a
container on the host network with its ports given as MEMCLOUD_* variables, creates a cache
with `memcloud cache create` inside the container, and serves a real memcache client.

Under load the build takes several minutes (the first one on a machine about 3 more for
debootstrap), hence the long timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymemcache.client.base import Client

from conftest import require_tool
from memcloud.testing import wait_for

ROOT = Path(__file__).resolve().parents[2]
DAEMON_START_SECONDS = 60
BUILD_SECONDS = 1500
# The image's HEALTHCHECK runs every 10 s; the test asks docker to run it every 2 s.
HEALTH_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Docker:
    """A private dockerd (its own data root, socket and pid file) and a client of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "d.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, driver: str) -> bool:
        """Start the daemon on this storage driver; False when it does not come up."""
        dockerd = require_tool("dockerd")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    dockerd,
                    "--data-root", str(self.root / f"data-{driver}"),
                    "--exec-root", str(self.root / "exec"),
                    "-H", f"unix://{self.socket}",
                    "--pidfile", str(self.root / "dockerd.pid"),
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                    f"--storage-driver={driver}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        ready = wait_for(
            lambda: (
                self.process is not None
                and (
                    self.process.poll() is not None or self.run("info", check=False).returncode == 0
                )
            ),
            timeout=DAEMON_START_SECONDS,
            interval=0.5,
        )
        if ready and self.process.poll() is None:
            return True
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        # What the daemon left mounted under its directories (its network namespace file).
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.startswith(f"{self.root}/"):
                subprocess.run(["umount", "--lazy", target], check=False, timeout=30)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [require_tool("docker"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def inspect(self, container: str) -> dict[str, object]:
        answer: list[dict[str, object]] = json.loads(self.run("inspect", container).stdout)
        return answer[0]


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    require_tool("docker")
    require_tool("dockerd")
    require_tool("debootstrap")
    if os.geteuid() != 0:
        pytest.skip("dockerd and debootstrap need root")
    # A short path: the daemon's unix sockets must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="mcdock-", dir="/tmp"))
    daemon = Docker(root)
    try:
        # overlay2 where the file system allows it (each build layer a full copy with vfs
        # doubles the build's time), else vfs, which works everywhere.
        if not (daemon.start("overlay2") or daemon.start("vfs")):
            pytest.fail(f"dockerd did not start: {daemon.log.read_text()[-2000:]}")
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def image(docker: Docker) -> str:
    build = subprocess.run(
        [str(ROOT / "packaging" / "build-image.sh"), "memcloud:test"],
        cwd=ROOT,
        env=docker.env,
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    assert build.stdout.strip().splitlines()[-1] == "memcloud:test"
    return "memcloud:test"


def _state(docker: Docker, container: str) -> dict[str, object]:
    state = docker.inspect(container)["State"]
    assert isinstance(state, dict)
    return state


def _health(docker: Docker, container: str) -> str:
    health = _state(docker, container).get("Health")
    return str(health["Status"]) if isinstance(health, dict) else "none"


@pytest.mark.timeout(BUILD_SECONDS + 300)
def test_the_image_serves_a_client_as_non_root_and_turns_healthy(
    docker: Docker, image: str
) -> None:
    config = docker.inspect(image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "memcloud"
    assert "/var/lib/memcloud" in config["Volumes"]
    assert {"11211/tcp", "11280/tcp"} <= set(config["ExposedPorts"])
    assert "/opt/memcloud/healthcheck.py" in config["Healthcheck"]["Test"]

    port, api_port = free_port(), free_port()
    name = f"memcloud-test-{os.getpid()}"
    docker.run(
        "run", "--detach", "--name", name, "--network", "host",
        "--health-interval", "2s",
        # The host's network: listen on loopback only, on ports nobody else holds.
        "-e", "MEMCLOUD_HOST=127.0.0.1",
        "-e", f"MEMCLOUD_PORT={port}",
        "-e", f"MEMCLOUD_API_PORT={api_port}",
        "-e", "MEMCLOUD_NODES=1",
        "-e", "MEMCLOUD_MEMORY=64MB",
        image,
    )  # fmt: skip
    try:
        _serve_and_check(docker, name, port, api_port)
    finally:
        logs = docker.run("logs", name, check=False).stderr
        docker.run("rm", "--force", name, check=False)
        print(logs[-3000:])


def _serve_and_check(docker: Docker, name: str, port: int, api_port: int) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(ready, timeout=120, interval=0.5), docker.run("logs", name).stderr[-3000:]
    answer = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "ready", "reasons": []}

    # The server process (the container's pid 1, seen from the host) is not root.
    pid = _state(docker, name)["Pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert "0" not in uids, status
    assert "memcloud" in Path(f"/proc/{pid}/cmdline").read_text()

    # A cache made inside the container, by its own CLI (MEMCLOUD_DATA_DIR is the volume).
    created = docker.run("exec", name, "memcloud", "cache", "create", "shop", "--json")
    credential = json.loads(created.stdout)["credentials"][0]
    client = Client(("127.0.0.1", port), timeout=5)
    try:
        login_ok = wait_for(  # the server reads the new credential within ~2 s
            lambda: _login(client, credential["sasl_username"], credential["sasl_password"]),
            timeout=20,
            interval=0.5,
        )
        assert login_ok
        client.set("greeting", b"hello from a container", noreply=False)
        assert client.get("greeting") == b"hello from a container"
    finally:
        client.close()
    stats = json.loads(docker.run("exec", name, "memcloud", "stats", "shop", "--json").stdout)
    assert stats["curr_items"] == 1

    # The image's own HEALTHCHECK (its probe of /readyz) reaches healthy.
    assert wait_for(lambda: _health(docker, name) == "healthy", timeout=HEALTH_SECONDS)
    mounts = docker.inspect(name)["Mounts"]
    assert isinstance(mounts, list)
    assert [m["Destination"] for m in mounts] == ["/var/lib/memcloud"]


def _login(client: Client, username: str, password: str) -> bool:
    client.close()  # a fresh connection: its first command is the login
    try:
        return bool(client.set(username, password, noreply=False))
    except Exception:
        return False


def test_the_build_refuses_a_python_other_than_bookworms(tmp_path: Path) -> None:
    # The wheels must be those of Debian bookworm's python3.11: another Python is refused
    # before anything is built.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec python3 -c 'import sys; sys.exit(1)' \"$@\"\n")
    fake.chmod(0o755)
    build = subprocess.run(
        [str(ROOT / "packaging" / "build-image.sh")],
        env={**os.environ, "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert build.returncode == 1
    assert "is not Python 3.11" in build.stderr
