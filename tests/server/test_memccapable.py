"""libmemcached's `memccapable -a` (ASCII protocol conformance) against an anonymous cache."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import require_tool
from memcloud.testing import ServerProcess


def test_memccapable_ascii_passes(tmp_path: Path) -> None:
    binary = require_tool("memccapable")
    with ServerProcess(tmp_path / "data", "--anonymous-cache", "dev") as proc:
        result = subprocess.run(
            [binary, "-a", "-h", "127.0.0.1", "-p", str(proc.port), "-t", "5"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All tests passed" in output, output
    assert "[pass]" in output and "[FAIL]" not in output, output
