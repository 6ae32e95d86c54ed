"""A text connection in a cluster: the commands whose key another node owns are sent on
to it (memcloud.routing), a multi-get is split by owner and answered in the order of its
keys, and `stats` / `stats reset` speak for the whole cache. TextSession executes the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from memcloud.protocol import replies
from memcloud.protocol.commands import Retrieve
from memcloud.protocol.forms import meta_copy_line, meta_line, retrieval_line
from memcloud.protocol.meta import MA, MD, ME, MG, MN, MS, MetaCommand
from memcloud.protocol.replies import render_stats, render_value
from memcloud.protocol.text import NEED_DATA, TextParser
from memcloud.routing import FORWARDED, PROTOCOL_TEXT, CheckedChange
from memcloud.service import REPLY_BATCH_MAX, Service
from memcloud.text_login import TextLogin

__all__ = ["TextForwarding", "meta_made"]


class TextForwarding(TextLogin):
    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
        super().__init__(service, peer, close, forwarded=forwarded)
        self._now = service.clock.now
        self._batch = 0  # reply bytes of values and stats in this call
        self._rest: Retrieve | None = None  # keys of a multi-get not yet answered

    def _run(self, command: object, now: float, out: list[bytes]) -> None:
        raise NotImplementedError  # TextSession: the gate, then the command's handler

    def execute_each(self, data: bytes) -> list[bytes | None]:
        """Commands another node forwarded (memcloud.forwarded), run in order, one reply
        each. Past REPLY_BATCH_MAX of replies a retrieval is not run (None): its node sends
        it again once it wrote what came before."""
        parser = self.parser
        parser.receive_data(data)
        now = self._now()
        chunks: list[bytes | None] = []
        total = 0
        while True:
            command = parser.next_command()
            if command is NEED_DATA:
                break
            if total > REPLY_BATCH_MAX and type(command) is Retrieve:
                chunks.append(None)
                continue
            out: list[bytes] = []
            self._batch = 0
            self._run(command, now, out)
            chunk = b"".join(out)
            total += len(chunk)
            chunks.append(chunk)
        self.backlog = self.closing = False
        self._rest = None
        if not parser.idle:  # a frame holds whole commands: anything else is dropped
            self.parser = TextParser(self.service.settings.item_size_max)
        return chunks

    def _retrieve_routed(self, command: Retrieve, now: float, out: list[bytes]) -> None:
        """A retrieval in a cluster: this node's keys from its storage, every other key
        from its owner, the replies in the order of the keys."""
        cache, route = self.cache, self.route
        assert cache is not None and route is not None
        with_cas, exptime, keys = command.with_cas, command.exptime, command.keys
        cache_id, local = cache.id, route.local
        batch = self._batch
        for index, key in enumerate(keys):
            if self.backlog or batch > REPLY_BATCH_MAX:
                # The rest of this multi-get is answered in the next call.
                self._rest = Retrieve(keys[index:], with_cas, exptime)
                self.backlog = True
                self._batch = batch
                return
            owner = route.owner(cache_id, key)
            if owner != local:
                line = retrieval_line(key, with_cas, exptime)
                self.forward(PROTOCOL_TEXT, owner, line, out, strip=replies.END)
                continue
            item = cache.get(key, now) if exptime is None else cache.gat(key, exptime, now)
            if item is not None:
                value = item.value
                batch += len(value)
                out.append(render_value(key, item.flags, value, item.cas if with_cas else None))
        self._batch = batch
        out.append(replies.END)

    def _cluster_stats(self, group: bytes, now: float, out: list[bytes]) -> None:
        if group == b"reset":
            self.stats_lines(group, now)
            self.forwards_to_all(PROTOCOL_TEXT, b"stats reset\r\n", out, _reset_reply)
            return

        def combine(parts: list[bytes | None]) -> bytes:
            others = [None if part is None else _stat_numbers(part) for part in parts]
            return render_stats(self.cluster_stats(now, others))

        self.forwards_to_all(PROTOCOL_TEXT, b"stats\r\n", out, combine)

    def _change_here(
        self, key: bytes, line: bytes, noreply: bool, out: list[bytes]
    ) -> list[bytes] | None:
        """Where the reply of a change of `key` goes in a cluster: `out` when this node
        answers it, None when its owner answers (the change was forwarded; see
        Session.route_write)."""
        unreachable = b"" if noreply else replies.NOT_FOUND
        where = self.route_write(PROTOCOL_TEXT, key, line, out, unreachable)
        return None if where == FORWARDED else out

    def _everywhere(self, line: bytes, reply: bytes, out: list[bytes]) -> None:
        """A flush made here: in a cluster `line` goes to every other node, which empties
        its share, before the client hears `reply`."""
        if self.route is not None and not self.forwarded:
            self.forwards_to_all(PROTOCOL_TEXT, line, out, lambda parts: reply)
        elif reply:
            out.append(reply)

    def _cache_id(self) -> int:
        cache = self.cache
        return cache.id if cache is not None else 0

    def _meta_forwarded(self, command: MetaCommand, out: list[bytes]) -> bool:
        """Whether another node owns a meta command's key: then the command goes there as
        the client sent it (its opaque, quiet mode and flags answered by the owner), and
        its reply takes this command's place. `mn` and `me` are this node's."""
        route, cache = self.route, self.cache
        if route is None or cache is None or command.verb in (MN, ME):
            return False
        unreachable = b"" if command.quiet and command.verb == MG else _META_MISSES[command.verb]
        if self.copies > 1 and command.verb != MG:
            # A change on a plan with replicas: the owner makes it (its CAS check, its
            # reply), then the replicas take its outcome (Session.route_write).
            line = meta_line(command)
            checked = CheckedChange(line, meta_made, meta_copy_line(command))
            where = self.route_write(PROTOCOL_TEXT, command.key, line, out, unreachable, checked)
            return where == FORWARDED
        owner = route.owner(cache.id, command.key)
        if owner == route.local:
            return False
        self.forward(PROTOCOL_TEXT, owner, meta_line(command), out, unreachable=unreachable)
        return True


def meta_made(reply: bytes) -> bool:
    """Whether an ms, md or ma made its change, from its reply (quiet: none on success)."""
    return reply == b"" or reply.startswith((b"HD", b"VA", b"OK"))


# What a meta command answers when its key's owner cannot be reached: a miss.
_META_MISSES = {MG: b"EN\r\n", MS: b"NS\r\n", MD: b"NF\r\n", MA: b"NF\r\n"}


def _reset_reply(parts: list[bytes | None]) -> bytes:
    return replies.RESET


def _stat_numbers(reply: bytes) -> dict[bytes, bytes]:
    """A `stats` reply's lines as name -> value."""
    numbers: dict[bytes, bytes] = {}
    for line in reply.split(b"\r\n"):
        fields = line.split(b" ")
        if len(fields) == 3 and fields[0] == b"STAT":
            numbers[fields[1]] = fields[2]
    return numbers
