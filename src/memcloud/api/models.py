"""The API's answers as pydantic models: what `/openapi.json` declares for every route.

Documentation only: the routes build their JSON themselves (api/shapes.py, record_json.py)
and return it as a response, so FastAPI never re-serialises through these models and the
wire bytes stay exactly the hosted service's. Every object model forbids unknown fields, so
tests/api/test_openapi_contract.py, which validates real answers against these schemas,
fails as soon as a route's shape and its declaration part.

The shapes follow the hosted service's API reference (v1: 1.1-1.9, v2: 2.1-2.5) with
memcloud's own values where it differs (credential `id` is always a number; v2 credential
objects carry `sasl_password` only in the answer that creates them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = [
    "METRICS_RESPONSES",
    "AdminServers",
    "Capabilities",
    "ErrorDetail",
    "ProcessedSeries",
    "ServerStats",
    "V1Credential",
    "V1CredentialList",
    "V1Done",
    "V1Error",
    "V1HistoryList",
    "V1HistorySample",
    "V1Login",
    "V1NewCredential",
    "V1StatsByServer",
    "V2Cache",
    "V2Credential",
    "V2CredentialList",
    "V2DeleteDone",
    "V2EnableDone",
    "V2Error",
    "V2FlushLogEntry",
    "V2FlushLogList",
    "V2ProcessedSeriesList",
    "V2RotateDone",
    "V2SwitchDone",
    "errors",
]


class _Shape(BaseModel):
    # An answer with a field the declaration lacks is a contract break, not an extension.
    model_config = ConfigDict(extra="forbid")


class ServerStats(_Shape):
    """The 31 counters of the stats API (stats.names.API_STAT_NAMES), all integers."""

    auth_cmds: int
    auth_errors: int
    bytes: int
    bytes_read: int
    bytes_written: int
    cas_badval: int
    cas_hits: int
    cas_misses: int
    cmd_delete: int
    cmd_flush: int
    cmd_get: int
    cmd_set: int
    cmd_touch: int
    curr_connections: int
    curr_items: int
    decr_hits: int
    decr_misses: int
    delete_hits: int
    delete_misses: int
    evictions: int
    expired: int
    get_hits: int
    get_misses: int
    incr_hits: int
    incr_misses: int
    limit_maxbytes: int
    time: int = Field(description="the node's clock, epoch seconds")
    total_connections: int
    total_items: int
    touch_hits: int
    touch_misses: int


class Capabilities(_Shape):
    """A credential's capabilities as an update answers them (the stored values)."""

    flush_capability: bool
    write_capability: bool
    api_capability: bool


class ErrorDetail(_Shape):
    """An error outside the analytics API (`/metrics`, the partner API's server errors)."""

    detail: str


# --- v1 -------------------------------------------------------------------------------------


class V1Error(RootModel[str]):
    """v1 errors are bare JSON strings, e.g. "You are not authorized to perform this action."."""


class V1Done(RootModel[Literal[""]]):
    """v1 flush and delete answer the empty JSON string."""


class V1Login(_Shape):
    cache_id: int = Field(description="the id to use in /api/v1/<id>/... paths")


class V1StatsByServer(RootModel[dict[str, ServerStats]]):
    """The stats of each server of the cache, keyed by `host:port`."""


class V1HistorySample(_Shape):
    memcachier_id: str = Field(description="the cache id, as a string")
    server: str = Field(description="the server's host, without the port")
    stats: ServerStats
    timestamp: str = Field(description="epoch milliseconds, as a string")


class V1HistoryList(RootModel[list[V1HistorySample]]):
    """Sampled stats, oldest first."""


class V1Credential(_Shape):
    """A credential as v1 lists it: never its password."""

    cache_id: int
    id: int
    sasl_username: str
    uuid: None = Field(description="always null")
    primary: bool
    flush_capability: bool
    write_capability: bool
    api_capability: bool


class V1NewCredential(V1Credential):
    """A credential just created: its password is shown this once."""

    sasl_password: str


class V1CredentialList(RootModel[list[V1Credential]]):
    pass


# --- v2 -------------------------------------------------------------------------------------


class V2Error(_Shape):
    """v2 errors: `{"message": ...}`, e.g. `{"message": "Bad user"}`."""

    message: str


class V2Credential(_Shape):
    id: int
    cache_id: int
    sasl_username: str
    sasl_password: str | None = Field(
        description="only in the answer that creates the credential (passwords are stored "
        "hashed); null elsewhere"
    )
    write_capability: bool
    flush_capability: bool
    api_capability: bool
    primary: bool


class V2CredentialList(RootModel[list[V2Credential]]):
    pass


class V2Cache(_Shape):
    id: int
    name: str
    label: str
    cache_type: Literal["memcachier"]
    plan: int = Field(description="the cache's size in bytes")
    connection_limit: int = Field(
        description="memcloud extension: the connections the cache may hold, all nodes together"
    )
    provider: str
    enabled: bool
    cluster_name: str = Field(description="the cluster the cache is placed on")
    servers: list[str] = Field(
        description="host:port of every live server of the cache's cluster (MEMCACHIER_SERVERS)"
    )
    credentials: list[V2Credential]
    can_switch: bool = Field(description="another cluster has a live server (switch_cluster)")
    can_manage_credentials: bool
    can_update_capabilities: bool


class V2DeleteDone(RootModel[Literal["Delete successful"]]):
    pass


class V2EnableDone(RootModel[Literal["Enabled cache successfully"]]):
    pass


class V2RotateDone(RootModel[Literal["SSO rotation successful"]]):
    pass


class V2SwitchDone(RootModel[str]):
    """switch_cluster's answer: the name of the cluster the cache is on now."""


class AdminNode(_Shape):
    id: int
    address: str = Field(description="host:port clients connect to")
    cluster: str
    machine: str
    state: Literal["up", "down"] = Field(description="down: no heartbeat for over 3 s")
    last_heartbeat_seconds: float
    uptime_seconds: int = Field(description="since the node registered")
    connections: int = Field(description="open memcache connections at its last heartbeat")
    max_connections: int = Field(description="its --max-connections")
    memory: int = Field(description="its memory budget in bytes (0: no bound)")


class AdminCluster(_Shape):
    name: str
    nodes_up: int
    nodes: list[AdminNode]
    caches: int = Field(description="caches placed on the cluster")
    plans: int = Field(description="the sum of their plans, bytes")
    memory: int | None = Field(
        description="the sum of the live nodes' memory, bytes (null: unbounded or none up)"
    )
    connections: int
    max_connections: int
    overcommitted: bool = Field(description="the plans exceed the memory")
    warning: str | None


class AdminServers(_Shape):
    clusters: list[AdminCluster]
    nodes_down: list[str] = Field(description="host:port of every registered node that is down")
    warnings: list[str]


class ProcessedSeries(_Shape):
    """One InfluxDB-style series: a row per time bucket, `time` first, then each name."""

    name: Literal["processed_stats"]
    tags: dict[str, str] | None = Field(
        default=None, description='per server only: {"server": "host:port"}'
    )
    columns: list[str]
    values: list[list[str | float | None]] = Field(
        description="each row: an RFC 3339 time, then one number (or null) per name"
    )


class V2ProcessedSeriesList(RootModel[list[ProcessedSeries]]):
    pass


class V2FlushLogEntry(_Shape):
    time: str = Field(description="RFC 3339")
    timestamp: float = Field(description="epoch seconds")
    source: str = Field(description="text, binary, api, deploy_hook, webhook, cli, dashboard, ...")
    username: str
    peer: str
    node: str
    app: str | None
    release: str | None
    commit: str | None
    details: dict[str, str]


class V2FlushLogList(RootModel[list[V2FlushLogEntry]]):
    """Recent flushes, newest first."""


# --- the error rows of a route's documentation ----------------------------------------------

_MODELS: dict[str, type[BaseModel]] = {"v1": V1Error, "v2": V2Error, "other": ErrorDetail}


def errors(version: Literal["v1", "v2", "other"], **rows: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` rows: `errors("v2", e404="Cache not found.")` documents a 404 whose body
    is v2's error object. Keys are `e` + the status (keyword arguments cannot be numbers)."""
    model = _MODELS[version]
    return {int(key[1:]): {"model": model, "description": text} for key, text in rows.items()}


METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus' text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    # Its own content: the route's media type is text/plain, the refusal's is JSON.
    401: {
        "description": "a valid bearer token is required (--metrics-token)",
        "content": {"application/json": {"schema": ErrorDetail.model_json_schema()}},
    },
}
