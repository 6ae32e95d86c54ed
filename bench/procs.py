"""What /proc says about a server: CPU time and resident memory of its process tree."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TICKS", "core_busy_seconds", "cpu_seconds", "process_tree", "rss_bytes"]

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and every live process below it (a bounded walk)."""
    tree: list[int] = []
    pending = [pid]
    while pending and len(tree) < 1000:
        current = pending.pop()
        if not Path(f"/proc/{current}").exists():
            continue
        tree.append(current)
        pending += _children(current)
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime (all threads) of `pid` and every process below it."""
    total = 0
    for current in process_tree(pid):
        try:
            fields = _stat_fields(current)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def rss_bytes(pid: int) -> int:
    """VmRSS of `pid` and every process below it."""
    total = 0
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024  # kB
    return total


def core_busy_seconds(core: int) -> float:
    """Seconds core `core` spent busy (not idle or waiting for I/O) since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == f"cpu{core}":
            ticks = [int(v) for v in fields[1:]]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            return (sum(ticks[:8]) - idle) / TICKS  # guest time is already in user
    return 0.0
