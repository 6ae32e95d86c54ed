"""README's "Operating it" runs as written after the quick start: its shell block, taken from
README.md itself (an edit that breaks a command fails here), run by bash in a directory of its
own with a `.venv` while a fresh `memcloud serve` runs, without --data-dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memcloud.testing import ServerProcess

README = Path(__file__).resolve().parent.parent / "README.md"


def operating_commands() -> str:
    text = README.read_text()
    section = text[text.index("## Operating it\n") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "no sh block in Operating it"
    return block[1]


def test_the_operating_it_block_names_the_cli_it_runs() -> None:
    lines = [line for line in operating_commands().splitlines() if line.strip()]
    assert lines[0].startswith(". .venv/bin/activate")
    assert all(line.startswith("memcloud ") for line in lines[1:]), lines


def test_every_operating_command_runs_as_written(tmp_path: Path) -> None:
    if sys.prefix == sys.base_prefix:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail("the README test needs the tests to run from a virtualenv (.venv)")
        pytest.skip("not run from a virtualenv")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(sys.prefix)  # as `make serve` leaves it
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCLOUD_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # no memcloud until the block activates .venv
    with ServerProcess(tmp_path / "served" / "data", nodes=2):  # the quick start's server
        done = subprocess.run(
            ["bash", "-e", "-x", "-c", operating_commands()],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "MEMCACHIER_SERVERS=127.0.0.1:" in out
    assert "Cache shop (id 2, plan 250MB)" in out  # stats, after the resize
    assert "is now the primary credential of cache shop" in out
    assert "Deleted cache shop (id 2)" in out
    assert [p.name for p in checkout.iterdir()] == [".venv"]  # no ./data made here
