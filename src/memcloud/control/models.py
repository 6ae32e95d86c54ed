"""Records of the control plane. Secrets never appear in a repr."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_CLUSTER",
    "DOWN_AFTER_SECONDS",
    "CacheRecord",
    "CredentialRecord",
    "FlushRecord",
    "NewCredential",
    "NodeRecord",
    "StatsSample",
]

# The cluster of caches created without one, and of nodes started without --cluster.
DEFAULT_CLUSTER = "default"
# A node heartbeats every second: after three missed heartbeats it counts as down, so a
# frozen or dead node is marked down within five seconds wherever the registry is read.
DOWN_AFTER_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class CacheRecord:
    id: int
    name: str
    plan: int  # bytes
    enabled: bool = True
    # A random nonce given when the cache is created (never reused, unlike a name): what is
    # made for a cache (sessions, connections, stored items) carries it and is refused
    # once it no longer matches, even if the id were ever handed out again.
    generation: str = ""
    # The named set of nodes that serves the cache (the hosted service's "cluster").
    cluster: str = DEFAULT_CLUSTER


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A memcache node of the deployment, as it registered itself.

    `heartbeat_age` is how long ago its last heartbeat was, by the database's clock (so the
    clocks of the machines never enter it); readers decide from it whether the node is up.
    """

    id: int
    address: str  # "host:port" clients connect to (MEMCACHIER_SERVERS)
    cluster: str
    machine: str  # nodes of one machine fail together: replicas go to other machines
    internal: str  # "host:port" of its node-to-node channel ("" if it has none)
    heartbeat_age: float
    # What the node tells the registry for the operator's server panel: how long ago it
    # registered (the database's clock again), its memory budget (bytes, 0: no bound),
    # its `--max-connections`, and its open memcache connections at its last heartbeat.
    uptime: float = 0.0
    memory: int = 0
    max_connections: int = 0
    connections: int = 0

    @property
    def up(self) -> bool:
        return self.heartbeat_age <= DOWN_AFTER_SECONDS


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A stored credential: the password only as a salted hash."""

    id: int
    cache_id: int
    username: str
    salt: bytes = field(repr=False)
    secret_hash: bytes = field(repr=False)
    write: bool = True
    flush: bool = True
    api: bool = True
    primary: bool = False


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A credential as created: the only moment its password is known."""

    record: CredentialRecord
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class FlushRecord:
    """One line of the flush audit log; app, release and commit come from deploy hooks."""

    cache_id: int
    at: float  # epoch seconds
    source: str  # "text", "binary", "api", "deploy_hook", "webhook", "cli", ...
    username: str  # the credential that flushed ("" when none, e.g. the CLI's operator)
    peer: str  # the client's address
    node: str = ""  # the node ("host:port") that flushed
    app: str | None = None
    release: str | None = None
    commit: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StatsSample:
    """One cache's counters on one node at one moment (see memcloud.api.history)."""

    cache_id: int
    server: str  # "host:port"
    at: float  # epoch seconds
    stats: dict[str, int]
    resolution: int = 60  # seconds this sample stands for: 60 (minute) or 3600 (hour)
