"""bench.channel measures round trips against a channel server in another process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_channel_benchmark_reports_both_cases() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.channel", "--calls", "640", "--payload", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "channel round trips over mutual TLS on loopback, 10-byte payloads"
    for line, callers in zip(lines[1:], (1, 64), strict=True):
        found = re.fullmatch(
            rf" *{callers} concurrent callers: +([\d.]+) µs per call \(wall\), +([\d.]+) µs CPU"
            r" per call \(caller side\), 640 calls",
            line,
        )
        assert found is not None, line
        assert 0 < float(found[1]) < 100_000
