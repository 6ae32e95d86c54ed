"""The stats history: every cache's counters sampled on a fixed interval into the store.

- Every `SAMPLE_SECONDS` (60 s, on the minute) this node stores one sample per cache it
  serves: `stats.names.HISTORY_STAT_NAMES`, the 31 stats of the stats API plus `get_expired`
  and `get_flushed`, stamped with the service's injected clock.
- Minute samples are kept for `MINUTE_RETENTION` (24 h). Older ones are reduced to one sample
  per hour (the hour's last: counters are cumulative, so it carries the hour's totals),
  kept for `HOUR_RETENTION` (30 days). Flush log lines are kept `FLUSH_LOG_RETENTION` (90
  days). Compaction runs at start and every `COMPACT_SECONDS`.
- Each node samples only itself; with several nodes each stores its own rows (`server`,
  its `host:port`), every node's sample of a tick stamped with the tick's time
  (`stats.sampling.tick_time`), so that they merge into one point.

`MEMCLOUD_STATS_SAMPLE_SECONDS` overrides the interval (tests use a fraction of a second).
"""

from __future__ import annotations

import asyncio
import logging
import time

from memcloud.control.base import ControlStore
from memcloud.control.failures import FailureLog
from memcloud.control.models import StatsSample
from memcloud.control.telemetry import HOUR, MINUTE
from memcloud.nodes import LocalNode, NodeError
from memcloud.stats.sampling import INTERVAL_ENV, SAMPLE_SECONDS, sample_interval, tick_time

__all__ = [
    "COMPACT_SECONDS",
    "FLUSH_LOG_RETENTION",
    "HOUR_RETENTION",
    "INTERVAL_ENV",
    "MINUTE_RETENTION",
    "SAMPLE_SECONDS",
    "StatsSampler",
    "sample_interval",
]

log = logging.getLogger("memcloud.history")

MINUTE_RETENTION = 24 * HOUR
HOUR_RETENTION = 30 * 24 * HOUR
FLUSH_LOG_RETENTION = 90 * 24 * HOUR
COMPACT_SECONDS = float(HOUR)


class StatsSampler:
    def __init__(self, store: ControlStore, node: LocalNode, interval: float | None = None):
        self.store = store
        self.node = node
        self.interval = interval or sample_interval()
        self._last_compaction = 0.0
        self._failures = FailureLog(log, "sampling stats into the history")

    def sample(self, now: float) -> list[StatsSample]:
        """This node's samples of every cache it serves, read on the event loop (cheap)."""
        samples = []
        for cache_id in list(self.node.service.registry.caches):
            try:
                stats = self.node.stats_now(cache_id)
            except NodeError:
                continue
            samples.append(StatsSample(cache_id, self.node.address, now, stats, MINUTE))
        return samples

    def compact(self, now: float) -> None:
        self.store.compact_stats(now - MINUTE_RETENTION, now - HOUR_RETENTION)
        self.store.prune_flush_log(now - FLUSH_LOG_RETENTION)

    async def tick(self) -> None:
        now = self.node.service.clock.now()
        samples = self.sample(tick_time(now, self.interval))
        if samples:
            await asyncio.to_thread(self.store.add_stats_samples, samples)
        if now - self._last_compaction >= COMPACT_SECONDS:
            self._last_compaction = now
            await asyncio.to_thread(self.compact, now)

    async def run(self) -> None:
        """Sample now, then on every interval boundary (whole minutes by default)."""
        while True:
            await self._failures.attempt(self.tick, "the stats history has a gap")
            delay = self.interval - (time.time() % self.interval)
            await asyncio.sleep(delay if delay > 0.01 else self.interval)
