"""Refusing a damaged control database before a server runs on it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memcloud.control.base import DamagedStore
from memcloud.control.sqlite.errors import store_error

__all__ = ["PROBLEMS_SHOWN", "check_store"]

# quick_check lists problems one per row; the first few say enough.
PROBLEMS_SHOWN = 3


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
    except sqlite3.OperationalError as exc:
        # Locked, a full disk, an I/O error: a fault around the file, not damage in it.
        raise store_error(exc, path.parent) from exc
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
