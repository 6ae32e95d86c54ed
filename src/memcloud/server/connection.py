"""One memcache connection: a thin asyncio.Protocol in front of a protocol session.

The protocol is chosen by the first byte (0x80 is the binary magic), as memcached does.
Reading pauses while the client does not read its replies, so a slow reader costs at most
the write buffer's high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, cast

from memcloud.admission import UNCAPPED, address_key
from memcloud.binary_session import BinarySession
from memcloud.protocol.replies import TOO_MANY_CONNECTIONS
from memcloud.routing import Forwards
from memcloud.service import Service, Session
from memcloud.text_session import TextSession

__all__ = ["WRITE_HIGH_WATER", "MemcacheConnection"]

log = logging.getLogger("memcloud.connection")

# Replies buffered for a client that does not read before we stop reading its requests.
WRITE_HIGH_WATER: Final = 1024 * 1024
WRITE_LOW_WATER: Final = 256 * 1024
BINARY_MAGIC: Final = 0x80


class MemcacheConnection(asyncio.Protocol):
    __slots__ = (
        "_address",
        "_auth_timer",
        "_backlog",
        "_drained",
        "_held",
        "_hold_timer",
        "_relaying",
        "_waiting",
        "_writing_paused",
        "connections",
        "peer",
        "service",
        "session",
        "transport",
    )

    def __init__(self, service: Service, connections: set[MemcacheConnection]) -> None:
        self.service = service
        # The node's open connections, authenticated or not (its listeners own the set:
        # admission counts it, shutdown closes what is in it).
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.peer = "?"
        self._address = "?"  # what admission counts it against (admission.address_key)
        self._auth_timer: asyncio.TimerHandle | None = None
        # While a reply is held back (session.reply_delay), reading is paused and anything
        # that still arrives waits here, to be handled in order once the reply is sent.
        self._held: list[bytes] | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        # A session that stopped at its reply batch limit (session.backlog) has input left:
        # reading stays paused until that input is answered, as the write buffer drains.
        self._backlog = False
        self._writing_paused = False
        # Set while replies from other nodes wait for the client to read what came before
        # (routing.Forwards.complete): resolved when the write buffer drains.
        self._drained: asyncio.Future[None] | None = None
        self._relaying: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly
        # Not logged in yet: holds one of the node's unauthenticated slots (admission).
        self._waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}"
        connections = self.connections
        connections.add(self)
        admission = self.service.admission
        # On an anonymous cache every connection is logged in from its first byte: an idle
        # pooled connection must not be dropped as "unauthenticated", nor capped per address.
        anonymous = self.service.anonymous_principal() is not None
        if anonymous:
            address = UNCAPPED
        else:
            address = address_key(peer[0] if isinstance(peer, tuple) and peer else "?")
        self._address = address
        if admission.refuses(address, len(connections)):
            self.shed()
            return
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        self._unauthenticated(deadline=not anonymous)

    def _unauthenticated(self, deadline: bool) -> None:
        """Hold an unauthenticated slot (shedding the oldest other one if they are over
        their bound) until the session logs in, closed at the auth deadline if it does not."""
        if not self._waiting:
            admission = self.service.admission
            admission.wait(self, self._address)
            self._waiting = True
            victim = admission.victim(len(self.connections))
            if isinstance(victim, MemcacheConnection):
                victim.shed()
        timeout = self.service.settings.auth_timeout
        if deadline and timeout > 0 and self._auth_timer is None:
            self._auth_timer = asyncio.get_running_loop().call_later(timeout, self._auth_deadline)

    def _logged_out(self) -> None:
        # A logged-in session dropped its identity to authenticate again (binary SASL): it
        # is unauthenticated, with a deadline, until that succeeds.
        if self.transport is not None:
            self._unauthenticated(deadline=True)

    def shed(self) -> None:
        """Refuse or drop this connection for want of a slot, as memcached does."""
        self.connections.discard(self)  # its slot is free from now on
        self.service.admission.settled(self)
        self._waiting = False
        if self.transport is not None:
            self.transport.write(TOO_MANY_CONNECTIONS)
            self.transport.close()

    def _auth_deadline(self) -> None:
        self._auth_timer = None
        if self.transport is None:
            return
        if self.session is None or not self.session.authenticated:
            log.info("closing %s: not authenticated in time", self.peer)
            self.transport.close()

    def _open_session(self, first_byte: int) -> Session:
        kind = BinarySession if first_byte == BINARY_MAGIC else TextSession
        session = kind(self.service, self.peer, self._close)
        session.logged_out = self._logged_out
        return session

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
            return
        session = self.session
        if session is None:
            session = self.session = self._open_session(data[0])
            if session.full:  # the anonymous cache is full: log in in time, or be closed
                self._unauthenticated(deadline=True)
        try:
            reply = session.handle(data)
        except Exception:
            # A bug must cost this connection, never the server or another tenant.
            log.exception("internal error on connection %s; closing it", self.peer)
            self._close()
            return
        transport = self.transport
        if transport is None:
            return
        forwards = session.forwards_taken
        if not (
            session.reply_delay or session.closing or session.backlog or self._waiting or forwards
        ):
            # The usual case, kept to one check: write the replies and wait for more.
            if reply:
                transport.write(reply)
            return
        if forwards is not None:
            self._start_relay(session, forwards)
            return
        self._after(session, reply)

    def _start_relay(self, session: Session, forwards: Forwards) -> None:
        """Replies of other nodes are due: hold reading (and what still arrives) until they
        are written in order, then carry on as after any other read."""
        session.forwards_taken = None
        if self._held is None:
            self._held = []
        if self.transport is not None:
            self.transport.pause_reading()
        self._relaying = asyncio.get_running_loop().create_task(self._relay(session, forwards))

    async def _relay(self, session: Session, forwards: Forwards) -> None:
        async def ready(replies: bytes) -> None:
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if replies:
                transport.write(replies)
                session.account(session.cache, b"", replies)
            if self._writing_paused:
                self._drained = asyncio.get_running_loop().create_future()
                await self._drained

        try:
            await forwards.complete(ready)
            self._relaying = None
        except Exception:
            log.exception("internal error relaying forwarded replies on %s; closing it", self.peer)
            self._close()
            return
        delay, session.reply_delay = session.reply_delay, 0.0
        if delay > 0:  # the same read also failed a login: its backoff still applies
            self._hold_timer = asyncio.get_running_loop().call_later(
                delay, self._release, session, b""
            )
        else:
            self._release(session, b"")

    def _after(self, session: Session, reply: bytes) -> None:
        """A read's replies when something more than writing them is due."""
        transport = self.transport
        assert transport is not None
        if session.reply_delay > 0:
            # Answer later without blocking anyone: stop reading, send on a timer.
            delay, session.reply_delay = session.reply_delay, 0.0
            self._held = []
            transport.pause_reading()
            self._hold_timer = asyncio.get_running_loop().call_later(
                delay, self._release, session, reply
            )
            return
        self._send(session, reply)

    def _release(self, session: Session, reply: bytes) -> None:
        self._hold_timer = None
        held, self._held = self._held or [], None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._send(session, reply)
        if session.closing or transport.is_closing():
            return
        if transport.get_write_buffer_size() < WRITE_HIGH_WATER and not self._backlog:
            transport.resume_reading()
        while held and self._held is None and not transport.is_closing():
            self.data_received(held.pop(0))
        if held and self._held is not None:
            self._held[:0] = held

    def _send(self, session: Session, reply: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        if reply:
            transport.write(reply)
        if session.closing:
            transport.close()
            return
        if self._waiting and session.authenticated:
            self._waiting = False
            self.service.admission.settled(self)
            if self._auth_timer is not None:
                self._auth_timer.cancel()
                self._auth_timer = None
        if session.backlog and not self._backlog:
            self._backlog = True
            transport.pause_reading()
            if not self._writing_paused:
                asyncio.get_running_loop().call_soon(self._answer_backlog)

    def _answer_backlog(self) -> None:
        """Answer the next batch of input a session left over (see session.backlog)."""
        self._backlog = False
        transport, session = self.transport, self.session
        if transport is None or session is None or transport.is_closing():
            return
        try:
            reply = session.handle(b"")
        except Exception:
            log.exception("internal error on connection %s; closing it", self.peer)
            self._close()
            return
        forwards = session.forwards_taken
        if forwards is not None:
            self._start_relay(session, forwards)
            return
        self._send(session, reply)
        idle = not self._backlog and not self._writing_paused and self._held is None
        if idle and not transport.is_closing():
            transport.resume_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)
            return  # the relay carries on and resumes reading when it is done
        if self.transport is None or self.transport.is_closing():
            return
        if self._backlog:
            asyncio.get_running_loop().call_soon(self._answer_backlog)
        elif self._held is None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self._waiting:
            self._waiting = False
            self.service.admission.settled(self)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self._held = None
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)
        if self.session is not None:
            self.session.closed()
        self.transport = None
