"""memjs (Node): binary protocol with SASL PLAIN; tests/compat/node/matrix.js holds the
checks, this test installs memjs on first use and runs the script against a real server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import require_tool

from .conftest import Deployment

NODE_DIR = Path(__file__).parent / "node"


def _install(npm: str) -> None:
    if (NODE_DIR / "node_modules" / "memjs").exists():
        return
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=300,
    )


def test_memjs_matrix(deployment: Deployment) -> None:
    node = require_tool("node")
    _install(require_tool("npm"))
    env = {
        **os.environ,
        "MEMCLOUD_SERVER": deployment.address,
        "MEMCLOUD_USERNAME": deployment.username,
        "MEMCLOUD_PASSWORD": deployment.password,
        "MEMCLOUD_RO_USERNAME": deployment.ro_username,
        "MEMCLOUD_RO_PASSWORD": deployment.ro_password,
    }
    result = subprocess.run(
        [node, "matrix.js"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["ok", "basic", "ok", "wrong-password", "ok", "read-only"]
