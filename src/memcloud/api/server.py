"""Run the HTTP API inside `memcloud serve`'s event loop, next to the memcache listeners.

`start_api_server` binds the API port (0: chosen by the OS), starts uvicorn as a task in the
running loop (without its signal handlers: the runner owns shutdown), registers the flush
audit listener on the service and starts the stats sampler. `stop_api_server` undoes it all,
writing out queued flush log records before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import uvicorn

from memcloud.api.app import create_app
from memcloud.api.audit import FlushAuditor
from memcloud.api.context import ApiContext
from memcloud.api.history import StatsSampler
from memcloud.api.limits import KEEP_ALIVE_SECONDS, MAX_HEAD_BYTES, HttpLimits, guarded_protocol
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.nodes import LocalNode, Node, NodeSet
from memcloud.service import Service

__all__ = ["start_api_server", "stop_api_server"]

log = logging.getLogger("memcloud.api")

START_TIMEOUT_SECONDS = 10.0
# In-flight requests get this long to finish at shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 3.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: `memcloud serve` decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(slots=True)
class _Running:
    server: _Server | None
    task: asyncio.Task[None] | None
    sampler: asyncio.Task[None]
    auditor: FlushAuditor
    ctx: ApiContext | None


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_api_server(
    service: Service,
    store: ControlStore,
    settings: Settings,
    others: Sequence[Node] = (),
    *,
    http: bool = True,
) -> int | None:
    """Serve the API on `settings.api_port`; answer the bound port.

    `settings.port` is the memcache port (the runner passes the bound one), which names this
    node ("host:port") in stats, flush errors and the flush log. `others` are the deployment's
    other nodes. Without `http` (node processes other than node 0) only the flush auditor and
    the stats sampler of this node run.
    """
    address = f"{settings.advertised_host}:{settings.port}"
    local = LocalNode(service, address)
    auditor = FlushAuditor(store, address)
    auditor.start()
    service.flush_listeners.append(auditor.listener)
    sampler = asyncio.create_task(StatsSampler(store, local).run(), name="memcloud-sampler")
    if not http:
        service.api = _Running(None, None, sampler, auditor, None)
        return None
    sock = _bind(settings.host, settings.api_port)
    ctx = ApiContext(service, store, settings, NodeSet(local, others), auditor)
    limits = HttpLimits(
        max_connections=settings.api_max_connections,
        head_timeout=settings.api_head_timeout,
        body_timeout=settings.api_body_timeout,
    )
    config = uvicorn.Config(
        create_app(ctx),
        # h11 always (never httptools, even if installed): the deadlines and the connection
        # cap live in a subclass of uvicorn's h11 protocol (api/limits.py).
        http=guarded_protocol(limits),
        # No route speaks WebSocket: an Upgrade must not hand the socket to a protocol that
        # has none of these limits.
        ws="none",
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        lifespan="off",
        access_log=False,
        log_config=None,
        # uvicorn warns once per malformed or `Upgrade:` request: any client could fill the
        # log. Its errors (a failing app) are still logged.
        log_level="error",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_SECONDS),
        # HTTPS with the data plane's certificate (checked at start by memcloud.tls).
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="memcloud-api")
    service.api = _Running(server, task, sampler, auditor, ctx)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SECONDS
    while not server.started:
        if task.done() or loop.time() > deadline:
            await stop_api_server(service)
            sock.close()
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise OSError(f"the HTTP API did not start: {task.exception()!r}")
            raise OSError("the HTTP API did not start in time")
        await asyncio.sleep(0.01)
    port: int = sock.getsockname()[1]
    log.info("HTTP%s API listening on %s:%d", "S" if settings.tls else "", settings.host, port)
    if settings.metrics_token == "":
        log.warning(
            "/metrics is open (--metrics-token ''): anyone who reaches port %d reads every "
            "cache's name and counters",
            port,
        )
    return port


async def stop_api_server(service: Service) -> None:
    running, service.api = service.api, None
    if not isinstance(running, _Running):
        return
    running.sampler.cancel()
    if running.server is not None and running.task is not None:
        running.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(running.task, GRACEFUL_SHUTDOWN_SECONDS + 2)
    with contextlib.suppress(asyncio.CancelledError):
        await running.sampler
    with contextlib.suppress(ValueError):
        service.flush_listeners.remove(running.auditor.listener)
    await asyncio.to_thread(running.auditor.stop)
