"""The records of watched prefixes and latency samples (their rules:
memcloud.control.introspection)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LatencySample", "WatchedPrefixRecord"]


@dataclass(frozen=True, slots=True)
class WatchedPrefixRecord:
    id: int
    cache_id: int
    name: str


@dataclass(frozen=True, slots=True)
class LatencySample:
    """One probe of one node: when, which node ("host:port"), how long a get took."""

    at: float
    server: str
    duration_ns: int
