"""`memcloud nodes`: the deployment's memcache nodes as the node registry knows them; and
`memcloud server`: the operator's server panel (memcloud.control.clusters), each cluster's
nodes with health, uptime and connections, its memory budget against the plans placed on
it, its connections against the nodes' bounds, and a warning when plans overcommit it."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from memcloud.cli.datadir import open_store_of
from memcloud.cli.manage import Handler, common_options
from memcloud.cli.output import emit, human_bytes, table
from memcloud.control import clusters
from memcloud.control.base import ControlError, ControlStore
from memcloud.control.models import DOWN_AFTER_SECONDS, NodeRecord

__all__ = ["add_cluster_commands", "nodes_json"]


def _state(node: NodeRecord) -> str:
    return "up" if node.up else "down"


def nodes_json(nodes: list[NodeRecord]) -> list[dict[str, object]]:
    return [clusters.node_json(n) for n in nodes]


def _remove(store: ControlStore, address: str) -> NodeRecord:
    """Forget a node that is down (a machine replaced or gone for good); an up one heartbeats
    and would only register again, so it is refused."""
    known = [n for n in store.list_nodes() if n.address == address]
    if not known:
        raise ControlError(f"no node {address} is registered")
    [node] = known
    if node.up:
        raise ControlError(f"node {address} is up: stop it first (a clean stop leaves by itself)")
    store.remove_node(node.id)
    return node


def cmd_nodes(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        if ns.remove is not None:
            gone = _remove(store, ns.remove)
            emit(ns, clusters.node_json(gone), f"Removed node {gone.address} from the registry.")
            return 0
        nodes = store.list_nodes()
    rows = [
        (n.id, n.address, n.cluster, n.machine, _state(n), f"{n.heartbeat_age:.1f}s ago")
        for n in nodes
    ]
    text = table(("id", "address", "cluster", "machine", "state", "heartbeat"), rows)
    if not nodes:
        text = "No node is registered (is memcloud serve running on this control store?)."
    emit(ns, nodes_json(nodes), text)
    return 0


def _panel_text(budgets: list[clusters.ClusterBudget]) -> str:
    if not budgets:
        return "No node is registered and no cache is placed (is memcloud serve running?)."
    blocks: list[str] = []
    for budget in budgets:
        memory = "no bound" if budget.memory is None else human_bytes(budget.memory)
        lines = [
            f"Cluster {budget.name}: {budget.up} of {len(budget.nodes)} node(s) up;"
            f" plans {human_bytes(budget.plans)} ({budget.caches} cache(s)) on {memory} of"
            f" node memory; connections {budget.connections} of {budget.max_connections}"
        ]
        rows = [
            (
                n.address,
                n.machine,
                _state(n),
                clusters.format_uptime(n.uptime),
                f"{n.connections}/{n.max_connections}",
                human_bytes(n.memory) if n.memory else "no bound",
            )
            for n in budget.nodes
        ]
        if rows:
            header = ("address", "machine", "state", "uptime", "connections", "memory")
            lines.append(table(header, rows))
        warning = clusters.overcommit_warning(budget, human_bytes)
        if warning is not None:
            lines.append(f"Warning: {warning}.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def cmd_server(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        nodes = store.list_nodes()
        caches = store.list_caches()
    text = _panel_text(clusters.budgets(nodes, caches))
    emit(ns, clusters.panel_json(nodes, caches), text)
    return 0


def add_cluster_commands(commands: Any) -> None:
    sub = commands.add_parser(
        "nodes",
        parents=[common_options()],
        help="list the deployment's memcache nodes and whether each is up",
        description=(
            "Every node registers itself at start and heartbeats every second; a node whose"
            f" last heartbeat is more than {DOWN_AFTER_SECONDS:g} s old is down."
        ),
    )
    sub.add_argument(
        "--remove",
        metavar="HOST:PORT",
        default=None,
        help="forget a node that is down (a machine replaced or gone for good)",
    )
    handler: Handler = cmd_nodes
    sub.set_defaults(handler=handler, leaf=sub)
    sub = commands.add_parser(
        "server",
        parents=[common_options()],
        help="the server panel: nodes, uptime, connections, memory against the plans sold",
        description=(
            "Per cluster: its nodes with health, uptime and connections; the memory of its"
            " live nodes against the sum of the plans placed on it (a warning when they"
            " exceed it); open connections against the nodes' --max-connections."
        ),
    )
    handler = cmd_server
    sub.set_defaults(handler=handler, leaf=sub)
