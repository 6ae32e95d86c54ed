"""Real faults for tests: a small full disk (a tmpfs), and a control database to damage."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# Big enough for a control database, its WAL and a server's files; small enough to fill fast.
DISK_BYTES = 1024 * 1024
FILL_CHUNK = 4096


class SmallDisk:
    """A tmpfs of `DISK_BYTES` mounted for one test; `fill()` leaves it with no free block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        chunk = b"\0" * FILL_CHUNK
        with open(self.filler, "ab", buffering=0) as out:
            # Bounded: the disk holds at most DISK_BYTES, so this ends by ENOSPC first.
            for _ in range(DISK_BYTES // FILL_CHUNK + 16):
                try:
                    out.write(chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
            else:
                raise AssertionError("the small disk never filled")
        # Then byte by byte the last partial block, so no later write finds room.
        with open(self.filler, "ab", buffering=0) as out:
            for _ in range(FILL_CHUNK):
                try:
                    out.write(b"\0")
                except OSError:
                    break

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real full disk needs a mount (root here and in CI); without it the test is skipped
    and the store-level test that uses SQLite's `max_page_count` covers the same error."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield SmallDisk(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)
