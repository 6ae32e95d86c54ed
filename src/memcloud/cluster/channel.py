"""The node-to-node channel over mutual TLS: a server that runs a handler per request frame,
and a pooled, pipelined client link per remote node (memcloud.cluster.wire has the frames).

Server: the frames of one connection are *started* in arrival order. The handler is called
synchronously as each frame is decoded; bytes it returns are written at once (all replies
of one read in one write), an awaitable it returns is run as a task (tasks begin in the
order they are made) and its reply is written, tagged with the request id, when it
completes. A handler's exception answers an error frame with its message (never a
traceback) and the connection carries on. Reading pauses while the peer does not read its
replies (write-buffer flow control) or while too many replies are still being computed.

Client (`PeerLink`): connects on the first call, pipelines every concurrent call over that
one connection (request ids, one future per call), reconnects on the next call after a
loss, fails every pending call with PeerUnavailable when the connection drops, times a call
out after `timeout`, and bounds the calls outstanding (a caller past the bound awaits a
slot).

Both sides close a connection whose TLS handshake is not done within HANDSHAKE_TIMEOUT, and
one that leaves a frame unfinished for FRAME_TIMEOUT (slowloris); a frame over `max_frame`
closes the connection at once (wire.FrameDecoder).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Final, TypeAlias, cast

from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.wire import (
    MAX_ERROR_MESSAGE,
    Frame,
    FrameDecoder,
    Status,
    WireError,
    encode_error,
    encode_frame,
)

__all__ = [
    "DEFAULT_MAX_OUTSTANDING",
    "FRAME_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "MAX_IN_FLIGHT",
    "ChannelError",
    "ChannelServer",
    "Handler",
    "PeerLink",
    "PeerUnavailable",
    "parse_address",
]

logger = logging.getLogger("memcloud.cluster")

Handler: TypeAlias = Callable[[int, bytes], bytes | Awaitable[bytes]]

# A TLS handshake takes milliseconds between machines of one deployment; one that is not
# done in this long is a port scanner or a slowloris, and holds a socket until closed.
HANDSHAKE_TIMEOUT: Final = 5.0
# A frame begun must be whole (or another one completed) within this: a 1 MiB frame needs
# 100 KB/s, far below any link between machines.
FRAME_TIMEOUT: Final = 10.0
# Replies a connection may be computing at once (awaitable handlers) before the server
# stops reading from it: a PeerLink's default bound is the same, so only a peer that
# raised its own meets it.
MAX_IN_FLIGHT: Final = 1024
# Replies of one read written together; past this much the server writes and looks whether
# its peer still reads (a few small requests may ask for megabytes of replies).
REPLY_BATCH: Final = 256 * 1024
# Calls one link keeps outstanding before a caller waits for a slot.
DEFAULT_MAX_OUTSTANDING: Final = 1024
# After a failed connect, calls within this many seconds fail at once instead of each
# trying again (a dead peer must not cost a connect timeout per forwarded command).
DEFAULT_RETRY_AFTER: Final = 0.5


class ChannelError(Exception):
    """The peer answered an error (the message is its message)."""


class PeerUnavailable(ChannelError):
    """The peer cannot be reached: no connection, connection lost, or no answer in time."""


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` as (host, port); a ValueError if it is neither."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a host:port address: {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _message(exc: BaseException) -> str:
    return str(exc)[:MAX_ERROR_MESSAGE] or type(exc).__name__


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"


class _Progress:
    """Closes a connection that holds an unfinished frame for FRAME_TIMEOUT without
    completing any frame (one timer per connection, armed only while a frame is partial)."""

    __slots__ = ("_frames_then", "_loop", "_seconds", "_timer", "frames")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self._loop = loop
        self._seconds = seconds
        self._timer: asyncio.TimerHandle | None = None
        self._frames_then = 0
        self.frames = 0

    def watch(self, partial_frame: bool, stall: Callable[[], None]) -> None:
        if not partial_frame:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif self._timer is None:
            self._frames_then = self.frames
            self._timer = self._loop.call_later(self._seconds, self._check, stall)

    def _check(self, stall: Callable[[], None]) -> None:
        self._timer = None
        if self.frames == self._frames_then:
            stall()
        else:  # frames keep completing: a busy connection, not a stalled one
            self._frames_then = self.frames
            self._timer = self._loop.call_later(self._seconds, self._check, stall)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# -- the server --------------------------------------------------------------------------


class _ServerConnection(asyncio.Protocol):
    __slots__ = (
        "_backlog",
        "_decoder",
        "_handler",
        "_out",
        "_progress",
        "_reading_paused",
        "_server",
        "_transport",
        "_writing_paused",
        "tasks",
    )

    def __init__(self, server: ChannelServer) -> None:
        self._server = server
        self._handler = server.handler
        self._decoder = FrameDecoder(server.max_frame)
        self._transport: asyncio.Transport | None = None
        self._progress = _Progress(asyncio.get_running_loop(), server.frame_timeout)
        self.tasks: set[asyncio.Future[bytes]] = set()
        # Replies of awaitable handlers, written together once per loop iteration.
        self._out: list[bytes] = []
        self._writing_paused = self._reading_paused = False
        # Whole frames received but not yet started, while the peer reads no replies.
        self._backlog = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._progress.stop()
        self._transport = None
        # Replies still being computed finish (what a request changed stays changed) and
        # are dropped: there is no one to send them to.

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        self._decoder.receive_data(data)
        if not self._backlog:
            self._run_frames()

    def _run_frames(self) -> None:
        """Start every whole frame received, writing replies in batches; stop (and keep the
        rest for resume_writing) as soon as the peer is not reading what was written."""
        transport = self._transport
        if transport is None:
            return
        decoder = self._decoder
        replies: list[bytes] = []
        size = 0
        try:
            while (frame := decoder.next_frame()) is not None:
                self._progress.frames += 1
                size += self._start(frame, replies)
                if size >= REPLY_BATCH:
                    transport.write(b"".join(replies))
                    replies.clear()
                    size = 0
                if self._writing_paused or len(self.tasks) >= MAX_IN_FLIGHT:
                    # A few requests can ask for a great deal: the rest waits, unread.
                    self._backlog = decoder.pending > 0
                    break
        except WireError as exc:
            logger.warning(
                "cluster channel: closed the connection of %s: %s", _peer(transport), exc
            )
            transport.abort()
            return
        if replies:
            transport.write(replies[0] if len(replies) == 1 else b"".join(replies))
        self._progress.watch(decoder.pending > 0 and not self._backlog, self._stalled)
        self._update_reading()

    def _start(self, frame: Frame, replies: list[bytes]) -> int:
        """Call the handler on one frame; answers the bytes it added to `replies`."""
        request_id = frame.request_id
        try:
            result = self._handler(frame.code, frame.payload)
            if isinstance(result, bytes | bytearray | memoryview):
                reply = self._reply(request_id, result)
                replies.append(reply)
                return len(reply)
            task = asyncio.ensure_future(result)
        except Exception as exc:
            reply = encode_error(request_id, _message(exc))
            replies.append(reply)
            return len(reply)
        self.tasks.add(task)
        task.add_done_callback(partial(self._finished, request_id))
        return 0

    def _reply(self, request_id: int, result: object) -> bytes:
        if not isinstance(result, bytes | bytearray | memoryview):
            return encode_error(request_id, "the handler answered no bytes")
        if len(result) > self._server.max_frame:
            return encode_error(request_id, f"reply of {len(result)} bytes is over the limit")
        return encode_frame(request_id, Status.OK, bytes(result))

    def _finished(self, request_id: int, task: asyncio.Future[bytes]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            reply = encode_error(request_id, "cancelled")
        elif (exc := task.exception()) is not None:
            reply = encode_error(request_id, _message(exc))
        else:
            reply = self._reply(request_id, task.result())
        if self._transport is None or self._transport.is_closing():
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(reply)
        if self._reading_paused and len(self.tasks) <= MAX_IN_FLIGHT // 2:
            self._resume()

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _stalled(self) -> None:
        if self._transport is not None:
            logger.warning(
                "cluster channel: closed the connection of %s: a frame left unfinished for %g s",
                _peer(self._transport),
                self._server.frame_timeout,
            )
            self._transport.abort()

    def _update_reading(self) -> None:
        pause = self._writing_paused or self._backlog or len(self.tasks) >= MAX_IN_FLIGHT
        if self._transport is None or pause == self._reading_paused:
            return
        self._reading_paused = pause
        if pause:
            self._transport.pause_reading()
        else:
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._resume()

    def _resume(self) -> None:
        """Start the frames held back, if nothing holds them back any longer."""
        if self._backlog and not self._writing_paused and len(self.tasks) < MAX_IN_FLIGHT:
            self._backlog = False
            self._run_frames()
        else:
            self._update_reading()


class ChannelServer:
    """Listens for peers over mutual TLS and answers their frames with `handler`."""

    def __init__(
        self,
        identity: NodeIdentity,
        handler: Handler,
        *,
        max_frame: int,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        frame_timeout: float = FRAME_TIMEOUT,
    ) -> None:
        self.identity = identity
        self.frame_timeout = frame_timeout
        self.handler = handler
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self.connections: set[_ServerConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0: one the OS chooses, then read `port`)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ServerConnection(self),
            host,
            port,
            ssl=self.identity.server_context(),
            ssl_handshake_timeout=self.handshake_timeout,
            reuse_address=True,
        )

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the channel server is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Stop listening and close every connection (replies being computed are dropped)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self.connections):
            connection.abort()
            for task in connection.tasks:
                task.cancel()
        await server.wait_closed()


# -- the client --------------------------------------------------------------------------


class _ClientConnection(asyncio.Protocol):
    """One TLS connection of a PeerLink and the calls waiting on it."""

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
    ) -> None:
        self.address = address
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
                await asyncio.wait_for(
                    loop.create_connection(
                        lambda: connection,
                        self.host,
                        self.port,
                        ssl=self.identity.client_context(),
                        ssl_handshake_timeout=min(self.timeout, HANDSHAKE_TIMEOUT),
                    ),
                    self.timeout,
                )
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
