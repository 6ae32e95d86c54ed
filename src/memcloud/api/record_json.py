"""Control-store records as the v2 API shows them, shared by the API and the CLI's `--json`.

Only the standard library and the record types: the CLI imports this without the web stack.
"""

from __future__ import annotations

from typing import Any

from memcloud.api.insight import format_time
from memcloud.control.hook_records import HookRecord
from memcloud.control.models import CredentialRecord, FlushRecord

__all__ = ["credential_v2", "flush_json", "hook_json"]


def credential_v2(record: CredentialRecord, password: str | None = None) -> dict[str, Any]:
    """v2's 8 fields. Passwords are stored only hashed, so `sasl_password` is null except in
    the answer that creates the credential."""
    return {
        "id": record.id,
        "cache_id": record.cache_id,
        "sasl_username": record.username,
        "sasl_password": password,
        "write_capability": record.write,
        "flush_capability": record.flush,
        "api_capability": record.api,
        "primary": record.primary,
    }


def flush_json(record: FlushRecord) -> dict[str, Any]:
    """A flush log line, as `GET /api/v2/caches/<id>/flush_log` shows it."""
    return {
        "time": format_time(record.at),
        "timestamp": record.at,
        "source": record.source,
        "username": record.username,
        "peer": record.peer,
        "node": record.node,
        "app": record.app,
        "release": record.release,
        "commit": record.commit,
        "details": record.details,
    }


def hook_json(record: HookRecord) -> dict[str, Any]:
    """A deploy-hook token as `GET /api/v2/caches/<id>/hooks` lists it: never the token."""

    def when(at: float | None) -> str | None:
        return None if at is None else format_time(at)

    return {
        "id": record.id,
        "cache_id": record.cache_id,
        "name": record.name,
        "prefix": record.prefix,
        "hint": record.hint,
        "created_at": format_time(record.created_at),
        "last_used_at": when(record.last_used_at),
        "revoked": record.revoked,
        "revoked_at": when(record.revoked_at),
    }
