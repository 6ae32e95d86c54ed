"""Typed settings, built once by the CLI and handed to every part of the server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_ITEM_SIZE_MAX",
    "DEFAULT_PLANS",
    "DEFAULT_PLAN_BYTES",
    "Settings",
    "format_size",
    "parse_plans",
    "parse_size",
    "plan_bytes",
]

MIB = 1024 * 1024
# The hosted service's limit: key + value together, also for append/prepend growth.
DEFAULT_ITEM_SIZE_MAX = 1 * MIB
# The hosted service's free "dev" plan.
DEFAULT_PLAN_BYTES = 25 * MIB

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": MIB, "G": 1024 * MIB, "T": 1024 * 1024 * MIB}


def parse_size(text: str) -> int:
    """Parse `25MB`, `512k`, `1GiB` or a plain byte count (binary units, as memcached's -m)."""
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


# Provisioning plans (slug -> bytes), as the hosted service names them: `dev` is the free
# 25 MB plan, the others are that many MB.
DEFAULT_PLANS: tuple[tuple[str, int], ...] = (
    ("dev", 25 * MIB),
    *((str(mb), mb * MIB) for mb in (100, 250, 500, 1000, 2500, 5000)),
)


def parse_plans(text: str) -> tuple[tuple[str, int], ...]:
    """`dev=25MB,100=100MB`: comma-separated slug=size pairs (sizes as for parse_size)."""
    plans: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        slug, sep, size = part.partition("=")
        slug = slug.strip()
        if not sep or not slug or ":" in slug:
            raise ValueError(f"not a plan: {part.strip()!r} (use name=size, e.g. dev=25MB)")
        plans[slug] = parse_size(size)
        if plans[slug] <= 0:
            raise ValueError(f"plan {slug!r} must be larger than zero")
    if not plans:
        raise ValueError("no plans given")
    return tuple(plans.items())


def plan_bytes(plans: tuple[tuple[str, int], ...], slug: str) -> int | None:
    """The size of a plan slug, accepted with or without an add-on prefix (`memcachier:100`)."""
    name = slug.rpartition(":")[2].strip()
    return dict(plans).get(name)


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
    # Failed logins per address prefix per minute before its logins are slowed (auth_throttle).
    login_free_failures: int = 5
    metrics_token: str | None = None
    admin_token: str | None = None
    # Host name printed in MEMCACHIER_SERVERS; defaults to the bind host.
    public_host: str | None = None
    # Platform add-on partner API (Basic auth) and single sign-on.
    provision_user: str | None = None
    provision_password: str | None = field(default=None, repr=False)
    sso_salt: str | None = field(default=None, repr=False)
    plans: tuple[tuple[str, int], ...] = DEFAULT_PLANS
    # Data-plane processes of this deployment, and which one this process is (0 runs the
    # HTTP API and supervises the others). Each node holds 1/nodes of every plan.
    nodes: int = 1
    node_index: int = 0

    def plan_share(self, plan: int) -> int:
        """What one node holds of a plan: clients spread keys evenly over the nodes."""
        return -(-plan // self.nodes)

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.host
