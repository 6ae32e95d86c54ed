"""Opening the control store: PostgreSQL at a `--control-url`, else SQLite in the data dir."""

from __future__ import annotations

from pathlib import Path

from memcloud.control.base import ControlError, ControlStore, DamagedStore, NotFound
from memcloud.control.postgres import PostgresStore, is_postgres_url
from memcloud.control.sqlite import SqliteStore, check_store

__all__ = ["STORE_FILENAME", "DamagedStore", "check_store", "open_store", "store_path"]

STORE_FILENAME = "memcloud.db"


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_FILENAME


def open_store(
    data_dir: Path, *, create: bool = True, check: bool = False, control_url: str | None = None
) -> ControlStore:
    """Open the control store: PostgreSQL at `control_url` if given, else the data
    directory's SQLite file; with `create`, make the directory (0700) and file.

    Every command but `memcloud serve` passes `create=False`, so a typo in `--data-dir` is
    reported instead of silently creating an empty store no server reads. With
    `check` (`memcloud serve`), a damaged database is refused (`DamagedStore`). A database
    that cannot be opened raises `StoreFailed`.
    """
    if control_url:
        if not is_postgres_url(control_url):
            raise ControlError("the control URL must start with postgresql:// or postgres://")
        if create:
            # `serve` still keeps its tokens, .env and operator socket there (owner-only).
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return PostgresStore(control_url)
    path = store_path(data_dir)
    if not path.exists():
        if not create:
            raise NotFound(
                f"no memcloud data in {data_dir}: `memcloud serve --data-dir {data_dir}` creates"
                " it (or give the data dir your server uses)"
            )
        # Owner-only: the directory holds credential hashes and the admin socket.
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
    elif check:
        check_store(path)
    return SqliteStore(path)
