"""Where the running memcloud servers of this user keep their data, so that commands run from
any directory find it without `--data-dir`.

`memcloud serve` (node 0) records its absolute data dir in a file of its own under the
user's run directory, `$XDG_RUNTIME_DIR/memcloud/servers/` (else
`${XDG_STATE_HOME:-~/.local/state}/memcloud/servers/`), mode 0700, and removes it at stop. A
record counts only while its server runs: its process is alive and the data dir's
`server.json` names that same process (a record left by a killed server, or by a process
whose id was reused, is ignored and removed). Only a directory and records of this user's,
writable by nobody else, are read: no other account can plant a data dir for commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SERVER_INFO_FILENAME", "forget", "record", "records_dir", "running_data_dirs"]

# What a serving node 0 writes in its data dir (server.startup), with its process id.
SERVER_INFO_FILENAME = "server.json"


def records_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory of this user's server records (None: no home to keep it in)."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "memcloud" / "servers"
    state = env.get("XDG_STATE_HOME", "")
    if state and os.path.isabs(state):
        return Path(state) / "memcloud" / "servers"
    home = env.get("HOME", "")
    if home and os.path.isabs(home):
        return Path(home) / ".local" / "state" / "memcloud" / "servers"
    return None


def _record_path(directory: Path, pid: int) -> Path:
    return directory / f"{pid}.json"


def record(data_dir: Path, pid: int | None = None) -> Path | None:
    """Record that this process serves `data_dir`; answers the record's path (None: this
    user has no records directory). Raises OSError when it cannot be written."""
    directory = records_dir()
    if directory is None:
        return None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pid = os.getpid() if pid is None else pid
    path = _record_path(directory, pid)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps({"pid": pid, "data_dir": str(data_dir.resolve())}))
    partial.chmod(0o600)
    partial.replace(path)
    return path


def forget(pid: int | None = None) -> None:
    """Remove this process's record (at stop)."""
    directory = records_dir()
    if directory is not None:
        _record_path(directory, os.getpid() if pid is None else pid).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process now: not ours, but alive
    return True


def _serving(data_dir: Path, pid: int) -> bool:
    """Whether the server of `pid` still serves `data_dir` (its server.json names it)."""
    try:
        info = json.loads((data_dir / SERVER_INFO_FILENAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("pid") == pid and _alive(pid)


def _ours(path: Path) -> bool:
    """Owned by this user and writable by nobody else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def running_data_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The data dirs of this user's running servers, oldest record first."""
    directory = records_dir(environ)
    if directory is None or not directory.is_dir() or not _ours(directory):
        return []
    found: list[tuple[float, Path]] = []
    for path in directory.glob("*.json"):
        if not _ours(path):
            continue
        try:
            entry = json.loads(path.read_text())
            pid, data_dir = int(entry["pid"]), Path(str(entry["data_dir"]))
            since = path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _serving(data_dir, pid):
            found.append((since, data_dir))
        else:
            with contextlib.suppress(OSError):
                path.unlink()  # its server is gone
    return [data_dir for _, data_dir in sorted(found)]
