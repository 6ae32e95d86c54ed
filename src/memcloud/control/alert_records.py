"""The records of alerts, their delivery configs and deliveries (their rules:
memcloud.control.alerts).
Secrets never appear in a repr."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AlertRecord", "DeliveryConfigRecord", "DeliveryRecord"]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert of a cache: fires when its trigger crosses the threshold (hit rate under,
    the others over), resolves when it crosses back. `firing` and `value` are what the
    evaluator saw last (`value` None: nothing measured yet)."""

    id: int
    cache_id: int
    trigger_type: str
    trigger_threshold: float
    delivery_config_id: int
    description: str = ""
    enabled: bool = True
    firing: bool = False
    value: float | None = None
    changed_at: float = 0.0


@dataclass(frozen=True, slots=True)
class DeliveryConfigRecord:
    """Where a cache's alerts go. The webhook's signing secret never appears in a repr."""

    id: int
    cache_id: int
    delivery_type: str
    email: str = ""
    slack_url: str = ""
    slack_channel: str = ""
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One message of an alert (it fired or resolved) to its delivery config, with its
    attempts: `pending` until delivered or out of retries (`failed`)."""

    id: int
    cache_id: int
    alert_id: int
    config_id: int
    event: str  # "fired" or "resolved"
    created_at: float
    payload: dict[str, Any]
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str = ""
    delivered_at: float | None = None
