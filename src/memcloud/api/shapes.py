"""JSON shapes of the hosted service's API, and the small parsers the routes share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request

from memcloud.api.errors import ApiError, Problem
from memcloud.api.record_json import credential_v2, flush_json
from memcloud.control.base import Conflict, ControlError, NotFound, StoreFailed
from memcloud.control.models import CredentialRecord
from memcloud.nodes import NodesFailed
from memcloud.stats.names import API_STAT_NAMES

__all__ = [
    "capabilities_json",
    "credential_v1",
    "credential_v2",
    "flush_json",
    "nodes_call",
    "parse_bool",
    "peer_of",
    "pick_stats",
    "store_call",
]

log = logging.getLogger("memcloud.api")
T = TypeVar("T")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def credential_v1(record: CredentialRecord, password: str | None = None) -> dict[str, Any]:
    """v1: no password except right after creation; `uuid` is always null."""
    data: dict[str, Any] = {
        "cache_id": record.cache_id,
        "id": record.id,
        "sasl_username": record.username,
        "uuid": None,
        "primary": record.primary,
        "flush_capability": record.flush,
        "write_capability": record.write,
        "api_capability": record.api,
    }
    if password is not None:
        data["sasl_password"] = password
    return data


def capabilities_json(record: CredentialRecord) -> dict[str, bool]:
    return {
        "flush_capability": record.flush,
        "write_capability": record.write,
        "api_capability": record.api,
    }


def pick_stats(stats: dict[str, int]) -> dict[str, int]:
    """The 31 names of the stats API, in its order."""
    return {name: int(stats.get(name, 0)) for name in API_STAT_NAMES}


def parse_bool(value: object, name: str) -> bool:
    """JSON booleans, and the strings the v1 documentation's own example sends ("false")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ApiError(Problem.BAD_REQUEST, f"{name} must be true or false")


def peer_of(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else ""


async def store_call(
    fn: Callable[..., T], *args: Any, not_found: Problem = Problem.NO_CREDENTIAL, **kwargs: Any
) -> T:
    """A control-store call off the event loop, its errors as API errors."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except NotFound as exc:
        raise ApiError(not_found, str(exc)) from None
    except Conflict as exc:
        raise ApiError(Problem.CONFLICT, str(exc)) from None
    except StoreFailed as exc:
        # The store's own failure (a full disk, a damaged file): a 5xx that names it, so the
        # operator reads the cause instead of a generic error.
        log.error("control database failed: %s", exc.cause)
        raise ApiError(Problem.STORE_FAILED, str(exc)) from None
    except ControlError as exc:
        raise ApiError(Problem.BAD_REQUEST, str(exc)) from None


async def nodes_call(call: Awaitable[T]) -> T:
    """A call over every node of a cache, a failure as the API's error naming the nodes."""
    try:
        return await call
    except NodesFailed as exc:
        raise ApiError(Problem.NODES_FAILED, addresses=exc.addresses) from None
