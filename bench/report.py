"""The table the bench prints, and the JSON record it appends to bench/results/results.jsonl."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.loadgen import Load
from bench.workloads import (
    MEMORY_GOAL_RATIO,
    MEMORY_MAX_RATIO,
    MEMORY_TARGET_BYTES,
    Workload,
)

__all__ = [
    "RESULTS",
    "Comparison",
    "MemoryResult",
    "Summary",
    "append_record",
    "git_description",
    "machine",
    "memory_table",
    "summarize",
    "table",
]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "results.jsonl"


@dataclass(frozen=True)
class Summary:
    """A server's rounds of one workload taken together."""

    rounds: int
    ops: int
    seconds: float
    cpu_seconds: float
    p50_us: float  # median over the rounds
    p99_us: float
    errors: int
    gets: int
    hits: int
    keys: int
    others_cpu_seconds: float | None  # other processes on the server's core (when pinned)
    spread: float  # (slowest - fastest round) / fastest, in ops/s

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def cpu_percent(self) -> float:
        return self.cpu_seconds / self.seconds * 100 if self.seconds else 0.0

    @property
    def others_percent(self) -> float | None:
        if self.others_cpu_seconds is None or not self.seconds:
            return None
        return self.others_cpu_seconds / self.seconds * 100

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6 if self.ops else 0.0


def summarize(runs: list[Load]) -> Summary:
    others = [r.others_cpu_seconds for r in runs if r.others_cpu_seconds is not None]
    rates = [r.ops_per_second for r in runs]
    fastest = max(rates, default=0.0)
    spread = (fastest - min(rates)) / fastest if fastest else 0.0
    return Summary(
        rounds=len(runs),
        ops=sum(r.ops for r in runs),
        seconds=sum(r.seconds for r in runs),
        cpu_seconds=sum(r.cpu_seconds for r in runs),
        p50_us=statistics.median(r.p50_us for r in runs) if runs else 0.0,
        p99_us=statistics.median(r.p99_us for r in runs) if runs else 0.0,
        errors=sum(r.errors for r in runs),
        gets=sum(r.gets for r in runs),
        hits=sum(r.hits for r in runs),
        keys=sum(r.keys for r in runs),
        others_cpu_seconds=sum(others) if others and len(others) == len(runs) else None,
        spread=spread,
    )


@dataclass
class Comparison:
    """One workload against a baseline server and memcloud, round by round."""

    workload: Workload
    base: str
    subject: str
    pinned: bool
    runs: dict[str, list[Load]] = field(default_factory=dict)

    def add(self, server: str, load: Load) -> None:
        self.runs.setdefault(server, []).append(load)

    def summary(self, server: str) -> Summary:
        return summarize(self.runs.get(server, []))

    @property
    def ratio(self) -> float:
        """The median over rounds of subject/base ops/s: round i of each server ran back to back
        (ABBA order), so a ratio of one round shares its background load; the median drops the
        rounds that load spoiled."""
        return self._paired(lambda load: load.ops_per_second)

    @property
    def cpu_ratio(self) -> float:
        """The median over rounds of subject/base CPU per op."""
        return self._paired(lambda load: load.cpu_us_per_op)

    def _paired(self, value: Callable[[Load], float]) -> float:
        pairs = zip(self.runs.get(self.subject, []), self.runs.get(self.base, []), strict=False)
        ratios = [value(s) / value(b) for s, b in pairs if value(b)]
        return statistics.median(ratios) if ratios else 0.0

    def verdict(self) -> str:
        parts = []
        w = self.workload
        if w.min_ratio is not None:
            ok = self.ratio >= w.min_ratio
            parts.append(f">={w.min_ratio:.1f}x {'ok' if ok else 'MISS'}")
        if w.max_cpu_ratio is not None:
            ok = self.cpu_ratio <= w.max_cpu_ratio
            parts.append(f"CPU <={w.max_cpu_ratio:.1f}x {'ok' if ok else 'MISS'}")
        return ", ".join(parts) or "-"

    def record(self) -> dict[str, object]:
        return {
            "workload": self.workload.key,
            "title": self.workload.title,
            "loadgen_options": list(self.workload.options),
            "pinned": self.pinned,
            "base": self.base,
            "subject": self.subject,
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "verdict": self.verdict(),
            "summary": {
                name: {
                    **asdict(self.summary(name)),
                    "ops_per_second": self.summary(name).ops_per_second,
                    "cpu_us_per_op": self.summary(name).cpu_us_per_op,
                    "cpu_percent": self.summary(name).cpu_percent,
                }
                for name in self.runs
            },
            "rounds": {
                name: [
                    {
                        **asdict(r),
                        "ops_per_second": r.ops_per_second,
                        "cpu_us_per_op": r.cpu_us_per_op,
                        "cpu_percent": r.cpu_percent,
                    }
                    for r in runs
                ]
                for name, runs in self.runs.items()
            },
        }


@dataclass(frozen=True)
class MemoryResult:
    server: str
    items: int  # items the server holds after the load (its stats' curr_items)
    loaded: int  # items the generator stored
    rss_before: int  # bytes
    rss_after: int
    load_seconds: float
    value_bytes: int = 100  # each item's value (records before issue 15: always 100)
    accounted: int = 0  # the server's `bytes` stat after the load: what its plans charge

    @property
    def rss_per_accounted(self) -> float:
        """RSS growth over the bytes the server charges for the items (0: not known)."""
        return (self.rss_after - self.rss_before) / self.accounted if self.accounted else 0.0

    @property
    def mb_per_million(self) -> float:
        return (self.rss_after - self.rss_before) / 1e6 / self.items * 1e6 if self.items else 0.0


HEADER = (
    f"{'workload':<40} {'server':<12} {'ops/s':>9} {'p50 us':>7} {'p99 us':>7} "
    f"{'CPU us/op':>9} {'CPU%':>5} {'other%':>6} {'spread':>6} {'ratio':>6} {'CPU ratio':>9}"
    "  target"
)


def table(comparisons: list[Comparison]) -> str:
    rows = [HEADER, "-" * len(HEADER)]
    for c in comparisons:
        title = f"{c.workload.key}  {c.workload.title}"
        for name in (c.base, c.subject):
            if name not in c.runs:
                continue
            s = c.summary(name)
            ratio = cpu_ratio = target = ""
            if name == c.subject and c.base in c.runs:
                ratio = f"{c.ratio:.2f}x"
                cpu_ratio = f"{c.cpu_ratio:.2f}x"
                target = c.verdict()
            others = "" if s.others_percent is None else f"{s.others_percent:.0f}"
            spread = f"{s.spread:.0%}" if s.rounds > 1 else ""
            rows.append(
                f"{title:<40} {name:<12} {s.ops_per_second:>9,.0f} {s.p50_us:>7.0f} "
                f"{s.p99_us:>7.0f} {s.cpu_us_per_op:>9.2f} {s.cpu_percent:>5.0f} {others:>6} "
                f"{spread:>6} {ratio:>6} {cpu_ratio:>9}  {target}"
            )
            title = ""
    return "\n".join(rows)


def memory_table(results: list[MemoryResult]) -> str:
    header = (
        f"{'workload':<40} {'server':<12} {'items':>9} {'RSS before':>10} {'RSS after':>10} "
        f"{'MB per 1M items':>15} {'ratio':>6}  target"
    )
    rows = [header, "-" * len(header)]
    sizes = sorted({r.value_bytes for r in results})
    for size in sizes:
        group = [r for r in results if r.value_bytes == size]
        base = next((r for r in group if r.server == "memcached"), None)
        title = f"f  memory: RSS per 1M {size}-byte items"
        for r in group:
            ratio = target = ""
            if r.server != "memcached" and base is not None and base.mb_per_million:
                value = r.mb_per_million / base.mb_per_million
                ratio = f"{value:.2f}x"
                if size == MEMORY_TARGET_BYTES:
                    target = ", ".join(
                        f"<={bound:.{digits}f}x {'ok' if value <= bound else 'MISS'}"
                        for bound, digits in ((MEMORY_MAX_RATIO, 1), (MEMORY_GOAL_RATIO, 2))
                    )
                else:
                    target = "none (reported)"
            rows.append(
                f"{title:<40} {r.server:<12} {r.items:>9,} {r.rss_before / 1e6:>8.1f}MB "
                f"{r.rss_after / 1e6:>8.1f}MB {r.mb_per_million:>15.1f} {ratio:>6}  {target}"
            )
            title = ""
    return "\n".join(rows)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.rstrip("\n")  # keep leading spaces: git status --porcelain has them


def git_description() -> dict[str, object]:
    """The commit, and the paths under src/ and bench/ (results aside) that differ from it."""
    status = ["git", "status", "--porcelain", "--", "src", "bench", ":!bench/results"]
    dirty = _run(status)
    return {
        "commit": _run(["git", "rev-parse", "HEAD"]),
        "dirty_paths": [line[3:] for line in dirty.splitlines()],  # "XY path"
    }


def machine(memcached: str, pinned: bool) -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpu_model": cpu,
        "nproc": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "memcached": _run([memcached, "-V"]),
        "loadavg": Path("/proc/loadavg").read_text().strip()
        if Path("/proc/loadavg").exists()
        else "",
        "pinned": pinned and shutil.which("taskset") is not None,
    }


def append_record(path: Path, record: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
    with path.open("a") as out:
        out.write(json.dumps(stamped) + "\n")
