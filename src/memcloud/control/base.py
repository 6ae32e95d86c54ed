"""The interface every control-plane store implements (SQLite, PostgreSQL, memory)."""

from __future__ import annotations

from typing import Any, Protocol, Self

from memcloud.control.alert_records import AlertRecord, DeliveryConfigRecord, DeliveryRecord
from memcloud.control.hook_records import HookRecord, NewHook
from memcloud.control.introspection_records import LatencySample, WatchedPrefixRecord
from memcloud.control.models import (
    DEFAULT_CLUSTER,
    CacheRecord,
    CredentialRecord,
    FlushRecord,
    NewCredential,
    NodeRecord,
    StatsSample,
)

__all__ = [
    "Conflict",
    "ControlError",
    "ControlStore",
    "DamagedStore",
    "NotFound",
    "StoreFailed",
    "StoreRefused",
]


class ControlError(Exception):
    """A control-plane request that cannot be done; the message is for the user."""


class NotFound(ControlError):
    pass


class Conflict(ControlError):
    pass


class StoreFailed(ControlError):
    """The store's database failed (a full disk, an I/O error, a locked or damaged file).

    Every backend raises this instead of its driver's errors, so no caller depends on one
    database. The message is for the user and names the cause ("control database: database
    or disk is full"); `cause` is the database's own words.
    """

    def __init__(self, cause: str, note: str = "") -> None:
        super().__init__(f"control database: {cause}{note}")
        self.cause = cause


class StoreRefused(StoreFailed):
    """The database refused the data itself (a constraint, a value it cannot hold, a closed
    store): unlike a fault of the disk, retrying the same request fails again."""


class DamagedStore(ControlError):
    """The control database fails its integrity check; the message says what to do."""


class ControlStore(Protocol):
    """Every caller reaches the control plane through this; each backend (SQLite,
    PostgreSQL, memory) checks memcloud.control.rules and raises only `ControlError`s,
    `StoreFailed` for its database's own failures. tests/control/test_store_contract.py
    says what each must do.
    """

    def revision(self) -> int:
        """A number that changes whenever caches or credentials change (polled by servers)."""
        ...

    def wait_for_change(self, timeout: float) -> bool:
        """Block until the control plane may have changed, or `timeout` seconds passed.

        True when woken by a possible change (PostgreSQL's NOTIFY, another SQLite connection's
        commit, a change in this memory store), False at the timeout. Only a hint: callers
        compare `revision()` afterwards, and poll it at the timeout anyway, so a lost wake-up
        delays a change by one timeout at most.
        """
        ...

    def create_cache(
        self, name: str, plan: int, *, cluster: str = DEFAULT_CLUSTER
    ) -> CacheRecord: ...
    def list_caches(self) -> list[CacheRecord]: ...
    def find_cache(self, ref: str | int) -> CacheRecord:
        """By numeric id or by name; raises NotFound."""
        ...

    def update_cache(
        self,
        cache_id: int,
        *,
        plan: int | None = None,
        enabled: bool | None = None,
        cluster: str | None = None,
    ) -> CacheRecord:
        """Change a cache's plan, whether it is enabled, or its cluster (a move)."""
        ...

    def delete_cache(self, cache_id: int) -> None: ...

    def create_credential(
        self,
        cache_id: int,
        *,
        write: bool = True,
        flush: bool = True,
        api: bool = True,
        primary: bool = False,
        password: str | None = None,
    ) -> NewCredential: ...
    def list_credentials(self, cache_id: int | None = None) -> list[CredentialRecord]: ...
    def find_credential(self, cache_id: int, ref: str | int) -> CredentialRecord:
        """By id or username within one cache; raises NotFound."""
        ...

    def update_credential(
        self,
        credential_id: int,
        *,
        write: bool | None = None,
        flush: bool | None = None,
        api: bool | None = None,
    ) -> CredentialRecord: ...
    def promote_credential(self, credential_id: int) -> CredentialRecord: ...
    def delete_credential(self, credential_id: int) -> None: ...

    def sso_state(self, cache_id: int) -> tuple[int, int]:
        """`(version, not_before)` of a cache's single sign-on; NotFound if no such cache."""
        ...

    def rotate_sso(self, cache_id: int, now: int) -> int:
        """Refuse SSO tokens older than `now` and earlier SSO sessions; the new version."""
        ...

    # What the dashboard remembers until it expires (hashes only; no revision bump).
    def use_sso_token(self, token_hash: bytes, expires: int, now: int) -> bool:
        """Remember a used SSO token until `expires`; False if it was used before."""
        ...

    def revoke_session(self, session_hash: bytes, expires: int, now: int) -> None:
        """End a dashboard session (signed out) for good, remembered until it expires."""
        ...

    def session_revoked(self, session_hash: bytes, now: int) -> bool: ...

    # The deployment's memcache nodes. Joining and leaving bump the revision (every node
    # then places keys anew); heartbeats do not.
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
        """Join the deployment, or rejoin it at the same address (same id, fields renewed,
        uptime from now). `memory` and `max_connections` are the node's own bounds."""
        ...

    def heartbeat(self, node_id: int, connections: int | None = None) -> bool:
        """The node is alive now (with `connections` open, if given); False if it is no
        longer registered (it must rejoin)."""
        ...

    def list_nodes(self) -> list[NodeRecord]:
        """Every registered node, oldest first, each with its heartbeat's age."""
        ...

    def remove_node(self, node_id: int) -> None: ...

    # The flush audit log and the stats history: written often, so no revision bump.
    def record_flushes(self, records: list[FlushRecord]) -> None: ...
    def flush_log(self, cache_id: int, limit: int = 100) -> list[FlushRecord]:
        """The newest flushes of a cache, newest first; raises NotFound."""
        ...

    def prune_flush_log(self, before: float) -> int: ...
    def add_stats_samples(self, samples: list[StatsSample]) -> None: ...
    def stats_samples(self, cache_id: int, start: float, end: float) -> list[StatsSample]: ...
    def compact_stats(self, minute_cutoff: float, hour_cutoff: float) -> int: ...

    # Alerts, their delivery configs and deliveries (memcloud.control.alerts has the rules):
    # a tenant's rows, checked and bounded; no revision bump. Ids are looked up within one
    # cache, so another cache's id is NotFound.
    def create_alert(
        self,
        cache_id: int,
        *,
        trigger_type: str,
        trigger_threshold: float,
        delivery_config_id: int,
        description: str = "",
        enabled: bool = True,
    ) -> AlertRecord: ...
    def list_alerts(self, cache_id: int | None = None) -> list[AlertRecord]:
        """One cache's alerts, oldest first (NotFound if no such cache), or all (None)."""
        ...

    def find_alert(self, cache_id: int, alert_id: int) -> AlertRecord: ...
    def update_alert(
        self,
        cache_id: int,
        alert_id: int,
        *,
        trigger_type: str | None = None,
        trigger_threshold: float | None = None,
        delivery_config_id: int | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> AlertRecord:
        """Change the given fields; a new trigger or disabling resets it to not firing."""
        ...

    def delete_alert(self, cache_id: int, alert_id: int) -> None: ...
    def observe_alert(
        self, alert_id: int, *, value: float, firing: bool, at: float, payload: dict[str, Any]
    ) -> DeliveryRecord | None:
        """Record a measurement; on a change of state of an enabled alert (compare-and-set,
        so only one of several evaluators wins) queue and answer one delivery."""
        ...

    def create_delivery_config(
        self,
        cache_id: int,
        *,
        delivery_type: str,
        email: str = "",
        slack_url: str = "",
        slack_channel: str = "",
        webhook_url: str = "",
        webhook_secret: str = "",
    ) -> DeliveryConfigRecord: ...
    def list_delivery_configs(self, cache_id: int) -> list[DeliveryConfigRecord]: ...
    def find_delivery_config(self, cache_id: int, config_id: int) -> DeliveryConfigRecord: ...
    def delete_delivery_config(self, cache_id: int, config_id: int) -> None:
        """Refused (Conflict) while an alert uses it."""
        ...

    def claim_deliveries(self, now: float, lease_until: float, limit: int) -> list[DeliveryRecord]:
        """Take the pending deliveries due by `now`, leased until `lease_until`."""
        ...

    def finish_delivery(
        self, delivery_id: int, *, at: float, error: str = "", retry_at: float | None = None
    ) -> None:
        """An attempt's outcome: delivered, retried at `retry_at`, or failed for good."""
        ...

    def list_deliveries(self, cache_id: int, limit: int = 50) -> list[DeliveryRecord]: ...
    def prune_deliveries(self, before: float) -> int: ...

    # Watched prefixes (a bounded number per cache) and latency samples (introspection,
    # memcloud.control.introspection: its records and rules). No revision bump.
    def watch_prefix(self, cache_id: int, name: str) -> WatchedPrefixRecord:
        """Watch `name` in the cache (already watched: the same record); Conflict past
        MAX_WATCHED_PREFIXES, ControlError for a name no key could start with."""
        ...

    def list_watched_prefixes(self, cache_id: int | None = None) -> list[WatchedPrefixRecord]:
        """One cache's watched prefixes by id (NotFound if no such cache); None: all."""
        ...

    def unwatch_prefix(self, cache_id: int, prefix_id: int) -> None: ...
    def add_latency_samples(self, samples: list[LatencySample]) -> None: ...
    def latency_samples(self, servers: list[str], start: float, end: float) -> list[LatencySample]:
        """The samples of these servers ("host:port") in [start, end], oldest first."""
        ...

    def prune_latency(self, before: float) -> int: ...

    # Deploy-hook tokens (memcloud.control.hooks has the rules): flush-only secrets of one
    # cache, stored hashed; no revision bump. Ids are looked up within one cache.
    def create_hook(
        self, cache_id: int, *, name: str = "", prefix: str = "", now: float
    ) -> NewHook:
        """A new token (shown this once); Conflict past the active tokens a cache may have."""
        ...

    def list_hooks(self, cache_id: int) -> list[HookRecord]:
        """A cache's tokens, active and revoked, oldest first; NotFound if no such cache."""
        ...

    def revoke_hook(self, cache_id: int, hook_id: int, now: float) -> HookRecord: ...
    def use_hook(self, token: str, now: float) -> HookRecord | None:
        """The hook of `token`, its use stamped (not when revoked); None when no token
        matches or it was made for a cache that is gone."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
