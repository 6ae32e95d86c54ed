"""bench.instructions: callgrind's count of one micro case, per request (a load-proof figure)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import require_tool

REPO = Path(__file__).resolve().parent.parent


def test_instructions_per_request_of_one_case() -> None:
    require_tool("valgrind")
    done = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--case", "text get", "--requests", "500"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("data plane: ") and lines[0].endswith("500 requests per case")
    found = re.fullmatch(r"text get +([\d,]+) instructions per request", lines[1])
    assert found is not None, lines
    # A get costs thousands of instructions compiled and some tens of thousands as pure
    # Python (about 5,800 compiled here); zero or a negative count means the subtraction of
    # the run without requests failed.
    assert 1_000 < int(found[1].replace(",", "")) < 200_000
    assert len(lines) == 2
