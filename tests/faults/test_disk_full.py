"""Finding 12: a full disk is reported as a full disk, not as a failed rollback.

SQLite rolls a transaction back itself when a write hits `database or disk is full`; the
store then ran its own `ROLLBACK`, which failed with "cannot rollback - no transaction is
active" and hid the cause. The CLI and API tests fill a real tmpfs (method: tmpfs mount);
the store test uses SQLite's `PRAGMA max_page_count`, which raises the same SQLITE_FULL
error without a mount (method: max_page_count).
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from memcloud.control.base import StoreFailed
from memcloud.control.sqlite import SqliteStore
from memcloud.testing import ServerProcess, control_database

from .conftest import SmallDisk

FULL = "database or disk is full"


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memcloud.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_store_full_database_raises_sqlite_full_not_rollback(tmp_path: Path) -> None:
    # method: max_page_count (no mount needed)
    with SqliteStore(tmp_path / "memcloud.db") as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreFailed) as failure:
            for number in range(2000):  # bounded: a few pages fill long before this
                cache = store.create_cache(f"cache-{number}", 1 << 20)
                store.create_credential(cache.id)
        # SQLite's words, as the store's own error (no sqlite3 error leaves the store).
        assert failure.value.cause == FULL
        assert str(failure.value) == f"control database: {FULL}"
        # The failed change left nothing half-done, and the store still answers.
        assert not store._conn.in_transaction
        names = [c.name for c in store.list_caches()]
        assert len({c.cache_id for c in store.list_credentials()}) in (len(names), len(names) - 1)


def test_cli_cache_create_on_full_disk_names_the_cause(small_disk: SmallDisk) -> None:
    # method: tmpfs mount
    data_dir = control_database(small_disk.path / "data")
    assert cli(data_dir, "cache", "create", "first").returncode == 0
    # A reader keeps the WAL open, as a running server does, so the write fails inside the
    # transaction (where the rollback used to fail) rather than while opening the file.
    reader = sqlite3.connect(str(data_dir / "memcloud.db"))
    try:
        reader.execute("SELECT count(*) FROM caches").fetchone()
        small_disk.fill()
        run = cli(data_dir, "cache", "create", "second")
    finally:
        reader.close()
    assert run.returncode == 1
    assert run.stderr == f"memcloud: error: control database: {FULL}\n"
    assert "rollback" not in run.stderr
    small_disk.free()
    listed = cli(data_dir, "cache", "list")
    assert listed.returncode == 0, listed.stderr
    assert "second" not in listed.stdout and "first" in listed.stdout


def test_api_credential_create_on_full_disk_is_a_500_naming_the_cause(
    small_disk: SmallDisk,
) -> None:
    # method: tmpfs mount
    with ServerProcess(small_disk.path / "data") as server:
        base = f"http://127.0.0.1:{server.api_port}"
        auth = basic(server.username, server.password)
        small_disk.fill()
        v2 = httpx.post(f"{base}/api/v2/caches/1/credentials", headers=auth, timeout=10)
        v1 = httpx.post(f"{base}/api/v1/1/credentials", headers=auth, timeout=10)
        small_disk.free()
        after = httpx.post(f"{base}/api/v2/caches/1/credentials", headers=auth, timeout=10)
    assert (v2.status_code, v2.json()) == (500, {"message": f"control database: {FULL}"})
    assert (v1.status_code, v1.json()) == (500, f"Server error: control database: {FULL}")
    assert after.status_code == 201
    assert "rollback" not in server.stderr
    assert "Traceback" not in server.stderr


def test_cli_on_full_disk_without_a_server_names_the_full_disk(small_disk: SmallDisk) -> None:
    # method: tmpfs mount. With no process holding the database, SQLite fails to create its
    # -wal file at open and says only "disk I/O error": the CLI adds what it found.
    data_dir = control_database(small_disk.path / "data")
    assert cli(data_dir, "cache", "create", "first").returncode == 0
    small_disk.fill()
    run = cli(data_dir, "cache", "list")
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == (
        f"memcloud: error: control database: disk I/O error (the disk holding {data_dir} is full)\n"
    )
