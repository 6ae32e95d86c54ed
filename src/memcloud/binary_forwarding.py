"""A binary connection in a cluster: the requests whose key another node owns are sent on
to it (memcloud.routing) and their replies relayed as the owner wrote them (they carry the
client's opaque), and Stat / Stat reset speak for the whole cache. BinarySession executes
the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from memcloud.protocol.binary import (
    NEED_DATA,
    BinaryParser,
    Opcode,
    Rejected,
    Request,
    Status,
    error_response,
    response,
    stat_packets,
)
from memcloud.protocol.binary import request as binary_request
from memcloud.routing import PROTOCOL_BINARY, CheckedChange
from memcloud.service import REPLY_BATCH_MAX, Service, Session

__all__ = ["BinaryForwarding", "miss_reply", "touch_miss_reply"]

_GET: Final = int(Opcode.GET)
_GETK: Final = int(Opcode.GETK)
_GETS: Final = frozenset({Opcode.GET, Opcode.GETQ, Opcode.GETK, Opcode.GETKQ})


class BinaryForwarding(Session):
    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
        super().__init__(service, peer, close, forwarded=forwarded)
        self._batch = 0  # value and stats bytes answered in this call
        self.parser = BinaryParser(service.settings.item_size_max)

    def _cache_id(self) -> int:
        cache = self.cache
        return cache.id if cache is not None else 0

    def _run(self, request: Request | Rejected, now: float, out: list[bytes]) -> None:
        raise NotImplementedError  # BinarySession: the gate, then the request's handler

    def execute_each(self, data: bytes) -> list[bytes | None]:
        """Requests another node forwarded (memcloud.forwarded), run in order, one reply
        each. Past REPLY_BATCH_MAX of replies a get is not run (None): its node sends it
        again once it wrote what came before."""
        parser = self.parser
        parser.receive_data(data)
        now = self.service.clock.now()
        chunks: list[bytes | None] = []
        total = 0
        while True:
            request = parser.next_command()
            if request is NEED_DATA:
                break
            if total > REPLY_BATCH_MAX and type(request) is Request and request.opcode in _GETS:
                chunks.append(None)
                continue
            out: list[bytes] = []
            assert isinstance(request, (Request, Rejected))
            self._run(request, now, out)
            chunk = b"".join(out)
            total += len(chunk)
            chunks.append(chunk)
        self.backlog = self.closing = False
        if not parser.idle:  # a frame holds whole requests: anything else is dropped
            self.parser = BinaryParser(self.service.settings.item_size_max)
        return chunks

    def _forwarded_elsewhere(self, request: Request, out: list[bytes], miss: bytes) -> bool:
        """Whether another node owns the read's key: then the request is forwarded there,
        and its reply (`miss` if that node cannot be reached) takes its place."""
        route, cache = self.route, self.cache
        if route is None or cache is None:
            return False
        owner = route.owner(cache.id, request.key)
        if owner == route.local:
            return False
        self.forward(PROTOCOL_BINARY, owner, _packet(request), out, unreachable=miss)
        return True

    def _route_change(self, request: Request, out: list[bytes], unreachable: bytes) -> int:
        """Where a change runs (routing.SERVE or FORWARDED: Session.route_write).
        A store or delete checked against a CAS unique on a plan with replicas reaches the
        replicas as its outcome (the same change, unchecked and quiet), once made."""
        packet = _packet(request)
        checked = None
        quiet = _UNCHECKED_COPY.get(request.opcode)
        if request.cas and self.copies > 1 and quiet is not None:
            copy = binary_request(
                quiet, key=request.key, extras=request.extras, value=request.value
            )
            checked = CheckedChange(packet, _made, copy)
        return self.route_write(PROTOCOL_BINARY, request.key, packet, out, unreachable, checked)

    def _cluster_stat(
        self, group: bytes, opcode: int, opaque: int, now: float, out: list[bytes]
    ) -> None:
        """Stat of the whole cache on a node of a cluster: every node answers its share."""
        if group == b"reset":
            self.stats_lines(group, now)
            done = response(opcode, opaque)
            packet = binary_request(Opcode.STAT, key=b"reset")
            self.forwards_to_all(PROTOCOL_BINARY, packet, out, lambda parts: done)
            return

        def combine(parts: list[bytes | None]) -> bytes:
            others = [None if part is None else stat_packets(part) for part in parts]
            lines = self.cluster_stats(now, others)
            packets = [
                response(opcode, opaque, key=name.encode(), value=str(value).encode())
                for name, value in lines
            ]
            packets.append(response(opcode, opaque))
            return b"".join(packets)

        self._batch += 4096
        self.forwards_to_all(PROTOCOL_BINARY, binary_request(Opcode.STAT), out, combine)


def miss_reply(opcode: int, key: bytes, opaque: int) -> bytes:
    """What a Get, GetQ, GetK or GetKQ of a missing key answers."""
    if opcode == _GET:
        return error_response(opcode, opaque, Status.KEY_ENOENT)
    if opcode == _GETK:
        return response(opcode, opaque, Status.KEY_ENOENT, key=key)
    return b""


def touch_miss_reply(opcode: int, key: bytes, opaque: int) -> bytes:
    """What a Touch or GAT* of a missing key answers."""
    if opcode == Opcode.GATK:
        return response(opcode, opaque, Status.KEY_ENOENT, key=key)
    if opcode == Opcode.TOUCH or opcode == Opcode.GAT:
        return error_response(opcode, opaque, Status.KEY_ENOENT)
    return b""


# The quiet, unchecked form of a checked change, as the replicas apply its outcome.
_UNCHECKED_COPY: Final[dict[int, int]] = {
    **dict.fromkeys(
        (Opcode.SET, Opcode.SETQ, Opcode.ADD, Opcode.ADDQ, Opcode.REPLACE, Opcode.REPLACEQ),
        Opcode.SETQ,
    ),
    Opcode.APPEND: Opcode.APPENDQ,
    Opcode.APPENDQ: Opcode.APPENDQ,
    Opcode.PREPEND: Opcode.PREPENDQ,
    Opcode.PREPENDQ: Opcode.PREPENDQ,
    Opcode.DELETE: Opcode.DELETEQ,
    Opcode.DELETEQ: Opcode.DELETEQ,
}


def _made(reply: bytes) -> bool:
    """Whether the owner's reply to a change says it was made: a quiet success answers
    nothing, any other reply carries its status (bytes 6-7 of the header)."""
    return reply == b"" or reply[6:8] == b"\x00\x00"


def _packet(request: Request) -> bytes:
    """The request as the client sent it."""
    return binary_request(
        request.opcode,
        key=request.key,
        extras=request.extras,
        value=request.value,
        opaque=request.opaque,
        cas=request.cas,
    )
