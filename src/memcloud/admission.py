"""Who may hold one of a node's connection slots: a fair share for every tenant.

Two rules, both applied when a connection arrives or logs in, never per command:

- **Per cache**: a cache holds at most its plan's connection limit (`cache_limit`): the
  plan's own `connections=` from `--plans`, else `max(20, 10 per MB of plan)`, capped so that
  no cache takes more than half of `--max-connections`. With `--nodes N` each node admits
  `ceil(limit / N)`, as each holds `ceil(plan / N)` of the memory.
- **Unauthenticated connections** (accepted, not logged in yet) are capped per client
  address (IPv4 address, IPv6 /64) and all together leave a tenth of the slots to
  connections that log in; past either bound, or when the node is full, the oldest
  unauthenticated connection is shed to make room (memcached's refusal line, then closed).
"""

from __future__ import annotations

from typing import Final

from memcloud.auth_throttle import client_network
from memcloud.config import Settings
from memcloud.plans import MIB

__all__ = [
    "CONNECTIONS_PER_MB",
    "MIN_PLAN_CONNECTIONS",
    "UNCAPPED",
    "Admission",
    "address_key",
    "plan_connection_limit",
]

# A small plan still serves a few app processes with a pool each (the hosted free plan is
# 25 MB; 20 is below what its 250 here would be).
MIN_PLAN_CONNECTIONS: Final = 20
# Connections grow with the plan: a cache's clients grow with the traffic it is sized for.
CONNECTIONS_PER_MB: Final = 10
# No cache takes more than 1/SERVER_SHARE of a node's --max-connections: one tenant at its
# limit always leaves the other half to everyone else.
SERVER_SHARE: Final = 2
# Slots held back for connections that log in: unauthenticated ones use at most the rest.
AUTHENTICATED_RESERVE_FRACTION: Final = 10
# Unauthenticated connections from one address (or IPv6 /64) at once: a deploy of many app
# processes behind one NAT logs in within milliseconds, an attacker holds them for seconds.
MIN_PER_ADDRESS: Final = 8
PER_ADDRESS_FRACTION: Final = 100
# The address key of a connection that is not held to the per-address bound: on an
# --anonymous-cache server a connection is the anonymous cache's from its first byte, and a
# client's pool of idle connections (opened, nothing sent yet) is as legitimate as with
# memcached; such connections are still shed, oldest first, when the node is full.
UNCAPPED: Final = ""


def plan_connection_limit(plan: int, settings: Settings) -> int:
    """A plan's connection limit across the deployment (what v2 `info` and the dashboard
    show); an explicit `--plans` limit applies to caches of exactly that plan's size."""
    explicit = dict(settings.plan_connections).get(plan)
    limit = (
        explicit
        if explicit is not None
        else max(MIN_PLAN_CONNECTIONS, CONNECTIONS_PER_MB * plan // MIB)
    )
    cap = max(1, settings.max_connections // SERVER_SHARE) * settings.nodes
    return min(limit, cap)


def address_key(host: str) -> str:
    """The client a connection counts against: its IPv4 address, or its IPv6 /64."""
    return client_network(host, 32)


class Admission:
    """One node's bookkeeping of connections still unauthenticated, oldest first, and of
    its caches' connection limits (each node admits its share)."""

    __slots__ = (
        "_by_address",
        "_limits",
        "_waiting",
        "max_connections",
        "per_address",
        "refusals",
        "settings",
        "unauthenticated_max",
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.max_connections: Final = settings.max_connections
        reserve = settings.max_connections // AUTHENTICATED_RESERVE_FRACTION
        self.unauthenticated_max: Final = max(1, settings.max_connections - reserve)
        self.per_address: Final = max(
            MIN_PER_ADDRESS, settings.max_connections // PER_ADDRESS_FRACTION
        )
        # Unauthenticated connections by arrival (dicts keep insertion order) -> address key.
        self._waiting: dict[object, str] = {}
        self._by_address: dict[str, int] = {}
        self._limits: dict[int, int] = {}  # plan bytes -> this node's limit
        # Connections turned away (or shed) since start, by reason: `/metrics`
        # memcloud_connection_refusals_total. Bumped only where a connection is refused.
        # "cache": a login refused because its cache is at its connection limit.
        self.refusals: dict[str, int] = {"address": 0, "full": 0, "shed": 0, "cache": 0}

    def cache_limit(self, plan: int) -> int:
        """The connections this node admits into a cache of `plan` bytes."""
        limit = self._limits.get(plan)
        if limit is None:
            nodes = self.settings.nodes
            limit = max(1, -(-plan_connection_limit(plan, self.settings) // nodes))
            self._limits[plan] = limit
        return limit

    def refuses(self, address: str, open_count: int) -> bool:
        """Whether a new connection (already counted in `open_count`) must be turned away:
        its address holds its share of unauthenticated slots, or the node is full of
        logged-in connections (nothing unauthenticated left to shed)."""
        if address and self._by_address.get(address, 0) >= self.per_address:
            self.refusals["address"] += 1
            return True
        if open_count > self.max_connections and not self._waiting:
            self.refusals["full"] += 1
            return True
        return False

    def wait(self, conn: object, address: str) -> None:
        """Count a new connection as unauthenticated until `settled`; an empty `address`
        (UNCAPPED) is not held to the per-address bound, only shed when the node is full."""
        self._waiting[conn] = address
        if address:
            self._by_address[address] = self._by_address.get(address, 0) + 1

    def victim(self, open_count: int) -> object | None:
        """The oldest unauthenticated connection, to shed when the node or the
        unauthenticated share is over its bound (it is no longer counted here)."""
        waiting = self._waiting
        if len(waiting) <= self.unauthenticated_max and open_count <= self.max_connections:
            return None
        if len(waiting) < 2:  # never the newcomer itself
            return None
        oldest = next(iter(waiting))
        self.settled(oldest)
        self.refusals["shed"] += 1
        return oldest

    def settled(self, conn: object) -> None:
        """The connection logged in or closed: it no longer holds an unauthenticated slot."""
        address = self._waiting.pop(conn, None)
        if not address:
            return
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]
