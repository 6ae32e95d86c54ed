"""SQL for the deployment's node registry, the same on every engine.

Heartbeat and registration times are the database's clock (`clock`, the engine's SQL for
"now" in epoch seconds), and ages are computed by it too: machines' clocks may disagree, the
database's is one. The caller holds the store's lock (and, for `register` and `delete`, the
revision's transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memcloud.control import rules
from memcloud.control.models import NodeRecord
from memcloud.control.sql.connection import Connection

__all__ = ["NewNode", "delete", "get", "heartbeat", "register", "select"]


@dataclass(frozen=True, slots=True)
class NewNode:
    """What a node registers with (already validated)."""

    address: str
    cluster: str
    machine: str
    internal: str
    memory: int
    max_connections: int


def _columns(clock: str) -> str:
    return (
        f"id, address, cluster, machine, internal, {clock} - heartbeat_at,"
        f" {clock} - started_at, memory, max_connections, connections"
    )


def _node(row: Any) -> NodeRecord:
    return NodeRecord(
        id=int(row[0]),
        address=str(row[1]),
        cluster=str(row[2]),
        machine=str(row[3]),
        internal=str(row[4]),
        heartbeat_age=max(0.0, float(row[5])),
        uptime=max(0.0, float(row[6])),
        memory=int(row[7]),
        max_connections=int(row[8]),
        connections=int(row[9]),
    )


def register(conn: Connection, clock: str, node: NewNode) -> int:
    """Insert the node, or renew the row of its address (a restarted node keeps its id;
    its uptime and connections start again)."""
    row = conn.execute(
        "INSERT INTO nodes (address, cluster, machine, internal, heartbeat_at, started_at,"
        " memory, max_connections, connections)"
        f" VALUES (?, ?, ?, ?, {clock}, {clock}, ?, ?, 0)"
        " ON CONFLICT (address) DO UPDATE SET cluster = excluded.cluster,"
        " machine = excluded.machine, internal = excluded.internal,"
        " heartbeat_at = excluded.heartbeat_at, started_at = excluded.started_at,"
        " memory = excluded.memory, max_connections = excluded.max_connections,"
        " connections = 0"
        " RETURNING id",
        (
            node.address,
            node.cluster,
            node.machine,
            node.internal,
            node.memory,
            node.max_connections,
        ),
    ).fetchone()
    return int(row[0])


def get(conn: Connection, clock: str, node_id: int) -> NodeRecord:
    row = conn.execute(f"SELECT {_columns(clock)} FROM nodes WHERE id = ?", (node_id,)).fetchone()
    if row is None:
        raise rules.no_node_id(node_id)
    return _node(row)


def heartbeat(conn: Connection, clock: str, node_id: int, connections: int | None) -> bool:
    if connections is None:
        rows = conn.execute(f"UPDATE nodes SET heartbeat_at = {clock} WHERE id = ?", (node_id,))
    else:
        rows = conn.execute(
            f"UPDATE nodes SET heartbeat_at = {clock}, connections = ? WHERE id = ?",
            (connections, node_id),
        )
    return rows.rowcount == 1


def select(conn: Connection, clock: str) -> list[NodeRecord]:
    rows = conn.execute(f"SELECT {_columns(clock)} FROM nodes ORDER BY id").fetchall()
    return [_node(row) for row in rows]


def delete(conn: Connection, node_id: int) -> bool:
    return conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,)).rowcount == 1
