"""Sessions, CSRF tokens, overview numbers and charts, without a server."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from memcloud.config import DEFAULT_PLANS, parse_plans, plan_bytes
from memcloud.dashboard import charts, metrics
from memcloud.dashboard.sessions import DashboardSession, Signer, load_key


def test_session_cookie_is_signed_and_expires(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert load_key(tmp_path) == key and (tmp_path / "dashboard.key").stat().st_mode & 0o077 == 0
    signer = Signer(key)
    session = DashboardSession.anonymous(now=1000).signed_in(
        kind="cache", cache_id=3, via="password"
    )
    cookie = signer.dumps(session)
    assert signer.loads(cookie) == session
    _body, mac = cookie.split(".")
    forged = signer.dumps(replace(session, cache_id=4)).split(".")[0]
    assert signer.loads(f"{forged}.{mac}") is None
    assert Signer(b"k" * 32).loads(cookie) is None
    assert signer.loads(cookie, now=session.expires + 1) is None
    assert signer.loads("garbage") is None and signer.loads(None) is None
    other = DashboardSession.anonymous()
    assert signer.check_csrf(session, signer.csrf_token(session))
    assert not signer.check_csrf(other, signer.csrf_token(session))


def test_overview_rates_over_the_last_hour() -> None:
    now = 10_000.0
    old = metrics.Point(now - 3000, {"get_hits": 100, "get_misses": 100, "total_connections": 5})
    live = {
        "get_hits": 190,
        "get_misses": 110,
        "total_connections": 3005,
        "bytes": 50,
        "limit_maxbytes": 100,
        "curr_items": 7,
        "curr_connections": 2,
    }
    card = metrics.overview(live, [old], now, started=0)
    assert card.hit_rate == 90.0 and card.hit_class == "good" and not card.since_start
    assert card.new_connections_rate == 1.0 and not card.connections_warn
    assert card.memory_percent == 50.0
    # A restarted node's counters start again from zero: no negative rates.
    restarted = metrics.overview({"get_hits": 10, "get_misses": 30}, [old], now, started=0)
    assert restarted.hit_rate == 25.0 and restarted.hit_class == "bad"
    assert metrics.overview({}, [], now, started=now - 5).hit_class == "none"
    assert metrics.hit_rate_class(50.0) == "warn"


def test_samples_of_several_nodes_are_one_point() -> None:
    points = metrics.merge_samples(
        [
            (60.0, "a:1", {"get_hits": 1, "limit_maxbytes": 50}),
            (61.0, "b:1", {"get_hits": 2, "limit_maxbytes": 50}),
            (120.0, "a:1", {"get_hits": 5, "limit_maxbytes": 50}),
        ]
    )
    assert [p.stats["get_hits"] for p in points] == [3, 5]
    assert points[0].stats["limit_maxbytes"] == 100  # each node holds half of the plan
    lines = metrics.series(points)
    assert lines["hit_rate"] == [(120.0, 100.0)]


def test_charts_are_svg_without_inline_styles() -> None:
    line = charts.Line("used", "c1", [(0.0, 1.0), (30.0, None), (60.0, 4.0), (90.0, 5.0)])
    svg = str(charts.line_chart("Memory <used>", [line], 0.0, 100.0, fmt=charts.format_bytes))
    assert "<polyline" in svg and "<circle" in svg and "style=" not in svg
    assert "Memory &lt;used&gt;" in svg
    assert "No samples" in str(charts.line_chart("x", [], 0.0, 1.0))
    assert "style=" not in str(charts.bars([("get", 3, 1)])) + str(charts.donut(40, "good"))


def test_points_of_two_nodes_either_side_of_the_minute_are_one() -> None:
    # Stamped a few milliseconds either side of the tick (samples of old versions, a late
    # node): both are the tick's point, and each node is differenced against itself.
    samples = []
    for tick in range(4):
        at = 600.0 + 60 * tick
        for server, skew, base in (("a:1", -0.002, 0), ("b:2", 0.003, 9000)):
            stats = {
                "curr_items": 2700,
                "get_hits": base + 90 * tick,
                "get_misses": base + 10 * tick,
                "total_connections": base + 21 * tick,
            }
            samples.append((at + skew, server, stats))
    points = metrics.merge_samples(samples, 60.0)
    assert [(p.at, p.nodes) for p in points] == [(600.0 + 60 * t, 2) for t in range(4)]
    lines = metrics.series(points)
    assert {v for _, v in lines["items"]} == {5400.0}
    assert [v for _, v in lines["hit_rate"]] == [90.0] * 3
    assert [round(v or 0, 3) for _, v in lines["new_connections"]] == [0.7] * 3


def test_a_tick_not_every_node_wrote_yet_is_left_out() -> None:
    full = metrics.Point(60.0, {"curr_items": 10}, merged=True, nodes=2)
    partial = metrics.Point(120.0, {"curr_items": 5}, merged=True, nodes=1)
    assert metrics.complete([full, partial]) == [full]
    assert metrics.complete([full, full]) == [full, full]
    assert metrics.complete([partial]) == [partial]


def test_live_point_is_differenced_against_the_last_point() -> None:
    last = metrics.Point(60.0, {"get_hits": 10, "get_misses": 0}, merged=True, nodes=2)
    live = metrics.Point(70.0, {"get_hits": 13, "get_misses": 1, "total_connections": 0})
    lines = metrics.series([last, live])
    assert lines["hit_rate"] == [(70.0, 75.0)]


def _axis_top(svg: str) -> str:
    """The value label at the top of the y axis (the labels left of the plot, bottom up)."""
    x = charts.LEFT - 6
    labels: list[str] = re.findall(rf'<text class="axis" x="{x}" [^>]*>([^<]+)</text>', svg)
    return labels[-1]


def test_memory_axis_fits_usage_and_the_current_plan() -> None:
    mb, gb = 1 << 20, 1 << 30
    # The plan was 10 GB for ten minutes earlier in the hour, 100 MB before and since.
    limit = [(t * 60.0, float(10 * gb if 20 <= t < 30 else 100 * mb)) for t in range(61)]
    used = [(t * 60.0, float(40 * mb)) for t in range(61)]
    svg = str(charts.memory_chart(used, limit, 0.0, 3600.0))
    assert _axis_top(svg) == "110 MB"
    assert "limit (up to 10.0 GB)" in svg
    # Once the resize is out of the range, nothing is said about it.
    svg = str(charts.memory_chart(used, limit, 1800.0, 3600.0))
    assert _axis_top(svg) == "110 MB" and "up to" not in svg
    # Usage above the plan (a resize down) still fits.
    svg = str(charts.memory_chart([(0.0, float(300 * mb))], [(0.0, float(100 * mb))], 0, 60))
    assert _axis_top(svg) == "330 MB"


def test_axes_count_only_the_points_in_range() -> None:
    line = charts.Line("items", "c1", [(-100.0, 9000.0), (10.0, 40.0), (20.0, 45.0)])
    svg = str(charts.line_chart("Items", [line], 0.0, 30.0))
    assert _axis_top(svg) == "50"


def test_plans() -> None:
    assert plan_bytes(DEFAULT_PLANS, "memcachier:100") == 100 * 1024 * 1024
    assert plan_bytes(DEFAULT_PLANS, "dev") == 25 * 1024 * 1024
    assert plan_bytes(DEFAULT_PLANS, "gold") is None
    assert parse_plans("a=1MB, b=2GB") == (("a", 1 << 20), ("b", 2 << 30))
