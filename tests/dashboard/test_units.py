"""Sessions, CSRF tokens, overview numbers and charts, without a server."""

from __future__ import annotations

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


def test_plans() -> None:
    assert plan_bytes(DEFAULT_PLANS, "memcachier:100") == 100 * 1024 * 1024
    assert plan_bytes(DEFAULT_PLANS, "dev") == 25 * 1024 * 1024
    assert plan_bytes(DEFAULT_PLANS, "gold") is None
    assert parse_plans("a=1MB, b=2GB") == (("a", 1 << 20), ("b", 2 << 30))
