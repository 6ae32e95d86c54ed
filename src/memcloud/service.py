"""Where protocols meet storage: sessions execute parsed commands against the caches their
credential may reach (every command asked for at `memcloud.gate`, the one gate, first), and
choose the wire replies from storage's results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from memcloud.admission import Admission
from memcloud.auth import Directory, Principal
from memcloud.auth_throttle import AuthThrottle
from memcloud.clock import Clock
from memcloud.config import Settings
from memcloud.control.audit import FlushEvent, prefix_details
from memcloud.gate import capabilities_of
from memcloud.stats.report import cache_stats, items_stats, settings_stats, slabs_stats
from memcloud.storage.cache import Cache
from memcloud.storage.registry import Registry
from memcloud.storage.stats import CacheStats

__all__ = ["REPLY_BATCH_MAX", "Service", "Session"]

log = logging.getLogger("memcloud.service")

# Reply bytes one call of a session's `handle` produces at most (plus one value): a read of
# pipelined gets of big values, or one multi-get naming a big value many times, would
# otherwise build gigabytes before flow control could pause the client. What is left waits
# as the session's backlog until the connection has written what came before.
REPLY_BATCH_MAX: Final = 1024 * 1024
# No cache has id 0 (ids start at 1): the registry lookup of a username without a cache.
_NO_CACHE_ID: Final = 0
# Where logins of unknown usernames are counted: nowhere anyone reads.
_UNCOUNTED: Final = CacheStats()


class Session:
    """What every protocol's connection state shares: identity, cache and accounting."""

    def __init__(self, service: Service, peer: str, close: Callable[[], None]) -> None:
        self.service = service
        self.peer = peer
        self.close = close
        self._principal: Principal | None = None
        # The principal's capabilities as the gate reads them (memcloud.gate), kept with it.
        self.capabilities = 0
        self.cache: Cache | None = None
        self.closing = False
        # Seconds the connection holds this read's reply back (failed-login backoff).
        self.reply_delay = 0.0
        # True when `handle` stopped at its reply batch limit with input left: the
        # connection stops reading and calls `handle(b"")` once its write buffer drained.
        self.backlog = False
        # True when the last login was refused because its cache is at its connection
        # limit (the password was right: the answer is memcached's "too many connections").
        self.full = False
        # Set by the connection: called when a logged-in session drops its identity to
        # authenticate again, so that the connection counts as unauthenticated once more.
        self.logged_out: Callable[[], None] | None = None
        service.sessions.add(self)
        anonymous = service.anonymous_principal()
        if anonymous is not None:
            # When the anonymous cache is at its limit (`full`), the connection may still log
            # in with a credential; anything else is answered "too many connections".
            self.login(anonymous)

    @property
    def principal(self) -> Principal | None:
        return self._principal

    @principal.setter
    def principal(self, principal: Principal | None) -> None:
        self._principal = principal
        self.capabilities = capabilities_of(principal)

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    def handle(self, data: bytes) -> bytes:
        """Everything one read brings, answered as one block of bytes: each protocol's own.
        Declared here so that the connection calls it directly on the compiled classes."""
        raise NotImplementedError

    def login(self, principal: Principal) -> bool:
        cache = self.service.registry.current(principal.cache_id, principal.generation)
        if cache is None:
            return False
        record = self.service.directory.caches.get(principal.cache_id)
        plan = record.plan if record is not None else cache.limit * self.service.settings.nodes
        limit = self.service.admission.cache_limit(plan)
        self.full = cache.stats.curr_connections >= limit
        if self.full:
            self.service.admission.refusals["cache"] += 1
            log.info("cache %d is at its %d connections; refusing %s", cache.id, limit, self.peer)
            return False
        self.principal = principal
        self.cache = cache
        cache.stats.connected()
        return True

    def try_login(self, username: bytes, password: bytes) -> bool:
        """Authenticate; counts auth_cmds / auth_errors on the cache the username names."""
        self.full = False
        directory = self.service.directory
        principal = directory.authenticate(username, password)
        cache_id = principal.cache_id if principal else directory.cache_of(username)
        # An unknown username is counted on a throwaway record with the same steps, so that
        # the answer's timing does not tell whether the username exists.
        cache = self.service.registry.get(_NO_CACHE_ID if cache_id is None else cache_id)
        stats = _UNCOUNTED if cache is None else cache.stats
        stats.authenticated(principal is not None)
        if principal is None or not self.login(principal):
            log.warning("authentication failed for %r from %s", _printable(username), self.peer)
            return False
        return True

    @staticmethod
    def account(cache: Cache | None, data: bytes, reply: bytes) -> bytes:
        """Count a read and its reply in the cache's bytes_read / bytes_written."""
        if cache is not None:
            cache.stats.transferred(len(data), len(reply))
        return reply

    def stats_lines(self, group: bytes, now: float) -> list[tuple[str, object]] | None:
        """The lines of `stats [group]` for this session's cache, as both protocols answer
        them (`reset` resets and has none); None for a group memcloud does not keep."""
        cache = self.cache
        assert cache is not None
        settings = self.service.settings
        if group == b"":
            return list(
                cache_stats(
                    cache,
                    started_at=self.service.started_at,
                    now=now,
                    max_connections=settings.max_connections,
                )
            )
        if group == b"settings":
            return list(
                settings_stats(
                    max_connections=settings.max_connections,
                    item_size_max=settings.item_size_max,
                    plan=cache.limit,
                    auth_timeout=settings.auth_timeout,
                    port=settings.port,
                )
            )
        if group == b"items":
            return items_stats(cache)
        if group == b"slabs":
            return slabs_stats(cache)
        if group == b"reset":
            cache.stats.reset()
            return []
        return None

    def refresh(self, directory: Directory) -> None:
        """Apply a new control-plane snapshot: revoked credentials lose the connection."""
        if self.principal is None:
            return
        principal = directory.refresh(self.principal)
        registry = self.service.registry
        cache = registry.current(principal.cache_id, principal.generation) if principal else None
        if principal is None or cache is not self.cache:
            self.closing = True
            self.close()
            return
        self.principal = principal

    def closed(self) -> None:
        self.service.sessions.discard(self)
        if self.cache is not None:
            self.cache.stats.disconnected()
            self.cache = None
        self.principal = None


def _printable(username: bytes) -> str:
    return username[:64].decode("ascii", "replace")


class Service:
    """Process-wide state the sessions share."""

    def __init__(
        self, registry: Registry, directory: Directory, clock: Clock, settings: Settings
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.settings = settings
        self.started_at = clock.now()
        self.sessions: set[Session] = set()
        # Where the data plane's own flushes (text flush_all, binary Flush) are handed to the
        # flush log: the node's FlushAuditor.listener, which never blocks.
        self.flush_listeners: list[Callable[[FlushEvent], None]] = []
        # Failed logins per address prefix and username: every login path of this process.
        self.auth_throttle = AuthThrottle(settings.login_free_failures)
        # Connection slots: per-cache limits and unauthenticated connections (admission).
        self.admission = Admission(settings)
        self.directory = directory
        self.set_directory(directory)

    def anonymous_principal(self) -> Principal | None:
        name = self.settings.anonymous_cache
        return self.directory.anonymous(name) if name else None

    def set_directory(self, directory: Directory) -> None:
        """Bring caches and live sessions in line with a new control-plane snapshot."""
        self.directory = directory
        share = self.settings.plan_share
        for record in directory.caches.values():
            self.registry.ensure(record.id, record.name, share(record.plan), record.generation)
        for cache_id in [cid for cid in self.registry.caches if cid not in directory.caches]:
            self.registry.remove(cache_id)
        for session in list(self.sessions):
            session.refresh(directory)

    def flush(
        self,
        cache_id: int,
        event: FlushEvent | None,
        delay: int = 0,
        now: float = 0.0,
        *,
        counted: bool = True,
        prefix: bytes = b"",
    ) -> bool:
        """Empty one cache, now or `delay` seconds after `now` (memcached's delayed
        flush_all), and hand `event` to the flush listeners (None: whoever asked records
        it, as the deployment does); False if the cache is not here. With a `prefix`, only
        the keys starting with it go, now (`Cache.flush_prefix`, which may raise
        TooManyPrefixFlushes), and the event says which.

        Without `counted` the flush is another node's share of one flush (the deployment's
        fan-out): the node that took the command counts its cmd_flush, so the cache-wide
        sum counts every flush once."""
        cache = self.registry.get(cache_id)
        if cache is None:
            return False
        if prefix:
            cache.flush_prefix(prefix, counted=counted)
            if event is not None:
                event = replace(event, details={**event.details, **prefix_details(prefix)})
        elif not counted:
            cache.empty()
        elif delay > 0:
            cache.flush(delay, now)
        else:
            cache.flush_now()
        if event is not None:
            self.record_flush(event)
        return True

    def record_flush(self, event: FlushEvent) -> None:
        for listener in self.flush_listeners:
            try:
                listener(event)
            except Exception:  # an audit failure must not fail the flush itself
                log.exception("flush listener failed")

    def flush_event(self, session: Session, cache_id: int, source: str) -> FlushEvent:
        username = session.principal.username if session.principal else ""
        return FlushEvent(cache_id, source, username, session.peer, self.clock.now())
