"""What a node tells the world once it serves: `server.json` (node 0) or `node-<i>.json`
(the others), the env file with the MEMCACHIER_* values, what node 0 prints at start, and
(node 0) the record by which commands run anywhere find its data dir (memcloud.locate).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from memcloud import locate, native
from memcloud.bootstrap import METRICS_TOKEN_FILENAME, Connection, write_env_file
from memcloud.config import Settings
from memcloud.server.supervisor import node_info_path

__all__ = ["SERVER_INFO_FILENAME", "Addresses", "StartupFiles", "announce"]

log = logging.getLogger("memcloud")

SERVER_INFO_FILENAME = locate.SERVER_INFO_FILENAME


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where this node and its deployment serve, once every listener is bound."""

    port: int  # this node's memcache port (with --tls-only, its TLS one)
    tls_port: int | None
    api_port: int | None
    nodes: list[str]  # every node's memcache address, this one first
    tls_nodes: list[str]  # every node's TLS address (empty without TLS)
    # The live registered nodes of this node's cluster (memcloud.control.clusters), other
    # machines' included; empty: the registry listed none, `nodes` stand for them.
    members: tuple[str, ...] = ()

    @property
    def servers(self) -> str:
        """MEMCACHIER_SERVERS: the live nodes of this node's cluster (or this deployment's
        nodes when the registry listed none)."""
        return ",".join(self.members or self.nodes)

    @property
    def tls_servers(self) -> str | None:
        """MEMCLOUD_TLS_SERVERS: every node's TLS address (None without TLS)."""
        return ",".join(self.tls_nodes) if self.tls_nodes else None


class StartupFiles:
    """The node's info file (written last at start, removed at stop) and node 0's env file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        first = self.first = settings.node_index == 0
        self.info = (
            settings.data_dir / SERVER_INFO_FILENAME
            if first
            else node_info_path(settings.data_dir, settings.node_index)
        )

    def write(self, addresses: Addresses, connection: Connection | None) -> None:
        if connection is not None:
            lines = connection.lines(addresses.servers, addresses.tls_servers)
            write_env_file(self.settings.data_dir, lines)
        _write_server_info(self.info, self.settings, addresses)
        if self.first:
            try:
                locate.record(self.settings.data_dir)
            except OSError as exc:
                log.warning(
                    "cannot record the data dir for memcloud commands (%s): give them"
                    " --data-dir %s or MEMCLOUD_DATA_DIR",
                    exc,
                    self.settings.data_dir,
                )

    def remove(self) -> None:
        if self.first:
            locate.forget()
        self.info.unlink(missing_ok=True)


def announce(
    settings: Settings,
    addresses: Addresses,
    connection: Connection | None,
    *,
    new_admin_token: bool,
    new_metrics_token: bool,
) -> None:
    """Print the MEMCACHIER_* values a hosted user would get as config vars (node 0)."""
    if new_admin_token:
        print(f"MEMCLOUD_ADMIN_TOKEN={settings.admin_token}", flush=True)
        log.info("admin token generated; kept in %s", settings.data_dir / "admin-token")
    if new_metrics_token:
        print(f"MEMCLOUD_METRICS_TOKEN={settings.metrics_token}", flush=True)
        log.info("metrics token generated; kept in %s", settings.data_dir / METRICS_TOKEN_FILENAME)
    if connection is not None:
        print("\n".join(connection.lines(addresses.servers, addresses.tls_servers)), flush=True)
    else:
        print(f"MEMCACHIER_SERVERS={addresses.servers}", flush=True)
        if addresses.tls_servers is not None:
            print(f"MEMCLOUD_TLS_SERVERS={addresses.tls_servers}", flush=True)
        log.info("credentials: see `memcloud credentials list CACHE`")


def _write_server_info(path: Path, settings: Settings, addresses: Addresses) -> None:
    """Written last at start: its presence says the node serves (tests and the supervisor
    wait for it)."""
    info = {
        "pid": os.getpid(),
        "host": settings.host,
        "port": addresses.port,
        "tls_port": addresses.tls_port,
        "api_port": addresses.api_port,
        "node_index": settings.node_index,
        "servers": addresses.nodes,
        "data_plane": native.in_use(),  # compiled modules or their pure Python sources
    }
    # Renamed into place: a reader waiting for the file never sees it half written.
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(info))
    partial.replace(path)
