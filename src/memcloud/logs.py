"""How a memcloud process logs: `--log-format text` (one readable line per record) or `json`
(one JSON object per line, for log shippers), and the one way the control plane's changes
are logged (`log_change`).

JSON records carry `time` (RFC 3339, UTC), `level`, `logger`, `message` and every
structured field a call passes in `extra=` (python-json-logger renders them; the stdlib has
no JSON formatter). Text records show the same fields after the message as `key=value`, so
both formats say the same thing. Nothing here may receive a secret: callers pass names,
addresses and ids only (tests/server/test_logs.py greps a whole scenario's logs for its secrets).
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, Final

from pythonjsonlogger.json import JsonFormatter

from memcloud import __version__
from memcloud.config import LOG_FORMATS

__all__ = [
    "LOG_FORMATS",
    "NO_ACTOR",
    "Actor",
    "JsonLineFormatter",
    "TextFormatter",
    "act_as",
    "configure_logging",
    "current_actor",
    "log_change",
    "running_version",
]

# The attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

changes = logging.getLogger("memcloud.changes")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and k[:1] != "_"}


def _quoted(value: object) -> str:
    text = str(value)
    plain = text.isprintable() and not any(c.isspace() or c in "\"'=" for c in text)
    return text if text and plain else repr(text)


class TextFormatter(logging.Formatter):
    """`2026-12-01 18:00:00,123 INFO memcloud.access: GET /api/v1/stats 200 method=GET ...`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _fields(record)
        if not extra:
            return line
        head, sep, tail = line.partition("\n")  # a traceback stays after the fields
        shown = " ".join(f"{k}={_quoted(v)}" for k, v in extra.items())
        return f"{head} {shown}{sep}{tail}"


class JsonLineFormatter(JsonFormatter):
    """One object per line: time, level, logger, message, then the record's fields."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # First in the object, and in UTC with milliseconds whatever the host's zone.
        log_data["time"] = _rfc3339(record.created)
        super().add_fields(log_data, record, message_dict)


def _rfc3339(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def configure_logging(level: str, log_format: str = "text") -> None:
    """The process's one handler, on stderr, in the format `--log-format` names."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r} (use text or json)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for what the current request does: a username (a credential's, a dashboard
    session's, the platform partner's; "" if none), through what (`api`, `dashboard`,
    `provisioning`, `sso`, `cli`) and from which client address."""

    who: str = ""
    via: str = ""
    peer: str = ""


# Set once per HTTP request by the access log (api/access_log.py), refined by the dashboard
# once it read the session; asyncio.to_thread carries it into the store's threads.
current_actor: ContextVar[Actor] = ContextVar("memcloud_actor")
NO_ACTOR: Final = Actor()


def act_as(**changes: str) -> None:
    """Refine the current request's actor (e.g. the dashboard's signed-in username)."""
    current_actor.set(replace(current_actor.get(NO_ACTOR), **changes))


def log_change(action: str, *, cache: str, **fields: object) -> None:
    """One control-plane change, said the same way by the API, the dashboard and
    provisioning: `action` ("credential created", "cache deleted" ...), the cache's name,
    and who did it through what from where (the current actor). `fields` add usernames,
    ids and capabilities, never a password or token."""
    actor = current_actor.get(NO_ACTOR)
    changes.info(
        "%s: cache %s by %s via %s from %s",
        action,
        cache,
        actor.who or "-",
        actor.via or "-",
        actor.peer or "-",
        extra={
            "change": action,
            "cache": cache,
            "who": actor.who,
            "via": actor.via,
            "peer": actor.peer,
            **fields,
        },
    )


def running_version() -> str:
    """The installed distribution's version (what the start log and /metrics report)."""
    try:
        return metadata.version("memcloud")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return __version__
