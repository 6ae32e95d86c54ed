"""Medians over several `make bench` runs: each workload's ratio to memcached, per commit.

    .venv/bin/python -m bench.summary                    # the last 3 records
    .venv/bin/python -m bench.summary --last 6 --by-commit

Reads bench/results/results.jsonl (one JSON record per run, see bench/report.py) and prints,
for every workload, the median throughput ratio and CPU-per-op ratio of the chosen records,
with every run's figure beside it, so that a before/after comparison quotes medians and shows
the spread instead of resting on one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from bench.report import RESULTS

__all__ = ["Row", "main", "rows"]

Row = tuple[str, str, list[float], list[float]]  # group, workload, ratios, cpu ratios


def _records(path: Path) -> list[dict[str, object]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _group(record: dict[str, object], by_commit: bool) -> str:
    if not by_commit:
        return "all"
    git = record.get("git")
    commit = str(git.get("commit", "?")) if isinstance(git, dict) else "?"
    return commit[:10]


def rows(records: list[dict[str, object]], by_commit: bool = False) -> list[Row]:
    """Per group (commit, or all) and workload: every run's ratio and CPU ratio, in order."""
    table: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for record in records:
        group = _group(record, by_commit)
        workloads = record.get("workloads")
        for entry in workloads if isinstance(workloads, list) else []:
            ratios, cpus = table.setdefault((group, str(entry["workload"])), ([], []))
            ratios.append(float(entry["ratio"]))
            if entry.get("cpu_ratio") is not None:
                cpus.append(float(entry["cpu_ratio"]))
        memory = record.get("memory")
        per_million = {
            (str(entry["server"]), int(entry.get("value_bytes", 100))): float(
                entry["mb_per_million"]
            )
            for entry in (memory if isinstance(memory, list) else [])
        }
        for server, size in sorted(per_million):
            base = per_million.get(("memcached", size))
            if server == "memcloud" and base:
                # (f): memory per item, memcloud's against memcached's (lower is better);
                # "f" is the 100-byte figure, "f/10" and "f/1024" the other value sizes.
                name = "f" if size == 100 else f"f/{size}"
                ratios, _ = table.setdefault((group, name), ([], []))
                ratios.append(per_million[(server, size)] / base)
    return [(group, name, r, c) for (group, name), (r, c) in table.items()]


def _figures(values: list[float]) -> str:
    if not values:
        return "-"
    runs = " ".join(f"{v:.2f}" for v in values)
    return f"{statistics.median(values):.2f}x  ({runs})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__)
    parser.add_argument("--last", type=int, default=3, help="how many newest records (3)")
    parser.add_argument("--by-commit", action="store_true", help="one group per git commit")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines file")
    args = parser.parse_args(argv)
    records = _records(args.results)[-args.last :] if args.last > 0 else []
    if not records:
        print(f"no records in {args.results}")
        return 1
    print(f"{'group':<11} {'workload':<10} {'median ratio (runs)':<34} CPU/op ratio (runs)")
    for group, name, ratios, cpus in rows(records, args.by_commit):
        print(f"{group:<11} {name:<10} {_figures(ratios):<34} {_figures(cpus)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
