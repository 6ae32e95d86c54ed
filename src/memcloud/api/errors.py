"""The API's failures, and the exact status and body each API version answers for them.

Routes raise `ApiError(Problem.X)`; one table per version picks the wire shape, so the texts
stay those of the hosted service's documentation: v1 answers JSON strings, v2 answers
`{"message": ...}` objects (its server's framework style, e.g. `{"message": "Bad user"}`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from starlette.responses import JSONResponse, Response

__all__ = ["ApiError", "ApiVersion", "Problem", "render", "version_of"]


class ApiVersion(enum.Enum):
    V1 = "v1"
    V2 = "v2"
    OTHER = "other"


class Problem(enum.Enum):
    NO_AUTH = "no credentials given"
    BAD_AUTH = "unknown credentials"
    FORBIDDEN = "credential may not do this"
    BAD_ID = "cache id is not a number"
    NO_CACHE = "no such cache"
    NO_CREDENTIAL = "no such credential"
    BAD_REQUEST = "malformed request"
    CONFLICT = "request conflicts with the current state"
    NODES_FAILED = "some nodes failed"
    SERVER = "unexpected failure"
    NOT_FOUND = "no such route"
    METHOD = "method not allowed"
    TOO_LARGE = "request body too large"
    STORE_FAILED = "the control database failed"
    THROTTLED = "too many failed logins"
    # Deploy-hook tokens (api/hook_routes.py): the detail says which refusal it is.
    HOOK_REFUSED = "no usable deploy hook token"
    BAD_SIGNATURE = "the webhook's signature or token header does not match"
    NO_HOOK = "no such deploy hook"


_V1_FORBIDDEN = "You are not authorized to perform this action."
# The login throttle's refusal (auth_throttle); Retry-After says when to try again.
_THROTTLED = "Too many failed logins. Try again later."
_V1_NO_CACHE = "No cache found."

# (status, body) per problem; None body = use the error's own detail.
_V1: dict[Problem, tuple[int, str | None]] = {
    # The v1 documentation lists 403 for every authentication and authorization failure.
    Problem.NO_AUTH: (403, _V1_FORBIDDEN),
    Problem.BAD_AUTH: (403, _V1_FORBIDDEN),
    Problem.FORBIDDEN: (403, _V1_FORBIDDEN),
    # Silent in the reference: a non-numeric id names no cache, so "No cache found." (404).
    Problem.BAD_ID: (404, _V1_NO_CACHE),
    Problem.NO_CACHE: (404, _V1_NO_CACHE),
    Problem.NO_CREDENTIAL: (404, "No credential found."),
    Problem.BAD_REQUEST: (400, None),
    Problem.CONFLICT: (400, None),
    Problem.NODES_FAILED: (500, None),
    Problem.SERVER: (500, "Server error"),
    Problem.NOT_FOUND: (404, "Not found."),
    Problem.METHOD: (405, "Method not allowed."),
    Problem.TOO_LARGE: (413, "Request body too large."),
    Problem.STORE_FAILED: (500, None),
    Problem.THROTTLED: (429, _THROTTLED),
    Problem.HOOK_REFUSED: (403, None),
    Problem.BAD_SIGNATURE: (401, None),
    Problem.NO_HOOK: (404, "No deploy hook found."),
}

_V2_FORBIDDEN = "Forbidden to access cache with this ID."
_V2: dict[Problem, tuple[int, str | None]] = {
    Problem.NO_AUTH: (401, "Unauthorized to access cache with this ID."),
    Problem.BAD_AUTH: (401, "Bad user"),
    Problem.FORBIDDEN: (403, _V2_FORBIDDEN),
    Problem.BAD_ID: (400, "The specified cache ID is invalid (not a number)."),
    Problem.NO_CACHE: (404, "Cache not found."),
    Problem.NO_CREDENTIAL: (404, "Credential not found."),
    Problem.BAD_REQUEST: (400, None),
    Problem.CONFLICT: (400, None),
    Problem.NODES_FAILED: (500, None),
    Problem.SERVER: (500, "Unexpected error."),
    Problem.NOT_FOUND: (404, "Not Found"),
    Problem.METHOD: (405, "Method Not Allowed"),
    Problem.TOO_LARGE: (413, "Request Entity Too Large"),
    Problem.STORE_FAILED: (500, None),
    Problem.THROTTLED: (429, _THROTTLED),
    Problem.HOOK_REFUSED: (403, None),
    Problem.BAD_SIGNATURE: (401, None),
    Problem.NO_HOOK: (404, "Deploy hook not found."),
}


class ApiError(Exception):
    """A request the API refuses; `detail` is the user-facing text where the table has none."""

    def __init__(
        self,
        problem: Problem,
        detail: str | None = None,
        *,
        addresses: Sequence[str] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or problem.value)
        self.problem = problem
        self.detail = detail
        self.addresses = list(addresses)
        self.headers = headers or {}


def version_of(path: str) -> ApiVersion:
    if path.startswith("/api/v2/"):
        return ApiVersion.V2
    if path.startswith("/api/"):
        return ApiVersion.V1
    return ApiVersion.OTHER


def _text(error: ApiError, table: dict[Problem, tuple[int, str | None]]) -> tuple[int, str]:
    status, text = table[error.problem]
    if error.problem is Problem.NODES_FAILED:
        # The reference's shape: "Server error: a.b.c.totallyaserver.com:1234,..."
        return status, "Server error: " + ",".join(error.addresses)
    if error.problem is Problem.STORE_FAILED and table is _V1:
        # v1's 500 is "Server error"; the cause follows it, as with failed nodes.
        return status, f"Server error: {error.detail}"
    return status, text if text is not None else (error.detail or error.problem.value)


def render(version: ApiVersion, error: ApiError) -> Response:
    headers = dict(error.headers)
    if version is ApiVersion.V1:
        status, text = _text(error, _V1)
        return JSONResponse(text, status_code=status, headers=headers)
    status, text = _text(error, _V2)
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Basic realm="memcloud"')
    if version is ApiVersion.V2:
        return JSONResponse({"message": text}, status_code=status, headers=headers)
    return JSONResponse({"detail": text}, status_code=status, headers=headers)
