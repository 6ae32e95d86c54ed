"""Typed settings, built once by the CLI and handed to every part of the server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_ITEM_SIZE_MAX",
    "DEFAULT_PLANS",
    "DEFAULT_PLAN_BYTES",
    "MAX_PLAN_CONNECTIONS",
    "Plan",
    "Settings",
    "format_plans",
    "format_size",
    "parse_plan_specs",
    "parse_plans",
    "parse_size",
    "plan_bytes",
    "plan_connections",
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


# A plan's own connection limit is at most this (far above any one node's file limit).
MAX_PLAN_CONNECTIONS = 1_000_000


@dataclass(frozen=True, slots=True)
class Plan:
    """One `--plans` entry: `slug=size` or `slug=size:connections=N`."""

    slug: str
    size: int
    connections: int | None = None  # None: the size rule (memcloud.admission)


def parse_plan_specs(text: str) -> tuple[Plan, ...]:
    """`dev=25MB,pro=1GB:connections=2000`: comma-separated slug=size pairs (sizes as for
    parse_size), each optionally followed by `:connections=N`."""
    plans: dict[str, Plan] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        slug, sep, spec = part.partition("=")
        slug = slug.strip()
        if not sep or not slug or ":" in slug:
            raise ValueError(f"not a plan: {part.strip()!r} (use name=size, e.g. dev=25MB)")
        size_text, *options = spec.split(":")
        size = parse_size(size_text)
        if size <= 0:
            raise ValueError(f"plan {slug!r} must be larger than zero")
        connections: int | None = None
        for option in options:
            name, _, value = option.partition("=")
            if name.strip() != "connections" or not value.strip().isdigit():
                raise ValueError(
                    f"not a plan option: {option.strip()!r} in plan {slug!r} "
                    "(use connections=N, e.g. dev=25MB:connections=50)"
                )
            connections = int(value)
            if not 0 < connections <= MAX_PLAN_CONNECTIONS:
                raise ValueError(
                    f"plan {slug!r}: connections must be 1 to {MAX_PLAN_CONNECTIONS}"
                )
        plans[slug] = Plan(slug, size, connections)
    if not plans:
        raise ValueError("no plans given")
    return tuple(plans.values())


def parse_plans(text: str) -> tuple[tuple[str, int], ...]:
    """`dev=25MB,100=100MB`: the slug=size pairs of parse_plan_specs."""
    return tuple((plan.slug, plan.size) for plan in parse_plan_specs(text))


def format_plans(
    plans: tuple[tuple[str, int], ...], connections: tuple[tuple[int, int], ...] = ()
) -> str:
    """The `--plans` text of these plans (for the node processes a supervisor starts)."""
    limits = dict(connections)
    return ",".join(
        f"{slug}={format_size(size)}" + (f":connections={limits[size]}" if size in limits else "")
        for slug, size in plans
    )


def plan_connections(plans: tuple[Plan, ...]) -> tuple[tuple[int, int], ...]:
    """(plan bytes, connection limit) of the plans that name their own limit."""
    return tuple((p.size, p.connections) for p in plans if p.connections is not None)


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
    # HTTP API port: open connections at most, and deadlines for reading a request's head
    # and body (api/limits.py has the reasons for the defaults).
    api_max_connections: int = 1000
    api_head_timeout: float = 10.0
    api_body_timeout: float = 30.0
    # None: a token generated at the first start (kept in the data dir); "": /metrics open.
    metrics_token: str | None = field(default=None, repr=False)
    # Failed logins per address prefix per minute before its logins are slowed (auth_throttle).
    login_free_failures: int = 5
    admin_token: str | None = None
    # Host name printed in MEMCACHIER_SERVERS; defaults to the bind host.
    public_host: str | None = None
    # Platform add-on partner API (Basic auth) and single sign-on.
    provision_user: str | None = None
    provision_password: str | None = field(default=None, repr=False)
    sso_salt: str | None = field(default=None, repr=False)
    plans: tuple[tuple[str, int], ...] = DEFAULT_PLANS
    # (plan bytes, connections) from `--plans` entries that name a connection limit; caches
    # of any other size get the size rule (memcloud.admission.plan_connection_limit).
    plan_connections: tuple[tuple[int, int], ...] = ()
    # Data-plane processes of this deployment, and which one this process is (0 runs the
    # HTTP API and supervises the others). Each node holds 1/nodes of every plan.
    nodes: int = 1
    node_index: int = 0
    # TLS on the data plane (and HTTPS for the API) with this certificate chain and key, on
    # tls_port (node i on tls_port + i); tls_only closes the plain port; with tls_client_ca
    # every data-plane client must show a certificate that CA signed.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_port: int = 11219
    tls_only: bool = False
    tls_client_ca: Path | None = None

    def plan_share(self, plan: int) -> int:
        """What one node holds of a plan: clients spread keys evenly over the nodes."""
        return -(-plan // self.nodes)

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.host

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None
