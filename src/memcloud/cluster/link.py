"""The client side of the node-to-node channel: a pooled, pipelined link to one other node
(`PeerLink`), with timeouts, reconnection and back-pressure (the server side:
memcloud.cluster.channel)."""

from __future__ import annotations

import asyncio
import logging
from typing import Final, cast

from memcloud.cluster.channel import (
    DEFAULT_RETRY_AFTER,
    FRAME_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    REPLY_BATCH,
    ChannelError,
    PeerUnavailable,
    _message,
    _Progress,
    parse_address,
)
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.wire import (
    FrameDecoder,
    Status,
    WireError,
    encode_frame,
)

__all__ = ["DEFAULT_MAX_OUTSTANDING", "PeerLink"]

logger = logging.getLogger("memcloud.cluster")

# Calls one link keeps outstanding before a caller waits for a slot.
DEFAULT_MAX_OUTSTANDING: Final = 1024


class _ClientConnection(asyncio.Protocol):
    """One connection of a PeerLink (TLS, or a local member's Unix socket) and the calls
    waiting on it."""

    __slots__ = (
        "_decoder",
        "_drained",
        "_link",
        "_out",
        "_out_size",
        "_progress",
        "_sweeper",
        "last_received",
        "loop",
        "lost",
        "next_id",
        "pending",
        "transport",
        "writing_paused",
    )

    def __init__(self, link: PeerLink, loop: asyncio.AbstractEventLoop) -> None:
        self._link = link
        self.loop = loop
        self._decoder = FrameDecoder(link.max_frame)
        self._progress = _Progress(loop, FRAME_TIMEOUT)
        self.transport: asyncio.Transport | None = None
        # Request id -> (its caller's future, its deadline), oldest first: every call has
        # the same timeout, so insertion order is deadline order.
        self.pending: dict[int, tuple[asyncio.Future[bytes], float]] = {}
        self.next_id = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        # Set while the transport's write buffer is over its high-water mark; the future
        # exists only while some caller waits for it to drain.
        self.writing_paused = False
        self._drained: asyncio.Future[None] | None = None
        self.last_received = loop.time()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self.close(PeerUnavailable(f"connection to {self._link.address} lost{reason}"))

    def close(self, error: PeerUnavailable) -> None:
        """Fail every pending call with `error` and drop the connection."""
        if not self.lost:
            self.lost = True
            self._link.forget(self)
        self._progress.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        pending, self.pending = self.pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(error)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(error)
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def send(self, frame: bytes) -> None:
        # Frames of the calls made in one loop iteration leave in one write; past
        # REPLY_BATCH they leave at once, so that a full write buffer (pause_writing) holds
        # up the next callers instead of piling up here.
        if not self._out:
            self.loop.call_soon(self._flush)
        self._out.append(frame)
        self._out_size += len(frame)
        if self._out_size >= REPLY_BATCH:
            self._flush()
        if self._sweeper is None:
            self._sweep_at(self.loop.time() + self._link.timeout)

    def _flush(self) -> None:
        out, self._out = self._out, []
        self._out_size = 0
        if self.transport is not None and out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _sweep_at(self, when: float) -> None:
        self._sweeper = self.loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        """Time out the calls past their deadline; a connection that has answered nothing
        for a whole timeout is taken for dead (a vanished machine sends no reset)."""
        self._sweeper = None
        now = self.loop.time()
        expired = []
        for request_id, (future, deadline) in self.pending.items():
            if deadline > now:
                break
            expired.append((request_id, future))
        timeout = self._link.timeout
        error = PeerUnavailable(f"{self._link.address} did not answer within {timeout:g} s")
        for request_id, future in expired:
            del self.pending[request_id]
            if not future.done():
                future.set_exception(error)
        if expired and now - self.last_received >= timeout:
            logger.warning("cluster channel: %s answers nothing: reconnecting", self._link.address)
            self.close(error)
            return
        if self.pending:
            self._sweep_at(next(iter(self.pending.values()))[1])

    async def writable(self) -> None:
        """Wait while the peer does not read what was already sent (PeerUnavailable if the
        connection is lost meanwhile)."""
        while self.writing_paused:
            if self.lost:
                raise PeerUnavailable(f"connection to {self._link.address} lost")
            if self._drained is None:
                self._drained = self.loop.create_future()
            await asyncio.shield(self._drained)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        decoder = self._decoder
        decoder.receive_data(data)
        pending = self.pending
        try:
            frame = decoder.next_frame()
            while frame is not None:
                self._progress.frames += 1
                entry = pending.pop(frame.request_id, None)
                # None: a call that timed out or was cancelled; its late answer is dropped.
                if entry is not None and not entry[0].done():
                    if frame.code == Status.OK:
                        entry[0].set_result(frame.payload)
                    else:
                        entry[0].set_exception(
                            ChannelError(frame.payload.decode("utf-8", "replace"))
                        )
                frame = decoder.next_frame()
        except WireError as exc:
            logger.warning(
                "cluster channel: %s sent no channel frames: %s", self._link.address, exc
            )
            self.close(PeerUnavailable(f"{self._link.address} broke the channel protocol"))
            return
        self._progress.watch(decoder.pending > 0, self._stalled)

    def _stalled(self) -> None:
        self.close(PeerUnavailable(f"{self._link.address} left a reply unfinished"))


class PeerLink:
    """The channel to one remote node: one lazily opened TLS connection that carries every
    concurrent call, pipelined (see the module docstring)."""

    def __init__(
        self,
        address: str,
        identity: NodeIdentity,
        *,
        timeout: float,
        max_frame: int,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        retry_after: float = DEFAULT_RETRY_AFTER,
        local_path: str | None = None,
    ) -> None:
        self.address = address
        # A member of this node's own `serve` on this machine: its Unix socket, no TLS
        # (ChannelServer.start_local).
        self.local_path = local_path
        self.host, self.port = parse_address(address)
        self.identity = identity
        self.timeout = timeout
        self.max_frame = max_frame
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(max_outstanding)
        self._connection: _ClientConnection | None = None
        self._connecting = asyncio.Lock()
        self._retry_at = 0.0
        self._last_failure = ""
        self._closed = False

    def __repr__(self) -> str:
        state = "connected" if self._connection is not None else "not connected"
        return f"PeerLink({self.address!r}, {state})"

    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def buffered(self) -> int:
        """Bytes of requests written but not yet taken by the network (a peer that reads
        nothing makes callers wait rather than this grow)."""
        connection = self._connection
        if connection is None or connection.transport is None:
            return 0
        return connection.transport.get_write_buffer_size() + connection._out_size

    def forget(self, connection: _ClientConnection) -> None:
        """A connection is gone: the next call opens a new one."""
        if self._connection is connection:
            self._connection = None

    async def call(self, kind: int, payload: bytes) -> bytes:
        """The peer's answer to (kind, payload); ChannelError if it answers an error,
        PeerUnavailable if it cannot be reached or does not answer within `timeout`."""
        if len(payload) > self.max_frame:
            raise ChannelError(f"request of {len(payload)} bytes is over the channel's limit")
        await self._slots.acquire()
        try:
            connection = self._connection or await self._connect()
            if connection.writing_paused:
                await connection.writable()
            request_id = connection.next_id
            while request_id in connection.pending:
                request_id = (request_id + 1) & 0xFFFFFFFF
            connection.next_id = (request_id + 1) & 0xFFFFFFFF
            future: asyncio.Future[bytes] = connection.loop.create_future()
            connection.pending[request_id] = (future, connection.loop.time() + self.timeout)
            connection.send(encode_frame(request_id, kind, payload))
            try:
                return await future
            finally:
                if not future.done():  # cancelled by its caller: forget the call
                    connection.pending.pop(request_id, None)
        finally:
            self._slots.release()

    async def _connect(self) -> _ClientConnection:
        async with self._connecting:
            if self._closed:
                raise PeerUnavailable(f"the link to {self.address} is closed")
            if self._connection is not None:
                return self._connection
            loop = asyncio.get_running_loop()
            if loop.time() < self._retry_at:
                raise PeerUnavailable(self._last_failure)
            connection = _ClientConnection(self, loop)
            try:
                if self.local_path is not None:
                    opening = loop.create_unix_connection(lambda: connection, self.local_path)
                else:
                    opening = loop.create_connection(
                        lambda: connection,
                        self.host,
                        self.port,
                        ssl=self.identity.client_context(),
                        ssl_handshake_timeout=min(self.timeout, HANDSHAKE_TIMEOUT),
                    )
                await asyncio.wait_for(opening, self.timeout)
            except (OSError, TimeoutError) as exc:
                reason = _message(exc) if not isinstance(exc, TimeoutError) else "timed out"
                self._last_failure = f"cannot connect to {self.address}: {reason}"
                self._retry_at = loop.time() + self.retry_after
                raise PeerUnavailable(self._last_failure) from None
            if connection.lost:
                raise PeerUnavailable(f"{self.address} closed the connection at once")
            self._connection = connection
            return connection

    async def close(self) -> None:
        """Close the connection; pending and later calls fail with PeerUnavailable."""
        async with self._connecting:
            self._closed = True
            if self._connection is not None:
                self._connection.close(PeerUnavailable(f"the link to {self.address} is closed"))
