"""Where the control store lives in a data directory, and opening it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memcloud.control.base import ControlError, NotFound
from memcloud.control.sqlite import SqliteStore

__all__ = ["STORE_FILENAME", "DamagedStore", "check_store", "open_store", "store_path"]

STORE_FILENAME = "memcloud.db"
# quick_check lists problems one per row; the first few say enough.
PROBLEMS_SHOWN = 3


class DamagedStore(ControlError):
    """The control database fails SQLite's integrity check; the message says what to do."""


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_FILENAME


def check_store(path: Path) -> None:
    """Refuse a damaged control database with `DamagedStore` (`PRAGMA quick_check`).

    A page damaged in the middle of the file is not seen by the reads a start makes, so the
    server would run on it and fail later, on every stats sample or flush. quick_check reads
    every page (without the slower index cross-checks of integrity_check).
    """
    try:
        conn = sqlite3.connect(str(path))
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
        problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
    except sqlite3.OperationalError:
        raise  # locked, a full disk, an I/O error: a fault around the file, not damage in it
    except sqlite3.DatabaseError as exc:  # not a database at all, or its header is damaged
        problems = [str(exc)]
    if problems:
        shown = "; ".join(" ".join(p.split()) for p in problems[:PROBLEMS_SHOWN])
        more = (
            f" (and {len(problems) - PROBLEMS_SHOWN} more)"
            if len(problems) > PROBLEMS_SHOWN
            else ""
        )
        raise DamagedStore(
            f"control database {path} is damaged ({shown}{more}); stop every memcloud using"
            " it, then restore it from a backup, or move it (with its -wal and -shm files)"
            " away to start with an empty one"
        )


def open_store(data_dir: Path, *, create: bool = True, check: bool = False) -> SqliteStore:
    """Open the data directory's store; with `create`, make the directory (0700) and file.

    Commands that only read or change existing caches pass `create=False`, so a typo in
    `--data-dir` is reported instead of silently creating an empty store somewhere. With
    `check` (`memcloud serve`), a damaged database is refused (`DamagedStore`).
    """
    path = store_path(data_dir)
    if not path.exists():
        if not create:
            raise NotFound(
                f"no memcloud data in {data_dir} (create a cache first, or pass --data-dir)"
            )
        # Owner-only: the directory holds credential hashes and the admin socket.
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
    elif check:
        check_store(path)
    return SqliteStore(path)
