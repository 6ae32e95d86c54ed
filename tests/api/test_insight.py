"""Derived stats from the history (pure functions), granularity, and history compaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memcloud.api.hooks import flush_details, parse_fields
from memcloud.api.insight import (
    PROCESSED_NAMES,
    format_time,
    granularity,
    parse_time,
    processed_series,
)
from memcloud.control.models import StatsSample
from memcloud.control.open import open_store

T0 = 1_700_000_000 // 3600 * 3600  # a whole hour
NAMES = (
    "auth_cmds_rate, auth_errors_rate, bytes, bytes_read_rate, bytes_write_rate, "
    "cas_badval_rate, cas_fraction, cas_hit_rate, cas_rate, connection_rate, connections, "
    "decr_fraction, decr_hit_rate, decr_rate, delete_fraction, delete_hit_rate, delete_rate, "
    "eviction_rate, flush_fraction, flush_rate, get_expired_rate, get_fraction, get_hit_rate, "
    "get_rate, hit_rate, incr_fraction, incr_hit_rate, incr_rate, items, max_bytes, "
    "request_rate, set_fraction, set_rate, touch_fraction, touch_hit_rate, touch_rate"
)


def rows(series: dict[str, object]) -> list[list[Any]]:
    values = series["values"]
    assert isinstance(values, list)
    return values


def sample(at: float, server: str = "a:1", **stats: int) -> StatsSample:
    return StatsSample(1, server, at, stats)


def test_allowed_names_are_the_documented_ones() -> None:
    assert list(PROCESSED_NAMES) == [n.strip() for n in NAMES.split(",")]


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (3600, 60),
        (86400, 60),
        (86401, 600),
        (7 * 86400, 600),
        (8 * 86400, 3600),
        (200 * 86400, 86400),
    ],
)
def test_granularity(span: int, step: int) -> None:
    assert granularity(span) == step


def test_times() -> None:
    assert parse_time("2023-01-10T15:20:00Z") == 1673364000
    assert parse_time("2023-01-10T16:20:00+01:00") == 1673364000
    assert format_time(1673364000) == "2023-01-10T15:20:00Z"


def test_rates_and_ratios() -> None:
    samples = [
        sample(T0 + 1, cmd_get=0, get_hits=0, get_misses=0, cmd_set=0, curr_items=0),
        sample(T0 + 61, cmd_get=120, get_hits=90, get_misses=30, cmd_set=60, curr_items=5),
        sample(T0 + 121, cmd_get=120, get_hits=90, get_misses=30, cmd_set=60, curr_items=5),
    ]
    names = ["get_rate", "set_rate", "get_hit_rate", "hit_rate", "get_fraction", "items"]
    [series] = processed_series(samples, names, T0, T0 + 180)
    assert series["columns"] == ["time", *names]
    first, second, third = rows(series)
    assert first == [format_time(T0), None, None, None, None, None, 0]
    assert second == [format_time(T0 + 60), 2.0, 1.0, 0.75, 0.75, round(120 / 180, 6), 5]
    # No traffic: rates 0, ratios undefined.
    assert third == [format_time(T0 + 120), 0.0, 0.0, None, None, None, 5]


def test_counter_reset_counts_from_zero() -> None:
    samples = [sample(T0, cmd_get=1000), sample(T0 + 60, cmd_get=30)]
    [series] = processed_series(samples, ["get_rate"], T0, T0 + 120)
    assert rows(series)[-1][1] == 0.5


def test_nodes_add_up_rates_and_their_shares() -> None:
    samples = []
    for server in ("a:1", "b:2"):
        samples.append(sample(T0, server, cmd_get=0, curr_items=7, limit_maxbytes=100))
        samples.append(sample(T0 + 60, server, cmd_get=60, curr_items=7, limit_maxbytes=100))
    names = ["get_rate", "items", "max_bytes"]
    [total] = processed_series(samples, names, T0, T0 + 120)
    assert rows(total)[-1][1:] == [2.0, 14, 200]
    per_server = processed_series(samples, names, T0, T0 + 120, per_server=True)
    assert [s["tags"] for s in per_server] == [{"server": "a:1"}, {"server": "b:2"}]
    assert rows(per_server[0])[-1][1:] == [1.0, 7, 100]


def test_coarse_buckets_use_each_buckets_last_sample() -> None:
    samples = [sample(T0 + i * 60, cmd_get=i * 60) for i in range(30)]  # 1 get/s for 30 min
    [series] = processed_series(samples, ["get_rate"], T0, T0 + 8 * 86400)
    assert granularity(8 * 86400) == 3600
    assert series["values"] == [[format_time(T0), None]]
    [series] = processed_series(samples, ["get_rate"], T0, T0 + 2 * 86400)  # 10-minute steps
    assert [row[1] for row in rows(series)] == [None, 1.0, 1.0]


def test_compaction_keeps_hourly_samples(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    cache = store.create_cache("c", 1000)
    now = float(T0 + 3 * 86400)
    old = [StatsSample(cache.id, "a:1", T0 + i * 60, {"cmd_get": i}) for i in range(180)]
    recent = [StatsSample(cache.id, "a:1", now - 600 + i * 60, {"cmd_get": i}) for i in range(5)]
    store.add_stats_samples(old + recent)
    store.compact_stats(now - 86400, now - 30 * 86400)
    kept = store.stats_samples(cache.id, 0, now)
    hourly = [s for s in kept if s.resolution == 3600]
    assert [(s.at - T0, s.stats["cmd_get"]) for s in hourly] == [
        (3540, 59),
        (7140, 119),
        (10740, 179),
    ]
    assert len([s for s in kept if s.resolution == 60]) == 5
    store.compact_stats(now + 40 * 86400, now + 30 * 86400)
    assert store.stats_samples(cache.id, 0, now) == []
    store.close()


def test_hook_bodies() -> None:
    assert flush_details(None) == ("api", {})
    assert flush_details(parse_fields(b"not=a&hook=1")) == ("api", {})
    source, details = flush_details(parse_fields(b"app=a&head=abc&release=v3&git_log=%0A"))
    assert (source, details) == ("deploy_hook", {"app": "a", "commit": "abc", "release": "v3"})
    assert parse_fields(b"[1, 2]") is None
    assert parse_fields(b"{broken") is None
    source, details = flush_details({"resource": "release", "data": {"version": "x"}})
    assert (source, details) == ("webhook", {"release": "vx"})


def test_nodes_are_differenced_on_their_own_before_they_add_up() -> None:
    # Node b missed the sample of T0 + 60: its next one is differenced against its own
    # sample of T0, not against a's; items of that bucket are a's alone (b said nothing).
    samples = [
        sample(T0, "a:1", total_connections=0, cmd_get=0, curr_items=5),
        sample(T0, "b:2", total_connections=6000, cmd_get=9000, curr_items=5),
        sample(T0 + 60, "a:1", total_connections=60, cmd_get=60, curr_items=5),
        sample(T0 + 120, "a:1", total_connections=120, cmd_get=120, curr_items=5),
        sample(T0 + 120, "b:2", total_connections=6240, cmd_get=9240, curr_items=5),
    ]
    names = ["connection_rate", "get_rate", "items"]
    [series] = processed_series(samples, names, T0, T0 + 180)
    assert [row[1:] for row in rows(series)] == [[None, None, 10], [1.0, 1.0, 5], [3.0, 3.0, 10]]


def test_a_flush_the_deployment_sent_to_every_node_is_one_flush() -> None:
    """The node that took the flush counts it; the others only emptied their share."""
    samples = []
    for server, flushes in (("a:1", 1), ("b:2", 0)):
        samples.append(sample(T0, server, cmd_flush=0, cmd_get=0))
        samples.append(sample(T0 + 60, server, cmd_flush=flushes, cmd_get=1))
    names = ["flush_rate", "flush_fraction", "request_rate"]
    [series] = processed_series(samples, names, T0, T0 + 120)
    # one flush and two gets in 60 s: requests 3, the flush a third of them
    assert rows(series)[-1][1:] == [round(1 / 60, 6), round(1 / 3, 6), round(3 / 60, 6)]


def test_buckets_without_a_sample_are_zeros() -> None:
    # The server was stopped from T0 + 120 to T0 + 240: no samples in those buckets.
    samples = [
        sample(T0, cmd_get=0, curr_items=4),
        sample(T0 + 60, cmd_get=60, curr_items=4),
        sample(T0 + 300, cmd_get=300, curr_items=4),
    ]
    names = ["get_rate", "get_fraction", "items"]
    [series] = processed_series(samples, names, T0, T0 + 600)
    assert rows(series) == [
        [format_time(T0), None, None, 4],
        [format_time(T0 + 60), 1.0, 1.0, 4],
        [format_time(T0 + 120), 0, 0, 0],
        [format_time(T0 + 180), 0, 0, 0],
        [format_time(T0 + 240), 0, 0, 0],
        [format_time(T0 + 300), 1.0, 1.0, 4],
    ]
    [per_server] = processed_series(samples, names, T0, T0 + 600, per_server=True)
    assert rows(per_server) == rows(series)
    assert processed_series([], names, T0, T0 + 600)[0]["values"] == []
    # A gap at the start of the range, after a sample before it, is padded too.
    [late] = processed_series(samples, names, T0 + 120, T0 + 600)
    assert [row[0] for row in rows(late)] == [format_time(T0 + 60 * i) for i in range(2, 6)]
    assert rows(late)[0][1:] == [0, 0, 0] and rows(late)[-1][1:] == [1.0, 1.0, 4]
