"""The alert evaluator and the delivery sender: background tasks of node 0's API process,
next to the stats sampler, never on the data plane's path.

- `Evaluator.tick` (every `EVALUATE_SECONDS`, 60 s): for each cache with an enabled alert,
  one stats reading over all nodes through the Deployment, measured against the previous
  reading (memcloud.alerts.triggers), and a cache with a `latency` alert also reads the
  latency probe's new samples of its servers from the store (memcloud.alerts.latency); a
  change of state is recorded compare-and-set in the store, which queues one delivery for it.
- `Sender.tick` (every `SEND_POLL_SECONDS`, and at once when the evaluator queued one):
  claims due deliveries and sends each; a failure is retried after `RETRY_DELAYS` (30 s
  doubling to 30 min, seven attempts in about an hour), then marked failed. Attempts and
  errors show in the API and the dashboard. A cache sends at most `SENDS_PER_HOUR` (60)
  messages an hour; more wait for the next hour.

Time is the injected clock's, so tests advance a FakeClock; `MEMCLOUD_ALERT_SECONDS`
shortens the evaluation interval for tests of a whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Final

from memcloud.admission import plan_connection_limit
from memcloud.alerts import triggers
from memcloud.alerts.latency import LatencyWindows, highest_server_mean_us
from memcloud.alerts.senders import Senders, SendFailed
from memcloud.alerts.triggers import Reading
from memcloud.clock import Clock
from memcloud.config import Settings
from memcloud.control.alert_records import AlertRecord, DeliveryRecord
from memcloud.control.base import ControlStore, NotFound
from memcloud.control.failures import FailureLog, describe
from memcloud.control.models import CacheRecord
from memcloud.deployment import Deployment
from memcloud.nodes import NodesFailed
from memcloud.stats.aggregate import aggregate_stats

__all__ = [
    "EVALUATE_SECONDS",
    "RETRY_DELAYS",
    "SEND_POLL_SECONDS",
    "Evaluator",
    "Sender",
    "evaluate_interval",
]

log = logging.getLogger("memcloud.alerts")

EVALUATE_SECONDS: Final = 60.0
INTERVAL_ENV: Final = "MEMCLOUD_ALERT_SECONDS"
MIN_INTERVAL: Final = 0.1
SEND_POLL_SECONDS: Final = 1.0
# After the n-th failed attempt the next is RETRY_DELAYS[n - 1] seconds later; after the
# last one the delivery is failed for good (a receiver down for an hour misses the message,
# and the record says so).
RETRY_DELAYS: Final = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# A claimed delivery is another sender's again after this (the claimer died mid-send).
LEASE_SECONDS: Final = 120.0
SEND_BATCH: Final = 20
# Deliveries done (delivered or failed) are kept this long, then pruned: an alert flapping
# every minute leaves at most 50 alerts x 1440 rows a day per cache.
DELIVERY_RETENTION: Final = 7 * 24 * 3600.0
# Messages a cache may send an hour. A tenant could make an alert flap every minute with an
# email or URL of someone else's: the operator's SMTP server and network must not become a
# spammer's. Past it a delivery is postponed to the next hour (a counted attempt).
SENDS_PER_HOUR: Final = 60


def evaluate_interval() -> float:
    raw = os.environ.get(INTERVAL_ENV, "")
    try:
        return max(float(raw), MIN_INTERVAL) if raw else EVALUATE_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number; evaluating every %ss", INTERVAL_ENV, raw, 60)
        return EVALUATE_SECONDS


class Evaluator:
    def __init__(
        self,
        store: ControlStore,
        deployment: Deployment,
        settings: Settings,
        clock: Clock,
        *,
        queued: asyncio.Event | None = None,
        interval: float | None = None,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.settings = settings
        self.clock = clock
        self.queued = queued or asyncio.Event()
        self.interval = interval or evaluate_interval()
        self._last: dict[int, Reading] = {}
        self._latency = LatencyWindows()
        self._failures = FailureLog(log, "evaluating alerts")

    async def tick(self) -> list[DeliveryRecord]:
        """Evaluate every enabled alert once; answer the deliveries queued."""
        alerts, caches = await asyncio.to_thread(
            lambda: (self.store.list_alerts(), {c.id: c for c in self.store.list_caches()})
        )
        by_cache: dict[int, list[AlertRecord]] = {}
        for alert in alerts:
            if alert.enabled and alert.cache_id in caches:
                by_cache.setdefault(alert.cache_id, []).append(alert)
        for gone in set(self._last) - set(by_cache):
            del self._last[gone]
        self._latency.keep_only(
            cache_id
            for cache_id, cache_alerts in by_cache.items()
            if any(a.trigger_type == "latency" for a in cache_alerts)
        )
        queued: list[DeliveryRecord] = []
        for cache_id, cache_alerts in by_cache.items():
            queued += await self._evaluate(caches[cache_id], cache_alerts)
        if queued:
            self.queued.set()
        return queued

    async def _evaluate(
        self, cache: CacheRecord, alerts: list[AlertRecord]
    ) -> list[DeliveryRecord]:
        try:
            per_node = await self.deployment.stats(cache.id)
        except NodesFailed as exc:
            # No reading without every node: a partial sum would look like a drop.
            log.warning("alerts of cache %d skipped: nodes failed: %s", cache.id, exc)
            return []
        at = self.clock.now()
        latency = None
        if any(alert.trigger_type == "latency" for alert in alerts):
            latency = await self._latency_us(cache.id, at)
        now = Reading(at, aggregate_stats(per_node), latency)
        before = self._last.get(cache.id)
        self._last[cache.id] = now
        limit = plan_connection_limit(cache.plan, self.settings)
        queued = []
        for alert in alerts:
            value = triggers.measure(alert.trigger_type, now, before, limit)
            if value is None:
                continue
            firing = triggers.breached(alert.trigger_type, value, alert.trigger_threshold)
            body = triggers.payload(alert, cache.name, value, firing, now.at)
            delivery = await asyncio.to_thread(
                self.store.observe_alert,
                alert.id,
                value=value,
                firing=firing,
                at=now.at,
                payload=body,
            )
            if delivery is not None:
                log.info("alert %d of cache %d %s", alert.id, cache.id, delivery.event)
                queued.append(delivery)
        return queued

    async def _latency_us(self, cache_id: int, at: float) -> float | None:
        """The cache's servers' probe samples new since its last evaluation, measured."""
        start, end = self._latency.span(cache_id, at, self.interval)
        servers = self.deployment.addresses(cache_id)
        samples = await asyncio.to_thread(self.store.latency_samples, servers, start, end)
        return highest_server_mean_us(self._latency.take(cache_id, start, end, samples))

    async def run(self, interval: float | None = None) -> None:
        if interval:
            self.interval = interval
        while True:
            await self._failures.attempt(self.tick, "alerts are not evaluated")
            await asyncio.sleep(self.interval)


class Sender:
    def __init__(
        self,
        store: ControlStore,
        senders: Senders,
        clock: Clock,
        *,
        queued: asyncio.Event | None = None,
        sends_per_hour: int = SENDS_PER_HOUR,
    ) -> None:
        self.store = store
        self.senders = senders
        self.clock = clock
        self.queued = queued or asyncio.Event()
        self.sends_per_hour = sends_per_hour
        self._failures = FailureLog(log, "delivering alerts")
        self._last_prune = 0.0
        # (hour, cache id) -> sends this hour; only the current hour is kept.
        self._sent: dict[tuple[int, int], int] = {}

    def _budget(self, cache_id: int, now: float) -> float | None:
        """None if the cache may send now (counted), else when its next hour starts."""
        hour = int(now // 3600)
        if any(h != hour for h, _ in self._sent):
            self._sent = {k: v for k, v in self._sent.items() if k[0] == hour}
        used = self._sent.get((hour, cache_id), 0)
        if used >= self.sends_per_hour:
            return (hour + 1) * 3600.0
        self._sent[(hour, cache_id)] = used + 1
        return None

    async def tick(self) -> int:
        """Send every delivery due now; answer how many were attempted."""
        now = self.clock.now()
        due = await asyncio.to_thread(
            self.store.claim_deliveries, now, now + LEASE_SECONDS, SEND_BATCH
        )
        for delivery in due:
            await self._attempt(delivery)
        if now - self._last_prune > 3600:
            self._last_prune = now
            await asyncio.to_thread(self.store.prune_deliveries, now - DELIVERY_RETENTION)
        return len(due)

    async def _attempt(self, delivery: DeliveryRecord) -> None:
        postponed = self._budget(delivery.cache_id, self.clock.now())
        if postponed is not None:
            await asyncio.to_thread(
                self.store.finish_delivery,
                delivery.id,
                at=self.clock.now(),
                error=f"more than {self.sends_per_hour} messages this hour: postponed",
                retry_at=postponed if delivery.attempts < len(RETRY_DELAYS) else None,
            )
            return
        error = ""
        try:
            config = await asyncio.to_thread(
                self.store.find_delivery_config, delivery.cache_id, delivery.config_id
            )
            subject = str(delivery.payload.get("message", "[memcloud] alert"))
            await self.senders.send(config, delivery.id, subject, delivery.payload)
        except NotFound:
            error = "the delivery config no longer exists"
        except SendFailed as exc:
            error = str(exc) or "failed"
        except Exception as exc:
            # Anything else is this attempt's failure too: the delivery must not stay
            # leased and retried forever without an attempt counted.
            error = describe(exc)
        at = self.clock.now()
        retry_at = None
        if error and delivery.attempts < len(RETRY_DELAYS):
            retry_at = at + RETRY_DELAYS[delivery.attempts]
        if error:
            log.warning(
                "alert delivery %d (cache %d) failed, attempt %d: %s",
                delivery.id,
                delivery.cache_id,
                delivery.attempts + 1,
                error,
            )
        await asyncio.to_thread(
            self.store.finish_delivery, delivery.id, at=at, error=error, retry_at=retry_at
        )

    async def run(self) -> None:
        while True:
            # Cleared before the tick: a delivery queued during it wakes the next one.
            self.queued.clear()
            await self._failures.attempt(self.tick, "alerts are not delivered")
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see membership._beat
                async with asyncio.timeout(SEND_POLL_SECONDS):
                    await self.queued.wait()
