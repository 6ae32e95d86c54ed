"""`memcloud --version` and the version in the start log, both from the installed package's
metadata (pyproject.toml's version), while memcache clients keep reading memcached's."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login


def test_version_flag_prints_the_package_version() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "memcloud.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, f"memcloud {version('memcloud')}\n", "")


def test_start_log_names_the_version_and_clients_still_see_memcached(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--log-level", "INFO") as server:
        conn = RawConnection(server.port)
        assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
        reply = conn.request(b"version\r\n")
        stats = conn.request(b"stats\r\n", b"END\r\n").decode()
        conn.close()
    # The protocol level memcached clients parse (docs/protocol-compat.md).
    assert reply == b"VERSION 1.6.21\r\n"
    assert "STAT version 1.6.21\r\n" in stats
    assert f"STAT libevent memcloud-{version('memcloud')}\r\n" in stats
    # "memcloud X.Y.Z serving (data dir …)" here; the structured start log of the logs
    # work says "memcloud X.Y.Z starting N node(s)": either names the version.
    named = rf"memcloud {re.escape(version('memcloud'))} (serving|starting)"
    assert re.search(named, server.stderr)
