"""The alert routes of API v2 (reference §2.6) under `/api/v2/caches/<id>/alerts`, with
the hosted service's statuses and messages, and memcloud's `alerts/deliveries` (the last
deliveries and their attempts).

`/alerts/configs` and `/alerts/deliveries` are declared before `/alerts/<alert_id>`, so
they win. Bodies are read here (not by FastAPI's validation), so a refusal carries the
reference's words followed by what was wrong. Delivery targets are checked for form at
creation (memcloud.alerts.targets); where they resolve to is checked at each delivery.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memcloud.alerts.senders import new_signing_secret
from memcloud.alerts.targets import TargetRefused, check_email, check_url
from memcloud.api.alerts_models import (
    Alert,
    AlertBody,
    Delivery,
    DeliveryConfig,
    DeliveryConfigBody,
    NewWebhookConfig,
    alert_json,
    body_doc,
    config_json,
    delivery_json,
)
from memcloud.api.auth import authorize
from memcloud.api.context import context
from memcloud.api.errors import ApiError, Problem
from memcloud.api.hooks import read_body
from memcloud.api.models import errors
from memcloud.api.shapes import store_call
from memcloud.control.base import ControlError

__all__ = ["DELIVERIES_LIMIT", "router"]

router = APIRouter(prefix="/api/v2/caches/{cache_id}/alerts", tags=["alerts"])
DELIVERIES_LIMIT = 200
_ID_RE = re.compile(r"^[0-9]{1,18}$")
_BAD_ALERT_ID = "The specified alert ID is invalid (not a number)."
_BAD_CONFIG_ID = "The specified alert delivery config ID is invalid (not a number)"
_NOT_ADDED = "The alert could not be added."
_CONFIG_NOT_ADDED = "The alert delivery config could not be added."
_ALERT_FIELDS = (
    "trigger_type",
    "trigger_threshold",
    "delivery_config_id",
    "description",
    "enabled",
)


def _errors(text: str, *, body: bool = False) -> dict[int | str, dict[str, Any]]:
    """The refusals an alert route answers, in v2's error object (as the other v2 routes
    document them): the route's own 400, the login throttle's 429, and 413 where it reads a
    body."""
    rows = errors(
        "v2",
        e400=f"{text} / The specified cache ID is invalid (not a number).",
        e401="Unauthorized to access cache with this ID.",
        e403="Forbidden to access cache with this ID.",
        e404="Cache not found.",
        e429="Too many failed logins. Try again later. (see Retry-After)",
        e500="Unexpected error.",
    )
    if body:
        rows.update(errors("v2", e413="Request Entity Too Large"))
    return rows


def _id(text: str, message: str) -> int:
    if not _ID_RE.match(text):
        raise ApiError(Problem.BAD_REQUEST, message)
    return int(text)


async def _object(request: Request, refusal: str) -> dict[str, Any]:
    body = await read_body(request)
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ApiError(Problem.BAD_REQUEST, f"{refusal} The body must be a JSON object.")
    return data


async def _store(refusal: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A store call whose refusals (not found, invalid, conflict) are 400 with `refusal`
    and the reason; the store's own failure stays a 500."""
    try:
        return await store_call(fn, *args, **kwargs)
    except ApiError as exc:
        if exc.problem in (Problem.NO_CREDENTIAL, Problem.BAD_REQUEST, Problem.CONFLICT):
            raise ApiError(Problem.BAD_REQUEST, f"{refusal} {exc.detail}.") from None
        raise


# -- delivery configs (before /{alert_id}) ---------------------------------------------------


@router.get(
    "/configs",
    response_model=list[DeliveryConfig],
    responses=_errors("Alert delivery configs could not be retrieved."),
    summary="List alert delivery configs",
    operation_id="v2_list_alert_configs",
)
async def list_configs(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    configs = await _store(
        "Alert delivery configs could not be retrieved.",
        ctx.store.list_delivery_configs,
        principal.cache_id,
    )
    return JSONResponse([config_json(c) for c in configs])


def _target(data: dict[str, Any]) -> dict[str, str]:
    """The config's fields as strings, each target checked for form."""
    fields = {
        name: data.get(name, "")
        for name in ("delivery_type", "email", "slack_url", "slack_channel", "webhook_url")
    }
    for name, value in fields.items():
        if not isinstance(value, str):
            raise TargetRefused(f"{name} must be a string")
    kind = fields["delivery_type"]
    # Only the type's own fields are kept (the others answer ""), each checked.
    used = {
        "email": ("email",),
        "slack": ("slack_url", "slack_channel"),
        "webhook": ("webhook_url",),
    }
    for name in ("email", "slack_url", "slack_channel", "webhook_url"):
        if name not in used.get(kind, ()):
            fields[name] = ""
    if kind == "email":
        check_email(fields["email"])
    elif kind == "slack":
        check_url(fields["slack_url"])
    elif kind == "webhook":
        check_url(fields["webhook_url"])
    return fields


@router.post(
    "/configs",
    status_code=201,
    response_model=str | NewWebhookConfig,
    responses=_errors(
        "The alert delivery config could not be added. An alert delivery config requires a type.",
        body=True,
    ),
    summary="Add an alert delivery config (a webhook's answer shows its signing secret once)",
    operation_id="v2_create_alert_config",
    openapi_extra=body_doc(DeliveryConfigBody),
)
async def create_config(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    data = await _object(request, _CONFIG_NOT_ADDED)
    if not data.get("delivery_type"):
        raise ApiError(
            Problem.BAD_REQUEST, f"{_CONFIG_NOT_ADDED} An alert delivery config requires a type."
        )
    try:
        fields = _target(data)
    except TargetRefused as exc:
        raise ApiError(Problem.BAD_REQUEST, f"{_CONFIG_NOT_ADDED} {exc}.") from None
    secret = ""
    if fields["delivery_type"] == "webhook":
        secret = new_signing_secret()
    config = await _store(
        _CONFIG_NOT_ADDED,
        ctx.store.create_delivery_config,
        principal.cache_id,
        webhook_secret=secret,
        **fields,
    )
    message = "Added alert delivery config successfully."
    headers = {"Location": f"{request.url.path}/{config.id}"}
    if not secret:
        return JSONResponse(message, status_code=201, headers=headers)
    shown = {**config_json(config), "message": message, "webhook_secret": secret}
    return JSONResponse(shown, status_code=201, headers=headers)


@router.delete(
    "/configs/{config_id}",
    status_code=204,
    responses=_errors(f"{_BAD_CONFIG_ID}, or the alert delivery config could not be deleted."),
    summary="Delete an alert delivery config (refused while an alert uses it)",
    operation_id="v2_delete_alert_config",
)
async def delete_config(cache_id: str, config_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    refusal = f"{_BAD_CONFIG_ID}, or the alert delivery config could not be deleted."
    number = _id(config_id, refusal)
    await _store(refusal, ctx.store.delete_delivery_config, principal.cache_id, number)
    return Response(status_code=204)


# -- deliveries (memcloud) ---------------------------------------------------------------------


@router.get(
    "/deliveries",
    response_model=list[Delivery],
    responses=_errors("Alert deliveries could not be retrieved."),
    summary="The cache's last alert deliveries, newest first, with their attempts (memcloud)",
    operation_id="v2_list_alert_deliveries",
)
async def list_deliveries(
    cache_id: str, request: Request, limit: int = Query(50, ge=1, le=DELIVERIES_LIMIT)
) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    records = await _store(
        "Alert deliveries could not be retrieved.",
        ctx.store.list_deliveries,
        principal.cache_id,
        limit,
    )
    return JSONResponse([delivery_json(d) for d in records])


# -- alerts ---------------------------------------------------------------------------------


@router.get(
    "",
    response_model=list[Alert],
    responses=_errors("Alerts could not be retrieved."),
    summary="List alerts",
    operation_id="v2_list_alerts",
)
async def list_alerts(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    alerts = await _store(
        "Alerts could not be retrieved.", ctx.store.list_alerts, principal.cache_id
    )
    return JSONResponse([alert_json(a) for a in alerts])


def _alert_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The alert fields of a body (`id` is ignored: the path names the alert)."""
    fields = {name: data[name] for name in _ALERT_FIELDS if name in data}
    config = fields.get("delivery_config_id")
    if config is not None and (isinstance(config, bool) or not isinstance(config, int)):
        raise ControlError("delivery_config_id must be a number")
    return fields


@router.post(
    "",
    status_code=201,
    response_model=str,
    responses=_errors(f"{_NOT_ADDED} An alert requires a type.", body=True),
    summary="Add an alert",
    operation_id="v2_create_alert",
    openapi_extra=body_doc(AlertBody),
)
async def create_alert(cache_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    data = await _object(request, _NOT_ADDED)
    if not data.get("trigger_type"):
        raise ApiError(Problem.BAD_REQUEST, f"{_NOT_ADDED} An alert requires a type.")
    for needed in ("trigger_threshold", "delivery_config_id"):
        if data.get(needed) is None:
            raise ApiError(Problem.BAD_REQUEST, f"{_NOT_ADDED} An alert requires {needed}.")
    try:
        fields = _alert_fields(data)
    except ControlError as exc:
        raise ApiError(Problem.BAD_REQUEST, f"{_NOT_ADDED} {exc}.") from None
    alert = await _store(_NOT_ADDED, ctx.store.create_alert, principal.cache_id, **fields)
    return JSONResponse(
        "Added alert successfully.",
        status_code=201,
        headers={"Location": f"{request.url.path}/{alert.id}"},
    )


@router.get(
    "/{alert_id}",
    response_model=Alert,
    responses={
        **_errors(_BAD_ALERT_ID),
        **errors("v2", e404="Alert not found. / Cache not found."),
    },
    summary="Get an alert",
    operation_id="v2_get_alert",
)
async def get_alert(cache_id: str, alert_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    number = _id(alert_id, _BAD_ALERT_ID)
    try:
        alert = await store_call(ctx.store.find_alert, principal.cache_id, number)
    except ApiError as exc:
        if exc.problem is Problem.NO_CREDENTIAL:
            return JSONResponse({"message": "Alert not found."}, status_code=404)
        raise
    return JSONResponse(alert_json(alert))


@router.put(
    "/{alert_id}",
    status_code=201,
    response_model=str,
    responses=_errors(
        "The specified alert ID is invalid (not a number), or the alert could not be updated.",
        body=True,
    ),
    summary="Update an alert (only the fields given change)",
    operation_id="v2_update_alert",
    openapi_extra=body_doc(AlertBody),
)
async def update_alert(cache_id: str, alert_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    refusal = "The specified alert ID is invalid (not a number), or the alert could not be updated."
    number = _id(alert_id, refusal)
    data = await _object(request, refusal)
    try:
        fields = _alert_fields(data)
    except ControlError as exc:
        raise ApiError(Problem.BAD_REQUEST, f"{refusal} {exc}.") from None
    await _store(refusal, ctx.store.update_alert, principal.cache_id, number, **fields)
    return JSONResponse("Updated alert successfully.", status_code=201)


@router.delete(
    "/{alert_id}",
    status_code=201,
    response_model=str,
    responses=_errors(
        "The specified alert ID is invalid (not a number), or the alert could not be deleted."
    ),
    summary="Delete an alert",
    operation_id="v2_delete_alert",
)
async def delete_alert(cache_id: str, alert_id: str, request: Request) -> Response:
    ctx = context(request)
    principal = await authorize(ctx, request, cache_id)
    refusal = "The specified alert ID is invalid (not a number), or the alert could not be deleted."
    number = _id(alert_id, refusal)
    await _store(refusal, ctx.store.delete_alert, principal.cache_id, number)
    return JSONResponse("Deleted alert successfully.", status_code=201)
