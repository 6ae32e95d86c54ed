"""The alert methods of the memory store (`MemoryStore` inherits them): the same rules and
answers as memcloud.control.sql.alerts, held in dicts under the store's one lock."""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import Any

from memcloud.control import alerts as rules
from memcloud.control.alerts import AlertRecord, DeliveryConfigRecord, DeliveryRecord
from memcloud.control.models import CacheRecord
from memcloud.control.rules import no_cache_id

__all__ = ["MemoryAlerts"]


class MemoryAlerts:
    _lock: threading.Lock
    _caches: dict[int, CacheRecord]

    def _init_alerts(self) -> None:
        self._alerts: dict[int, AlertRecord] = {}
        self._configs: dict[int, DeliveryConfigRecord] = {}
        self._deliveries: dict[int, DeliveryRecord] = {}
        self._alert_ids = {"alert": 0, "config": 0, "delivery": 0}

    def _alert_id(self, kind: str) -> int:
        self._alert_ids[kind] += 1
        return self._alert_ids[kind]

    def _drop_alerts(self, cache_id: int) -> None:
        """What a deleted cache had (the caller holds the lock)."""
        for table in (self._alerts, self._configs, self._deliveries):
            for key in [k for k, v in table.items() if v.cache_id == cache_id]:
                del table[key]

    def _exists(self, cache_id: int) -> None:
        if cache_id not in self._caches:
            raise no_cache_id(cache_id)

    def _alert(self, cache_id: int, alert_id: int) -> AlertRecord:
        alert = self._alerts.get(alert_id)
        if alert is None or alert.cache_id != cache_id:
            raise rules.no_alert(cache_id, alert_id)
        return alert

    def _config(self, cache_id: int, config_id: int) -> DeliveryConfigRecord:
        config = self._configs.get(config_id)
        if config is None or config.cache_id != cache_id:
            raise rules.no_config(cache_id, config_id)
        return config

    @staticmethod
    def _copy(record: DeliveryRecord) -> DeliveryRecord:
        return dataclasses.replace(record, payload=copy.deepcopy(record.payload))

    # -- alerts -----------------------------------------------------------------------------

    def create_alert(
        self,
        cache_id: int,
        *,
        trigger_type: str,
        trigger_threshold: float,
        delivery_config_id: int,
        description: str = "",
        enabled: bool = True,
    ) -> AlertRecord:
        kind, threshold, text, on = rules.validate_alert(
            trigger_type, trigger_threshold, description, enabled
        )
        with self._lock:
            self._exists(cache_id)
            self._config(cache_id, delivery_config_id)
            rules.check_alert_count(sum(a.cache_id == cache_id for a in self._alerts.values()))
            alert = AlertRecord(
                self._alert_id("alert"), cache_id, kind, threshold, delivery_config_id, text, on
            )
            self._alerts[alert.id] = alert
            return alert

    def list_alerts(self, cache_id: int | None = None) -> list[AlertRecord]:
        with self._lock:
            if cache_id is not None:
                self._exists(cache_id)
            return sorted(
                (a for a in self._alerts.values() if cache_id in (None, a.cache_id)),
                key=lambda a: a.id,
            )

    def find_alert(self, cache_id: int, alert_id: int) -> AlertRecord:
        with self._lock:
            return self._alert(cache_id, alert_id)

    def update_alert(
        self,
        cache_id: int,
        alert_id: int,
        *,
        trigger_type: str | None = None,
        trigger_threshold: float | None = None,
        delivery_config_id: int | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> AlertRecord:
        with self._lock:
            old = self._alert(cache_id, alert_id)
            kind, threshold, text, on = rules.validate_alert(
                old.trigger_type if trigger_type is None else trigger_type,
                old.trigger_threshold if trigger_threshold is None else trigger_threshold,
                old.description if description is None else description,
                old.enabled if enabled is None else enabled,
            )
            config = old.delivery_config_id if delivery_config_id is None else delivery_config_id
            self._config(cache_id, config)
            new = dataclasses.replace(
                old,
                trigger_type=kind,
                trigger_threshold=threshold,
                delivery_config_id=config,
                description=text,
                enabled=on,
            )
            if kind != old.trigger_type or threshold != old.trigger_threshold or not on:
                new = dataclasses.replace(new, firing=False, value=None)
            self._alerts[alert_id] = new
            return new

    def delete_alert(self, cache_id: int, alert_id: int) -> None:
        with self._lock:
            self._alert(cache_id, alert_id)
            del self._alerts[alert_id]
            for key in [k for k, d in self._deliveries.items() if d.alert_id == alert_id]:
                del self._deliveries[key]

    def observe_alert(
        self, alert_id: int, *, value: float, firing: bool, at: float, payload: dict[str, Any]
    ) -> DeliveryRecord | None:
        with self._lock:
            alert = self._alerts.get(alert_id)
            if alert is None:
                return None
            if not alert.enabled or alert.firing == firing:
                self._alerts[alert_id] = dataclasses.replace(alert, value=value)
                return None
            self._alerts[alert_id] = dataclasses.replace(
                alert, firing=firing, value=value, changed_at=at
            )
            delivery = DeliveryRecord(
                id=self._alert_id("delivery"),
                cache_id=alert.cache_id,
                alert_id=alert_id,
                config_id=alert.delivery_config_id,
                event="fired" if firing else "resolved",
                created_at=at,
                payload=copy.deepcopy(payload),
                next_attempt_at=at,
            )
            self._deliveries[delivery.id] = delivery
            return self._copy(delivery)

    # -- delivery configs -------------------------------------------------------------------

    def create_delivery_config(
        self,
        cache_id: int,
        *,
        delivery_type: str,
        email: str = "",
        slack_url: str = "",
        slack_channel: str = "",
        webhook_url: str = "",
        webhook_secret: str = "",
    ) -> DeliveryConfigRecord:
        fields = rules.validate_config(delivery_type, email, slack_url, slack_channel, webhook_url)
        with self._lock:
            self._exists(cache_id)
            rules.check_config_count(sum(c.cache_id == cache_id for c in self._configs.values()))
            config = DeliveryConfigRecord(
                self._alert_id("config"), cache_id, *fields, webhook_secret=webhook_secret
            )
            self._configs[config.id] = config
            return config

    def list_delivery_configs(self, cache_id: int) -> list[DeliveryConfigRecord]:
        with self._lock:
            self._exists(cache_id)
            return sorted(
                (c for c in self._configs.values() if c.cache_id == cache_id), key=lambda c: c.id
            )

    def find_delivery_config(self, cache_id: int, config_id: int) -> DeliveryConfigRecord:
        with self._lock:
            return self._config(cache_id, config_id)

    def delete_delivery_config(self, cache_id: int, config_id: int) -> None:
        with self._lock:
            self._config(cache_id, config_id)
            if any(a.delivery_config_id == config_id for a in self._alerts.values()):
                raise rules.config_in_use(config_id)
            del self._configs[config_id]
            for key in [k for k, d in self._deliveries.items() if d.config_id == config_id]:
                del self._deliveries[key]

    # -- deliveries -------------------------------------------------------------------------

    def claim_deliveries(self, now: float, lease_until: float, limit: int) -> list[DeliveryRecord]:
        with self._lock:
            due = sorted(
                (
                    d
                    for d in self._deliveries.values()
                    if d.status == "pending" and d.next_attempt_at <= now
                ),
                key=lambda d: (d.next_attempt_at, d.id),
            )[:limit]
            for d in due:
                self._deliveries[d.id] = dataclasses.replace(d, next_attempt_at=lease_until)
            return [self._copy(d) for d in due]

    def finish_delivery(
        self, delivery_id: int, *, at: float, error: str = "", retry_at: float | None = None
    ) -> None:
        status = "delivered" if not error else ("pending" if retry_at is not None else "failed")
        with self._lock:
            d = self._deliveries.get(delivery_id)
            if d is None:
                return
            self._deliveries[delivery_id] = dataclasses.replace(
                d,
                status=status,
                attempts=d.attempts + 1,
                last_error=error[: rules.MAX_ERROR],
                next_attempt_at=retry_at if retry_at is not None else at,
                delivered_at=at if not error else None,
            )

    def list_deliveries(self, cache_id: int, limit: int = 50) -> list[DeliveryRecord]:
        with self._lock:
            self._exists(cache_id)
            newest = sorted(
                (d for d in self._deliveries.values() if d.cache_id == cache_id),
                key=lambda d: (d.created_at, d.id),
                reverse=True,
            )
            return [self._copy(d) for d in newest[:limit]]

    def prune_deliveries(self, before: float) -> int:
        with self._lock:
            old = [
                k
                for k, d in self._deliveries.items()
                if d.created_at < before and d.status != "pending"
            ]
            for key in old:
                del self._deliveries[key]
            return len(old)
