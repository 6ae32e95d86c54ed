"""Which data dir and control store a management command uses (README, "Operating it").

The data dir is `--data-dir`, else `MEMCLOUD_DATA_DIR`, else the one of the memcloud server
this user runs (memcloud.locate); with none of them, or with several servers running, the
command stops with one line saying what to pass. There is no `./data` default: a command run
from another directory must not open (or make) a database no server reads. Only `memcloud
serve` creates a control database.

With `--control-url` / `MEMCLOUD_CONTROL_URL` the control store is that PostgreSQL database
and the data dir is needed only to reach the running server's operator socket (flush, stats,
the flush log's pending note).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from memcloud import locate
from memcloud.control.base import ControlStore
from memcloud.control.open import open_store

__all__ = ["NoDataDir", "data_dir_of", "open_store_of"]


class NoDataDir(Exception):
    """No data dir was given and none can be found; the message says what to pass."""


def data_dir_of(ns: argparse.Namespace) -> Path:
    """The command's data dir: given (flag or variable), else the running server's."""
    given: Path | None = ns.data_dir
    if given is not None:
        return given
    running = locate.running_data_dirs()
    if len(running) == 1:
        return running[0]
    if not running:
        raise NoDataDir(
            "no data dir: no memcloud server is running for this user; pass --data-dir DIR"
            " or set MEMCLOUD_DATA_DIR (the server's --data-dir)"
        )
    listed = ", ".join(str(path) for path in running)
    raise NoDataDir(
        f"{len(running)} memcloud servers are running (data dirs {listed}): pass --data-dir"
        " or set MEMCLOUD_DATA_DIR to choose one"
    )


def open_store_of(ns: argparse.Namespace) -> ControlStore:
    """The control store the command names: PostgreSQL at --control-url, else the SQLite
    database of its data dir, which must exist (`memcloud serve` makes it)."""
    if ns.control_url:
        return open_store(Path(), create=False, control_url=ns.control_url)
    return open_store(data_dir_of(ns), create=False)
