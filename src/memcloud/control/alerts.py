"""Alerts, their delivery configs and delivery records: the records and the rules every
control store checks (SQL in memcloud.control.sql.alerts, memory in
memcloud.control.memory_alerts).

Alerts change nothing the data plane reads, so no alert write bumps the revision. A tenant
writes these rows through the API: every field is bounded here, once for every store.
"""

from __future__ import annotations

import math
from typing import Final

from memcloud.control.alert_records import AlertRecord, DeliveryConfigRecord, DeliveryRecord
from memcloud.control.base import Conflict, ControlError, NotFound

__all__ = [
    "ALERT_TYPES",
    "DELIVERY_STATUSES",
    "DELIVERY_TYPES",
    "MAX_ALERTS_PER_CACHE",
    "MAX_CONFIGS_PER_CACHE",
    "MAX_DESCRIPTION",
    "MAX_ERROR",
    "MAX_TARGET",
    "PERCENT_TYPES",
    "AlertRecord",
    "DeliveryConfigRecord",
    "DeliveryRecord",
    "check_alert_count",
    "check_config_count",
    "config_in_use",
    "no_alert",
    "no_config",
    "validate_alert",
    "validate_config",
]

# The hosted service's two types, then memcloud's: evictions per minute, connections as a
# percentage of the plan's connection limit, latency in microseconds.
PERCENT_TYPES: Final = ("hit_rate", "memory_usage", "connections")
ALERT_TYPES: Final = ("hit_rate", "memory_usage", "evictions", "connections", "latency")
DELIVERY_TYPES: Final = ("email", "slack", "webhook")
DELIVERY_STATUSES: Final = ("pending", "delivered", "failed")
# A tenant's rows are bounded: nobody needs more, and each alert is evaluated every minute.
MAX_ALERTS_PER_CACHE: Final = 50
MAX_CONFIGS_PER_CACHE: Final = 20
MAX_DESCRIPTION: Final = 500
# A URL or an address (RFC 5321 caps a path at 256; URLs of webhooks are short).
MAX_TARGET: Final = 2048
MAX_CHANNEL: Final = 100
# Of a failed delivery's error, what is kept (a receiver's answer is hostile text).
MAX_ERROR: Final = 300
# Evictions a minute and latency in microseconds: far above anything a node reaches.
MAX_THRESHOLD: Final = 1e12


def _text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise ControlError(f"{name} must be a string")
    if len(value) > limit or any(ord(c) < 32 and c not in "\t" for c in value):
        raise ControlError(f"{name} must be at most {limit} printable characters")
    return value


def validate_alert(
    trigger_type: object, threshold: object, description: object, enabled: object
) -> tuple[str, float, str, bool]:
    if trigger_type not in ALERT_TYPES:
        raise ControlError(f"trigger_type must be one of {', '.join(ALERT_TYPES)}")
    assert isinstance(trigger_type, str)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ControlError("trigger_threshold must be a number")
    value = float(threshold)
    top = 100.0 if trigger_type in PERCENT_TYPES else MAX_THRESHOLD
    if not math.isfinite(value) or not 0 <= value <= top:
        raise ControlError(f"trigger_threshold of {trigger_type} must be from 0 to {top:g}")
    if not isinstance(enabled, bool):
        raise ControlError("enabled must be true or false")
    return trigger_type, value, _text("description", description, MAX_DESCRIPTION), enabled


def validate_config(
    delivery_type: object, email: object, slack_url: object, slack_channel: object, url: object
) -> tuple[str, str, str, str, str]:
    """The config's fields, checked for form; whether a URL may be reached is the sender's
    call at delivery (memcloud.alerts.targets), since DNS may change meanwhile."""
    if delivery_type not in DELIVERY_TYPES:
        raise ControlError(f"delivery_type must be one of {', '.join(DELIVERY_TYPES)}")
    assert isinstance(delivery_type, str)
    fields = (
        _text("email", email, MAX_TARGET),
        _text("slack_url", slack_url, MAX_TARGET),
        _text("slack_channel", slack_channel, MAX_CHANNEL),
        _text("webhook_url", url, MAX_TARGET),
    )
    needed = {"email": "email", "slack": "slack_url", "webhook": "webhook_url"}[delivery_type]
    index = ("email", "slack_url", "slack_channel", "webhook_url").index(needed)
    if not fields[index]:
        raise ControlError(f"a {delivery_type} delivery config requires {needed}")
    return (delivery_type, *fields)


def check_alert_count(count: int) -> None:
    if count >= MAX_ALERTS_PER_CACHE:
        raise Conflict(f"a cache has at most {MAX_ALERTS_PER_CACHE} alerts")


def check_config_count(count: int) -> None:
    if count >= MAX_CONFIGS_PER_CACHE:
        raise Conflict(f"a cache has at most {MAX_CONFIGS_PER_CACHE} alert delivery configs")


def no_alert(cache_id: int, alert_id: int) -> NotFound:
    return NotFound(f"no alert with id {alert_id} in cache {cache_id}")


def no_config(cache_id: int, config_id: int) -> NotFound:
    return NotFound(f"no alert delivery config with id {config_id} in cache {cache_id}")


def config_in_use(config_id: int) -> Conflict:
    return Conflict(f"alert delivery config {config_id} is used by an alert; delete it first")
