"""SQL for alerts, their delivery configs and deliveries, the same on every engine: the
alert methods of the shared SQL store (`SqlStore` inherits them).

Nothing here bumps the revision (no node reads alerts). State changes that more than one
evaluator could race on are compare-and-set in one statement: an alert fires (and queues
its message) only if it was not firing, and a delivery is claimed only if it is still due,
so two API processes on one PostgreSQL database never send one message twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memcloud.control import alerts as rules
from memcloud.control.alerts import AlertRecord, DeliveryConfigRecord, DeliveryRecord
from memcloud.control.rules import may_exist, no_cache_id
from memcloud.control.sql.connection import Connection, Engine

__all__ = ["SqlAlerts"]

_ALERT = (
    "id, cache_id, trigger_type, trigger_threshold, delivery_config_id, description, enabled,"
    " firing, value, changed_at"
)
_CONFIG = (
    "id, cache_id, delivery_type, email, slack_url, slack_channel, webhook_url, webhook_secret"
)
_DELIVERY = (
    "id, cache_id, alert_id, config_id, event, created_at, payload, status, attempts,"
    " next_attempt_at, last_error, delivered_at"
)


def _alert(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row[0]),
        cache_id=int(row[1]),
        trigger_type=str(row[2]),
        trigger_threshold=float(row[3]),
        delivery_config_id=int(row[4]),
        description=str(row[5]),
        enabled=bool(row[6]),
        firing=bool(row[7]),
        value=None if row[8] is None else float(row[8]),
        changed_at=float(row[9]),
    )


def _config(row: Any) -> DeliveryConfigRecord:
    return DeliveryConfigRecord(*(int(row[0]), int(row[1])), *(str(v) for v in row[2:8]))


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=int(row[0]),
        cache_id=int(row[1]),
        alert_id=int(row[2]),
        config_id=int(row[3]),
        event=str(row[4]),
        created_at=float(row[5]),
        payload=json.loads(str(row[6])),
        status=str(row[7]),
        attempts=int(row[8]),
        next_attempt_at=float(row[9]),
        last_error=str(row[10]),
        delivered_at=None if row[11] is None else float(row[11]),
    )


class SqlAlerts:
    """The alert methods of `ControlStore` over `self.engine`."""

    engine: Engine

    @contextmanager
    def _alerts_tx(self) -> Iterator[Connection]:
        with self.engine.session() as conn, conn.transaction():
            yield conn

    @staticmethod
    def _cache_exists(conn: Connection, cache_id: int) -> None:
        if (
            not may_exist(cache_id)
            or conn.execute("SELECT 1 FROM caches WHERE id = ?", (cache_id,)).fetchone() is None
        ):
            raise no_cache_id(cache_id)

    @staticmethod
    def _get_alert(conn: Connection, cache_id: int, alert_id: int) -> AlertRecord:
        row = None
        if may_exist(alert_id):
            row = conn.execute(
                f"SELECT {_ALERT} FROM alerts WHERE id = ? AND cache_id = ?", (alert_id, cache_id)
            ).fetchone()
        if row is None:
            raise rules.no_alert(cache_id, alert_id)
        return _alert(row)

    @staticmethod
    def _get_config(conn: Connection, cache_id: int, config_id: int) -> DeliveryConfigRecord:
        row = None
        if may_exist(config_id):
            row = conn.execute(
                f"SELECT {_CONFIG} FROM alert_configs WHERE id = ? AND cache_id = ?",
                (config_id, cache_id),
            ).fetchone()
        if row is None:
            raise rules.no_config(cache_id, config_id)
        return _config(row)

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
        with self._alerts_tx() as conn:
            self._cache_exists(conn, cache_id)
            self._get_config(conn, cache_id, delivery_config_id)
            count = conn.execute(
                "SELECT count(*) FROM alerts WHERE cache_id = ?", (cache_id,)
            ).fetchone()
            rules.check_alert_count(int(count[0]))
            row = conn.execute(
                "INSERT INTO alerts (cache_id, trigger_type, trigger_threshold,"
                " delivery_config_id, description, enabled) VALUES (?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (cache_id, kind, threshold, delivery_config_id, text, on),
            ).fetchone()
            return self._get_alert(conn, cache_id, int(row[0]))

    def list_alerts(self, cache_id: int | None = None) -> list[AlertRecord]:
        """One cache's alerts (NotFound if no such cache), or every cache's (None)."""
        with self.engine.session() as conn:
            if cache_id is None:
                rows = conn.execute(f"SELECT {_ALERT} FROM alerts ORDER BY id").fetchall()
            else:
                self._cache_exists(conn, cache_id)
                rows = conn.execute(
                    f"SELECT {_ALERT} FROM alerts WHERE cache_id = ? ORDER BY id", (cache_id,)
                ).fetchall()
        return [_alert(row) for row in rows]

    def find_alert(self, cache_id: int, alert_id: int) -> AlertRecord:
        with self.engine.session() as conn:
            return self._get_alert(conn, cache_id, alert_id)

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
        """Change the given fields. A new trigger, or disabling, forgets what was measured:
        the alert starts again as not firing (no resolve message for a trigger it no longer
        has)."""
        with self._alerts_tx() as conn:
            old = self._get_alert(conn, cache_id, alert_id)
            kind, threshold, text, on = rules.validate_alert(
                old.trigger_type if trigger_type is None else trigger_type,
                old.trigger_threshold if trigger_threshold is None else trigger_threshold,
                old.description if description is None else description,
                old.enabled if enabled is None else enabled,
            )
            config = old.delivery_config_id if delivery_config_id is None else delivery_config_id
            self._get_config(conn, cache_id, config)
            reset = kind != old.trigger_type or threshold != old.trigger_threshold or not on
            conn.execute(
                "UPDATE alerts SET trigger_type = ?, trigger_threshold = ?,"
                " delivery_config_id = ?, description = ?, enabled = ? WHERE id = ?",
                (kind, threshold, config, text, on, alert_id),
            )
            if reset:
                conn.execute(
                    "UPDATE alerts SET firing = ?, value = NULL WHERE id = ?", (False, alert_id)
                )
            return self._get_alert(conn, cache_id, alert_id)

    def delete_alert(self, cache_id: int, alert_id: int) -> None:
        with self._alerts_tx() as conn:
            self._get_alert(conn, cache_id, alert_id)
            conn.execute("DELETE FROM alerts WHERE id = ?", (alert_id,))

    def observe_alert(
        self, alert_id: int, *, value: float, firing: bool, at: float, payload: dict[str, Any]
    ) -> DeliveryRecord | None:
        """Record what the evaluator measured; if the alert (still enabled) changes state,
        queue one delivery of `payload` (event "fired" or "resolved") and answer it."""
        with self._alerts_tx() as conn:
            changed = conn.execute(
                "UPDATE alerts SET firing = ?, value = ?, changed_at = ?"
                " WHERE id = ? AND enabled = ? AND firing = ?",
                (firing, value, at, alert_id, True, not firing),
            ).rowcount
            if not changed:
                conn.execute("UPDATE alerts SET value = ? WHERE id = ?", (value, alert_id))
                return None
            row = conn.execute(
                "SELECT cache_id, delivery_config_id FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
            event = "fired" if firing else "resolved"
            inserted = conn.execute(
                "INSERT INTO alert_deliveries (cache_id, alert_id, config_id, event, created_at,"
                " payload, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (row[0], alert_id, row[1], event, at, json.dumps(payload, sort_keys=True), at),
            ).fetchone()
            found = conn.execute(
                f"SELECT {_DELIVERY} FROM alert_deliveries WHERE id = ?", (inserted[0],)
            ).fetchone()
            return _delivery(found)

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
        with self._alerts_tx() as conn:
            self._cache_exists(conn, cache_id)
            count = conn.execute(
                "SELECT count(*) FROM alert_configs WHERE cache_id = ?", (cache_id,)
            ).fetchone()
            rules.check_config_count(int(count[0]))
            row = conn.execute(
                "INSERT INTO alert_configs (cache_id, delivery_type, email, slack_url,"
                " slack_channel, webhook_url, webhook_secret) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (cache_id, *fields, webhook_secret),
            ).fetchone()
            return self._get_config(conn, cache_id, int(row[0]))

    def list_delivery_configs(self, cache_id: int) -> list[DeliveryConfigRecord]:
        with self.engine.session() as conn:
            self._cache_exists(conn, cache_id)
            rows = conn.execute(
                f"SELECT {_CONFIG} FROM alert_configs WHERE cache_id = ? ORDER BY id", (cache_id,)
            ).fetchall()
        return [_config(row) for row in rows]

    def find_delivery_config(self, cache_id: int, config_id: int) -> DeliveryConfigRecord:
        with self.engine.session() as conn:
            return self._get_config(conn, cache_id, config_id)

    def delete_delivery_config(self, cache_id: int, config_id: int) -> None:
        """Refused while an alert uses it; its deliveries go with it."""
        with self._alerts_tx() as conn:
            self._get_config(conn, cache_id, config_id)
            if conn.execute(
                "SELECT 1 FROM alerts WHERE delivery_config_id = ?", (config_id,)
            ).fetchone():
                raise rules.config_in_use(config_id)
            conn.execute("DELETE FROM alert_configs WHERE id = ?", (config_id,))

    # -- deliveries -------------------------------------------------------------------------

    def claim_deliveries(self, now: float, lease_until: float, limit: int) -> list[DeliveryRecord]:
        """Pending deliveries due by `now`, each moved to `lease_until` so no other sender
        takes it meanwhile (a sender that dies leaves it due again then)."""
        claimed = []
        with self._alerts_tx() as conn:
            rows = conn.execute(
                f"SELECT {_DELIVERY} FROM alert_deliveries WHERE status = ?"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                ("pending", now, limit),
            ).fetchall()
            for row in rows:
                if conn.execute(
                    "UPDATE alert_deliveries SET next_attempt_at = ?"
                    " WHERE id = ? AND status = ? AND next_attempt_at <= ?",
                    (lease_until, row[0], "pending", now),
                ).rowcount:
                    claimed.append(_delivery(row))
        return claimed

    def finish_delivery(
        self, delivery_id: int, *, at: float, error: str = "", retry_at: float | None = None
    ) -> None:
        """One attempt done: delivered (no `error`), to be retried at `retry_at`, or failed
        for good (an error and no `retry_at`)."""
        status = "delivered" if not error else ("pending" if retry_at is not None else "failed")
        with self._alerts_tx() as conn:
            conn.execute(
                "UPDATE alert_deliveries SET status = ?, attempts = attempts + 1,"
                " last_error = ?, next_attempt_at = ?, delivered_at = ? WHERE id = ?",
                (
                    status,
                    error[: rules.MAX_ERROR],
                    retry_at if retry_at is not None else at,
                    at if not error else None,
                    delivery_id,
                ),
            )

    def list_deliveries(self, cache_id: int, limit: int = 50) -> list[DeliveryRecord]:
        """A cache's newest deliveries, newest first; NotFound if no such cache."""
        with self.engine.session() as conn:
            self._cache_exists(conn, cache_id)
            rows = conn.execute(
                f"SELECT {_DELIVERY} FROM alert_deliveries WHERE cache_id = ?"
                " ORDER BY created_at DESC, id DESC LIMIT ?",
                (cache_id, limit),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def prune_deliveries(self, before: float) -> int:
        """Forget deliveries created before `before` that are no longer pending."""
        with self._alerts_tx() as conn:
            return conn.execute(
                "DELETE FROM alert_deliveries WHERE created_at < ? AND status != ?",
                (before, "pending"),
            ).rowcount
