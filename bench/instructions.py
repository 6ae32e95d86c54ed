"""Instructions per request of bench.micro's cases, counted by valgrind's callgrind.

    .venv/bin/python -m bench.instructions                      # every case, 10,000 requests
    .venv/bin/python -m bench.instructions --case "text get" --requests 2000

A time is only as steady as the machine is quiet; an instruction count is the same on a busy
machine as on an idle one (same binary, same input). So a change to the data plane can be
compared with the commit before it even while other jobs share the cores: run this in both
checkouts and compare the columns. Each case runs in a process of its own under callgrind,
once with its requests and once without (`none`: the same imports and the same request lists
built), and the difference divided by the request count is what one request costs. Needs
Debian's valgrind; the figures are of the data plane this process would run (compiled or
pure Python, printed first).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.micro import cases
from memcloud import native

__all__ = ["instructions", "main"]

NONE = "none"
_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


def _run_case(name: str, requests: int) -> None:
    """The child's part: build every case's requests, run the named one once."""
    chosen = [measure for case, measure in cases(requests) if case == name]
    if name != NONE:
        if not chosen:
            raise SystemExit(f"no case {name!r}")
        chosen[0](1)


def instructions(valgrind: str, name: str, requests: int) -> int:
    """Instructions callgrind counts for a child that builds the cases and runs `name`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            name,
            "--requests",
            str(requests),
        ]
        done = subprocess.run(command, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"callgrind failed on {name!r}: {done.stderr.decode()[-500:]}")
        found = _TOTAL.search(out.read_bytes())
        if found is None:
            raise RuntimeError(f"no instruction total in callgrind's output for {name!r}")
        return int(found[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="requests per case")
    parser.add_argument("--case", action="append", help="a case of bench.micro (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _run_case(args.child, args.requests)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("bench.instructions needs valgrind (apt-get install valgrind)")
        return 1
    names = args.case or [name for name, _ in cases(1)]
    print(f"data plane: {native.in_use()}; {args.requests:,} requests per case")
    base = instructions(valgrind, NONE, args.requests)
    for name in names:
        per_request = (instructions(valgrind, name, args.requests) - base) / args.requests
        print(f"{name:<26} {per_request:8,.0f} instructions per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
