"""Finding 12: a control database damaged in the middle of the file is refused at start.

The damaged page holds stats history, which a start never reads: without the check the
server ran on it without a word. The test builds a real database, overwrites its middle
page with junk, and starts `memcloud serve` on it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memcloud.control.base import StoreFailed
from memcloud.control.models import StatsSample
from memcloud.control.open import check_store
from memcloud.control.sqlite import SqliteStore

SAMPLES = 3000  # enough stats rows that most pages of the file are stats history


def damaged_database(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, mode=0o700)
    path = data_dir / "memcloud.db"
    with SqliteStore(path) as store:
        cache = store.create_cache("shop", 1 << 20)
        store.create_credential(cache.id)
        now = time.time()
        store.add_stats_samples(
            [
                StatsSample(cache.id, "127.0.0.1:11211", now - i, {"get_hits": i}, 60)
                for i in range(SAMPLES)
            ]
        )
    conn = sqlite3.connect(path)
    pages, page_size = (
        conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size")
    )
    conn.close()
    assert pages > 50, pages
    with open(path, "r+b") as out:
        out.seek(page_size * (pages // 2))
        out.write(b"\xa5" * page_size)
    return path


def serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCLOUD_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "memcloud.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-port",
            "0",
            "--nodes",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,  # a server that starts anyway never exits: the test fails here
    )


def test_serve_refuses_a_database_damaged_mid_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = damaged_database(data_dir)
    run = serve(data_dir)
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert re.fullmatch(
        rf"memcloud: error: control database {re.escape(str(path))} is damaged "
        # quick_check's own row, or SQLite's error when the damaged page is one quick_check
        # itself must read (where it falls depends on the schema's layout).
        r"\((?:.*Page \d+.*|database disk image is malformed)\);"
        r" stop every memcloud using it, then restore it from a backup, or move it \(with its"
        r" -wal and -shm files\) away to start with an empty one",
        lines[0],
    ), lines[0]
    assert not (data_dir / "server.json").exists()


def test_serve_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    path = data_dir / "memcloud.db"
    path.write_bytes(b"not a database, just junk\n" * 400)
    run = serve(data_dir)
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert run.stderr == (
        f"memcloud: error: control database {path} is damaged (file is not a database);"
        " stop every memcloud using it, then restore it from a backup, or move it (with its"
        " -wal and -shm files) away to start with an empty one\n"
    )


def test_a_locked_database_is_not_called_damaged(tmp_path: Path) -> None:
    """A fault around the file (here another process's exclusive lock) is not damage."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    path = data_dir / "memcloud.db"
    SqliteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode = DELETE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreFailed, match="database is locked"):
            check_store(path)
    finally:
        holder.close()
