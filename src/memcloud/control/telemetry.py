"""The flush audit log's and the stats history's rules, the same for every store.

These are written often (a flush log line per flush, a stats row per cache and node every
minute), so writing them never bumps the revision that servers poll: a flush must not make
every server reload its credentials. The SQL of the SQLite store is in
memcloud.control.sqlite.telemetry.
"""

from __future__ import annotations

__all__ = ["HOUR", "MINUTE", "compaction_boundary"]

MINUTE = 60
HOUR = 3600


def compaction_boundary(minute_cutoff: float) -> float:
    """Where `compact_stats` stops downsampling: `minute_cutoff` rounded down to a whole
    hour, so an hour is never split between resolutions.

    Minute samples before it are reduced to the last sample (the highest id) of each hour of
    each cache and node, which becomes that hour's sample: counters are cumulative, so the
    last sample of an hour carries the hour's totals.
    """
    return float(int(minute_cutoff) // HOUR * HOUR)
