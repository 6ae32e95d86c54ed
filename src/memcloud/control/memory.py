"""A control store in memory, for unit tests: the whole `ControlStore`, nothing persisted.

It follows memcloud.control.rules as the SQLite store does, and passes the same contract
(tests/control/test_store_contract.py). Records are frozen and their dicts copied in and
out, so a caller can no more change what is stored than it could change a database row.
One lock makes every call atomic, as one SQLite transaction is.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from memcloud.control import rules
from memcloud.control.memory_alerts import MemoryAlerts
from memcloud.control.memory_hooks import MemoryHooks
from memcloud.control.memory_introspection import MemoryIntrospection
from memcloud.control.models import (
    DEFAULT_CLUSTER,
    CacheRecord,
    CredentialRecord,
    FlushRecord,
    NewCredential,
    NodeRecord,
    StatsSample,
)
from memcloud.control.secrets import generate_password, generate_username, hash_password
from memcloud.control.telemetry import HOUR, MINUTE, compaction_boundary

__all__ = ["MemoryStore"]


@dataclasses.dataclass(slots=True)
class _Sample:
    id: int
    sample: StatsSample


class MemoryStore(MemoryAlerts, MemoryIntrospection, MemoryHooks):
    """A `ControlStore` held in dicts (ids, like SQLite's AUTOINCREMENT, never reused);
    alerts: memcloud.control.memory_alerts, deploy hooks: memcloud.control.memory_hooks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Notified at every revision bump (wait_for_change).
        self._changed = threading.Condition(self._lock)
        self._revision = 0
        self._caches: dict[int, CacheRecord] = {}
        self._credentials: dict[int, CredentialRecord] = {}
        self._sso: dict[int, tuple[int, int]] = {}
        self._used_tokens: dict[bytes, int] = {}
        self._revoked_sessions: dict[bytes, int] = {}
        self._flushes: list[FlushRecord] = []
        self._samples: list[_Sample] = []
        # Each node with the time.monotonic() of its last heartbeat and of its registration.
        self._nodes: dict[int, tuple[NodeRecord, float, float]] = {}
        # The last id handed out of each kind: ids only grow.
        self._last_id = {"cache": 0, "credential": 0, "flush": 0, "sample": 0, "node": 0}
        self._init_alerts()
        self._init_introspection()
        self._init_hooks()

    # -- plumbing ---------------------------------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._last_id[kind] += 1
        return self._last_id[kind]

    @contextmanager
    def _write(self) -> Iterator[None]:
        """A change bumps the revision once, and only if it succeeds (checks raise first)."""
        with self._lock:
            yield
            self._revision += 1
            self._changed.notify_all()

    def _get_cache(self, cache_id: int) -> CacheRecord:
        cache = self._caches.get(cache_id)
        if cache is None:
            raise rules.no_cache_id(cache_id)
        return cache

    def _get_credential(self, credential_id: int) -> CredentialRecord:
        record = self._credentials.get(credential_id)
        if record is None:
            raise rules.no_credential_id(credential_id)
        return record

    def _cache_credentials(self, cache_id: int) -> list[CredentialRecord]:
        return sorted(
            (r for r in self._credentials.values() if r.cache_id == cache_id), key=lambda r: r.id
        )

    def _set_primary(self, cache_id: int, credential_id: int) -> None:
        for record in self._cache_credentials(cache_id):
            if record.primary != (record.id == credential_id):
                self._credentials[record.id] = dataclasses.replace(
                    record, primary=record.id == credential_id
                )

    # -- caches -----------------------------------------------------------------------------

    def wait_for_change(self, timeout: float) -> bool:
        with self._lock:
            seen = self._revision
            return self._changed.wait_for(lambda: self._revision != seen, timeout)

    def revision(self) -> int:
        with self._lock:
            return self._revision

    def create_cache(self, name: str, plan: int, *, cluster: str = DEFAULT_CLUSTER) -> CacheRecord:
        rules.validate_cache_name(name)
        rules.validate_plan(plan)
        rules.validate_cluster_name(cluster)
        with self._write():
            if any(c.name == name for c in self._caches.values()):
                raise rules.cache_name_taken(name)
            cache = CacheRecord(
                id=self._next_id("cache"),
                name=name,
                plan=plan,
                generation=secrets.token_hex(rules.GENERATION_BYTES),
                cluster=cluster,
            )
            self._caches[cache.id] = cache
            return cache

    def list_caches(self) -> list[CacheRecord]:
        with self._lock:
            return [self._caches[i] for i in sorted(self._caches)]

    def find_cache(self, ref: str | int) -> CacheRecord:
        with self._lock:
            if rules.is_id(ref):
                return self._get_cache(int(ref))
            for cache in self._caches.values():
                if cache.name == ref:
                    return cache
        raise rules.no_cache_named(str(ref))

    def update_cache(
        self,
        cache_id: int,
        *,
        plan: int | None = None,
        enabled: bool | None = None,
        cluster: str | None = None,
    ) -> CacheRecord:
        if plan is not None:
            rules.validate_plan(plan)
        if cluster is not None:
            rules.validate_cluster_name(cluster)
        with self._write():
            cache = self._get_cache(cache_id)
            if plan is not None:
                cache = dataclasses.replace(cache, plan=plan)
            if enabled is not None:
                cache = dataclasses.replace(cache, enabled=bool(enabled))
            if cluster is not None:
                cache = dataclasses.replace(cache, cluster=cluster)
            self._caches[cache_id] = cache
            return cache

    def delete_cache(self, cache_id: int) -> None:
        with self._write():
            self._get_cache(cache_id)
            # What refers to the cache goes with it, as SQLite's ON DELETE CASCADE does.
            del self._caches[cache_id]
            self._sso.pop(cache_id, None)
            for record in self._cache_credentials(cache_id):
                del self._credentials[record.id]
            self._flushes = [r for r in self._flushes if r.cache_id != cache_id]
            self._samples = [s for s in self._samples if s.sample.cache_id != cache_id]
            self._drop_alerts(cache_id)
            self._drop_prefixes(cache_id)
            self._drop_hooks(cache_id)

    # -- credentials ------------------------------------------------------------------------

    def create_credential(
        self,
        cache_id: int,
        *,
        write: bool = True,
        flush: bool = True,
        api: bool = True,
        primary: bool = False,
        password: str | None = None,
    ) -> NewCredential:
        rules.validate_capabilities(write=write, flush=flush, api=api, primary=primary)
        password = password or generate_password()
        salt, secret_hash = hash_password(password)
        with self._write():
            self._get_cache(cache_id)
            has_primary = any(r.primary for r in self._cache_credentials(cache_id))
            primary = rules.becomes_primary(primary, has_primary)
            record = CredentialRecord(
                id=self._next_id("credential"),
                cache_id=cache_id,
                username=self._unused_username(),
                salt=salt,
                secret_hash=secret_hash,
                write=write,
                flush=flush,
                api=api,
                primary=primary,
            )
            self._credentials[record.id] = record
            if primary:
                self._set_primary(cache_id, record.id)
        return NewCredential(record=record, password=password)

    def _unused_username(self) -> str:
        taken = {r.username for r in self._credentials.values()}
        for _ in range(rules.USERNAME_ATTEMPTS):
            username = generate_username()
            if username not in taken:
                return username
        raise rules.no_unused_username()

    def list_credentials(self, cache_id: int | None = None) -> list[CredentialRecord]:
        with self._lock:
            if cache_id is None:
                return sorted(self._credentials.values(), key=lambda r: (r.cache_id, r.id))
            self._get_cache(cache_id)
            return self._cache_credentials(cache_id)

    def find_credential(self, cache_id: int, ref: str | int) -> CredentialRecord:
        """A username (case-insensitive) first, then an id: usernames may be all digits."""
        with self._lock:
            records = self._cache_credentials(self._get_cache(cache_id).id)
            if isinstance(ref, str):
                for record in records:
                    if record.username == ref.upper():
                        return record
            if rules.is_id(ref):
                for record in records:
                    if record.id == int(ref):
                        return record
        raise rules.no_credential(cache_id, ref)

    def update_credential(
        self,
        credential_id: int,
        *,
        write: bool | None = None,
        flush: bool | None = None,
        api: bool | None = None,
    ) -> CredentialRecord:
        changes = rules.capability_changes(write=write, flush=flush, api=api)
        with self._write():
            record = self._get_credential(credential_id)
            record = dataclasses.replace(
                record,
                write=changes.get("write", record.write),
                flush=changes.get("flush", record.flush),
                api=changes.get("api", record.api),
            )
            self._credentials[credential_id] = record
            return record

    def promote_credential(self, credential_id: int) -> CredentialRecord:
        with self._write():
            self._set_primary(self._get_credential(credential_id).cache_id, credential_id)
            return self._credentials[credential_id]

    def delete_credential(self, credential_id: int) -> None:
        with self._write():
            rules.check_deletable(self._get_credential(credential_id).primary)
            del self._credentials[credential_id]

    # -- the deployment's nodes -------------------------------------------------------------

    def _aged(self, node_id: int) -> NodeRecord:
        node, beat, started = self._nodes[node_id]
        now = time.monotonic()
        return dataclasses.replace(
            node, heartbeat_age=max(0.0, now - beat), uptime=max(0.0, now - started)
        )

    def register_node(
        self,
        address: str,
        *,
        cluster: str,
        machine: str,
        internal: str = "",
        memory: int = 0,
        max_connections: int = 0,
    ) -> NodeRecord:
        rules.validate_node(address, machine, internal)
        rules.validate_cluster_name(cluster)
        rules.validate_node_counts(memory=memory, max_connections=max_connections)
        with self._write():
            known = [n.id for n, _, _ in self._nodes.values() if n.address == address]
            node_id = known[0] if known else self._next_id("node")
            node = NodeRecord(
                node_id,
                address,
                cluster,
                machine,
                internal,
                0.0,
                memory=memory,
                max_connections=max_connections,
            )
            now = time.monotonic()
            self._nodes[node_id] = (node, now, now)
            return self._aged(node_id)

    def heartbeat(self, node_id: int, connections: int | None = None) -> bool:
        if connections is not None:
            rules.validate_node_counts(connections=connections)
        with self._lock:
            if node_id not in self._nodes:
                return False
            node, _, started = self._nodes[node_id]
            if connections is not None:
                node = dataclasses.replace(node, connections=connections)
            self._nodes[node_id] = (node, time.monotonic(), started)
            return True

    def list_nodes(self) -> list[NodeRecord]:
        with self._lock:
            return [self._aged(node_id) for node_id in sorted(self._nodes)]

    def remove_node(self, node_id: int) -> None:
        with self._write():
            if self._nodes.pop(node_id, None) is None:
                raise rules.no_node_id(node_id)

    # -- single sign-on ---------------------------------------------------------------------

    def sso_state(self, cache_id: int) -> tuple[int, int]:
        with self._lock:
            self._get_cache(cache_id)
            return self._sso.get(cache_id, (0, 0))

    def rotate_sso(self, cache_id: int, now: int) -> int:
        with self._write():
            self._get_cache(cache_id)
            version = self._sso.get(cache_id, (0, 0))[0] + 1
            self._sso[cache_id] = (version, now)
            return version

    # -- used SSO tokens and signed-out sessions (no revision bump) -------------------------

    @staticmethod
    def _remember_once(table: dict[bytes, int], digest: bytes, expires: int, now: int) -> bool:
        """Forget what expired before `now`, then remember `digest` unless it is known."""
        for old in [d for d, until in table.items() if until < now]:
            del table[old]
        if digest in table:
            return False
        table[digest] = expires
        return True

    def use_sso_token(self, token_hash: bytes, expires: int, now: int) -> bool:
        with self._lock:
            return self._remember_once(self._used_tokens, token_hash, expires, now)

    def revoke_session(self, session_hash: bytes, expires: int, now: int) -> None:
        with self._lock:
            self._remember_once(self._revoked_sessions, session_hash, expires, now)

    def session_revoked(self, session_hash: bytes, now: int) -> bool:
        with self._lock:
            return self._revoked_sessions.get(session_hash, now - 1) >= now

    # -- flush log and stats history (no revision bump) -------------------------------------

    def record_flushes(self, records: list[FlushRecord]) -> None:
        with self._lock:
            for record in records:
                # Lines of caches deleted meanwhile are skipped, not errors.
                if record.cache_id in self._caches:
                    self._flushes.append(
                        dataclasses.replace(
                            record, id=self._next_id("flush"), details=dict(record.details)
                        )
                    )

    def flush_log(self, cache_id: int, limit: int = 100) -> list[FlushRecord]:
        with self._lock:
            self._get_cache(cache_id)
            mine = [r for r in self._flushes if r.cache_id == cache_id]
        mine.sort(key=lambda r: (r.at, r.id or 0), reverse=True)
        # A negative limit means none, as SQLite's LIMIT reads it.
        shown = mine[:limit] if limit >= 0 else mine
        return [dataclasses.replace(r, details=dict(r.details)) for r in shown]

    def prune_flush_log(self, before: float) -> int:
        with self._lock:
            kept = [r for r in self._flushes if r.at >= before]
            pruned = len(self._flushes) - len(kept)
            self._flushes = kept
        return pruned

    def add_stats_samples(self, samples: list[StatsSample]) -> None:
        with self._lock:
            for sample in samples:
                if sample.cache_id in self._caches:
                    copied = dataclasses.replace(sample, stats=dict(sample.stats))
                    self._samples.append(_Sample(self._next_id("sample"), copied))

    def stats_samples(self, cache_id: int, start: float, end: float) -> list[StatsSample]:
        with self._lock:
            mine = [
                s
                for s in self._samples
                if s.sample.cache_id == cache_id and start <= s.sample.at <= end
            ]
        mine.sort(key=lambda s: (s.sample.at, s.id))
        return [dataclasses.replace(s.sample, stats=dict(s.sample.stats)) for s in mine]

    def compact_stats(self, minute_cutoff: float, hour_cutoff: float) -> int:
        """As the SQLite store: the rows changed (made hourly) plus the rows deleted."""
        boundary = compaction_boundary(minute_cutoff)
        with self._lock:
            last_of_hour: dict[tuple[int, str, int], _Sample] = {}
            for s in self._samples:
                if s.sample.resolution == MINUTE and s.sample.at < boundary:
                    key = (s.sample.cache_id, s.sample.server, int(s.sample.at / HOUR))
                    if key not in last_of_hour or s.id > last_of_hour[key].id:
                        last_of_hour[key] = s
            for s in last_of_hour.values():
                s.sample = dataclasses.replace(s.sample, resolution=HOUR)
            kept = [
                s
                for s in self._samples
                if not (s.sample.resolution == MINUTE and s.sample.at < boundary)
                and s.sample.at >= hour_cutoff
            ]
            changed = len(last_of_hour) + len(self._samples) - len(kept)
            self._samples = kept
        return changed

    def close(self) -> None:
        """Nothing to release: a store in memory holds no file or connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
