"""The alert routes' JSON shapes (reference §2.6) for the OpenAPI document, and the
functions that render records in them. memcloud's additions to the hosted shapes are
marked: the hosted service's clients ignore fields they do not know."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from memcloud.control.alert_records import AlertRecord, DeliveryConfigRecord, DeliveryRecord

__all__ = [
    "Alert",
    "AlertBody",
    "Delivery",
    "DeliveryConfig",
    "DeliveryConfigBody",
    "NewWebhookConfig",
    "alert_json",
    "body_doc",
    "config_json",
    "delivery_json",
    "iso",
]

TriggerType = Literal["hit_rate", "memory_usage", "evictions", "connections", "latency"]
DeliveryType = Literal["email", "slack", "webhook"]


class AlertBody(BaseModel):
    """Create: every field but `enabled` (default true) and `description`; update: any."""

    trigger_type: TriggerType
    trigger_threshold: float = Field(
        description=(
            "percent (hit_rate, memory_usage, connections), evictions a minute (evictions),"
            " or µs (latency: the slowest server's mean probed get during the minute)"
        )
    )
    delivery_config_id: int
    description: str = ""
    enabled: bool = True


class Alert(AlertBody):
    id: int
    state: Literal["firing", "ok"] = Field(description="memcloud: the last evaluation's state")
    value: float | None = Field(description="memcloud: the last measured value, if any")
    changed_at: str | None = Field(description="memcloud: when the state last changed")


class DeliveryConfigBody(BaseModel):
    delivery_type: DeliveryType
    email: str = ""
    slack_url: str = ""
    slack_channel: str = ""
    webhook_url: str = Field("", description="memcloud: where a webhook config POSTs")


class DeliveryConfig(DeliveryConfigBody):
    id: int


class NewWebhookConfig(DeliveryConfig):
    """A webhook config as created: the only time its signing secret is shown."""

    message: str
    webhook_secret: str


class Delivery(BaseModel):
    """memcloud: one message of an alert and its attempts."""

    id: int
    alert_id: int
    delivery_config_id: int
    event: Literal["fired", "resolved"]
    created_at: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_error: str
    delivered_at: str | None
    message: str


def iso(at: float | None) -> str | None:
    return None if not at else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    return {
        "id": alert.id,
        "trigger_type": alert.trigger_type,
        "trigger_threshold": _number(alert.trigger_threshold),
        "delivery_config_id": alert.delivery_config_id,
        "description": alert.description,
        "enabled": alert.enabled,
        "state": "firing" if alert.firing else "ok",
        "value": alert.value,
        "changed_at": iso(alert.changed_at),
    }


def config_json(config: DeliveryConfigRecord) -> dict[str, Any]:
    """A config as listed: never its signing secret."""
    return {
        "id": config.id,
        "delivery_type": config.delivery_type,
        "email": config.email,
        "slack_url": config.slack_url,
        "slack_channel": config.slack_channel,
        "webhook_url": config.webhook_url,
    }


def delivery_json(delivery: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "alert_id": delivery.alert_id,
        "delivery_config_id": delivery.config_id,
        "event": delivery.event,
        "created_at": iso(delivery.created_at),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_error": delivery.last_error,
        "delivered_at": iso(delivery.delivered_at),
        "message": str(delivery.payload.get("message", "")),
    }


def body_doc(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """An OpenAPI request body of `model`'s schema (routes read their bodies themselves, so
    refusals keep the reference's words)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
