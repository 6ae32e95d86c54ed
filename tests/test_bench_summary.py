"""bench.summary: the medians quoted in closing notes come from the recorded runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.summary import main, rows


def _record(commit: str, ratio: float, cpu: float, mb: float) -> dict[str, object]:
    return {
        "git": {"commit": commit},
        "workloads": [{"workload": "a", "ratio": ratio, "cpu_ratio": cpu}],
        "memory": [
            {"server": "memcached", "mb_per_million": 200.0},
            {"server": "memcloud", "mb_per_million": mb},
        ],
    }


def test_rows_group_runs_by_commit_in_order() -> None:
    records = [
        _record("aaaa", 0.8, 1.3, 380.0),
        _record("bbbb", 0.9, 1.2, 300.0),
        _record("aaaa", 0.7, 1.4, 370.0),
    ]
    assert rows(records, by_commit=True) == [
        ("aaaa", "a", [0.8, 0.7], [1.3, 1.4]),
        ("aaaa", "f", [1.9, 1.85], []),
        ("bbbb", "a", [0.9], [1.2]),
        ("bbbb", "f", [1.5], []),
    ]


def test_rows_show_each_value_size_of_the_memory_workload() -> None:
    record = _record("cccc", 1.0, 1.0, 300.0)
    record["memory"] = [
        {"server": "memcached", "value_bytes": 10, "mb_per_million": 100.0},
        {"server": "memcloud", "value_bytes": 10, "mb_per_million": 160.0},
        {"server": "memcached", "value_bytes": 100, "mb_per_million": 200.0},
        {"server": "memcloud", "value_bytes": 100, "mb_per_million": 250.0},
    ]
    assert rows([record]) == [
        ("all", "a", [1.0], [1.0]),
        ("all", "f/10", [1.6], []),
        ("all", "f", [1.25], []),
    ]


def test_main_prints_medians_of_the_last_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.jsonl"
    runs = [_record("old", 0.1, 9.0, 900.0)] + [
        _record("new", r, 1.0, 200.0) for r in (0.9, 0.7, 0.8)
    ]
    results.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert main(["--last", "3", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "0.80x  (0.90 0.70 0.80)" in out
    assert "0.10" not in out
    assert main(["--results", str(tmp_path / "missing.jsonl")]) == 1
