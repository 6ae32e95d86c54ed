"""Latency on a cache's overview: the probe's samples (memcloud.api.latency, every 20 s per
node, in the control store) as a card figure and a graph, in microseconds."""

from __future__ import annotations

import asyncio

from markupsafe import Markup

from memcloud.dashboard import charts
from memcloud.dashboard.context import DashboardContext

__all__ = ["latency_chart", "latency_now"]


async def _latency_points(
    ctx: DashboardContext, cache_id: int, start: float, end: float
) -> dict[str, list[tuple[float, float | None]]]:
    if ctx.addresses is None:
        return {}
    servers = ctx.addresses(cache_id)
    samples = await asyncio.to_thread(ctx.store.latency_samples, servers, start, end)
    points: dict[str, list[tuple[float, float | None]]] = {}
    for sample in samples:
        points.setdefault(sample.server, []).append((sample.at, sample.duration_ns / 1000))
    return points


async def latency_chart(ctx: DashboardContext, cache_id: int, start: float, end: float) -> Markup:
    """The overview's graph: microseconds of a get on each server, probed every 20 s."""
    points = await _latency_points(ctx, cache_id, start, end)
    lines = [
        charts.Line(server, f"c{index % 4 + 1}", series)
        for index, (server, series) in enumerate(sorted(points.items()))
    ]
    return charts.line_chart("Latency of a get (µs)", lines, start, end)


async def latency_now(ctx: DashboardContext, cache_id: int, now: float) -> float | None:
    """The mean of each server's last probe in the last minute, in microseconds."""
    points = await _latency_points(ctx, cache_id, now - 60, now)
    last = [series[-1][1] for series in points.values() if series and series[-1][1] is not None]
    return sum(last) / len(last) if last else None
