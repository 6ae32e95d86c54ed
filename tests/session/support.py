"""One in-process session on an anonymous cache, and the replies it gives to some reads."""

from __future__ import annotations

from memcloud.auth import Directory
from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.control.models import CacheRecord
from memcloud.service import Service, Session
from memcloud.storage.registry import Registry

__all__ = ["answer", "new_service"]


def new_service() -> Service:
    settings = Settings(anonymous_cache="anon", item_size_max=1024)
    directory = Directory([CacheRecord(1, "anon", 64 * 1024)], [], 1)
    return Service(Registry(1 << 20, 1024), directory, FakeClock(1_700_000_000.0), settings)


def answer(session: Session, chunks: list[bytes]) -> bytes:
    """Every reply to `chunks` fed as separate reads, backlog included, up to the read
    after which the session closes."""
    handle = session.handle
    replies = b""
    for chunk in chunks:
        if session.closing:
            break  # as the connection does: closed, it reads nothing more
        replies += handle(chunk)
        while session.backlog and not session.closing:
            replies += handle(b"")
    return bytes(replies)
