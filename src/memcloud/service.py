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
from memcloud.routing import (
    FORWARD_COMMANDS_MAX,
    FORWARDED,
    SERVE,
    CheckedChange,
    Combine,
    FollowUp,
    Forwards,
    Route,
)
from memcloud.stats.report import (
    cache_stats,
    cluster_stats_lines,
    items_stats,
    settings_stats,
    slabs_stats,
)
from memcloud.storage.cache import Cache
from memcloud.storage.registry import Registry
from memcloud.storage.stats import CacheStats
from memcloud.unowned import UnownedSweep

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

    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
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
        # True on the node that owns the keys: the session that runs what another node's
        # session forwarded (memcloud.forwarded); it never forwards again.
        self.forwarded = forwarded
        # Where this node's cluster keeps its keys (None: this node alone holds them all),
        # and the commands this read sends on to their owners (memcloud.routing).
        self.route: Route | None = None if forwarded else service.route
        self.forwards: Forwards | None = None
        # Nodes holding each key of the session's cache (its plan's replicas), and the copy
        # of a checked change to send them once this node made it (route_write).
        self.copies = 1
        self.copy_after: tuple[list[int], bytes] | None = None
        # A read's forwards once it is parsed, for the connection to complete.
        self.forwards_taken: Forwards | None = None
        if forwarded:
            return  # not a connection: no slot, no login, not refreshed
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
        self.copies = self.service.copies_of(cache.id)
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

    def forward(
        self,
        protocol: int,
        owner: int,
        command: bytes,
        out: list[bytes],
        *,
        strip: bytes = b"",
        unreachable: bytes = b"",
        then: FollowUp | None = None,
        silent: bool = False,
    ) -> None:
        """Send `command` on to the node that owns its key (see memcloud.routing); its
        reply takes the next place in `out`. At FORWARD_COMMANDS_MAX the read stops and
        the rest waits as the backlog."""
        forwards = self.forwards or self._new_forwards(protocol)
        forwards.add(
            owner, command, out, strip=strip, unreachable=unreachable, then=then, silent=silent
        )
        if forwards.count >= FORWARD_COMMANDS_MAX:
            self.backlog = True

    def _new_forwards(self, protocol: int) -> Forwards:
        """This read's first forward: the read's Forwards, kept in `forwards`."""
        cache, route = self.cache, self.route
        assert cache is not None and route is not None
        principal = self.principal
        generation = principal.generation if principal is not None else ""
        forwards = Forwards(route, cache.id, generation, protocol, self.capabilities)
        self.forwards = forwards
        return forwards

    def route_write(
        self,
        protocol: int,
        key: bytes,
        command: bytes,
        out: list[bytes],
        unreachable: bytes,
        checked: CheckedChange | None = None,
    ) -> int:
        """Where a change of `key` runs in a cluster (routing.SERVE or FORWARDED):
        `command` (the change as the client sent it) goes to the key's owner and to every
        replica of its plan; when the owner is another node, its reply (`unreachable` if it
        cannot be reached) takes the change's place in `out`. A replica's copy is made as a
        frame of copies (memcloud.forwarded), so only the owner counts the change in the
        cache's stats; this node's own copy, when it holds one, once the owner answered.

        A change checked against the item's CAS unique (`checked`) goes to the owner alone:
        the replicas' uniques are their own, so they take its outcome instead, the copy in
        `checked`, once the owner made it (`copy_after` when the owner is this node)."""
        route, cache = self.route, self.cache
        if route is None or cache is None:
            return SERVE
        local = route.local
        if self.copies <= 1:
            owner = route.owner(cache.id, key)
            if owner == local:
                return SERVE
            self.forward(protocol, owner, command, out, unreachable=unreachable)
            return FORWARDED
        owners = route.ring.owners(cache.id, key, self.copies)
        forwards = self.forwards or self._new_forwards(protocol)
        if checked is not None:
            replicas = owners[1:]
            if owners[0] == local:
                self.copy_after = (replicas, checked.copy)
                return SERVE
            # The owner answers as the client asked (`silent`: noreply); the copies follow.
            then = (checked.made, [(replica, checked.copy) for replica in replicas])
            self.forward(
                protocol,
                owners[0],
                checked.command,
                out,
                unreachable=unreachable,
                then=then,
                silent=checked.silent,
            )
            return FORWARDED
        for replica in owners[1:]:
            if replica != local:
                forwards.replicate(replica, command)
        if owners[0] == local:
            return SERVE
        here = (_always, [(local, command)]) if local in owners else None
        self.forward(protocol, owners[0], command, out, unreachable=unreachable, then=here)
        return FORWARDED

    def send_copies(self) -> None:
        """After this node, a key's owner, made a checked change: its outcome to the
        replicas (see route_write)."""
        pending, self.copy_after = self.copy_after, None
        if pending is None or self.forwards is None:
            return
        replicas, copy = pending
        for replica in replicas:
            self.forwards.replicate(replica, copy)

    def forwards_to_all(
        self, protocol: int, command: bytes, out: list[bytes], combine: Combine
    ) -> None:
        """Send `command` to every other node of the cluster (flush_all, stats); `combine`
        makes this command's reply from theirs (see Forwards.add_to_all)."""
        forwards = self.forwards or self._new_forwards(protocol)
        forwards.add_to_all(command, out, combine)
        if forwards.count >= FORWARD_COMMANDS_MAX:
            self.backlog = True

    def cluster_stats(
        self, now: float, others: list[dict[bytes, bytes] | None]
    ) -> list[tuple[str, object]]:
        """`stats` of this session's cache on a node of a cluster (see cluster_stats_lines;
        `others`: the other nodes' `stats`, None for one that did not answer)."""
        cache = self.cache
        assert cache is not None
        record = self.service.directory.caches.get(cache.id)
        plan = record.plan if record is not None else cache.limit
        return cluster_stats_lines(self.stats_lines(b"", now) or [], others, plan, self.copies)

    def take_forwards(self, out: list[bytes]) -> None:
        """Hand the read's forwards, holding its replies `out`, to the connection
        (`forwards_taken`: it completes them, memcloud.routing.Forwards.complete)."""
        forwards = self.forwards
        if forwards is not None:
            self.forwards = None
            forwards.out = out
            self.forwards_taken = forwards

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
                    control_store_read_at=self.service.control_store_read_at,
                    control_store_up=self.service.control_store_up,
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
                    prefix_delimiter=settings.prefix_delimiter,
                    detail_enabled=cache.stats.detail is not None and cache.stats.detail.enabled,
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
        if principal is None or cache is None or cache is not self.cache:
            self.closing = True
            self.close()
            return
        self.principal = principal
        self.copies = self.service.copies_of(cache.id)

    def closed(self) -> None:
        self.service.sessions.discard(self)
        if self.cache is not None:
            self.cache.stats.disconnected()
            self.cache = None
        self.principal = None


def _always(reply: bytes) -> bool:
    return True


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
        # This node's cluster when it has other live nodes (memcloud.routing), and how many
        # live nodes share each plan (a node holds plan / members of every cache).
        self.route: Route | None = None
        self.members = settings.nodes
        # The keys another node holds since the route changed, dropped a slice at a time.
        self.unowned = UnownedSweep()
        # Where the data plane's own flushes (text flush_all, binary Flush) are handed to the
        # flush log: the node's FlushAuditor.listener, which never blocks.
        self.flush_listeners: list[Callable[[FlushEvent], None]] = []
        # Failed logins per address prefix and username: every login path of this process.
        self.auth_throttle = AuthThrottle(settings.login_free_failures)
        # Connection slots: per-cache limits and unauthenticated connections (admission).
        self.admission = Admission(settings)
        # Whether the directory poll's last read of the control store worked, and when one
        # last did (the clock's time): `stats` says so (control_store_up, control_store_age),
        # since a node that lost the database serves its last snapshot.
        self.control_store_up = True
        self.control_store_read_at = self.started_at
        self.directory = directory
        self.set_directory(directory)

    def control_store_read(self, ok: bool) -> None:
        """The directory poll read the control store (`ok`) or failed to."""
        self.control_store_up = ok
        if ok:
            self.control_store_read_at = self.clock.now()

    def copies_of(self, cache_id: int) -> int:
        """Copies of each key the cache keeps (its plan's `replicas`)."""
        record = self.directory.caches.get(cache_id)
        return self.settings.replicas_of(record.plan) if record is not None else 1

    def anonymous_principal(self) -> Principal | None:
        name = self.settings.anonymous_cache
        return self.directory.anonymous(name) if name else None

    def set_directory(self, directory: Directory) -> None:
        """Bring caches and live sessions in line with a new control-plane snapshot."""
        self.directory = directory
        self._place_caches()
        for session in list(self.sessions):
            session.refresh(directory)

    def _place_caches(self) -> None:
        """Hold this node's share of every cache of its cluster, and no other cache."""
        directory = self.directory
        cluster = self.settings.cluster
        members = max(1, self.members)
        served = {cid for cid, record in directory.caches.items() if record.cluster == cluster}
        for cache_id in served:
            record = directory.caches[cache_id]
            # Every copy of a key takes room on its node: `replicas` copies over the members.
            copies = min(self.settings.replicas_of(record.plan), members)
            share = -(-record.plan * copies // members)
            self.registry.ensure(record.id, record.name, share, record.generation)
        for cache_id in [cid for cid in self.registry.caches if cid not in served]:
            self.registry.remove(cache_id)

    def set_route(self, route: Route | None, members: int) -> None:
        """A new view of this node's cluster: `members` live nodes share each plan, and
        sessions forward by `route` from their next read on. Keys that another node owns
        from now on are dropped here, a slice at a time (`sweep_unowned`)."""
        self.route = route
        self.unowned.restart(route, self.registry.caches)
        if members != self.members:
            self.members = members
            self._place_caches()
        for session in self.sessions:
            session.route = route

    @property
    def sweeping(self) -> bool:
        return self.unowned.busy

    def sweep_unowned(self) -> None:
        """One slice of dropping the keys this node no longer holds (memcloud.unowned)."""
        self.unowned.step(self.registry, self.route, self.copies_of)

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
            cache.flush(delay, now, counted=False)
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
