"""`memcloud serve`: one process, one event loop, listeners for memcache and operators."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys

import uvloop

from memcloud.auth import Directory
from memcloud.bootstrap import bootstrap, write_env_file
from memcloud.clock import SystemClock
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.control.open import open_store
from memcloud.server.admin import start_admin_server
from memcloud.server.connection import MemcacheConnection
from memcloud.service import Service
from memcloud.storage.registry import Registry

__all__ = ["DIRECTORY_POLL_SECONDS", "UPKEEP_SECONDS", "load_directory", "run"]

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
    while True:
        await asyncio.sleep(UPKEEP_SECONDS)
        service.registry.upkeep(service.clock.now())


def _install_protocols(service: Service) -> None:
    try:
        from memcloud.binary_session import BinarySession
    except ImportError:
        log.warning("binary protocol not available in this build")
        return
    service.binary_session_factory = BinarySession


async def _serve(settings: Settings) -> int:
    store = open_store(settings.data_dir)
    connection = bootstrap(store, settings)
    service = Service(
        Registry(settings.memory, settings.item_size_max),
        load_directory(store),
        SystemClock(),
        settings,
    )
    _install_protocols(service)
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: MemcacheConnection(service),
            settings.host,
            settings.port,
            reuse_address=True,
            backlog=1024,
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    port = server.sockets[0].getsockname()[1]
    admin = await start_admin_server(service, settings.data_dir)
    api_port = await _start_api(service, store, settings)
    servers = f"{settings.advertised_host}:{port}"
    log.info("memcache listening on %s:%d", settings.host, port)
    if connection is not None:
        lines = connection.lines(servers)
        write_env_file(settings.data_dir, lines)
        print("\n".join(lines), flush=True)
    else:
        print(f"MEMCACHIER_SERVERS={servers}", flush=True)
    _write_server_info(settings, port, api_port)

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tasks = [
        asyncio.create_task(_poll_directory(store, service)),
        asyncio.create_task(_upkeep(service)),
    ]
    await stop.wait()
    log.info("shutting down")
    server.close()
    admin.close()
    for task in tasks:
        task.cancel()
    # Replies are written as each read is handled, so nothing is in flight: close at once.
    for conn in list(service.connections):
        if isinstance(conn, MemcacheConnection) and conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(0)
    await _stop_api(service)
    with contextlib.suppress(Exception):
        await server.wait_closed()
    store.close()
    with contextlib.suppress(FileNotFoundError):
        (settings.data_dir / SERVER_INFO_FILENAME).unlink()
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
