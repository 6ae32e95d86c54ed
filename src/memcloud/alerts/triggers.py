"""What each alert type measures, from two readings of a cache's stats over all nodes, and
the message it sends.

- `hit_rate`: get hits / (hits + misses) over the interval, in percent; fires *under* the
  threshold. An interval without gets measures nothing (the state stays as it was).
- `memory_usage`: bytes / limit_maxbytes now, in percent; fires over.
- `evictions`: evictions per minute over the interval; fires over.
- `connections`: open connections as a percentage of the plan's connection limit
  (memcloud.admission); fires over.
- `latency` (µs): the latency probe's gets on the cache's servers during the interval, as
  the highest per-server mean (memcloud.alerts.latency says why); fires over. An interval
  without a probe sample measures nothing. No value is made up.

A state changes only when a measurement crosses the threshold: one message when it fires,
one when it resolves, none while it stays either side.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from memcloud.control.alert_records import AlertRecord
from memcloud.stats.aggregate import counter_delta

__all__ = ["FIRES_UNDER", "UNITS", "Reading", "breached", "measure", "message", "payload"]

FIRES_UNDER: Final = frozenset({"hit_rate"})
UNITS: Final = {
    "hit_rate": "%",
    "memory_usage": "%",
    "connections": "%",
    "evictions": " evictions/min",
    "latency": " µs",
}
LABELS: Final = {
    "hit_rate": "hit rate",
    "memory_usage": "memory usage",
    "connections": "connections",
    "evictions": "evictions",
    "latency": "latency",
}


@dataclass(frozen=True, slots=True)
class Reading:
    """A cache's stats over all nodes (aggregate_stats) at `at` (the injected clock), and
    its latency over the interval in µs (None: no probe sample, or no latency alert)."""

    at: float
    stats: Mapping[str, int]
    latency_us: float | None = None


def _percent(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(100.0 * part / whole, 2)


def measure(kind: str, now: Reading, before: Reading | None, connection_limit: int) -> float | None:
    """The trigger's value now (None: nothing to measure this interval)."""
    stats = now.stats
    if kind == "memory_usage":
        return _percent(stats.get("bytes", 0), stats.get("limit_maxbytes", 0))
    if kind == "connections":
        return _percent(stats.get("curr_connections", 0), connection_limit)
    if kind == "latency":
        return now.latency_us
    if before is None:
        return None
    if kind == "hit_rate":
        hits = counter_delta(stats, before.stats, "get_hits")
        misses = counter_delta(stats, before.stats, "get_misses")
        return _percent(hits, hits + misses)
    if kind == "evictions":
        minutes = (now.at - before.at) / 60.0
        if minutes <= 0:
            return None
        return round(counter_delta(stats, before.stats, "evictions") / minutes, 2)
    return None


def breached(kind: str, value: float, threshold: float) -> bool:
    return value < threshold if kind in FIRES_UNDER else value > threshold


def _shown(kind: str, value: float) -> str:
    # Never in exponent form: a stalled node's 3 s is "3000000 µs", not "3e+06 µs".
    return f"{value:.15g}{UNITS.get(kind, '')}"


def message(alert: AlertRecord, cache_name: str, value: float, firing: bool) -> str:
    """The one line every delivery carries (the email's subject, Slack's text)."""
    kind = alert.trigger_type
    side = "under" if kind in FIRES_UNDER else "over"
    label = LABELS.get(kind, kind)
    threshold = _shown(kind, alert.trigger_threshold)
    if firing:
        return (
            f"[memcloud] Alert on cache {cache_name}: {label} is {_shown(kind, value)},"
            f" {side} {threshold}"
        )
    return (
        f"[memcloud] Resolved on cache {cache_name}: {label} is {_shown(kind, value)}"
        f" (alert when {side} {threshold})"
    )


def payload(
    alert: AlertRecord, cache_name: str, value: float, firing: bool, at: float
) -> dict[str, Any]:
    """The webhook's JSON body (signed), also kept in the delivery record."""
    return {
        "event": "fired" if firing else "resolved",
        "state": "firing" if firing else "ok",
        "alert_id": alert.id,
        "cache_id": alert.cache_id,
        "cache": cache_name,
        "trigger_type": alert.trigger_type,
        "trigger_threshold": alert.trigger_threshold,
        "value": value,
        "description": alert.description,
        "message": message(alert, cache_name, value, firing),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
    }
