"""A port `memcloud serve` cannot bind because something else holds it, told the way an
operator can act on: which port, which flag (and variable) moves it, and that `--nodes N`
takes N consecutive ports from `--port` (and from `--tls-port`)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

__all__ = ["PortInUse", "first_taken", "is_in_use"]

# What each listener's port is set by: (what it serves, flag, variable, one port per node).
_ROLES = {
    "memcache": ("memcache", "--port", "MEMCLOUD_PORT", True),
    "tls": ("memcache over TLS", "--tls-port", "MEMCLOUD_TLS_PORT", True),
    "api": ("HTTP API", "--api-port", "MEMCLOUD_API_PORT", False),
}


def is_in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE


class PortInUse(OSError):
    """`port` (of `role`: memcache, tls or api) is taken; the message says what to do."""

    def __init__(self, role: str, host: str, port: int, *, node: int = 0, nodes: int = 1) -> None:
        what, flag, variable, per_node = _ROLES[role]
        where = f"{what} port {port} on {host}" + (f" (node {node})" if node else "")
        message = f"{where} is already in use: move it with {flag} (or {variable})"
        if per_node:
            first = port - node
            if nodes > 1:
                message += (
                    f"; --nodes {nodes} uses the consecutive ports {first}-{first + nodes - 1}"
                    f" from {flag}, so all of them must be free (or run fewer --nodes)"
                )
            else:
                message += f"; with --nodes N, memcloud uses N consecutive ports from {flag}"
        super().__init__(errno.EADDRINUSE, message)
        self.role, self.port = role, port

    def __str__(self) -> str:
        return str(self.strerror)


def first_taken(host: str, ports: Iterable[int]) -> int | None:
    """The first of `ports` another socket holds now on `host` (a probe, not a reservation:
    the nodes that bind them later may still lose a race)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in ports:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if is_in_use(exc):
                    return port
                raise
    return None
