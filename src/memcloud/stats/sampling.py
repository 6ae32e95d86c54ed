"""When the stats history is sampled, and the one clock every node's samples are stamped on.

Every node samples itself on the same boundaries (`sample_interval()`, whole minutes by
default) and stamps a sample with the boundary it was taken for (`tick_time`), not with the
moment its loop woke: nodes wake a few milliseconds apart, some just before the boundary, so
their own times straddle it and a bucket would hold one node's figures and not the other's.
With one stamp per tick, every node's sample of a tick lands in the same bucket.

`MEMCLOUD_STATS_SAMPLE_SECONDS` overrides the interval (tests use a fraction of a second).
"""

from __future__ import annotations

import logging
import os

__all__ = [
    "ALIGN_FRACTION",
    "INTERVAL_ENV",
    "MIN_SAMPLE_SECONDS",
    "SAMPLE_SECONDS",
    "sample_interval",
    "tick_time",
]

log = logging.getLogger("memcloud.history")

SAMPLE_SECONDS = 60.0
INTERVAL_ENV = "MEMCLOUD_STATS_SAMPLE_SECONDS"
# The shortest interval the override accepts: below that, sampling would load the loop.
MIN_SAMPLE_SECONDS = 0.1
# A reading this close to a boundary (as a share of the interval) is that boundary's sample:
# a loop woken early or a little late. Farther off (the first sample at start, a loop stalled
# for seconds) it keeps its own time rather than claim a moment it was not read at.
ALIGN_FRACTION = 0.25


def sample_interval() -> float:
    raw = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(raw) if raw else SAMPLE_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number; sampling every %ss", INTERVAL_ENV, raw, SAMPLE_SECONDS)
        return SAMPLE_SECONDS
    return max(value, MIN_SAMPLE_SECONDS)


def tick_time(now: float, interval: float) -> float:
    """The time to stamp a sample read at `now` with: the nearest boundary of `interval` if
    `now` is within `ALIGN_FRACTION` of an interval of it, else `now` itself."""
    boundary = round(now / interval) * interval
    if abs(now - boundary) <= ALIGN_FRACTION * interval:
        # Rounded to the microsecond: k * 0.1 is not exactly representable, and every node
        # must write the very same number.
        return round(boundary, 6)
    return now
