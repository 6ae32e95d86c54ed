"""Run the HTTP API inside `memcloud serve`'s event loop, next to the memcache listeners.

`ApiServer.start` starts this node's stats sampler and, on node 0, the alert evaluator and
sender (memcloud.alerts) and the latency probe (memcloud.api.latency), binds the API port
(0: chosen by the OS) and starts uvicorn as a task in the running loop (without its signal
handlers: the runner owns shutdown). `stop` undoes it all. What they serve (the deployment,
the store, the settings) is given, in the `ApiContext`; nothing is assembled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from memcloud.alerts import AlertTasks
from memcloud.api.app import create_app
from memcloud.api.context import ApiContext
from memcloud.api.history import StatsSampler
from memcloud.api.latency import LatencyProbe
from memcloud.api.limits import KEEP_ALIVE_SECONDS, MAX_HEAD_BYTES, HttpLimits, guarded_protocol
from memcloud.ports import PortInUse, is_in_use

__all__ = ["ApiServer"]

log = logging.getLogger("memcloud.api")

START_TIMEOUT_SECONDS = 10.0
# In-flight requests get this long to finish at shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 3.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: `memcloud serve` decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
    except OSError as exc:
        sock.close()
        if is_in_use(exc):
            raise PortInUse("api", host, port) from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock


class ApiServer:
    """The HTTP API of `ctx` (with `http`: node 0) and this node's stats sampler.

    `ctx.settings.port` is the bound memcache port, which names this node ("host:port");
    `ctx.settings.api_port` the API's (0: any).
    """

    def __init__(self, ctx: ApiContext, *, http: bool = True) -> None:
        self.ctx = ctx
        self.http = http
        self.port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._alerts: AlertTasks | None = None
        self._probe: asyncio.Task[None] | None = None

    async def start(self) -> int | None:
        """Start serving; answer the bound API port (None without `http`)."""
        ctx = self.ctx
        settings = ctx.settings
        self._sampler = asyncio.create_task(
            StatsSampler(ctx.store, ctx.deployment.local).run(), name="memcloud-sampler"
        )
        if not self.http:
            return None
        # Alerts are evaluated and delivered once per deployment machine, by node 0.
        self._alerts = AlertTasks(ctx.store, ctx.deployment, settings, ctx.deployment.clock)
        self._alerts.start()
        # Latency is probed from the API process, as a client would see the nodes.
        self._probe = asyncio.create_task(
            LatencyProbe(ctx.store, ctx.deployment, settings).run(), name="memcloud-latency"
        )
        sock = _bind(settings.host, settings.api_port)
        limits = HttpLimits(
            max_connections=settings.api_max_connections,
            head_timeout=settings.api_head_timeout,
            body_timeout=settings.api_body_timeout,
        )
        config = uvicorn.Config(
            create_app(ctx),
            # h11 always (never httptools, even if installed): the deadlines and the
            # connection cap live in a subclass of uvicorn's h11 protocol (api/limits.py).
            http=guarded_protocol(limits),
            # No route speaks WebSocket: an Upgrade must not hand the socket to a protocol
            # that has none of these limits.
            ws="none",
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            lifespan="off",
            access_log=False,
            log_config=None,
            # uvicorn warns once per malformed or `Upgrade:` request: any client could fill
            # the log. Its errors (a failing app) are still logged.
            log_level="error",
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_SECONDS),
            # HTTPS with the data plane's certificate (checked at start by memcloud.tls).
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
        )
        server = self._server = _Server(config)
        task = self._task = asyncio.create_task(server.serve(sockets=[sock]), name="memcloud-api")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_SECONDS
        while not server.started:
            if task.done() or loop.time() > deadline:
                await self.stop()
                sock.close()
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise OSError(f"the HTTP API did not start: {task.exception()!r}")
                raise OSError("the HTTP API did not start in time")
            await asyncio.sleep(0.01)
        port: int = sock.getsockname()[1]
        self.port = port
        log.info("HTTP%s API listening on %s:%d", "S" if settings.tls else "", settings.host, port)
        if settings.metrics_token == "":
            log.warning(
                "/metrics is open (--metrics-token ''): anyone who reaches port %d reads "
                "every cache's name and counters",
                port,
            )
        return port

    async def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        alerts, self._alerts = self._alerts, None
        if alerts is not None:
            await alerts.stop()
        server, task = self._server, self._task
        self._server = self._task = None
        if sampler is not None:
            sampler.cancel()
        if server is not None and task is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, GRACEFUL_SHUTDOWN_SECONDS + 2)
        if sampler is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
