"""What a flush request's body says: a deploy hook's form, a release webhook's JSON, or nothing.

Authentication is always the Authorization header (userinfo in a deploy-hook URL becomes that
header); the body only feeds the flush log, so an unreadable body is ignored, not refused.

- Legacy HTTP deploy hooks POST `application/x-www-form-urlencoded` fields `app, app_uuid,
  user, url, head, head_long, git_log, prev_head, release`.
- Platform app webhooks (`api:release`) POST JSON with `resource: "release"`, `action`,
  `actor.email` and `data.app.name`, `data.version`, `data.slug.commit`, `data.status`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from memcloud.api.errors import ApiError, Problem

__all__ = ["MAX_BODY_BYTES", "flush_details", "parse_fields", "read_body"]

# Deploy-hook bodies carry a git log; a megabyte is far more than any real one.
MAX_BODY_BYTES = 1024 * 1024
MAX_FORM_FIELDS = 100
DEPLOY_HOOK_FIELDS = frozenset(
    {"app", "app_uuid", "user", "url", "head", "head_long", "git_log", "prev_head", "release"}
)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(Problem.TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(Problem.TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_fields(body: bytes) -> dict[str, Any] | None:
    """A JSON object, or form fields, whatever the declared content type (curl -d sends
    JSON as a form); None when the body is empty or neither."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return None
    return dict(pairs) if pairs else None


def _str(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _get(data: dict[str, Any], *path: str) -> object:
    node: object = data
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def flush_details(fields: dict[str, Any] | None) -> tuple[str, dict[str, str]]:
    """The flush's source (`api`, `deploy_hook`, `webhook`) and its audit details."""
    if not fields:
        return "api", {}
    if fields.get("resource") == "release" or isinstance(fields.get("data"), dict):
        version = _str(_get(fields, "data", "version"))
        webhook = {
            "app": _str(_get(fields, "data", "app", "name")),
            "release": f"v{version}" if version is not None else None,
            "commit": _str(_get(fields, "data", "slug", "commit")),
            "user": _str(_get(fields, "actor", "email")),
            "action": _str(fields.get("action")),
            "status": _str(_get(fields, "data", "status")),
        }
        return "webhook", {k: v for k, v in webhook.items() if v}
    if DEPLOY_HOOK_FIELDS & fields.keys():
        hook = {
            "app": _str(fields.get("app")),
            "release": _str(fields.get("release")),
            "commit": _str(fields.get("head_long")) or _str(fields.get("head")),
            "user": _str(fields.get("user")),
            "url": _str(fields.get("url")),
            "prev_head": _str(fields.get("prev_head")),
            "app_uuid": _str(fields.get("app_uuid")),
        }
        git_log = _str(fields.get("git_log"))
        if git_log:
            hook["git_log"] = git_log.strip().splitlines()[0] if git_log.strip() else None
        return "deploy_hook", {k: v for k, v in hook.items() if v}
    return "api", {}
