"""A node's place among the deployment's nodes: the channel the others reach it on, a link
to each of them, and the data plane's route, rebuilt whenever the registry's live nodes
change.

The node registry (server/membership.py) is read after every heartbeat. From it this node
keeps: the ring of its own cluster's live nodes (memcloud.placement; its sessions forward
by it, memcloud.routing) and how many they are (each holds plan / members of every cache);
and a `ChannelNode` for every live node of any cluster, so that the HTTP API on this node
reaches every node of a cache wherever it runs (`nodes_of`, memcloud.deployment's
ClusterView). A node that stops heartbeating leaves the ring within five seconds (its keys
have new owners from then on); one that comes back at its address gets its keys back.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Final

from memcloud.cluster.channel import ChannelServer
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.link import PeerLink
from memcloud.config import Settings
from memcloud.control.models import NodeRecord
from memcloud.deployment import Deployment
from memcloud.forwarded import ForwardedCommands
from memcloud.nodes import NODE_OPERATION, ChannelNode, Node
from memcloud.placement import Ring, RingNode
from memcloud.routing import FORWARD, Link, Route
from memcloud.server.admin import answer_operation
from memcloud.service import Service

__all__ = ["FORWARD_TIMEOUT_SECONDS", "Peering"]

log = logging.getLogger("memcloud.peering")

# How long a forwarded frame may take before its commands answer as misses: a node that is
# frozen (not yet marked down) costs its keys' clients this much at most.
FORWARD_TIMEOUT_SECONDS: Final = 2.0
# Frames beyond the largest a node sends (a read's commands, or a reply budget plus one
# value: routing.FORWARD_COMMANDS_MAX, service.REPLY_BATCH_MAX) close the connection.
_FRAME_SLACK: Final = 4 * 1024 * 1024
# A Unix socket address holds at most 107 bytes of path (Linux's sun_path, with its NUL).
_UNIX_PATH_MAX: Final = 108


class Peering:
    def __init__(self, service: Service, settings: Settings, identity: NodeIdentity) -> None:
        self.service = service
        self.settings = settings
        self.identity = identity
        self.forwarded = ForwardedCommands(service)
        self.max_frame = 2 * settings.item_size_max + _FRAME_SLACK
        self.address = ""  # this node's memcache address, as registered
        self.deployment: Deployment | None = None
        self._server: ChannelServer | None = None
        self._links: dict[str, PeerLink] = {}  # by internal address
        self._seen: tuple[tuple[str, str, str, str, bool], ...] | None = None
        self._nodes: list[NodeRecord] = []
        self._closing: set[asyncio.Task[None]] = set()  # links of nodes gone, closing

    async def start(self, address: str, deployment: Deployment) -> str:
        """Listen for the other nodes; answers this node's internal address to register."""
        self.address = address
        self.deployment = deployment
        server = ChannelServer(self.identity, self._handle, max_frame=self.max_frame)
        await server.start(self.settings.host, self.settings.internal_port)
        self._server = server
        local = self._local_path(server.port)
        if local is not None:
            await server.start_local(local)
        return f"{self.settings.advertised_host}:{server.port}"

    def _local_path(self, port: int) -> Path | None:
        """Where the member of this `serve` whose channel listens on `port` (of this host)
        takes its same-machine peers: a Unix socket in the data dir they share. None when
        the path is too long for a socket address (the members then use TLS as any)."""
        path = self.settings.data_dir.resolve() / f"channel-{port}.sock"
        return path if len(os.fsencode(path)) < _UNIX_PATH_MAX else None

    async def stop(self) -> None:
        self.service.set_route(None, self.service.members)
        if self._server is not None:
            await self._server.stop()
            self._server = None
        links, self._links = self._links, {}
        for link in links.values():
            await link.close()

    def _handle(self, kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        if kind == FORWARD:
            return self.forwarded.answer(payload)
        if kind == NODE_OPERATION:
            assert self.deployment is not None
            return answer_operation(self.deployment, payload)
        raise ValueError(f"unknown frame kind {kind}")

    def _link(self, internal: str) -> PeerLink:
        link = self._links.get(internal)
        if link is None:
            link = self._links[internal] = PeerLink(
                internal,
                self.identity,
                timeout=FORWARD_TIMEOUT_SECONDS,
                max_frame=self.max_frame,
                local_path=self._local_peer(internal),
            )
        return link

    def _local_peer(self, internal: str) -> str | None:
        """A peer started by this node's own `serve` (same host, its socket in the data
        dir this node shares with it) is reached on that socket; any other over TLS."""
        host, _, port = internal.rpartition(":")
        if host != self.settings.advertised_host or not port.isdigit():
            return None
        path = self._local_path(int(port))
        return str(path) if path is not None and path.is_socket() else None

    # -- the registry's nodes ------------------------------------------------------------

    def update(self, nodes: list[NodeRecord]) -> None:
        """The registry as just read: rebuild the route when its live nodes changed."""
        self._nodes = nodes
        seen = tuple(sorted((n.address, n.cluster, n.machine, n.internal, n.up) for n in nodes))
        if seen == self._seen:
            return
        self._seen = seen
        cluster = self.settings.cluster
        members = [n for n in nodes if n.cluster == cluster and (n.up or n.address == self.address)]
        if not any(n.address == self.address for n in members):
            return  # not registered yet (or just removed): keep what this node knows
        ring = Ring([RingNode(n.address, n.machine) for n in members])
        internal = {n.address: n.internal for n in members}
        local = next(i for i, node in enumerate(ring.nodes) if node.address == self.address)
        links: list[Link | None] = [
            None if i == local or not internal[node.address] else self._link(internal[node.address])
            for i, node in enumerate(ring.nodes)
        ]
        route = Route(ring, local, links, self.forwarded.answer) if len(ring) > 1 else None
        self.service.set_route(route, len(ring))
        used = {n.internal for n in nodes if n.up and n.internal}
        for gone in [addr for addr in self._links if addr not in used]:
            task = asyncio.get_running_loop().create_task(self._links.pop(gone).close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        log.info(
            "cluster %s: %d live node(s): %s",
            cluster,
            len(ring),
            ", ".join(ring_node.address for ring_node in ring.nodes),
            extra={"cluster": cluster, "members": len(ring)},
        )

    def nodes_of(self, cache_id: int) -> tuple[list[Node], list[str]] | None:
        """See memcloud.deployment.ClusterView."""
        record = self.service.directory.caches.get(cache_id)
        if not self._nodes or self.deployment is None:
            return None
        cluster = record.cluster if record is not None else self.settings.cluster
        live: list[Node] = []
        down: list[str] = []
        for node in self._nodes:
            if node.cluster != cluster:
                continue
            if node.address == self.address:
                live.insert(0, self.deployment.local)  # this node first, as it always was
            elif not node.up:
                down.append(node.address)
            elif node.internal:
                live.append(ChannelNode(node.address, self._link(node.internal)))
        return live, down
