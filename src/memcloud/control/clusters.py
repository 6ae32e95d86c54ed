"""The deployment's clusters as the node registry shows them: pure functions over the
`NodeRecord`s of `ControlStore.list_nodes()` (oldest registration first) and the caches.

One place answers what every door hands out: a cache's `MEMCACHIER_SERVERS` (the v2 `info`,
provisioning config vars, `memcloud cache create`, the start log and `.env`, the
dashboard), whether it may switch cluster and where to, and the operator's server panel
(memory budget against the plans sold, connections against the nodes' bounds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from memcloud.control.models import DEFAULT_CLUSTER, CacheRecord, NodeRecord

__all__ = [
    "ClusterBudget",
    "budgets",
    "can_switch",
    "cluster_for_new_cache",
    "clusters",
    "format_uptime",
    "live_clusters",
    "node_json",
    "overcommit_warning",
    "panel_json",
    "servers_of",
    "switch_refusal",
    "switch_target",
]


def _address_order(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host, int(port) if port.isdigit() else 0)


def servers_of(nodes: Sequence[NodeRecord], cluster: str, fallback: Sequence[str]) -> list[str]:
    """MEMCACHIER_SERVERS of a cache on `cluster`: the addresses of that cluster's live
    nodes, by host and then port number (the same list from every door whoever registered
    first, and `--nodes N`'s node 0 before node 1). `fallback` (what this process knows of
    itself) only when the registry lists no node at all: a management command with no
    server up, or a server whose registration has not happened yet. A cluster whose nodes
    are all down has no server to hand out: the list is empty, not another cluster's."""
    if not nodes:
        return list(fallback)
    live = [n.address for n in nodes if n.up and n.cluster == cluster]
    return sorted(live, key=_address_order)


def clusters(nodes: Iterable[NodeRecord]) -> list[str]:
    """Every cluster some registered node names, in the order they first registered."""
    return list(dict.fromkeys(n.cluster for n in nodes))


def live_clusters(nodes: Iterable[NodeRecord]) -> list[str]:
    """The clusters with at least one live node, in registration order."""
    return list(dict.fromkeys(n.cluster for n in nodes if n.up))


def cluster_for_new_cache(nodes: Sequence[NodeRecord]) -> str:
    """Where a cache created without a named cluster goes: `default` while no node is up or
    a live node serves it (one machine, or a deployment that uses the default name), else
    the first cluster with a live node, so that a new cache is served somewhere."""
    live = live_clusters(nodes)
    if not live or DEFAULT_CLUSTER in live:
        return DEFAULT_CLUSTER
    return live[0]


def can_switch(nodes: Sequence[NodeRecord], cluster: str) -> bool:
    """Whether a cache on `cluster` could move: another cluster has a live node."""
    return any(name != cluster for name in live_clusters(nodes))


def switch_refusal(nodes: Sequence[NodeRecord], current: str, target: str) -> str | None:
    """Why a cache on `current` cannot move to `target` (None: it can)."""
    if target == current:
        return f"The cache is already on cluster {target}."
    if target not in clusters(nodes):
        return f"Unknown cluster {target}."
    if target not in live_clusters(nodes):
        return f"Cluster {target} has no live server."
    return None


def switch_target(nodes: Sequence[NodeRecord], current: str) -> str | None:
    """The cluster a switch without a named target goes to, as the hosted service's
    emergency switch picks one: the first other cluster with a live node (None: none)."""
    others = [name for name in live_clusters(nodes) if name != current]
    return others[0] if others else None


@dataclass(frozen=True, slots=True)
class ClusterBudget:
    """One cluster of the operator's server panel.

    `memory` is the sum of its live nodes' budgets (`--memory` shared by the node processes
    of one `serve`), None when a live node has no bound (`--memory 0`) or none is up;
    `plans` the sum of the plans of the caches placed on it.
    """

    name: str
    nodes: tuple[NodeRecord, ...]
    caches: int
    plans: int
    memory: int | None
    connections: int
    max_connections: int

    @property
    def up(self) -> int:
        return sum(1 for n in self.nodes if n.up)

    @property
    def overcommitted(self) -> bool:
        return self.memory is not None and self.plans > self.memory


def budgets(nodes: Sequence[NodeRecord], caches: Sequence[CacheRecord]) -> list[ClusterBudget]:
    """Each cluster that has a node or a cache: nodes' clusters in registration order, then
    clusters only caches name (a cache placed on a cluster no node serves); each cluster's
    nodes by address, as in MEMCACHIER_SERVERS."""
    names = clusters(nodes) + [c.cluster for c in caches]
    answer: list[ClusterBudget] = []
    for name in dict.fromkeys(names):
        members = tuple(
            sorted((n for n in nodes if n.cluster == name), key=lambda n: _address_order(n.address))
        )
        live = [n for n in members if n.up]
        placed = [c for c in caches if c.cluster == name]
        bounded = bool(live) and all(n.memory > 0 for n in live)
        answer.append(
            ClusterBudget(
                name=name,
                nodes=members,
                caches=len(placed),
                plans=sum(c.plan for c in placed),
                memory=sum(n.memory for n in live) if bounded else None,
                connections=sum(n.connections for n in live),
                max_connections=sum(n.max_connections for n in live),
            )
        )
    return answer


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB".replace(".0 ", " ")


def overcommit_warning(
    budget: ClusterBudget, show: Callable[[int], str] = _megabytes
) -> str | None:
    """The operator's warning when the plans placed on a cluster exceed its live nodes'
    memory (None: they fit, or the nodes have no bound)."""
    if budget.memory is None or budget.plans <= budget.memory:
        return None
    return (
        f"plans on cluster {budget.name} ({show(budget.plans)}) exceed the memory of its"
        f" live nodes ({show(budget.memory)}): caches will evict before they are full"
    )


def format_uptime(seconds: float) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `8s`: the two largest units."""
    left = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


def node_json(node: NodeRecord) -> dict[str, object]:
    """One node as the server panel, `memcloud nodes --json` and the admin API show it."""
    return {
        "id": node.id,
        "address": node.address,
        "cluster": node.cluster,
        "machine": node.machine,
        "state": "up" if node.up else "down",
        "last_heartbeat_seconds": round(node.heartbeat_age, 1),
        "uptime_seconds": round(node.uptime),
        "connections": node.connections,
        "max_connections": node.max_connections,
        "memory": node.memory,
    }


def panel_json(nodes: Sequence[NodeRecord], caches: Sequence[CacheRecord]) -> dict[str, object]:
    """The operator's server panel: every cluster with its nodes, memory budget against the
    plans placed on it, connections against the nodes' bounds, and its warning."""
    shown = []
    warnings = []
    for budget in budgets(nodes, caches):
        warning = overcommit_warning(budget)
        if warning is not None:
            warnings.append(warning)
        shown.append(
            {
                "name": budget.name,
                "nodes_up": budget.up,
                "nodes": [node_json(n) for n in budget.nodes],
                "caches": budget.caches,
                "plans": budget.plans,
                "memory": budget.memory,
                "connections": budget.connections,
                "max_connections": budget.max_connections,
                "overcommitted": budget.overcommitted,
                "warning": warning,
            }
        )
    down = [n.address for n in nodes if not n.up]
    return {"clusters": shown, "nodes_down": down, "warnings": warnings}
