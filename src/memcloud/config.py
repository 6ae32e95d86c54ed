"""Typed settings, built once by the CLI and handed to every part of the server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_ITEM_SIZE_MAX",
    "DEFAULT_PLAN_BYTES",
    "Settings",
    "format_size",
    "parse_size",
]

MIB = 1024 * 1024
# The hosted service's limit: key + value together, also for append/prepend growth.
DEFAULT_ITEM_SIZE_MAX = 1 * MIB
# The hosted service's free "dev" plan.
DEFAULT_PLAN_BYTES = 25 * MIB

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": MIB, "G": 1024 * MIB, "T": 1024 * 1024 * MIB}


def parse_size(text: str | int) -> int:
    """Parse `25MB`, `512k`, `1GiB` or a plain byte count (binary units, as memcached's -m)."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use bytes or a number with KB, MB or GB)")
    number, unit = match.group(1), (match.group(2) or "").upper().rstrip("B").rstrip("I")
    return int(float(number) * _UNITS[unit])


def format_size(size: int) -> str:
    for unit, factor in (("GB", 1024 * MIB), ("MB", MIB), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 11211
    api_port: int = 11280
    data_dir: Path = field(default_factory=lambda: Path("data"))
    # Server-wide budget across every cache; 0 means the sum of the plans (no extra bound).
    memory: int = 1024 * MIB
    anonymous_cache: str | None = None
    log_level: str = "INFO"
    auth_timeout: float = 5.0
    item_size_max: int = DEFAULT_ITEM_SIZE_MAX
    default_plan: int = DEFAULT_PLAN_BYTES
    max_connections: int = 10_000
    metrics_token: str | None = None
    admin_token: str | None = None
    # Host name printed in MEMCACHIER_SERVERS; defaults to the bind host.
    public_host: str | None = None

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.host
