"""Where a key of this node's cluster lives, and the commands a session sends on to the
node that owns their key.

Every node of a cluster answers for every key of every cache placed on it: a session asks
the cluster's `Route` who owns a key (memcloud.placement's ring over the live nodes); a key
this node owns is served from its own storage at once, any other is written back into the
client's protocol and queued in the read's `Forwards`, one frame per owner. When the read
is parsed, the connection sends the frames (one round trip per owner, pipelined over the
node-to-node channel) and writes every reply in the order the client sent its commands:
the owner's answers where they belong, this node's own in between.

The frame's payload (`FORWARD`): cache id, generation (a cache deleted and made again is
never served what was meant for the old one), protocol, the sender's capabilities (the
owner asks its gate again: deny by default on both sides), then the commands' bytes. The
owner answers one chunk per command (`-1`: not run, over its reply budget: sent again in
the next round), so each reply goes to its own place. A peer that cannot be reached
answers as a miss: a get finds nothing, a change is not stored (the hosted service loses
a dead server's keys the same way); within five seconds the node is marked down and its
keys have a new owner.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from memcloud.placement import Ring

__all__ = [
    "FORWARD",
    "FORWARDED",
    "FORWARD_COMMANDS_MAX",
    "NOT_RUN",
    "PROTOCOL_BINARY",
    "PROTOCOL_TEXT",
    "REPLICA",
    "SERVE",
    "CheckedChange",
    "Combine",
    "FollowUp",
    "Forwards",
    "Link",
    "Route",
    "decode_chunks",
    "decode_forward",
    "encode_chunks",
    "encode_forward",
]

log = logging.getLogger("memcloud.routing")

# The node-to-node channel's frame kind of forwarded commands.
FORWARD: Final = 1
PROTOCOL_TEXT: Final = 0
PROTOCOL_BINARY: Final = 1
# Commands one read forwards at most; the rest of the read waits as the session's backlog
# (as a read past its reply budget does), so one read never has unbounded replies in flight.
FORWARD_COMMANDS_MAX: Final = 256
# A command the owner did not run (its reply budget for the frame was spent).
NOT_RUN: Final = -1
# The place of a replica's copy of a change in the read's replies: none.
REPLICA: Final = -1
# Where a change runs (Session.route_write): here, its reply the client's; or at its owner,
# whose reply takes its place.
SERVE: Final = 0
FORWARDED: Final = 1

_HEAD: Final = struct.Struct(">IBBB")  # cache id, protocol, capabilities, generation length
_COPIES: Final = 0x80  # in the protocol byte: the frame holds a replica's copies
_COUNT: Final = struct.Struct(">I")
_LENGTH: Final = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class CheckedChange:
    """A change checked against the CAS unique, as Session.route_write sends it on a plan
    with replicas: `command` to the owner (with a reply, so that its outcome is known),
    `made` tells from that reply whether it was made, `copy` is what the replicas then
    apply, `silent` that the client asked for no reply."""

    command: bytes
    made: Callable[[bytes], bool]
    copy: bytes
    silent: bool = False


class Link(Protocol):
    """The channel to one other node (memcloud.cluster.channel.PeerLink)."""

    async def call(self, kind: int, payload: bytes) -> bytes: ...


class Route:
    """This node's cluster as the data plane sees it: the ring of its live nodes, which of
    them this node is, and a link to each of the others (None at `local`)."""

    __slots__ = ("addresses", "apply_here", "links", "local", "ring")

    def __init__(
        self,
        ring: Ring,
        local: int,
        links: list[Link | None],
        apply_here: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.ring = ring
        self.local = local
        self.links = links
        self.addresses = [node.address for node in ring.nodes]
        # Runs a forward frame on this node (memcloud.forwarded): a follow-up copy here.
        self.apply_here = apply_here

    def owner(self, cache_id: int, key: bytes) -> int:
        return self.ring.owner(cache_id, key)

    def is_local(self, cache_id: int, key: bytes) -> bool:
        return self.ring.owner(cache_id, key) == self.local

    def peers(self) -> list[int]:
        """Every other node of the ring."""
        return [index for index in range(len(self.ring)) if index != self.local]


def encode_forward(
    cache_id: int,
    generation: str,
    protocol: int,
    capabilities: int,
    commands: bytes,
    copies: bool = False,
) -> bytes:
    """A frame of commands for one node; `copies`: they are a replica's copies of changes
    their owner answers (not counted as the cache's requests where they are made)."""
    gen = generation.encode()
    kind = protocol | _COPIES if copies else protocol
    return b"".join((_HEAD.pack(cache_id, kind, capabilities, len(gen)), gen, commands))


def decode_forward(payload: bytes) -> tuple[int, str, int, int, bool, bytes]:
    """(cache id, generation, protocol, capabilities, copies, commands); ValueError if
    malformed."""
    if len(payload) < _HEAD.size:
        raise ValueError("forward frame too short")
    cache_id, kind, capabilities, gen_length = _HEAD.unpack_from(payload)
    start = _HEAD.size + gen_length
    if len(payload) < start:
        raise ValueError("forward frame too short")
    generation = payload[_HEAD.size : start].decode("ascii", "replace")
    copies = bool(kind & _COPIES)
    return cache_id, generation, kind & ~_COPIES, capabilities, copies, payload[start:]


def encode_chunks(chunks: list[bytes | None]) -> bytes:
    """The owner's answer: one chunk per command, None for one it did not run."""
    lengths = [NOT_RUN if chunk is None else len(chunk) for chunk in chunks]
    parts = [_COUNT.pack(len(chunks)), *(_LENGTH.pack(n) for n in lengths)]
    parts.extend(chunk for chunk in chunks if chunk is not None)
    return b"".join(parts)


def decode_chunks(payload: bytes, expected: int) -> list[bytes | None]:
    """The chunks of an owner's answer; ValueError unless it holds `expected` of them."""
    if len(payload) < _COUNT.size:
        raise ValueError("forward answer too short")
    (count,) = _COUNT.unpack_from(payload)
    if count != expected:
        raise ValueError(f"forward answer has {count} replies for {expected} commands")
    at = _COUNT.size + count * _LENGTH.size
    if len(payload) < at:
        raise ValueError("forward answer too short")
    chunks: list[bytes | None] = []
    for index in range(count):
        (length,) = _LENGTH.unpack_from(payload, _COUNT.size + index * _LENGTH.size)
        if length == NOT_RUN:
            chunks.append(None)
            continue
        if length < 0 or at + length > len(payload):
            raise ValueError("forward answer's replies overrun it")
        chunks.append(payload[at : at + length])
        at += length
    return chunks


Combine = Callable[[list[bytes | None]], bytes]
# When an owner's reply says a change was made, what to send where next: (made?, copies).
FollowUp = tuple[Callable[[bytes], bool], list[tuple[int, bytes]]]


class _Combined:
    """A command sent to every other node (flush_all, stats): its one reply is made from
    all of theirs (None for a node that could not be reached) once the last is in."""

    __slots__ = ("combine", "parts", "position", "remaining")

    def __init__(self, position: int, combine: Combine, count: int) -> None:
        self.position = position
        self.combine = combine
        self.parts: list[bytes | None] = [None] * count
        self.remaining = count


class _Pending:
    """One forwarded command: where its reply goes in the read's replies, and what the
    owner's reply needs before it goes there."""

    __slots__ = (
        "combined",
        "command",
        "part",
        "position",
        "silent",
        "strip",
        "then",
        "unreachable",
    )

    def __init__(self, position: int, command: bytes, strip: bytes, unreachable: bytes) -> None:
        self.position = position
        self.command = command
        self.strip = strip  # a suffix to drop from the reply (a multi-get key's END)
        self.unreachable = unreachable  # the answer when the owner cannot be reached
        self.combined: _Combined | None = None
        self.part = 0
        # Copies to send once the owner's reply says the change was made (a `cas` on a plan
        # with replicas: the replicas take its outcome, not the check, as their uniques
        # differ from the owner's), and whether the client asked for no reply (noreply).
        self.then: FollowUp | None = None
        self.silent = False

    def answered(self, out: list[bytes], chunk: bytes | None) -> None:
        """Put the owner's reply (None: unreachable) where it belongs."""
        if self.position == REPLICA:
            return
        combined = self.combined
        if combined is not None:
            combined.parts[self.part] = chunk
            combined.remaining -= 1
            if combined.remaining == 0:
                out[combined.position] = combined.combine(combined.parts)
            return
        if chunk is None:
            out[self.position] = self.unreachable
            return
        strip = self.strip
        if self.silent:
            chunk = b""
        elif strip and chunk.endswith(strip):
            chunk = chunk[: -len(strip)]
        out[self.position] = chunk


class Forwards:
    """The commands one read of a session forwards, by owner, and the read's replies with a
    place kept for each (`out`, the session's reply list, is taken over at `take`)."""

    __slots__ = ("_by_peer", "capabilities", "count", "header", "out", "protocol", "route")

    def __init__(
        self, route: Route, cache_id: int, generation: str, protocol: int, capabilities: int
    ) -> None:
        self.route = route
        self.protocol = protocol
        self.capabilities = capabilities
        self.header = (cache_id, generation)
        self._by_peer: dict[int, list[_Pending]] = {}
        self.count = 0
        self.out: list[bytes] = []

    def add(
        self,
        owner: int,
        command: bytes,
        out: list[bytes],
        *,
        strip: bytes = b"",
        unreachable: bytes = b"",
        then: FollowUp | None = None,
        silent: bool = False,
    ) -> None:
        """Forward `command` to node `owner`; its reply takes the next place in `out`
        (nothing, if `silent`), and `then` says what follows once it is in."""
        pending = _Pending(len(out), command, strip, unreachable)
        pending.then = then
        pending.silent = silent
        out.append(b"")
        self._by_peer.setdefault(owner, []).append(pending)
        self.count += 1

    def replicate(self, owner: int, command: bytes) -> None:
        """Send a change to a replica of its key: its reply is nobody's (the owner's is)."""
        self._by_peer.setdefault(owner, []).append(_Pending(REPLICA, command, b"", b""))

    def add_to_all(self, command: bytes, out: list[bytes], combine: Combine) -> None:
        """Send `command` to every other node of the cluster; the reply `combine` makes
        of their replies takes the next place in `out`."""
        peers = self.route.peers()
        combined = _Combined(len(out), combine, len(peers))
        out.append(b"")
        for part, peer in enumerate(peers):
            pending = _Pending(combined.position, command, b"", b"")
            pending.combined = combined
            pending.part = part
            self._by_peer.setdefault(peer, []).append(pending)
        self.count += 1

    async def complete(self, ready: Callable[[bytes], Awaitable[None]]) -> None:
        """Send every frame, put each reply in its place, and hand the replies to `ready`
        in order as far as they are complete (after each round: a command an owner did not
        run over its budget goes again in the next round, after `ready` took what came
        before it, so a connection's replies in memory stay bounded)."""
        out = self.out
        written = 0
        waiting = self._by_peer
        self._by_peer = {}
        while waiting:
            peers = list(waiting)
            answers: list[list[bytes | None] | BaseException]
            if len(peers) == 1:  # the usual case: one owner, no gather's tasks
                try:
                    answers = [await self._send(peers[0], waiting[peers[0]])]
                except Exception as exc:
                    answers = [exc]
            else:
                answers = await asyncio.gather(
                    *(self._send(peer, waiting[peer]) for peer in peers), return_exceptions=True
                )
            again: dict[int, list[_Pending]] = {}
            for peer, answer in zip(peers, answers, strict=True):
                pendings = waiting[peer]
                if isinstance(answer, BaseException):
                    if not isinstance(answer, Exception):
                        raise answer
                    log.debug("forwarding to %s failed: %r", self.route.addresses[peer], answer)
                    for pending in pendings:
                        pending.answered(out, None)
                    continue
                for pending, chunk in zip(pendings, answer, strict=True):
                    if chunk is None:
                        again.setdefault(peer, []).append(pending)
                        continue
                    pending.answered(out, chunk)
                    then = pending.then
                    if then is not None and then[0](chunk):
                        for node, command in then[1]:
                            if node == self.route.local:
                                self._apply_here(command)
                            else:
                                copy = _Pending(REPLICA, command, b"", b"")
                                again.setdefault(node, []).append(copy)
            blocked = min(
                (
                    pending.position
                    for pendings in again.values()
                    for pending in pendings
                    if pending.position != REPLICA
                ),
                default=len(out),
            )
            if blocked > written:
                await ready(b"".join(out[written:blocked]))
                for index in range(written, blocked):
                    out[index] = b""
                written = blocked
            waiting = again
        if written < len(out):
            await ready(b"".join(out[written:]))

    def _apply_here(self, command: bytes) -> None:
        """Make a follow-up copy on this node (it is a replica of the key)."""
        apply = self.route.apply_here
        if apply is None:
            return
        cache_id, generation = self.header
        payload = encode_forward(
            cache_id, generation, self.protocol, self.capabilities, command, copies=True
        )
        try:
            apply(payload)
        except Exception as exc:  # the cache left this node meanwhile: nothing to copy
            log.debug("no copy here of a change to cache %d: %r", cache_id, exc)

    async def _send(self, peer: int, pendings: list[_Pending]) -> list[bytes | None]:
        """One node's commands of this round, and its replies in their order. A replica's
        copies go in a frame of their own (their node does not count them as requests)."""
        copies = [pending for pending in pendings if pending.position == REPLICA]
        if not copies:
            return await self._frame(peer, pendings, False)
        if len(copies) == len(pendings):
            return await self._frame(peer, pendings, True)
        asked = [pending for pending in pendings if pending.position != REPLICA]
        answers = iter(await self._frame(peer, asked, False))
        copied = iter(await self._frame(peer, copies, True))
        return [next(copied if p.position == REPLICA else answers) for p in pendings]

    async def _frame(self, peer: int, pendings: list[_Pending], copies: bool) -> list[bytes | None]:
        link = self.route.links[peer]
        if link is None:
            raise ValueError("forwarded to this node itself")
        cache_id, generation = self.header
        payload = encode_forward(
            cache_id,
            generation,
            self.protocol,
            self.capabilities,
            b"".join(pending.command for pending in pendings),
            copies,
        )
        answer = await link.call(FORWARD, payload)
        return decode_chunks(answer, len(pendings))
