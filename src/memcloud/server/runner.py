"""`memcloud serve`: one process, one event loop, listeners for memcache and operators.

`Runtime` makes the node's parts and starts and stops them in order; each part has one job:
`Listeners` (memcache, plain and TLS, and the open connections), `NodeAssembly` (this node
and the supervised ones, as the one `Deployment`), the operator socket (server.admin),
`ApiServer` (the HTTP API and the stats sampler), `NodeTasks` (directory poll, upkeep) and
`StartupFiles` (server.json, the env file).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import threading
from pathlib import Path

import uvloop

from memcloud import __version__, native
from memcloud.adminlink import socket_path
from memcloud.api.context import ApiContext
from memcloud.api.server import ApiServer
from memcloud.auth import Directory
from memcloud.bootstrap import bootstrap, ensure_admin_token, ensure_metrics_token
from memcloud.clock import Clock, SystemClock
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.secrets import cluster_secrets
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.control.open import open_store
from memcloud.deployment import Deployment
from memcloud.logs import configure_logging, running_version
from memcloud.nodes import RemoteNode
from memcloud.server.admin import start_admin_server
from memcloud.server.assembly import NodeAssembly
from memcloud.server.background import DIRECTORY_POLL_SECONDS, UPKEEP_SECONDS, NodeTasks
from memcloud.server.fdlimit import fit_open_files
from memcloud.server.listeners import Listeners
from memcloud.server.membership import NodeMembership, cluster_members, machine_name
from memcloud.server.peering import Peering
from memcloud.server.startup import Addresses, StartupFiles, announce
from memcloud.server.supervisor import STOP_TIMEOUT_SECONDS, node_socket_path
from memcloud.service import Service
from memcloud.storage.registry import Registry
from memcloud.storage.snapshot import load_snapshot, save_snapshot, snapshot_path
from memcloud.tls import server_context

__all__ = ["DIRECTORY_POLL_SECONDS", "UPKEEP_SECONDS", "Runtime", "run"]

# How long node 0 of `--nodes N` waits at start for the others to see each other.
LOCAL_MEMBERS_WAIT_SECONDS = 15.0
# A node's whole stop, its snapshot and (node 0) its children's stops included, ends
# within this.
STOP_DEADLINE_SECONDS = 2 * STOP_TIMEOUT_SECONDS

log = logging.getLogger("memcloud")


def run(settings: Settings) -> int:
    configure_logging(settings.log_level, settings.log_format)
    try:
        return uvloop.run(_serve(settings))
    except KeyboardInterrupt:
        return 0


class Runtime:
    """Everything one node process runs, startable and stoppable inside any event loop.

    Node 0 (`settings.node_index == 0`) also bootstraps the data dir, runs the HTTP API and
    the operator socket, and with `settings.nodes > 1` supervises the other node processes.
    """

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        # First: a certificate that cannot be used stops the start before anything is made.
        self.tls_context = server_context(settings)
        self.clock: Clock = clock or SystemClock()
        settings = fit_open_files(settings)  # may serve fewer connections than asked
        # Node 0 checks the database once (every page) before the deployment uses it.
        self.store: ControlStore = open_store(
            settings.data_dir, check=settings.node_index == 0, control_url=settings.control_url
        )
        self.is_first = settings.node_index == 0
        self.connection = bootstrap(self.store, settings) if self.is_first else None
        self.new_admin_token = self.new_metrics_token = False
        if self.is_first:
            # Generated (and printed once) at the first start when no --admin-token is given.
            token, self.new_admin_token = ensure_admin_token(
                settings.data_dir, settings.admin_token
            )
            metrics, self.new_metrics_token = ensure_metrics_token(
                settings.data_dir, settings.metrics_token
            )
            settings = dataclasses.replace(settings, admin_token=token, metrics_token=metrics)
        self.settings = settings
        memory = settings.memory // settings.nodes if settings.memory else 0
        self.service = Service(
            Registry(memory, settings.item_size_max, settings.introspection),
            Directory.load(self.store),
            self.clock,
            settings,
        )
        self.listeners = Listeners(
            self.service,
            settings,
            self.tls_context,
            consecutive=settings.nodes if self.is_first else 1,
        )
        self.tasks = NodeTasks(self.store, self.service)
        # The other nodes reach this one (and it them) over mutual TLS from the cluster
        # secret (memcloud.cluster): forwarded commands, the API's flushes and stats.
        self.peering = Peering(
            self.service, settings, NodeIdentity(cluster_secrets(settings, settings.data_dir))
        )
        self.files = StartupFiles(settings)
        self.assembly: NodeAssembly | None = None
        self.api: ApiServer | None = None
        self.membership: NodeMembership | None = None
        self.addresses: Addresses | None = None
        self._admin: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        """The node's memcache port: the plain one, or with --tls-only the TLS one."""
        return self.listeners.port

    @property
    def tls_port(self) -> int | None:
        return self.listeners.tls_port

    @property
    def api_port(self) -> int | None:
        return self.api.port if self.api is not None else None

    @property
    def servers(self) -> str:
        """MEMCACHIER_SERVERS: every node of this deployment."""
        return self.addresses.servers if self.addresses is not None else ""

    @property
    def tls_servers(self) -> str | None:
        """MEMCLOUD_TLS_SERVERS: every node's TLS address (None without TLS)."""
        return self.addresses.tls_servers if self.addresses is not None else None

    async def start(self) -> None:
        settings = self.settings
        if self.is_first:
            log.info(
                "memcloud %s starting %d node(s) (data plane: %s)",
                running_version(),
                settings.nodes,
                native.in_use(),
                extra={"version": running_version(), "nodes": settings.nodes},
            )
        if settings.warm_restart:  # before any client can see a cache
            load_snapshot(self.service.registry, self._snapshot, now=self.clock.now())
        await self.listeners.start()
        # Nodes are named by their bound memcache port (settings may say 0).
        bound = dataclasses.replace(settings, port=self.port, tls_port=self.tls_port or 0)
        self.assembly = NodeAssembly(self.service, self.store, bound, supervise=self.is_first)
        try:
            deployment = await self.assembly.start()
            admin = (
                socket_path(settings.data_dir)
                if self.is_first
                else node_socket_path(settings.data_dir, settings.node_index)
            )
            self._admin = await start_admin_server(deployment, admin)
            ctx = ApiContext(
                self.service, self.store, bound, deployment, self.listeners.connections
            )
            self.api = ApiServer(ctx, http=self.is_first)
            await self.api.start()
            internal = await self.peering.start(self.assembly.address, deployment)
            deployment.view = self.peering
            # Last: the node joins the registry once it serves.
            self.membership = NodeMembership(
                self.store,
                self.assembly.address,
                cluster=settings.cluster,
                machine=machine_name(settings.machine),
                internal=internal,
                on_nodes=self.peering.update,
                memory=settings.memory // settings.nodes if settings.memory else 0,
                max_connections=settings.max_connections,
                connections=lambda: len(self.listeners.connections),
            )
            self.tasks.on_revision = self.membership.wake
            await self.membership.start()
            if self.is_first:
                await self._wait_for_local_members(deployment)
        except BaseException:
            await self.peering.stop()
            if self.api is not None:
                await self.api.stop()
            await self.assembly.stop_nodes()
            await self.assembly.stop_audit()
            raise
        self._log_start()
        self.tasks.start(self.assembly.address)
        self.addresses = Addresses(
            port=self.port,
            tls_port=self.tls_port,
            api_port=self.api_port,
            nodes=self.assembly.node_addresses(),
            tls_nodes=self.assembly.tls_addresses(self.tls_port),
            members=await cluster_members(self.store, settings.cluster),
        )
        self.files.write(self.addresses, self.connection)

    async def _wait_for_local_members(self, deployment: Deployment) -> None:
        """With `--nodes N`, answer once every local node counts all N in its route (or
        after LOCAL_MEMBERS_WAIT_SECONDS): a client of the first seconds then finds its keys
        where they stay, instead of on a node that thought itself alone."""
        wanted = self.settings.nodes
        if wanted <= 1:
            return
        deadline = asyncio.get_running_loop().time() + LOCAL_MEMBERS_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            counts = [self.service.members]
            for node in deployment.others:
                if isinstance(node, RemoteNode):
                    with contextlib.suppress(Exception):
                        counts.append(int((await node.call({"op": "members"}))["members"]))
            if len(counts) == wanted and all(count >= wanted for count in counts):
                return
            await asyncio.sleep(0.05)
        log.warning("not every local node saw the %d others in time; starting anyway", wanted)

    def _log_start(self) -> None:
        """What an operator reads first: the version, every listener, the dashboard, and
        what is open to anyone who reaches a port."""
        settings = self.settings
        if not settings.tls_only:
            log.info(
                "memcache node %d listening on %s:%d",
                settings.node_index,
                settings.host,
                self.port,
                extra={"listener": "memcache", "node_index": settings.node_index},
            )
        if self.tls_port is not None:
            log.info(
                "memcache over TLS on %s:%d",
                settings.host,
                self.tls_port,
                extra={"listener": "memcache-tls", "node_index": settings.node_index},
            )
        if not self.is_first:
            return
        if self._admin is not None:
            log.info("operator socket at %s", socket_path(settings.data_dir))
        if self.api_port is not None:
            scheme = "https" if settings.tls else "http"
            url = f"{scheme}://{settings.advertised_host}:{self.api_port}/dashboard"
            log.info("dashboard at %s", url, extra={"dashboard_url": url})
        if settings.anonymous_cache:
            log.warning(
                "--anonymous-cache %s is on: anyone who reaches %s can read, write and "
                "flush that cache without a password",
                settings.anonymous_cache,
                ",".join(self.assembly.node_addresses()) if self.assembly else self.port,
                extra={"anonymous_cache": settings.anonymous_cache},
            )

    def announce(self) -> None:
        """Print the MEMCACHIER_* values a hosted user would get as config vars."""
        if not self.is_first or self.addresses is None:
            return
        announce(
            self.settings,
            self.addresses,
            self.connection,
            new_admin_token=self.new_admin_token,
            new_metrics_token=self.new_metrics_token,
        )

    async def stop(self) -> None:
        log.info("node %d shutting down", self.settings.node_index)
        self.listeners.close()
        if self.membership is not None:
            # First: the other nodes (and the API) stop counting on this one at once.
            await self.membership.stop()
        if self._admin is not None:
            self._admin.close()
        self.tasks.stop()
        if self.assembly is not None:
            await self.assembly.stop_nodes()
        self.listeners.close_connections()
        await asyncio.sleep(0)
        if self.api is not None:
            await self.api.stop()
        await self.peering.stop()
        if self.assembly is not None:
            # Last: every flush that could come has come; the store is still open.
            await self.assembly.stop_audit()
        await self.listeners.wait_closed()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.wait_closed()
        if self.settings.warm_restart:  # once no command can change a cache any more
            node = self.assembly.address if self.assembly is not None else ""
            save_snapshot(self.service.registry, self._snapshot, node=node, now=self.clock.now())
        self.store.close()
        self.files.remove()

    @property
    def _snapshot(self) -> Path:
        return snapshot_path(self.settings.data_dir, self.settings.node_index)


async def _serve(settings: Settings) -> int:
    try:
        runtime = Runtime(settings)
        await runtime.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    if settings.node_index == 0:
        # Once it serves: a start that fails says only why (one line).
        log.info("memcloud %s serving (data dir %s)", __version__, settings.data_dir)
    runtime.announce()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # A stop that hangs (a store that never answers, a bug) must not leave a node serving
    # on without its supervisor: past the deadline the process ends regardless.
    watchdog = threading.Timer(STOP_DEADLINE_SECONDS, _stop_overdue)
    watchdog.daemon = True
    watchdog.start()
    await runtime.stop()
    watchdog.cancel()
    return 0


def _stop_overdue() -> None:
    log.error("node did not stop within %d s: exiting now", int(STOP_DEADLINE_SECONDS))
    logging.shutdown()
    os._exit(3)
