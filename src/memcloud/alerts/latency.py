"""What a `latency` alert measures: the latency probe's samples (memcloud.api.latency) of the
cache's servers that are new since the cache's last evaluation, as the highest per-server
mean in µs.

Why that measure: `insight/latency` and the overview's graph draw one line per server, each
point the mean of that server's probes in its bucket. "Latency over X µs" then means a line
of that graph over X: the mean of one server's probes during the interval, the slowest
server's (a cache's keys are spread over its servers, so one slow server is slow for every
key it holds). A mean, not a median, because the graph shows means: a probe that stalled is
in the graph and in the alert alike.

Which samples: a probe round stamps its samples when it starts and writes them once its
slowest node answered (up to its two 5 s timeouts later), so a sample can arrive stamped
before the previous evaluation. `LatencyWindows` therefore reads back `LOOKBACK_SECONDS`
past the previous evaluation and remembers which samples it counted, so every sample counts
in exactly one evaluation, the one after it was written. The first evaluation of a cache
(or after its latency alerts were all disabled) counts the last interval's samples only,
and none reads further back than one interval and the look-back (evaluations skipped
because a node did not answer skip their samples too).
No sample → no value: the alert's state stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from memcloud.control.introspection import LatencySample

__all__ = ["LOOKBACK_SECONDS", "LatencyWindows", "highest_server_mean_us"]

# Longer than a probe round can take (connect and reply, 5 s each) plus its write: a sample
# written later than this after its stamp is not counted.
LOOKBACK_SECONDS: Final = 30.0

_Key = tuple[float, str]


def highest_server_mean_us(samples: Iterable[LatencySample]) -> float | None:
    """The highest of the servers' mean probe durations, in µs (None without a sample)."""
    per_server: dict[str, list[int]] = {}
    for sample in samples:
        per_server.setdefault(sample.server, []).append(sample.duration_ns)
    if not per_server:
        return None
    worst = max(sum(durations) / len(durations) for durations in per_server.values())
    return round(worst / 1000.0, 1)


@dataclass(slots=True)
class _Counted:
    # Nothing stamped before this counts (the first window's start).
    floor: float
    # The end of the last read, and the samples it returned that the next read may see again.
    end: float
    keys: frozenset[_Key]


class LatencyWindows:
    """Per cache, which probe samples its latency alerts counted already."""

    def __init__(self) -> None:
        self._counted: dict[int, _Counted] = {}

    def span(self, cache_id: int, now: float, interval: float) -> tuple[float, float]:
        """The stamps to read for this evaluation: [start, now]."""
        counted = self._counted.get(cache_id)
        if counted is None:
            return now - interval, now
        # After evaluations skipped (a node did not answer), no more than one interval back.
        oldest = now - interval - LOOKBACK_SECONDS
        return max(counted.floor, counted.end - LOOKBACK_SECONDS, oldest), now

    def take(
        self, cache_id: int, start: float, now: float, samples: Iterable[LatencySample]
    ) -> list[LatencySample]:
        """Of the samples read for [start, now], those not counted before (and remember
        them)."""
        counted = self._counted.get(cache_id)
        seen = counted.keys if counted is not None else frozenset()
        floor = counted.floor if counted is not None else start
        read = [s for s in samples if start <= s.at <= now]
        fresh = [s for s in read if (s.at, s.server) not in seen]
        keep = frozenset((s.at, s.server) for s in read if s.at >= now - LOOKBACK_SECONDS)
        self._counted[cache_id] = _Counted(floor, now, keep)
        return fresh

    def keep_only(self, cache_ids: Iterable[int]) -> None:
        """Forget the caches without an enabled latency alert."""
        wanted = set(cache_ids)
        for gone in set(self._counted) - wanted:
            del self._counted[gone]
