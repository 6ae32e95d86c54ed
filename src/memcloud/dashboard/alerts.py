"""A cache's Alerts page: its alerts (create, enable or disable, delete), where they are
delivered (email, Slack, signed webhook: add, delete) and the last deliveries with their
attempts. Anyone signed in to the cache sees it; changing it needs what the settings page
needs (the API capability, single sign-on or the operator).

The same rules as the API's (memcloud.control.alerts, memcloud.alerts.targets); a refusal
is shown on the page (400) in the store's words. A webhook's signing secret is shown once,
on the page that answers its creation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from memcloud.alerts.senders import new_signing_secret
from memcloud.alerts.targets import TargetRefused, check_email, check_url
from memcloud.alerts.triggers import UNITS
from memcloud.control.alerts import ALERT_TYPES
from memcloud.control.base import ControlError
from memcloud.dashboard.access import Viewer, viewer_for
from memcloud.dashboard.context import dashboard_context
from memcloud.dashboard.pages import cache_pages
from memcloud.dashboard.web import PREFIX, check_form, current_session, redirect, render

__all__ = ["ALERT_NOTICES", "router"]

router = APIRouter()
DELIVERIES_SHOWN = 20

ALERT_NOTICES = {
    "alert_added": "Alert added.",
    "alert_enabled": "Alert enabled.",
    "alert_disabled": "Alert disabled.",
    "alert_deleted": "Alert deleted.",
    "config_added": "Delivery config added.",
    "config_deleted": "Delivery config deleted.",
    "not_allowed": "This credential may not change alerts (it lacks the API capability).",
    "gone": "That alert or delivery config no longer exists.",
}
TRIGGER_LABELS = {
    "hit_rate": "Hit rate under (%)",
    "memory_usage": "Memory usage over (%)",
    "evictions": "Evictions a minute over",
    "connections": "Connections over (% of the plan's limit)",
    "latency": "Latency over (µs; not measured yet)",
}


def _base(cache_id: int) -> str:
    return f"{PREFIX}/caches/{cache_id}/alerts"


async def _page(request: Request, viewer: Viewer, *, status: int = 200, **values: Any) -> Response:
    ctx = dashboard_context(request)
    cache_id = viewer.cache.id

    def load() -> tuple[Any, Any, Any]:
        return (
            ctx.store.list_alerts(cache_id),
            ctx.store.list_delivery_configs(cache_id),
            ctx.store.list_deliveries(cache_id, DELIVERIES_SHOWN),
        )

    alerts, configs, deliveries = await asyncio.to_thread(load)
    return render(
        request,
        "alerts.html",
        status_code=status,
        viewer=viewer,
        cache=viewer.cache,
        pages=cache_pages(cache_id),
        active="alerts",
        notice=ALERT_NOTICES.get(request.query_params.get("notice", "")),
        alerts=alerts,
        configs={c.id: c for c in configs},
        deliveries=deliveries,
        types=ALERT_TYPES,
        labels=TRIGGER_LABELS,
        units=UNITS,
        **values,
    )


@router.get(PREFIX + "/caches/{cache_id}/alerts", include_in_schema=False)
async def alerts_page(request: Request, cache_id: int) -> Response:
    viewer = await viewer_for(request, current_session(request), cache_id)
    if viewer is None:
        return redirect(request, f"{PREFIX}/login?next={_base(cache_id)}")
    return await _page(request, viewer)


async def _change(
    request: Request,
    cache_id: int,
    change: Callable[[Mapping[str, str]], Any],
    notice: str,
) -> Response:
    """A posted change: CSRF and the viewer's right checked, then `change(form)` in a
    thread; a refusal is shown on the page."""
    form = await check_form(request)
    viewer = await viewer_for(request, current_session(request), cache_id)
    if viewer is None:
        return redirect(request, f"{PREFIX}/login?next={_base(cache_id)}")
    if not viewer.can_manage:
        return redirect(request, f"{_base(cache_id)}?notice=not_allowed")
    try:
        shown = await asyncio.to_thread(change, form)
    except (ControlError, TargetRefused, ValueError) as exc:
        return await _page(request, viewer, status=400, error=str(exc))
    if isinstance(shown, dict):
        return await _page(request, viewer, **shown)
    return redirect(request, f"{_base(cache_id)}?notice={notice}")


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ControlError(f"{name} must be a number") from None


@router.post(PREFIX + "/caches/{cache_id}/alerts", include_in_schema=False)
async def add_alert(request: Request, cache_id: int) -> Response:
    store = dashboard_context(request).store

    def change(form: Mapping[str, str]) -> None:
        config = form.get("delivery_config_id", "")
        if not config.isdigit():
            raise ControlError("choose a delivery config (add one first)")
        store.create_alert(
            cache_id,
            trigger_type=form.get("trigger_type", ""),
            trigger_threshold=_number(form.get("trigger_threshold", ""), "the threshold"),
            delivery_config_id=int(config),
            description=form.get("description", ""),
        )

    return await _change(request, cache_id, change, "alert_added")


@router.post(PREFIX + "/caches/{cache_id}/alerts/{alert_id}/enabled", include_in_schema=False)
async def set_enabled(request: Request, cache_id: int, alert_id: int) -> Response:
    store = dashboard_context(request).store
    enabled = request.query_params.get("on") == "1"

    def change(form: Mapping[str, str]) -> None:
        store.update_alert(cache_id, alert_id, enabled=enabled)

    return await _change(
        request, cache_id, change, "alert_enabled" if enabled else "alert_disabled"
    )


@router.post(PREFIX + "/caches/{cache_id}/alerts/{alert_id}/delete", include_in_schema=False)
async def delete_alert(request: Request, cache_id: int, alert_id: int) -> Response:
    store = dashboard_context(request).store
    return await _change(
        request, cache_id, lambda form: store.delete_alert(cache_id, alert_id), "alert_deleted"
    )


@router.post(PREFIX + "/caches/{cache_id}/alerts/configs", include_in_schema=False)
async def add_config(request: Request, cache_id: int) -> Response:
    store = dashboard_context(request).store

    def change(form: Mapping[str, str]) -> dict[str, Any] | None:
        kind = form.get("delivery_type", "")
        target = form.get("target", "").strip()
        fields = {"email": "", "slack_url": "", "webhook_url": ""}
        if kind == "email":
            check_email(target)
            fields["email"] = target
        elif kind in ("slack", "webhook"):
            check_url(target)
            fields[f"{kind}_url"] = target
        secret = new_signing_secret() if kind == "webhook" else ""
        config = store.create_delivery_config(
            cache_id,
            delivery_type=kind,
            slack_channel=form.get("slack_channel", "").strip() if kind == "slack" else "",
            webhook_secret=secret,
            **fields,
        )
        # The secret is shown on this answer only: it is never shown again.
        return {"new_secret": (config, secret)} if secret else None

    return await _change(request, cache_id, change, "config_added")


@router.post(
    PREFIX + "/caches/{cache_id}/alerts/configs/{config_id}/delete", include_in_schema=False
)
async def delete_config(request: Request, cache_id: int, config_id: int) -> Response:
    store = dashboard_context(request).store
    return await _change(
        request,
        cache_id,
        lambda form: store.delete_delivery_config(cache_id, config_id),
        "config_deleted",
    )
