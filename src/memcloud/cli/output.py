"""What the management commands print: tables and notes for people, or with `--json` the
v2 API's shapes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from memcloud.api.record_json import credential_v2
from memcloud.config import format_size
from memcloud.control.models import CacheRecord, CredentialRecord

__all__ = [
    "cache_json",
    "caches_table",
    "credential_json",
    "credentials_table",
    "emit",
    "password_note",
    "table",
]


def credential_json(record: CredentialRecord, password: str | None = None) -> dict[str, Any]:
    """A credential in the v2 API's shape; the password only right after creation."""
    data = credential_v2(record, password)
    if password is None:
        del data["sasl_password"]
    return data


def cache_json(
    cache: CacheRecord,
    credentials: Sequence[CredentialRecord],
    passwords: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """A cache in the v2 API's `info` shape; `passwords` (by credential id) only when new."""
    known = passwords or {}
    return {
        "id": cache.id,
        "name": cache.name,
        "plan": cache.plan,
        "enabled": cache.enabled,
        "credentials": [credential_json(c, known.get(c.id)) for c in credentials],
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def credentials_table(records: Sequence[CredentialRecord]) -> str:
    rows = [
        (c.id, c.username, _yes(c.primary), _yes(c.write), _yes(c.flush), _yes(c.api))
        for c in records
    ]
    return table(("id", "username", "primary", "write", "flush", "api"), rows)


def caches_table(caches: Sequence[CacheRecord], counts: Mapping[int, int]) -> str:
    rows = [
        (c.id, c.name, format_size(c.plan), _yes(c.enabled), counts.get(c.id, 0)) for c in caches
    ]
    return table(("id", "name", "plan", "enabled", "credentials"), rows)


def emit(ns: argparse.Namespace, data: object, text: str) -> None:
    """`data` as JSON with --json, else `text`."""
    if ns.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def password_note(username: str, password: str) -> str:
    return (
        f"\nPassword of {username} (shown only now, store it safely):\n  {password}\n"
        f"\nMEMCACHIER_USERNAME={username}\nMEMCACHIER_PASSWORD={password}"
    )
