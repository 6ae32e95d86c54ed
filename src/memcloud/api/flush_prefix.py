"""The key prefix a flush request names (memcloud extension): only the keys starting with it go.

Given as `?prefix=P` (so that a deploy-hook URL carries it) or in the body, as a `prefix` form
field or a top-level JSON string (neither a deploy hook's form nor a release webhook's JSON has
one: only whoever set the hook up can have added it). The prefix is UTF-8 text (the query
string percent-decoded byte for byte) of at most 250 bytes with no space or control character,
as a memcache key; empty or absent, the whole cache is flushed.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from memcloud.api.errors import ApiError, Problem
from memcloud.protocol.limits import KEY_MAX_LENGTH
from memcloud.protocol.prefix import prefix_error

__all__ = ["PREFIX_PARAMETER", "flush_prefix"]

FIELD: Final = "prefix"
# The query parameter as /openapi.json documents it.
PREFIX_PARAMETER: Final[dict[str, Any]] = {
    "name": FIELD,
    "in": "query",
    "required": False,
    "description": (
        "memcloud extension: flush only the keys starting with this prefix (UTF-8, at most "
        f"{KEY_MAX_LENGTH} bytes, no space or control character); empty: the whole cache"
    ),
    "schema": {"type": "string"},
}


def _refuse(text: str) -> ApiError:
    return ApiError(Problem.BAD_REQUEST, text)


def _from_query(request: Request) -> bytes | None:
    """The query string's prefix, decoded byte for byte (Starlette's own decoding would turn
    bytes that are not UTF-8 into U+FFFD and flush another prefix than the one sent)."""
    raw: bytes = request.scope.get("query_string", b"")
    found: list[bytes] = []
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) == FIELD.encode():
            found.append(unquote_to_bytes(value.replace(b"+", b" ")))
    if len(found) > 1:
        raise _refuse("give one prefix, not several")
    if not found:
        return None
    try:
        found[0].decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("prefix is not UTF-8 text") from None
    return found[0]


def _from_body(fields: dict[str, Any] | None) -> bytes | None:
    if not fields or FIELD not in fields:
        return None
    value = fields[FIELD]
    if not isinstance(value, str):
        raise _refuse("prefix must be a string")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a JSON string may carry a lone surrogate
        raise _refuse("prefix is not UTF-8 text") from None


def flush_prefix(request: Request, fields: dict[str, Any] | None) -> bytes:
    """The prefix the request names (b"": the whole cache), from its query string or its
    body's fields; ApiError (400) when it cannot be."""
    query = _from_query(request)
    body = _from_body(fields)
    if query is not None and body is not None and query != body:
        raise _refuse("the query string and the body name different prefixes")
    prefix = query if query is not None else body or b""
    problem = prefix_error(prefix)
    if problem:
        raise _refuse(problem)
    return prefix
