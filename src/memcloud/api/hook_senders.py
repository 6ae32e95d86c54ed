"""Who sent a deploy-hook request, whether it is really theirs, and what it says.

A hook token's URL is the secret; three senders also sign or tag what they send:

* GitHub (`X-GitHub-Event`, `X-Hub-Signature-256`, `X-GitHub-Delivery`): the signature is
  HMAC-SHA256 of the raw body with the webhook's secret, which must be the hook token. A
  GitHub-looking request with a missing or wrong signature is refused (401). Events: `ping`
  answers OK without flushing; `push` flushes (not a branch deletion); `deployment` flushes;
  `deployment_status` flushes when its state is `success`; any other event is ignored.
  The body is JSON, or a form whose `payload` field is the JSON (GitHub's two content types).
* GitLab (`X-Gitlab-Event`, `X-Gitlab-Token`): the token header must equal the hook token.
  `Push Hook` and `Tag Push Hook` flush (not a deletion), `Deployment Hook` flushes when
  its status is `success`; others are ignored.
* Anything else: a Heroku deploy hook's form, a Heroku release webhook's JSON, or nothing
  (curl, any CI), read as api/hooks.py reads a flush's body.

Each comparison is constant-time. What a payload says only feeds the flush log: app (the
repository), commit, user, ref and environment, each bounded by the flush log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

from memcloud.api.errors import ApiError, Problem
from memcloud.api.hooks import MAX_FORM_FIELDS, flush_details, parse_fields

__all__ = ["Verdict", "read_hook"]

_GITHUB_HEADERS: Final = ("x-github-event", "x-hub-signature-256", "x-hub-signature")
_GITLAB_HEADERS: Final = ("x-gitlab-event", "x-gitlab-token")
_SIGNATURE_PREFIX: Final = "sha256="
# The header names as GitHub and GitLab document them, for the refusals' words.
_NO_SIGNATURE: Final = (
    "A GitHub webhook must be signed: set the webhook's secret to the hook token (the last"
    " part of its URL) so GitHub sends X-Hub-Signature-256."
)
_BAD_SIGNATURE: Final = (
    "X-Hub-Signature-256 does not match: the webhook's secret must be the hook token."
)
_BAD_GITLAB_TOKEN: Final = (
    "X-Gitlab-Token does not match: set the webhook's secret token to the hook token."
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a verified hook request: flush (with these flush log details) or
    answer `reason` without flushing."""

    flush: bool
    sender: str  # github, gitlab, heroku, heroku-webhook, plain
    event: str = ""
    details: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def _text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def _at(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _first(data: Mapping[str, Any], *paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = _text(_at(data, *path))
        if value is not None:
            return value
    return None


def _first_line(value: str | None) -> str | None:
    return value.strip().splitlines()[0] if value and value.strip() else None


def _kept(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value}


def _json_object(body: bytes, content_type: str) -> dict[str, Any]:
    """The JSON object of a body sent as JSON or as a form's `payload` field ({} if none)."""
    text = body.decode("utf-8", "replace")
    if "x-www-form-urlencoded" in content_type:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            return {}
        text = dict(pairs).get("payload", "")
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _github(headers: Mapping[str, str], body: bytes, token: str) -> Verdict:
    signature = headers.get("x-hub-signature-256", "").strip()
    if not signature.startswith(_SIGNATURE_PREFIX):
        raise ApiError(Problem.BAD_SIGNATURE, _NO_SIGNATURE)
    expected = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    given = signature[len(_SIGNATURE_PREFIX) :].lower()
    if not hmac.compare_digest(expected.encode(), given.encode("ascii", "replace")):
        raise ApiError(Problem.BAD_SIGNATURE, _BAD_SIGNATURE)
    event = headers.get("x-github-event", "").strip()[:64]
    data = _json_object(body, headers.get("content-type", ""))
    app = _first(data, ("repository", "full_name"))
    delivery = _text(headers.get("x-github-delivery"))
    if event == "ping":
        return Verdict(False, "github", event, reason="pong: the hook works; nothing flushed")
    if event == "push":
        if data.get("deleted") is True:
            return Verdict(False, "github", event, reason="ignored: a deleted ref")
        details = _kept(
            app=app,
            commit=_first(data, ("after",), ("head_commit", "id")),
            user=_first(
                data,
                ("head_commit", "author", "username"),
                ("head_commit", "author", "name"),
                ("pusher", "name"),
                ("sender", "login"),
            ),
            ref=_text(data.get("ref")),
            message=_first_line(_first(data, ("head_commit", "message"))),
            delivery=delivery,
        )
        return Verdict(True, "github", event, details)
    if event in ("deployment", "deployment_status"):
        state = _first(data, ("deployment_status", "state"))
        if event == "deployment_status" and state != "success":
            return Verdict(False, "github", event, reason=f"ignored: deployment {state}")
        details = _kept(
            app=app,
            commit=_first(data, ("deployment", "sha")),
            user=_first(data, ("deployment", "creator", "login"), ("sender", "login")),
            ref=_first(data, ("deployment", "ref")),
            environment=_first(data, ("deployment", "environment")),
            delivery=delivery,
        )
        return Verdict(True, "github", event, details)
    return Verdict(False, "github", event, reason=f"ignored: the {event or 'unnamed'} event")


def _commit_message(commits: object, sha: str) -> str | None:
    """The message of the pushed head among a GitLab push's commits (at most 20 listed)."""
    if isinstance(commits, list):
        for commit in commits:
            if isinstance(commit, dict) and commit.get("id") == sha:
                return _text(commit.get("message"))
    return None


def _gitlab(headers: Mapping[str, str], body: bytes, token: str) -> Verdict:
    given = headers.get("x-gitlab-token", "")
    if not hmac.compare_digest(token.encode(), given.encode("utf-8", "replace")):
        raise ApiError(Problem.BAD_SIGNATURE, _BAD_GITLAB_TOKEN)
    event = headers.get("x-gitlab-event", "").strip()[:64]
    data = _json_object(body, headers.get("content-type", ""))
    kind = _text(data.get("object_kind")) or ""
    app = _first(data, ("project", "path_with_namespace"))
    if kind in ("push", "tag_push"):
        commit = _text(data.get("checkout_sha"))
        if commit is None:
            return Verdict(False, "gitlab", event, reason="ignored: a deleted ref")
        details = _kept(
            app=app,
            commit=commit,
            user=_first(data, ("user_username",), ("user_name",)),
            ref=_text(data.get("ref")),
            message=_first_line(_commit_message(data.get("commits"), commit)),
        )
        return Verdict(True, "gitlab", event, details)
    if kind == "deployment":
        status = _text(data.get("status"))
        if status != "success":
            return Verdict(False, "gitlab", event, reason=f"ignored: deployment {status}")
        details = _kept(
            app=app,
            commit=_text(data.get("sha")),
            user=_first(data, ("user", "username"), ("user", "name")),
            ref=_text(data.get("ref")),
            environment=_text(data.get("environment")),
        )
        return Verdict(True, "gitlab", event, details)
    return Verdict(False, "gitlab", event, reason=f"ignored: the {event or kind} event")


def read_hook(headers: Mapping[str, str], body: bytes, token: str) -> Verdict:
    """The verdict on a hook request whose URL carried `token`; raises ApiError
    (BAD_SIGNATURE) when a GitHub or GitLab request does not prove it knows the token.
    `headers` are read case-insensitively (lower-case names)."""
    if any(name in headers for name in _GITHUB_HEADERS):
        return _github(headers, body, token)
    if any(name in headers for name in _GITLAB_HEADERS):
        return _gitlab(headers, body, token)
    source, details = flush_details(parse_fields(body))
    sender = {"deploy_hook": "heroku", "webhook": "heroku-webhook"}.get(source, "plain")
    return Verdict(True, sender, details=details)
