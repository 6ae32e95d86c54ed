"""HTTP Basic authentication with a cache credential: the API's one gate, deny by default.

Only credentials with the api capability pass; a credential reaches only its own cache;
flushing also needs the flush capability.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re

from starlette.requests import Request

from memcloud.api.context import ApiContext
from memcloud.api.errors import ApiError, Problem
from memcloud.auth import Principal
from memcloud.control.base import NotFound
from memcloud.control.secrets import verify_dummy, verify_password
from memcloud.webauth import LoginGuard

__all__ = ["authenticate", "authorize", "basic_credentials", "parse_cache_id"]

# Cache ids are SQLite rowids: at most 19 digits; anything longer is no cache of ours.
_CACHE_ID_RE = re.compile(r"^[0-9]{1,18}$")
# A header longer than this is not a username and a 32-character password.
MAX_AUTHORIZATION_BYTES = 1024


def parse_cache_id(text: str) -> int:
    if not _CACHE_ID_RE.match(text):
        raise ApiError(Problem.BAD_ID)
    return int(text)


def basic_credentials(request: Request) -> tuple[str, str]:
    """The username and password of the Authorization header (userinfo in a URL ends here)."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(Problem.NO_AUTH)
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or len(header) > MAX_AUTHORIZATION_BYTES:
        raise ApiError(Problem.BAD_AUTH)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ApiError(Problem.BAD_AUTH) from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ApiError(Problem.BAD_AUTH)
    return username, password


def authenticate(ctx: ApiContext, request: Request) -> Principal:
    """The request's principal (api capability checked); no cache is named yet (login)."""
    username, password = basic_credentials(request)
    guard = _admitted(ctx, request, username)
    principal = ctx.service.directory.authenticate(username, password)
    if principal is None:
        guard.failed(request, username)
    return _with_api(principal)


def _admitted(ctx: ApiContext, request: Request, username: str) -> LoginGuard:
    """The login throttle's guard, once it lets this attempt's password be checked; 429 with
    Retry-After while the client's prefix or this username must wait (auth_throttle)."""
    guard = LoginGuard.of(ctx.service)
    wait = guard.refusal(request, username)
    if wait is not None:
        raise ApiError(Problem.THROTTLED, headers={"Retry-After": wait})
    return guard


def _with_api(principal: Principal | None) -> Principal:
    """Bad or unknown credentials are 401; a credential without the api capability, 403."""
    if principal is None:
        raise ApiError(Problem.BAD_AUTH)
    if not principal.api:
        raise ApiError(Problem.FORBIDDEN)
    return principal


async def _authenticate_disabled(
    ctx: ApiContext, cache_id: int, username: str, password: str
) -> Principal | None:
    """A credential of a disabled cache (which the data plane refuses), from the store."""

    def lookup() -> Principal | None:
        try:
            record = ctx.store.find_credential(cache_id, username)
        except NotFound:
            verify_dummy(password)  # as long as a wrong password: existence must not show
            return None
        if not verify_password(record, password) or record.username != username:
            return None
        return Principal(
            record.id, record.username, record.cache_id, record.write, record.flush, record.api
        )

    return await asyncio.to_thread(lookup)


async def authorize(
    ctx: ApiContext,
    request: Request,
    cache_ref: str,
    *,
    flush: bool = False,
    disabled_ok: bool = False,
) -> Principal:
    """The principal of a request on cache `cache_ref`, or the ApiError that refuses it.

    Order: the id's form (400/404), then credentials (401/403), then the cache (404 for a
    cache that does not exist, 403 for another tenant's), then the capability.
    """
    cache_id = parse_cache_id(cache_ref)
    username, password = basic_credentials(request)
    guard = _admitted(ctx, request, username)
    principal = ctx.service.directory.authenticate(username, password)
    if principal is None and disabled_ok:
        principal = await _authenticate_disabled(ctx, cache_id, username, password)
    if principal is None:
        guard.failed(request, username)
    principal = _with_api(principal)
    if principal.cache_id != cache_id:
        if cache_id not in ctx.service.directory.caches:
            raise ApiError(Problem.NO_CACHE)
        raise ApiError(Problem.FORBIDDEN)
    if flush and not principal.flush:
        raise ApiError(Problem.FORBIDDEN)
    return principal
