"""libmemcached's own tools: memccapable's binary conformance suite, and memcslap's load in
binary mode with SASL credentials."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import require_tool
from memcloud.testing import ServerProcess

from .conftest import Deployment


def test_memccapable_binary_passes_on_an_anonymous_cache(tmp_path: Path) -> None:
    memccapable = require_tool("memccapable")
    with ServerProcess(tmp_path / "data", "--anonymous-cache", "dev") as server:
        result = subprocess.run(
            [memccapable, "-b", "-h", "127.0.0.1", "-p", str(server.port), "-t", "5"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All tests passed" in result.stdout
    assert "[fail]" not in result.stdout


def _slap(
    d: Deployment, username: str, password: str, test: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            require_tool("memcslap"),
            "--binary",
            f"--servers={d.address}",
            f"--username={username}",
            f"--password={password}",
            f"--test={test}",
            "--concurrency=2",
            "--execute-number=1000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_memcslap_binary_with_sasl(deployment: Deployment) -> None:
    for test in ("set", "get", "mget"):
        result = _slap(deployment, deployment.username, deployment.password, test)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "AUTHENTICATION FAILURE" not in result.stderr
    stats = deployment.server.cli_json("stats", "default")
    assert int(stats["cmd_set"]) >= 2000 and int(stats["get_hits"]) >= 2000


def test_memcslap_with_a_wrong_password_does_nothing(deployment: Deployment) -> None:
    result = _slap(deployment, deployment.username, "not-the-password", "set")
    # memcslap exits 0 whatever happens; what shows is the error it prints.
    assert "AUTHENTICATION FAILURE" in result.stderr
