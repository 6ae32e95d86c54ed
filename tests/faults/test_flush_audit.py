"""Finding 12: a flush while the control database cannot be written is kept, shown as
pending, and written once the disk has room again; the stats sampler says so once.

Method: tmpfs mount (a real full disk under a real `memcloud serve`).
"""

from __future__ import annotations

import base64
import re
import socket
import time

import httpx

from memcloud.testing import ServerProcess, ascii_login, wait_for

from .conftest import SmallDisk

FULL = "database or disk is full"


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def sign_in(http: httpx.Client, username: str, password: str) -> None:
    form = http.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    reply = http.post(
        "/dashboard/login", data={"csrf": csrf[1], "username": username, "password": password}
    )
    assert reply.status_code == 303, reply.text


def text_flush_all(port: int, username: str, password: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(ascii_login(username, password) + b"flush_all\r\n")
        reply = b""
        deadline = time.monotonic() + 5
        while reply.count(b"\r\n") < 2 and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def test_flushes_on_a_full_disk_are_kept_shown_pending_and_written_later(
    small_disk: SmallDisk,
) -> None:
    env = {"MEMCLOUD_STATS_SAMPLE_SECONDS": "0.2"}
    # The data dir is on the small disk; the server's log files (beside the link) are not,
    # so the log lines written while the disk is full can be read.
    (small_disk.path / "data").mkdir(mode=0o700)
    data_dir = small_disk.path.parent / "data"
    data_dir.symlink_to(small_disk.path / "data")
    with ServerProcess(data_dir, env=env) as server:
        base = f"http://127.0.0.1:{server.api_port}"
        auth = basic(server.username, server.password)
        log_url = f"{base}/api/v2/caches/1/flush_log"
        before = httpx.get(log_url, headers=auth, timeout=10)
        assert (before.status_code, before.json()) == (200, [])
        assert before.headers["Memcloud-Flush-Log-Pending"] == "0"
        assert "Memcloud-Flush-Log-Pending-Since" not in before.headers

        dashboard = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
        sign_in(dashboard, server.username, server.password)  # before the disk is full

        small_disk.fill()
        assert text_flush_all(server.port, server.username, server.password) == (
            b"STORED\r\nOK\r\n"
        )
        flushed = httpx.post(f"{base}/api/v1/1/flush", headers=auth, timeout=10)
        assert flushed.status_code == 200
        assert wait_for(
            lambda: httpx.get(log_url, headers=auth).headers["Memcloud-Flush-Log-Pending"] == "2",
            timeout=10,
        )
        time.sleep(2)  # about ten failed stats samples, and retries of the flush log
        pending = httpx.get(log_url, headers=auth, timeout=10)
        assert pending.json() == []
        assert pending.headers["Memcloud-Flush-Log-Pending"] == "2"
        assert pending.headers["Memcloud-Flush-Log-Pending-Since"].endswith("Z")
        shown = server.cli("flush-log", "default")
        assert shown.stdout.startswith("No flushes recorded for cache default.\n\nPending: 2 ")
        assert "are not in this log yet: the server keeps them and retries" in shown.stdout
        assert f"(control database: {FULL})" in shown.stdout
        page = dashboard.get("/dashboard/caches/1/flush").text
        assert "2 more flush(es) are not in this log yet" in page
        as_json = server.cli("flush-log", "default", "--json")
        assert as_json.stdout.strip() == "[]"
        assert as_json.stderr.startswith("Pending: 2 more flush(es)")

        small_disk.free()
        assert wait_for(lambda: len(httpx.get(log_url, headers=auth).json()) == 2, timeout=45)
        written = httpx.get(log_url, headers=auth, timeout=10)
        assert sorted(e["source"] for e in written.json()) == ["api", "text"]
        assert written.headers["Memcloud-Flush-Log-Pending"] == "0"
        assert "Pending" not in server.cli("flush-log", "default").stdout
        assert "not in this log yet" not in dashboard.get("/dashboard/caches/1/flush").text
        dashboard.close()
    assert "Traceback" not in server.stderr
    # One line for each failing task, not one per attempt; then one when it works again.
    assert (
        server.stderr.count(f"sampling stats into the history failed: control database: {FULL}")
        == 1
    )
    assert server.stderr.count(f"writing the flush log failed: control database: {FULL}") == 1
    assert server.stderr.count("writing the flush log works again") == 1
    assert server.stderr.count("sampling stats into the history works again") == 1


def test_pending_flushes_of_every_node_are_counted(small_disk: SmallDisk) -> None:
    """A `flush_all` sent to node 1 is kept by node 1; node 0's CLI and API count it too."""
    (small_disk.path / "data").mkdir(mode=0o700)
    data_dir = small_disk.path.parent / "data"
    data_dir.symlink_to(small_disk.path / "data")
    with ServerProcess(data_dir, nodes=2) as server:
        base = f"http://127.0.0.1:{server.api_port}"
        auth = basic(server.username, server.password)
        log_url = f"{base}/api/v2/caches/1/flush_log"
        assert len(server.servers) == 2
        other_port = int(server.servers[1].rsplit(":", 1)[1])
        assert other_port != server.port
        small_disk.fill()
        assert text_flush_all(other_port, server.username, server.password) == (b"STORED\r\nOK\r\n")
        assert wait_for(
            lambda: httpx.get(log_url, headers=auth).headers["Memcloud-Flush-Log-Pending"] == "1",
            timeout=10,
        )
        assert "Pending: 1 more flush(es)" in server.cli("flush-log", "default").stdout
        small_disk.free()
        assert wait_for(lambda: len(httpx.get(log_url, headers=auth).json()) == 1, timeout=45)
        entry = httpx.get(log_url, headers=auth, timeout=10).json()[0]
        assert (entry["source"], entry["node"]) == ("text", server.servers[1])
