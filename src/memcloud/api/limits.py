"""Bounds on the API port: how long, how large and how many HTTP requests may be.

Every client of the API port is a stranger until its request is read, so nothing it sends
may hold the server's memory or file descriptors for long:

* `GuardedH11Protocol` (uvicorn's h11 protocol, subclassed) caps open connections and puts a
  deadline on reading each request's head and on reading its body. uvicorn has a keep-alive
  idle timeout but no such deadlines: its keep-alive timer stops at the first byte of a
  request, so a client sending one header line every few seconds was never closed.
* `BodyLimit` (ASGI middleware) refuses a declared `Content-Length` above the route's limit
  (`MAX_BODY_BYTES`; `DEPLOY_HOOK_MAX_BODY_BYTES` for flushes) with 413
  before any of the body is read, and cuts a chunked body as it streams once it passes the
  limit; both answers close the connection so the rest is never read either.
* The head's size is bounded by h11 (`MAX_HEAD_BYTES`): beyond it uvicorn answers 400.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import h11
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from memcloud.api.errors import ApiError, Problem, render, version_of
from memcloud.api.hooks import MAX_BODY_BYTES as DEPLOY_HOOK_MAX_BODY_BYTES

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEPLOY_HOOK_MAX_BODY_BYTES",
    "HEAD_TIMEOUT_SECONDS",
    "KEEP_ALIVE_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "BodyLimit",
    "BodyTooLarge",
    "GuardedH11Protocol",
    "HttpLimits",
    "body_limit",
    "guarded_protocol",
    "too_large_response",
]

log = logging.getLogger("memcloud.api")

# From the connection's start (or the previous response's end) to the end of the headers:
# a browser or curl sends a head in one packet; ten seconds is far beyond any real client.
HEAD_TIMEOUT_SECONDS: Final = 10.0
# From the end of the headers to the end of the body: 64 KiB in 30 s is ~2 KiB/s.
BODY_TIMEOUT_SECONDS: Final = 30.0
# An idle kept-alive connection is closed after this (uvicorn's default, kept explicit).
KEEP_ALIVE_SECONDS: Final = 5
# Request line plus headers: a dashboard's cookies fit many times over.
MAX_HEAD_BYTES: Final = 16 * 1024
# Every body the API takes (JSON, forms, partner calls, SSO) is a few hundred bytes ...
MAX_BODY_BYTES: Final = 64 * 1024
# ... except a flush's: a deploy hook's form carries the release's git log (api/hooks.py),
# a GitHub or GitLab push its commits (a hook token's flush, api/hook_routes.py).
_FLUSH_PATH: Final = re.compile(r"^/api/(?:v1/|v2/caches/|v1/hooks/)?[^/]+/flush$")
# Open HTTP connections at most; beyond it a new one is answered 503 and closed at once.
DEFAULT_MAX_CONNECTIONS: Final = 1000

# The partner API's own error shape ({"message": ...}, as provisioning/partner.py answers).
_PARTNER_PREFIX: Final = "/heroku/"
_PARTNER_TOO_LARGE: Final = "request body too large"
_CLOSE: Final = {"Connection": "close"}
_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 34\r\n\r\nToo many open connections; retry.\n"
)
_TIMED_OUT: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 33\r\n\r\nThe request took too long; retry\n"
)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    head_timeout: float = HEAD_TIMEOUT_SECONDS
    body_timeout: float = BODY_TIMEOUT_SECONDS


class _Phase(enum.Enum):
    HEAD = "head"  # waiting for a request's line and headers
    BODY = "body"  # the head is in; waiting for the rest of the body
    SERVING = "serving"  # the request is read; the app answers (no read deadline)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and read deadlines.

    The deadline follows h11's view of the client: while it is IDLE (no complete head yet)
    the head deadline runs, while it is SEND_BODY the body deadline runs; each starts when
    that phase starts and is not reset by bytes arriving, so trickling cannot extend it.
    """

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _Phase.SERVING
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Refused before uvicorn counts it: one write and a close, nothing kept.
            self._refused = True
            self.transport = transport
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _follow(self) -> None:
        """Start the deadline of the phase the client is in, if it just entered it."""
        state = self.conn.their_state
        if state is h11.IDLE:
            phase = _Phase.HEAD
        elif state is h11.SEND_BODY:
            phase = _Phase.BODY
        else:
            phase = _Phase.SERVING
        if phase is self._phase or self.transport.is_closing():
            return
        self._cancel()
        self._phase = phase
        if phase is _Phase.HEAD:
            self._deadline = self.loop.call_later(self.limits.head_timeout, self._expired)
        elif phase is _Phase.BODY:
            self._deadline = self.loop.call_later(self.limits.body_timeout, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.conn.trailing_data[0] if self._phase is _Phase.HEAD else b"x"
        cycle = self.cycle
        answered = cycle is not None and cycle.response_started and self._phase is _Phase.BODY
        if started and not answered:
            # A client that began a request learns why it is closed; an idle one is just
            # closed, as an idle keep-alive connection is. The app, if it is waiting for
            # the body, sees a disconnect and its answer goes nowhere.
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def guarded_protocol(limits: HttpLimits) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit; answered 413, closed."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large", headers=dict(_CLOSE))


def too_large_response(path: str) -> Response:
    if path.startswith(_PARTNER_PREFIX):
        return JSONResponse({"message": _PARTNER_TOO_LARGE}, status_code=413, headers=_CLOSE)
    return render(version_of(path), ApiError(Problem.TOO_LARGE, headers=dict(_CLOSE)))


def body_limit(path: str) -> int:
    """The largest body a route takes (`path` as routed: slashes already normalised)."""
    return DEPLOY_HOOK_MAX_BODY_BYTES if _FLUSH_PATH.match(path) else MAX_BODY_BYTES


class BodyLimit:
    """Refuse request bodies larger than the route's limit, declared or streamed, unread."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        for name, value in scope["headers"]:
            # h11 has already refused a malformed or repeated-and-different Content-Length.
            if name == b"content-length" and int(value) > limit:
                await too_large_response(scope["path"])(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted, send)
