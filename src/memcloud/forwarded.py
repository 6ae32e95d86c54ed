"""The owner's side of forwarding: commands another node of the cluster sent on for keys
this node owns (memcloud.routing), run against this node's storage.

Each (cache, generation, protocol, capabilities) has one session here, made without a
connection (no slot, no login counted) and never forwarding again; it runs a frame's
commands in order and answers one reply per command. Its capabilities are the ones the
client's session had, asked for again at this node's gate; a cache this node does not
serve under that generation (deleted, made again, moved to another cluster) answers an
error, which the sending node turns into a miss.
"""

from __future__ import annotations

from typing import Final

from memcloud.auth import Principal
from memcloud.binary_session import BinarySession
from memcloud.routing import PROTOCOL_BINARY, PROTOCOL_TEXT, decode_forward, encode_chunks
from memcloud.service import Service, Session
from memcloud.storage.cache import Cache
from memcloud.storage.stats import CacheStats
from memcloud.text_session import TextSession

__all__ = ["FORWARDED_CREDENTIAL_ID", "ForwardedCommands", "NotServedHere"]

# The credential id of the sessions that run forwarded commands: no stored credential has
# it (ids start at 1; the anonymous cache's is 0).
FORWARDED_CREDENTIAL_ID: Final = -1
# Sessions kept at most (caches x protocols x capability sets); past it they are made anew.
_SESSIONS_MAX: Final = 4096

_SessionKey = tuple[int, str, int, int]


class NotServedHere(Exception):
    """The frame names a cache this node does not serve (under that generation)."""


def _no_connection() -> None:
    return None


class ForwardedCommands:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._sessions: dict[_SessionKey, TextSession | BinarySession] = {}

    def answer(self, payload: bytes) -> bytes:
        """Run one frame of forwarded commands; its replies, one chunk per command."""
        cache_id, generation, protocol, capabilities, copies, commands = decode_forward(payload)
        cache = self.service.registry.current(cache_id, generation)
        if cache is None:
            raise NotServedHere(f"cache {cache_id} is not served here")
        key = (cache_id, generation, protocol, capabilities)
        session = self._sessions.get(key)
        if session is None or session.cache is not cache:
            session = self._open(key, cache)
        if copies:
            return encode_chunks(_uncounted(session, cache, commands))
        return encode_chunks(session.execute_each(commands))

    def _open(self, key: _SessionKey, cache: Cache) -> TextSession | BinarySession:
        _, generation, protocol, capabilities = key
        session: TextSession | BinarySession
        if protocol == PROTOCOL_TEXT:
            session = TextSession(self.service, "forwarded", _no_connection, forwarded=True)
            session.parser.authenticating = False
        elif protocol == PROTOCOL_BINARY:
            session = BinarySession(self.service, "forwarded", _no_connection, forwarded=True)
        else:
            raise ValueError(f"unknown protocol {protocol}")
        _enter(session, cache, generation, capabilities)
        if len(self._sessions) >= _SESSIONS_MAX:
            self._sessions.clear()
        self._sessions[key] = session
        return session


def _uncounted(
    session: TextSession | BinarySession, cache: Cache, commands: bytes
) -> list[bytes | None]:
    """A replica's copies of changes their owner made and counted: run with the cache's
    request counters and its introspection set aside, so the cache's stats summed over its
    nodes count each request once. What the copies did to this node's storage (items
    evicted, expired or reclaimed to make room) is this node's and stays counted."""
    counted, insight = cache.stats, cache.insight
    aside = CacheStats()
    cache.stats, cache.insight = aside, None
    try:
        return session.execute_each(commands)
    finally:
        cache.stats, cache.insight = counted, insight
        counted.evictions += aside.evictions
        counted.expired += aside.expired
        counted.reclaimed += aside.reclaimed


def _enter(session: Session, cache: Cache, generation: str, capabilities: int) -> None:
    """Give a forwarded session its cache and the sending session's capabilities."""
    session.principal = Principal(
        FORWARDED_CREDENTIAL_ID, "", cache.id, True, True, True, generation
    )
    session.capabilities = capabilities
    session.cache = cache
