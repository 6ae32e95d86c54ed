"""`memcloud nodes`: the deployment's memcache nodes as the node registry knows them."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from memcloud.cli.datadir import open_store_of
from memcloud.cli.manage import Handler, common_options
from memcloud.cli.output import emit, table
from memcloud.control.models import DOWN_AFTER_SECONDS, NodeRecord

__all__ = ["add_cluster_commands"]


def _state(node: NodeRecord) -> str:
    return "up" if node.up else "down"


def nodes_json(nodes: list[NodeRecord]) -> list[dict[str, object]]:
    return [
        {
            "id": n.id,
            "address": n.address,
            "cluster": n.cluster,
            "machine": n.machine,
            "state": _state(n),
            "last_heartbeat_seconds": round(n.heartbeat_age, 1),
        }
        for n in nodes
    ]


def cmd_nodes(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
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
    handler: Handler = cmd_nodes
    sub.set_defaults(handler=handler, leaf=sub)
