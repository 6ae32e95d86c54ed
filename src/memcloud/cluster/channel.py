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
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
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
    "DEFAULT_RETRY_AFTER",
    "FRAME_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "MAX_IN_FLIGHT",
    "REPLY_BATCH",
    "ChannelError",
    "ChannelServer",
    "Handler",
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
REPLY_BATCH: Final = (
    256 * 1024
)  # After a failed connect, calls within this many seconds fail at once instead of each
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
    """Listens for peers over mutual TLS (and, with start_local, for this machine's own
    members on a Unix socket) and answers their frames with `handler`."""

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
        # The same-machine door (start_local): a Unix socket, and its path.
        self._local: asyncio.AbstractServer | None = None
        self._local_path: Path | None = None

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

    async def start_local(self, path: Path) -> None:
        """Also listen on a Unix socket at `path`, without TLS, for the other members of
        this node's own `memcloud serve --nodes N`: they share its data dir (mode 0700),
        and the socket allows neither group nor others, so what it carries never leaves
        the machine and only its owner reaches it. TLS costs a round trip about 45 µs of
        CPU per side on loopback (uvloop's SSL layer); this door costs none."""
        loop = asyncio.get_running_loop()
        path.unlink(missing_ok=True)  # a socket file left by a node that died
        old_umask = os.umask(0o077)
        try:
            self._local = await loop.create_unix_server(
                lambda: _ServerConnection(self), path=str(path)
            )
        finally:
            os.umask(old_umask)
        self._local_path = path

    @property
    def port(self) -> int:
        # uvloop's server holds its sockets in a list, typeshed says a tuple: read as
        # a sequence, which the compiled build does not check against either.
        sockets: Sequence[socket.socket] = getattr(self._server, "sockets", None) or ()
        if self._server is None or not sockets:
            raise RuntimeError("the channel server is not listening")
        port: int = sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Stop listening and close every connection (replies being computed are dropped)."""
        server, self._server = self._server, None
        local, self._local = self._local, None
        if local is not None:
            local.close()
            if self._local_path is not None:
                self._local_path.unlink(missing_ok=True)
        if server is None:
            return
        server.close()
        for connection in list(self.connections):
            connection.abort()
            for task in connection.tasks:
                task.cancel()
        await server.wait_closed()
        if local is not None:
            await local.wait_closed()


# -- the client --------------------------------------------------------------------------
