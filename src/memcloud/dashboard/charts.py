"""Server-rendered SVG: line charts, the memory donut and the hit/miss bars.

Only SVG presentation attributes are used (no `style` attributes), so the pages run under a
Content-Security-Policy without 'unsafe-inline'. Every value that reaches the markup is a
number we formatted or a label we escaped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = [
    "Line",
    "bars",
    "donut",
    "format_bytes",
    "format_number",
    "line_chart",
    "memory_chart",
    "shown",
]

WIDTH = 600
HEIGHT = 190
LEFT = 64
RIGHT = 12
TOP = 12
BOTTOM = 26


def format_bytes(size: float) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(size) >= factor:
            value = size / factor
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{size:.0f} B"


def format_number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    css: str  # class of the stroke: "c1" .. "c4", "limit"
    points: Sequence[tuple[float, float | None]]


# Room above the memory chart's plan line: how full the cache is shows at a glance.
PLAN_HEADROOM = 1.1


def shown(points: Sequence[tuple[float, float | None]], start: float, end: float) -> list[float]:
    """The values a chart over [start, end] draws of `points`."""
    return [v for at, v in points if v is not None and start <= at <= end]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def _time_label(at: float, span: float) -> str:
    fmt = "%a %H:%M" if span > 2 * 86400 else "%H:%M"
    return time.strftime(fmt, time.localtime(at))


def line_chart(
    title: str,
    lines: Sequence[Line],
    start: float,
    end: float,
    *,
    fmt: Callable[[float], str] = format_number,
    y_max: float | None = None,
) -> Markup:
    """A responsive line chart of `lines` over [start, end]; gaps where a value is None. The
    axis reaches `y_max`, or the largest value drawn (points outside [start, end] are not
    drawn, so they do not stretch it); a value above `y_max` is drawn on the top edge."""
    values = [v for line in lines for v in shown(line.points, start, end)]
    top = y_max if y_max is not None else _nice_max(max(values, default=0.0))
    span = max(end - start, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: float) -> float:
        return LEFT + plot_w * (at - start) / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(max(value / top, 0.0), 1.0))

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        gy = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(top * fraction))}</text>"
        )
    for fraction, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        at = start + span * fraction
        parts.append(
            f'<text class="axis" x="{x(at):.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="{anchor}">{escape(_time_label(at, span))}</text>'
        )
    drawn = False
    for line in lines:
        segment: list[str] = []
        segments: list[list[str]] = []
        for at, value in line.points:
            if value is None or not start <= at <= end:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(at):.1f},{y(value):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            drawn = True
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle class="{line.css}" cx="{cx}" cy="{cy}" r="2.5"/>')
            else:
                parts.append(f'<polyline class="line {line.css}" points="{" ".join(seg)}"/>')
    if not drawn:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            'text-anchor="middle">No samples in this range yet</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><span class="swatch {line.css}"></span>{escape(line.label)}</span>'
        for line in lines
    )
    return Markup(
        f'<figure class="graph"><figcaption>{escape(title)} {legend}</figcaption>'
        f"{''.join(parts)}</figure>"
    )


def memory_chart(
    used: Sequence[tuple[float, float | None]],
    limit: Sequence[tuple[float, float | None]],
    start: float,
    end: float,
) -> Markup:
    """Memory used against the plan. The axis fits the bytes used and the plan as it is now
    (the newest limit drawn), with room above: a plan that was larger for a while earlier in
    the range (a temporary resize) does not flatten today's usage into the bottom edge. Such
    a limit is drawn on the top edge, and the legend says how high it went."""
    limits = shown(limit, start, end)
    current = limits[-1] if limits else 0.0
    top = PLAN_HEADROOM * max(max(shown(used, start, end), default=0.0), current)
    label = "limit"
    if limits and max(limits) > top:
        label = f"limit (up to {format_bytes(max(limits))})"
    return line_chart(
        "Memory",
        [Line("used", "c1", used), Line(label, "limit", limit)],
        start,
        end,
        fmt=format_bytes,
        y_max=top or None,
    )


def donut(percent: float, css: str) -> Markup:
    """A ring filled to `percent`, for memory used against the plan."""
    radius = 40
    circumference = 2 * math.pi * radius
    filled = circumference * min(max(percent, 0.0), 100.0) / 100
    return Markup(
        '<svg class="donut" viewBox="0 0 100 100" role="img" '
        f'aria-label="{percent:.0f}% of the plan used">'
        f'<circle class="ring" cx="50" cy="50" r="{radius}"/>'
        f'<circle class="fill {css}" cx="50" cy="50" r="{radius}" '
        f'stroke-dasharray="{filled:.2f} {circumference:.2f}" transform="rotate(-90 50 50)"/>'
        f'<text x="50" y="55" text-anchor="middle">{percent:.0f}%</text></svg>'
    )


def bars(rows: Sequence[tuple[str, int, int]]) -> Markup:
    """Hit/miss bars per command, scaled to the busiest command."""
    biggest = max((hits + misses for _, hits, misses in rows), default=0) or 1
    row_h, label_w, width = 28, 70, 400
    height = row_h * len(rows)
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="hits and misses per command">'
    ]
    for index, (name, hits, misses) in enumerate(rows):
        y = index * row_h + 4
        span = width - label_w - 8
        hit_w = span * hits / biggest
        miss_w = span * misses / biggest
        parts.append(f'<text class="label" x="0" y="{y + 15}">{escape(name)}</text>')
        parts.append(f'<rect class="track" x="{label_w}" y="{y}" width="{span}" height="18"/>')
        parts.append(f'<rect class="hit" x="{label_w}" y="{y}" width="{hit_w:.1f}" height="18"/>')
        parts.append(
            f'<rect class="miss" x="{label_w + hit_w:.1f}" y="{y}" '
            f'width="{miss_w:.1f}" height="18"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
