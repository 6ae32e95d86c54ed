"""The HTTP access log: one `memcloud.access` line per request, when its answer is sent.

Each line names the method, the path (query values of secret-looking parameters masked,
any `user:password@` taken out, a deploy-hook token masked), the status, the duration, the
client's address and, when the request used HTTP Basic, the username it gave (never its
password; a bearer token is logged as `bearer`, never its value). Everything a client sent
is escaped and bounded before it reaches the log, so a request cannot forge or flood log
lines.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from typing import Final
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memcloud.logs import NO_ACTOR, Actor, current_actor

__all__ = ["AccessLog", "basic_username", "loggable_path"]

log = logging.getLogger("memcloud.access")

# Longest path (and query) and username kept in a line: enough to read, not to flood.
MAX_PATH_CHARS: Final = 512
MAX_USERNAME_CHARS: Final = 128
MASK: Final = "***"
# Query parameters whose values are secrets wherever they appear (SSO tokens, signatures,
# passwords); their names stay in the line, their values never do.
_SECRET_PARAMETER = re.compile(r"token|pass|secret|key|sig|auth|salt|code|session", re.I)
_USERINFO = re.compile(r"[^/@]*:[^/@]*@")
# A deploy-hook token is the path segment after `/hooks/` (api/hook_routes.py); the v2
# routes' hook ids there are numbers, and stay.
_HOOK_TOKEN = re.compile(r"(/hooks/+)(?![0-9]+(?:/|$))[^/]+")


# What a path prefix is reached through (the change log's `via`).
_VIA: Final = (("/dashboard", "dashboard"), ("/heroku", "provisioning"), ("/sso", "sso"))


def _via(path: str) -> str:
    for prefix, via in _VIA:
        if path.startswith(prefix):
            return via
    return "api"


def _printable(text: str, limit: int) -> str:
    """Control characters escaped (no forged lines), and cut at `limit` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return shown if len(shown) <= limit else shown[:limit] + "..."


def loggable_path(path: str, query: bytes) -> str:
    """The path with a `user:password@` removed, a deploy-hook token and secret query
    values masked."""
    path = _HOOK_TOKEN.sub(rf"\g<1>{MASK}", _USERINFO.sub("", path))
    if query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        shown = "&".join(
            f"{quote(k, safe='')}={MASK if _SECRET_PARAMETER.search(k) else quote(v, safe='')}"
            for k, v in pairs
        )
        path = f"{path}?{shown}"
    return _printable(path, MAX_PATH_CHARS)


def basic_username(authorization: bytes) -> str:
    """The username of an `Authorization: Basic` header ("" if none; "bearer" for a token)."""
    scheme, _, value = authorization.partition(b" ")
    scheme = scheme.lower()
    if scheme == b"bearer":
        return "bearer"
    if scheme != b"basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return ""
    username = decoded.partition(b":")[0].decode("utf-8", "replace")
    return _printable(username, MAX_USERNAME_CHARS)


class AccessLog:
    """Pure ASGI middleware (no task per request): times the request, reads the status
    from the response's start, and logs once the response is done or has failed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response
        client = scope.get("client")
        current_actor.set(
            Actor(
                who=basic_username(dict(scope.get("headers") or ()).get(b"authorization", b"")),
                via=_via(str(scope.get("path", ""))),
                peer=str(client[0]) if client else "",
            )
        )

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        actor = current_actor.get(NO_ACTOR)
        method = _printable(str(scope.get("method", "")), 16)
        path = loggable_path(str(scope.get("path", "")), bytes(scope.get("query_string", b"")))
        duration_ms = round(seconds * 1000, 1)
        log.info(
            "%s %s %d %.1fms",
            method,
            path,
            status,
            duration_ms,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "username": actor.who,
                "via": actor.via,
                "client": actor.peer,
            },
        )
