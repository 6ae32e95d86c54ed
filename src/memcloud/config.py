"""Typed settings, built once by the CLI and handed to every part of the server.

Each `memcloud serve` option is a Settings field whose metadata (Option) holds its help,
parser and default text: the CLI derives the flag and its environment variable from it, and
a supervisor hands its child nodes the resolved Settings as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from memcloud.options import (
    Option,
    masked_repr,
    options_of,
    parse_port,
    parse_positive_int,
    parse_seconds,
    serve_option,
    value_from_json,
    value_to_json,
)
from memcloud.plans import (
    DEFAULT_ITEM_SIZE_MAX,
    DEFAULT_PLAN_BYTES,
    DEFAULT_PLANS,
    MAX_PLAN_CONNECTIONS,
    MAX_REPLICAS,
    MIB,
    Plan,
    format_plans,
    format_size,
    parse_advertise,
    parse_plan_specs,
    parse_plans,
    parse_positive_size,
    parse_size,
    plan_bytes,
    plan_connections,
    plan_replicas,
    split_advertise,
)

__all__ = [
    "DEFAULT_ITEM_SIZE_MAX",
    "DEFAULT_PLANS",
    "DEFAULT_PLAN_BYTES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAX_PLAN_CONNECTIONS",
    "MAX_REPLICAS",
    "NODE_SETTINGS_ENV",
    "Plan",
    "Settings",
    "format_plans",
    "format_size",
    "parse_advertise",
    "parse_plan_specs",
    "parse_plans",
    "parse_positive_size",
    "parse_size",
    "plan_bytes",
    "plan_connections",
    "plan_replicas",
    "settings_options",
    "split_advertise",
]

# -- the settings ------------------------------------------------------------------------------


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# How log lines look (memcloud.logs renders both).
LOG_FORMATS = ("text", "json")
# The environment variable that carries a child node's Settings (as JSON) from the supervisor.
NODE_SETTINGS_ENV = "MEMCLOUD_NODE_SETTINGS"


def _spread_plans(plans: tuple[Plan, ...]) -> dict[str, object]:
    return {
        "plans": tuple((plan.slug, plan.size) for plan in plans),
        "plan_connections": plan_connections(plans),
        "plan_replicas": plan_replicas(plans),
    }


def _smtp_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("use smtp://user:password@host:port (or smtps://...)")
    parts.port  # noqa: B018 -- raises ValueError for a port that is no number
    return text


def _secret_list(text: str) -> tuple[str, ...]:
    """`a,b,@/etc/old-secret`: comma-separated secrets (or @files), blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _one_character(text: str) -> str:
    """A prefix delimiter: one printable ASCII character that may stand in a key."""
    if len(text) != 1 or not ("!" <= text <= "~"):
        raise ValueError("must be one printable ASCII character (not a space)")
    return text


def _cores() -> str:
    return str(os.cpu_count() or 1)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Settings:
    """Everything a node process is told at start. Each field that is a `memcloud serve`
    option says so in its metadata (Option): its flag, variable, help and default come from
    here and nowhere else."""

    host: str = field(default="127.0.0.1", metadata=serve_option("address to listen on"))
    port: int = field(default=11211, metadata=serve_option("memcache port", parse=parse_port))
    api_port: int = field(default=11280, metadata=serve_option("HTTP API port", parse=parse_port))
    data_dir: Path = field(
        default_factory=lambda: Path("data"),
        metadata=serve_option("directory holding the control database", parse=Path),
    )
    # None: SQLite in the data dir (one machine). A URL: PostgreSQL, shared by machines.
    control_url: str | None = field(
        default=None,
        metadata=serve_option(
            "PostgreSQL control store, postgresql://user:password@host:port/db (prefer the"
            " env variable); without it the control store is SQLite in DATA_DIR",
            words="SQLite in DATA_DIR",
            secret=True,
        ),
    )
    # Server-wide budget across every cache; 0 means the sum of the plans (no extra bound).
    memory: int = field(
        default=1024 * MIB,
        metadata=serve_option(
            "memory for all caches together (0: no bound)", parse=parse_size, show=format_size
        ),
    )
    anonymous_cache: str | None = field(
        default=None,
        metadata=serve_option(
            "cache for clients that do not authenticate", metavar="NAME", words="off"
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=serve_option("log level", parse=str.upper, choices=LOG_LEVELS),
    )
    log_format: str = field(
        default="text",
        metadata=serve_option(
            "log lines as text, or one JSON object per line", parse=str.lower, choices=LOG_FORMATS
        ),
    )
    auth_timeout: float = field(
        default=5.0,
        metadata=serve_option("seconds a client has to authenticate", parse=parse_seconds),
    )
    item_size_max: int = field(
        default=DEFAULT_ITEM_SIZE_MAX,
        metadata=serve_option(
            "largest item (key + value)", parse=parse_positive_size, show=format_size
        ),
    )
    default_plan: int = field(
        default=DEFAULT_PLAN_BYTES,
        metadata=serve_option(
            "plan of caches created without one", parse=parse_positive_size, show=format_size
        ),
    )
    max_connections: int = field(
        default=10_000,
        metadata=serve_option("open connections at most", parse=parse_positive_int),
    )
    # HTTP API port: open connections at most, and deadlines for reading a request's head
    # and body (api/limits.py has the reasons for the defaults).
    api_max_connections: int = field(
        default=1000,
        metadata=serve_option(
            "open HTTP API connections at most (more are answered 503 and closed)",
            parse=parse_positive_int,
        ),
    )
    api_head_timeout: float = 10.0
    api_body_timeout: float = 30.0
    # Failed logins per address prefix per minute before its logins are slowed (auth_throttle).
    login_free_failures: int = field(
        default=5,
        metadata=serve_option(
            "failed logins a minute per address prefix (/24, /64) before its logins are "
            "slowed; twice as many per username",
            parse=parse_positive_int,
        ),
    )
    # Host name printed in MEMCACHIER_SERVERS; defaults to the bind host.
    public_host: str | None = field(
        default=None,
        metadata=serve_option(
            "host name to advertise in MEMCACHIER_SERVERS", words="the bind host"
        ),
    )
    # The named set of nodes this node belongs to; caches are placed on a cluster.
    cluster: str = field(
        default="default",
        metadata=serve_option("cluster this node joins (caches live on one cluster)"),
    )
    # The node-to-node channel (forwarded commands, the API's flushes and stats): mutual
    # TLS on this port of the bind host; 0: one the OS picks (every node registers its own).
    internal_port: int = field(
        default=0,
        metadata=serve_option(
            "port of the node-to-node channel (0: any free port, told to the registry)",
            parse=parse_port,
        ),
    )
    # Nodes of one machine fail together; None: this machine's host name.
    machine: str | None = field(
        default=None,
        metadata=serve_option("name of this machine in the node registry", words="the host name"),
    )
    # Part "clusterops" (issue 11 item 3): the HOST:PORT this node registers and clients are
    # given (node i of --nodes N: HOST:PORT+i), when the bind address is not what other
    # machines reach (0.0.0.0, a NAT, a load balancer's name); None: the advertised host
    # and the bound port, as before.
    advertise: str | None = field(
        default=None,
        metadata=serve_option(
            "HOST:PORT this node registers and clients are given (node i of --nodes N: PORT+i)",
            parse=parse_advertise,
            metavar="HOST:PORT",
            words="the public host and the bound port",
        ),
    )
    # None: a token generated at the first start (kept in the data dir); "": /metrics open.
    metrics_token: str | None = field(
        default=None,
        metadata=serve_option(
            "bearer token for /metrics (prefer the env variable); without it one is generated"
            " at the first start and kept in DATA_DIR/metrics-token; '' leaves /metrics open",
            words="generated at first start",
            secret=True,
        ),
    )
    admin_token: str | None = field(
        default=None,
        metadata=serve_option(
            "bearer token for the admin API (prefer the env variable)",
            words="generated at first start",
            secret=True,
        ),
    )
    # Platform add-on partner API (Basic auth) and single sign-on.
    provision_user: str | None = field(
        default=None,
        metadata=serve_option(
            "add-on id platforms use (Basic auth) on /heroku/resources", words="none"
        ),
    )
    provision_password: str | None = field(
        default=None,
        metadata=serve_option(
            "add-on API password (prefer the env variable)", words="none", secret=True
        ),
    )
    sso_salt: str | None = field(
        default=None,
        metadata=serve_option(
            "salt of single sign-on tokens (prefer the env variable)", words="none", secret=True
        ),
    )
    plans: tuple[tuple[str, int], ...] = field(
        default=DEFAULT_PLANS,
        metadata=serve_option(
            "provisioning plans, name=size pairs separated by commas; name=size:connections=N"
            " sets a plan's connection limit (default: max(20, 10 per MB), at most half of"
            " --max-connections)",
            parse=parse_plan_specs,
            show=format_plans,
            spread=_spread_plans,
        ),
    )
    # (plan bytes, connections) from `--plans` entries that name a connection limit; caches
    # of any other size get the size rule (memcloud.admission.plan_connection_limit).
    plan_connections: tuple[tuple[int, int], ...] = ()
    # (plan bytes, replicas) from `--plans` entries that keep more than one copy of each key;
    # caches of any other size keep one (`replicas_of`).
    plan_replicas: tuple[tuple[int, int], ...] = ()
    # Data-plane processes of this deployment, and which one this process is (0 runs the
    # HTTP API and supervises the others). Each node holds 1/nodes of every plan.
    nodes: int = field(
        default=1,
        metadata=serve_option(
            "data-plane processes, on consecutive ports (default: the number of cores)",
            parse=parse_positive_int,
            default=_cores,
            words="cores",
        ),
    )
    # TLS on the data plane (and HTTPS for the API) with this certificate chain and key, on
    # tls_port (node i on tls_port + i); tls_only closes the plain port; with tls_client_ca
    # every data-plane client must show a certificate that CA signed.
    tls_cert: Path | None = field(
        default=None,
        metadata=serve_option(
            "certificate chain (PEM): memcache over TLS, and the HTTP API over HTTPS",
            parse=Path,
            metavar="FILE",
            words="off",
        ),
    )
    tls_key: Path | None = field(
        default=None,
        metadata=serve_option(
            "private key (PEM) of --tls-cert (default: in the --tls-cert file)",
            parse=Path,
            metavar="FILE",
            words="in the `--tls-cert` file",
        ),
    )
    tls_port: int = field(
        default=11219,
        metadata=serve_option("memcache-over-TLS port (with --tls-cert)", parse=parse_port),
    )
    tls_only: bool = field(
        default=False, metadata=serve_option("close the plain memcache port", words="off")
    )
    tls_client_ca: Path | None = field(
        default=None,
        metadata=serve_option(
            "require memcache clients to show a certificate signed by this CA (PEM)",
            parse=Path,
            metavar="FILE",
            words="off",
        ),
    )
    # Alert delivery (memcloud.alerts): the SMTP server email alerts go through, their
    # From address, and whether tenants' Slack and webhook URLs may point at loopback or
    # private addresses (off: a tenant cannot aim deliveries at the operator's network).
    smtp_url: str | None = field(
        default=None,
        metadata=serve_option(
            "SMTP server for email alerts, smtp://user:password@host:port (STARTTLS when"
            " offered; smtps:// for TLS from the start; prefer the env variable)",
            parse=_smtp_url,
            words="email alerts off",
            secret=True,
        ),
    )
    smtp_from: str | None = field(
        default=None,
        metadata=serve_option(
            "From address of email alerts", metavar="ADDRESS", words="memcloud@PUBLIC_HOST"
        ),
    )
    alert_private_targets: bool = field(
        default=False,
        metadata=serve_option(
            "let alert webhooks and Slack URLs reach loopback and private addresses",
            words="off",
        ),
    )
    # Issue 11, channel part (memcloud.cluster.secrets): the secret every node of a
    # deployment shares, from which the node-to-node channel's mutual TLS is derived. A value
    # or `@/path/to/file`; None: generated into DATA_DIR/cluster-secret on one machine, a
    # refusal to start with --control-url. The accepted ones are trusted during a rotation.
    cluster_secret: str | None = field(
        default=None,
        metadata=serve_option(
            "secret shared by every node of the deployment (a value or @FILE; prefer the env"
            " variable): the node-to-node channel's mutual TLS is derived from it; without it"
            " one is generated into DATA_DIR/cluster-secret (one machine only)",
            metavar="SECRET",
            words="generated at first start",
            secret=True,
        ),
    )
    cluster_secret_previous: tuple[str, ...] = field(
        default=(),
        metadata=serve_option(
            "other cluster secrets still accepted from peers during a rotation (values or"
            " @FILE, comma-separated)",
            parse=_secret_list,
            show=",".join,
            metavar="SECRETS",
            words="none",
            secret=True,
        ),
    )
    # Per-tenant admin commands (issue 13 item 5, memcloud.admin_commands): the character
    # that ends a key's prefix in `stats detail` (memcached's -D).
    prefix_delimiter: str = field(
        default=":",
        metadata=serve_option(
            "character ending a key's prefix in `stats detail` (memcached's -D)",
            parse=_one_character,
            metavar="CHAR",
        ),
    )
    # Introspection (issue 12, part "insight"): each node records its caches' recent
    # requests and hot keys (storage/insight.py); off saves the data plane that work.
    introspection: bool = field(
        default=True,
        metadata=serve_option(
            "record recent requests and hot keys for the introspection routes and page"
            " (--no-introspection: off)",
            words="on",
        ),
    )
    # Warm restart (issue 13 item 2, storage/snapshot.py): at a graceful stop each node
    # writes its caches to DATA_DIR/node-<i>.snapshot and reads them back at its next start.
    warm_restart: bool = field(
        default=True,
        metadata=serve_option(
            "keep the caches' items over a graceful stop and start (--no-warm-restart: every"
            " start is empty)",
            words="on",
        ),
    )
    # Set by the supervisor for the node processes it starts; not for people.
    node_index: int = field(default=0, metadata=serve_option("", parse=int, hidden=True))

    def replicas_of(self, plan: int) -> int:
        """Copies of each key a cache of this plan keeps (1 unless `--plans` says more)."""
        for size, replicas in self.plan_replicas:
            if size == plan:
                return replicas
        return 1

    def plan_share(self, plan: int) -> int:
        """What one node holds of a plan: clients spread keys evenly over the nodes."""
        return -(-plan // self.nodes)

    @property
    def advertised_host(self) -> str:
        if self.advertise is not None:
            return split_advertise(self.advertise)[0]
        return self.public_host or self.host

    def node_address(self, index: int, port: int) -> str:
        """The "host:port" node `index` (bound to `port`) registers and clients are given."""
        if self.advertise is not None:
            host, first = split_advertise(self.advertise)
            return f"{host}:{first + index}"
        return f"{self.advertised_host}:{port}"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def __repr__(self) -> str:
        # Secrets show that they are set, never what they are (logs, tracebacks, debuggers).
        return masked_repr(self)

    @classmethod
    def from_options(cls, values: Mapping[str, object]) -> Settings:
        """The settings of parsed option values (by field name: every option's field)."""
        given: dict[str, Any] = {}
        for f, option in settings_options():
            value = values[f.name]
            given.update(option.spread(value) if option.spread else {f.name: value})
        return cls(**given)

    def to_json(self) -> str:
        """Every field, secrets included (for a child node process, never for a log)."""
        return json.dumps({f.name: value_to_json(getattr(self, f.name)) for f in fields(self)})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """The settings to_json() wrote (a field left out keeps its default); a ValueError
        if the text is not such settings."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("settings JSON must be an object")
        hints = get_type_hints(cls)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            try:
                values[name] = value_from_json(hints[name], value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return cls(**values)


def settings_options() -> tuple[tuple[Field[Any], Option], ...]:
    """The Settings fields that are `memcloud serve` options, in the order --help lists them."""
    return options_of(Settings)
