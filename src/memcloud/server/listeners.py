"""A node's memcache listeners (plain and/or TLS) and the connections they opened."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from memcloud.config import Settings
from memcloud.ports import PortInUse, first_taken, is_in_use
from memcloud.server.connection import MemcacheConnection
from memcloud.service import Service

__all__ = ["Listeners", "free_port_range"]

# Connections a listener lets wait to be accepted.
LISTEN_BACKLOG = 1024


class Listeners:
    """Serve memcache on the node's ports: `port` is the plain one (with --tls-only the TLS
    one), `tls_port` the TLS one (None without TLS).

    `consecutive` is how many nodes take ports from this node's on (node 0 of `--nodes N`
    with `--port 0` looks for N free ports in a row; the others are told theirs).
    """

    def __init__(
        self,
        service: Service,
        settings: Settings,
        tls_context: ssl.SSLContext | None,
        *,
        consecutive: int = 1,
    ) -> None:
        self.service = service
        self.settings = settings
        self.tls_context = tls_context
        self.consecutive = consecutive
        # Open connections, authenticated or not: admission counts them, `close_connections`
        # ends them at shutdown, /metrics reports how many.
        self.connections: set[MemcacheConnection] = set()
        self.port = 0
        self.tls_port: int | None = None
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        settings = self.settings
        self._check_node_ports()
        if not settings.tls_only:
            self.port = await self._listen(settings.port, None)
        if self.tls_context is not None:
            self.tls_port = await self._listen(settings.tls_port, self.tls_context)
            if settings.tls_only:
                self.port = self.tls_port

    def _check_node_ports(self) -> None:
        """Node 0 of `--nodes N` with a fixed port: the other nodes' ports are free, or the
        start stops here naming the taken one (rather than as "node 1 exited")."""
        settings = self.settings
        roles = [("memcache", settings.port)] if not settings.tls_only else []
        if self.tls_context is not None:
            roles.append(("tls", settings.tls_port))
        for role, base in roles:
            if base == 0 or self.consecutive < 2:
                continue
            taken = first_taken(settings.host, range(base + 1, base + self.consecutive))
            if taken is not None:
                raise PortInUse(
                    role, settings.host, taken, node=taken - base, nodes=self.consecutive
                )

    async def _listen(self, port: int, tls: ssl.SSLContext | None) -> int:
        """Serve memcache on `port` (plain, or over TLS with `tls`); answer the bound port."""
        settings = self.settings
        if port == 0 and self.consecutive > 1:
            port = free_port_range(settings.host, self.consecutive)
        try:
            server = await asyncio.get_running_loop().create_server(
                lambda: MemcacheConnection(self.service, self.connections),
                settings.host,
                port,
                reuse_address=True,
                backlog=LISTEN_BACKLOG,
                ssl=tls,
                # A client that never finishes the handshake is not yet a connection (nothing
                # counts it): it gets as long as a connected client has to log in.
                ssl_handshake_timeout=settings.auth_timeout if tls is not None else None,
            )
        except OSError as exc:
            if not is_in_use(exc):
                raise
            role = "memcache" if tls is None else "tls"
            node, nodes = settings.node_index, settings.nodes
            raise PortInUse(role, settings.host, port, node=node, nodes=nodes) from None
        self._servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def close(self) -> None:
        """Stop accepting connections."""
        for server in self._servers:
            server.close()

    def close_connections(self) -> None:
        # Replies are written as each read is handled, so nothing is in flight: close at once.
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()

    async def wait_closed(self) -> None:
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()


def free_port_range(host: str, count: int, attempts: int = 50) -> int:
    """A port P such that P .. P+count-1 are free now (for `--port 0` with several nodes,
    whose ports are consecutive)."""
    for _ in range(attempts):
        probes: list[socket.socket] = []
        try:
            first = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            probes.append(first)
            first.bind((host, 0))
            base = int(first.getsockname()[1])
            for offset in range(1, count):
                probe = socket.socket(first.family)
                probes.append(probe)
                probe.bind((host, base + offset))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise OSError(f"no {count} consecutive free ports on {host}")
