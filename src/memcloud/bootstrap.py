"""First start: a `default` cache and its credential, printed and kept in `<data-dir>/.env`.

The password is stored only hashed in the database, so the `.env` file (mode 0600) is what
lets a restarted server print the same values again.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from memcloud.config import Settings
from memcloud.control.base import ControlStore, NotFound

__all__ = [
    "ADMIN_TOKEN_FILENAME",
    "DEFAULT_CACHE_NAME",
    "ENV_FILENAME",
    "METRICS_TOKEN_FILENAME",
    "Connection",
    "bootstrap",
    "ensure_admin_token",
    "ensure_metrics_token",
    "write_env_file",
    "write_private",
]

DEFAULT_CACHE_NAME = "default"
ENV_FILENAME = ".env"
ADMIN_TOKEN_FILENAME = "admin-token"
METRICS_TOKEN_FILENAME = "metrics-token"


@dataclass(frozen=True, slots=True)
class Connection:
    """The values a hosted user gets as MEMCACHIER_* config vars."""

    username: str
    password: str

    def lines(self, servers: str, tls_servers: str | None = None) -> list[str]:
        """`tls_servers`: the TLS addresses, listed after the hosted service's three."""
        tls = [] if tls_servers is None else [f"MEMCLOUD_TLS_SERVERS={tls_servers}"]
        return [
            f"MEMCACHIER_SERVERS={servers}",
            f"MEMCACHIER_USERNAME={self.username}",
            f"MEMCACHIER_PASSWORD={self.password}",
            *tls,
        ]


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep:
                values[name.strip()] = value.strip()
    return values


def bootstrap(store: ControlStore, settings: Settings) -> Connection | None:
    """Create what an empty data dir needs; answer the credential to print, if known."""
    if settings.anonymous_cache:
        try:
            store.find_cache(settings.anonymous_cache)
        except NotFound:
            store.create_cache(
                settings.anonymous_cache, settings.default_plan, cluster=settings.cluster
            )
    env = _read_env(settings.data_dir / ENV_FILENAME)
    username, password = env.get("MEMCACHIER_USERNAME"), env.get("MEMCACHIER_PASSWORD")
    if username and password:
        known = {cred.username for cred in store.list_credentials()}
        return Connection(username, password) if username in known else None
    try:
        store.find_cache(DEFAULT_CACHE_NAME)
        return None  # made earlier (e.g. with the CLI): its password is not ours to know
    except NotFound:
        pass
    # On this node's cluster: a deployment's first node serves its first cache.
    cache = store.create_cache(DEFAULT_CACHE_NAME, settings.default_plan, cluster=settings.cluster)
    created = store.create_credential(cache.id, primary=True)
    return Connection(created.record.username, created.password)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, mode 0600: it holds a secret that only its owner may read.

    Created 0600 so it is never readable by others; the chmod narrows an existing file too.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_env_file(data_dir: Path, lines: list[str]) -> Path:
    path = data_dir / ENV_FILENAME
    write_private(path, "\n".join(lines) + "\n")
    return path


def ensure_admin_token(data_dir: Path, given: str | None) -> tuple[str, bool]:
    """The operator's admin token: the one given, else the data dir's, else a new one.

    Answers `(token, created)`; a generated token is kept in `<data-dir>/admin-token`
    (mode 0600) so that it is printed once, at the start that made it.
    """
    if given:
        return given, False
    return _kept_token(data_dir / ADMIN_TOKEN_FILENAME)


def ensure_metrics_token(data_dir: Path, given: str | None) -> tuple[str, bool]:
    """The bearer token of `/metrics`: the one given, else the data dir's, else a new one.

    `given == ""` (`--metrics-token ''`) is the operator's explicit choice of an open
    `/metrics` and answers `("", False)`. A generated token is kept in
    `<data-dir>/metrics-token` (mode 0600) and printed once, like the admin token.
    """
    if given is not None:
        return given, False
    return _kept_token(data_dir / METRICS_TOKEN_FILENAME)


def _kept_token(path: Path) -> tuple[str, bool]:
    """The token kept at `path`, or a new one written there; `(token, created)`."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token, False
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token, True
