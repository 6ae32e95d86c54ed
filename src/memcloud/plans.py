"""Sizes and plans as an operator writes them (`25MB`, `--plans dev=25MB:replicas=2`), and
the host:port a node advertises: parsed and shown the same way by the CLI, the API and the
settings."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ITEM_SIZE_MAX",
    "DEFAULT_PLANS",
    "DEFAULT_PLAN_BYTES",
    "MAX_PLAN_CONNECTIONS",
    "MAX_REPLICAS",
    "MIB",
    "Plan",
    "format_plans",
    "format_size",
    "parse_advertise",
    "parse_plan_specs",
    "parse_plans",
    "parse_positive_size",
    "parse_size",
    "plan_bytes",
    "plan_connections",
    "plan_replicas",
    "split_advertise",
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


def parse_positive_size(text: str) -> int:
    size = parse_size(text)
    if size <= 0:
        raise ValueError(f"size must be greater than zero: {text!r}")
    return size


_HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")


def split_advertise(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` as (host, port); the host keeps its brackets, so that
    `f"{host}:{port}"` is an address again."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or _HOST_RE.match(host) is None or ".." in host:
        raise ValueError(
            f"not HOST:PORT: {text!r} (for example cache1.example.com:11211 or [2001:db8::1]:11211)"
        )
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"not a port from 1 to 65535 in {text!r}")
    return host, int(port_text)


def parse_advertise(text: str) -> str:
    """`--advertise`: a HOST:PORT others can reach (no scheme, path, user or spaces)."""
    host, port = split_advertise(text.strip())
    return f"{host}:{port}"


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
# Copies of each key a plan may ask for (every write goes to each).
MAX_REPLICAS = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """One `--plans` entry: `slug=size`, optionally `:connections=N` and `:replicas=N`."""

    slug: str
    size: int
    connections: int | None = None  # None: the size rule (memcloud.admission)
    # Nodes (of different machines where there are) holding each key: docs/cluster.md.
    replicas: int = 1


def parse_plan_specs(text: str) -> tuple[Plan, ...]:
    """`dev=25MB,pro=1GB:connections=2000:replicas=2`: comma-separated slug=size pairs
    (sizes as for parse_size), each optionally followed by `:connections=N` and
    `:replicas=N`."""
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
        replicas = 1
        for option in options:
            name, _, value = option.partition("=")
            name = name.strip()
            if name not in ("connections", "replicas") or not value.strip().isdigit():
                raise ValueError(
                    f"not a plan option: {option.strip()!r} in plan {slug!r} "
                    "(use connections=N or replicas=N, e.g. dev=25MB:connections=50)"
                )
            if name == "replicas":
                replicas = int(value)
                if not 1 <= replicas <= MAX_REPLICAS:
                    raise ValueError(f"plan {slug!r}: replicas must be 1 to {MAX_REPLICAS}")
                continue
            connections = int(value)
            if not 0 < connections <= MAX_PLAN_CONNECTIONS:
                raise ValueError(f"plan {slug!r}: connections must be 1 to {MAX_PLAN_CONNECTIONS}")
        plans[slug] = Plan(slug, size, connections, replicas)
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


def plan_replicas(plans: tuple[Plan, ...]) -> tuple[tuple[int, int], ...]:
    """(plan bytes, replicas) of the plans that keep more than one copy of each key."""
    return tuple((p.size, p.replicas) for p in plans if p.replicas > 1)


def plan_connections(plans: tuple[Plan, ...]) -> tuple[tuple[int, int], ...]:
    """(plan bytes, connection limit) of the plans that name their own limit."""
    return tuple((p.size, p.connections) for p in plans if p.connections is not None)


def plan_bytes(plans: tuple[tuple[str, int], ...], slug: str) -> int | None:
    """The size of a plan slug, accepted with or without an add-on prefix (`memcachier:100`)."""
    name = slug.rpartition(":")[2].strip()
    return dict(plans).get(name)
