"""`memcloud serve`: one process, one event loop, listeners for memcache and operators."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from dataclasses import replace

import uvloop

from memcloud.auth import Directory
from memcloud.bootstrap import bootstrap, ensure_admin_token, write_env_file
from memcloud.clock import Clock, SystemClock
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.control.open import open_store
from memcloud.server.admin import start_admin_server
from memcloud.server.connection import MemcacheConnection
from memcloud.service import Service
from memcloud.storage.registry import Registry

__all__ = ["DIRECTORY_POLL_SECONDS", "UPKEEP_SECONDS", "Runtime", "load_directory", "run"]

log = logging.getLogger("memcloud")

# How often the control store is asked whether anything changed (CLI changes reach a
# running server within this), and how often expired and flushed items are reclaimed.
DIRECTORY_POLL_SECONDS = 1.0
UPKEEP_SECONDS = 0.5
SERVER_INFO_FILENAME = "server.json"


def load_directory(store: ControlStore) -> Directory:
    # The revision is read first: a change racing the load is then seen by the next poll.
    revision = store.revision()
    return Directory(store.list_caches(), store.list_credentials(), revision)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(settings: Settings) -> int:
    _configure_logging(settings.log_level)
    try:
        return uvloop.run(_serve(settings))
    except KeyboardInterrupt:
        return 0


async def _poll_directory(store: ControlStore, service: Service) -> None:
    while True:
        await asyncio.sleep(DIRECTORY_POLL_SECONDS)
        try:
            revision = await asyncio.to_thread(store.revision)
            if revision != service.directory.revision:
                directory = await asyncio.to_thread(load_directory, store)
                service.set_directory(directory)
                log.info("control plane changed: revision %d", directory.revision)
        except Exception:
            log.exception("reading the control store failed; keeping the last snapshot")


async def _upkeep(service: Service) -> None:
    registry = service.registry
    while True:
        # A flushed cache is freed slice by slice: while any is left, the next slice runs as
        # soon as the loop has served what is waiting, so its memory comes back quickly.
        await asyncio.sleep(0 if registry.graveyard else UPKEEP_SECONDS)
        registry.upkeep(service.clock.now())


def _install_protocols(service: Service) -> None:
    try:
        from memcloud.binary_session import BinarySession
    except ImportError:
        log.warning("binary protocol not available in this build")
        return
    service.binary_session_factory = BinarySession


class Runtime:
    """Everything one `memcloud serve` runs, startable and stoppable inside any event loop."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.store: ControlStore = open_store(settings.data_dir)
        self.connection = bootstrap(self.store, settings)
        # Generated (and printed once) at the first start when no --admin-token is given.
        token, self.new_admin_token = ensure_admin_token(settings.data_dir, settings.admin_token)
        settings = dataclasses.replace(settings, admin_token=token)
        self.settings = settings
        self.service = Service(
            Registry(settings.memory, settings.item_size_max),
            load_directory(self.store),
            self.clock,
            settings,
        )
        _install_protocols(self.service)
        self.port = 0
        self.api_port: int | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def servers(self) -> str:
        """MEMCACHIER_SERVERS: every node of this deployment."""
        return f"{self.settings.advertised_host}:{self.port}"

    async def start(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: MemcacheConnection(self.service),
            settings.host,
            settings.port,
            reuse_address=True,
            backlog=1024,
        )
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        self._servers.append(await start_admin_server(self.service, settings.data_dir))
        # The API names this node by its bound memcache port (settings may say 0).
        self.api_port = await _start_api(
            self.service, self.store, replace(settings, port=self.port)
        )
        log.info("memcache listening on %s:%d", settings.host, self.port)
        self._tasks = [
            asyncio.create_task(_poll_directory(self.store, self.service)),
            asyncio.create_task(_upkeep(self.service)),
        ]
        if self.connection is not None:
            write_env_file(settings.data_dir, self.connection.lines(self.servers))
        _write_server_info(settings, self.port, self.api_port)

    def announce(self) -> None:
        """Print the MEMCACHIER_* values a hosted user would get as config vars."""
        if self.new_admin_token:
            print(f"MEMCLOUD_ADMIN_TOKEN={self.settings.admin_token}", flush=True)
            log.info("admin token generated; kept in %s", self.settings.data_dir / "admin-token")
        if self.connection is not None:
            print("\n".join(self.connection.lines(self.servers)), flush=True)
        else:
            print(f"MEMCACHIER_SERVERS={self.servers}", flush=True)
            log.info("credentials: see `memcloud credentials list CACHE`")

    async def stop(self) -> None:
        log.info("shutting down")
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        # Replies are written as each read is handled, so nothing is in flight: close at once.
        for conn in list(self.service.connections):
            if isinstance(conn, MemcacheConnection) and conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)
        await _stop_api(self.service)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self.store.close()
        with contextlib.suppress(FileNotFoundError):
            (self.settings.data_dir / SERVER_INFO_FILENAME).unlink()


async def _serve(settings: Settings) -> int:
    try:
        runtime = Runtime(settings)
        await runtime.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    runtime.announce()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runtime.stop()
    return 0


async def _start_api(service: Service, store: ControlStore, settings: Settings) -> int | None:
    """The HTTP API shares this loop when its module is present (see memcloud.api)."""
    try:
        from memcloud.api.server import start_api_server
    except ImportError:
        return None
    return await start_api_server(service, store, settings)


async def _stop_api(service: Service) -> None:
    try:
        from memcloud.api.server import stop_api_server
    except ImportError:
        return
    await stop_api_server(service)


def _write_server_info(settings: Settings, port: int, api_port: int | None) -> None:
    info = {"pid": os.getpid(), "host": settings.host, "port": port, "api_port": api_port}
    (settings.data_dir / SERVER_INFO_FILENAME).write_text(json.dumps(info))
