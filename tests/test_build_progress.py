"""tools/build_native.py tells a first-time user what the compile does and how long it takes,
then shows it step by step (mypyc, each extension module, a note while the long step runs),
with no line that reads like an error. Built for real: a two-module package in a temporary
project, compiled by the same `build` the data plane uses, then imported and run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "build_native.py"

SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("build_native", sys.argv[1])
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    if sys.argv[2] == "toolchain":
        print(tool.missing_toolchain() or "")
        raise SystemExit
    project = Path(sys.argv[2])
    tool.STILL_RUNNING_SECONDS = 0.5
    tool.say(tool.announce("not built", project / "build"))
    tool.build(project / "src", ("demo.a", "demo.b"), project, project / "build")
    tool.say(tool.announce("stale build: demo.b changed since it was compiled", project / "build"))
    sys.path.insert(0, str(project / "src"))
    import demo.b
    print("quadruple", demo.b.quadruple(5), type(demo.b).__name__, demo.b.__file__)
    """
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TOOL), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "MEMCLOUD_PURE_PYTHON": "1"},
    )


def test_a_build_announces_its_duration_and_shows_each_step(tmp_path: Path) -> None:
    obstacle = _run("toolchain", cwd=tmp_path).stdout.strip()
    if obstacle:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail(f"CI compiles the data plane: {obstacle}")
        pytest.skip(obstacle)
    package = tmp_path / "src" / "demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def double(x: int) -> int:\n    return x * 2\n")
    (package / "b.py").write_text(
        "from demo.a import double\n\n\ndef quadruple(x: int) -> int:\n"
        "    return double(double(x))\n"
    )
    done = _run(str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "memcloud: compiling the data plane with mypyc once, for speed (the first start after"
        " install); this takes about 180 s (on 2 cores)"
    )
    steps = [line for line in lines if line.startswith("memcloud:   [")]
    assert steps == [
        "memcloud:   [mypyc] type-checking 2 modules and writing their C code",
        "memcloud:   [1/3] compiling shared library (every module's code; the long step)",
        "memcloud:   [2/3] compiling demo.a",
        "memcloud:   [3/3] compiling demo.b",
    ]
    assert any(line.startswith("memcloud:   ... still compiling") for line in lines)
    # The next build is estimated from this one's time.
    seconds = int((tmp_path / "build" / "last-build-seconds").read_text())
    assert lines[-2] == (
        "memcloud: compiling the data plane with mypyc again: demo.b changed since it was"
        f" compiled; this takes about {seconds} s (the last build here)"
    )
    assert lines[-1].startswith("quadruple 20 module ") and lines[-1].endswith(".so")
    for line in lines[:-1]:
        assert "not built" not in line and "error" not in line.lower(), line
