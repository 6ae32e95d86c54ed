"""A text connection's long admin replies: a crawl (`lru_crawler metadump`, `stats sizes`:
memcloud.admin_commands) answered a batch at a time through the session's backlog, so a
client that does not read never makes a node hold more than one batch of it.
"""

from __future__ import annotations

from collections.abc import Callable

from memcloud.admin_commands import Crawl
from memcloud.protocol import replies
from memcloud.service import REPLY_BATCH_MAX, Service
from memcloud.text_forwarding import TextForwarding

__all__ = ["TextAdmin"]


class TextAdmin(TextForwarding):
    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
        super().__init__(service, peer, close, forwarded=forwarded)
        self._crawl: Crawl | None = None  # a metadump or `stats sizes` not yet answered

    def _admin_reply(self, reply: bytes | Crawl, now: float, out: list[bytes]) -> None:
        if isinstance(reply, Crawl):
            self._crawl = reply
            self._crawl_step(now, out)
        else:
            out.append(reply)

    def _crawl_step(self, now: float, out: list[bytes]) -> None:
        """The next part of a crawl's reply; the rest waits as the backlog. A crawl of a
        cache the session has left ends with what it answered so far."""
        crawl = self._crawl
        assert crawl is not None
        if crawl.cache is not self.cache:
            crawl.finish()
            self._crawl = None
            out.append(replies.END)
            return
        chunk, done = crawl.step(now, REPLY_BATCH_MAX - self._batch)
        out.append(chunk)
        self._batch += len(chunk)
        if done:
            self._crawl = None
        else:
            self.backlog = True
