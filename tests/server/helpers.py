"""Small helpers for the server tests: login over a raw socket, caches made with the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conftest import RawConnection, probe_source
from memcloud.testing import ServerProcess, ascii_login, wait_for

__all__ = ["Tenant", "connect", "create_cache", "create_credential", "login", "stats_of"]


@dataclass(frozen=True)
class Tenant:
    cache: str
    username: str
    password: str


def connect(port: int) -> RawConnection:
    return RawConnection(port)


def login(port: int, username: str, password: str) -> RawConnection:
    conn = RawConnection(port)
    reply = conn.request(ascii_login(username, password))
    assert reply == b"STORED\r\n", reply
    return conn


def try_login(port: int, username: str, password: str) -> bytes:
    """One login attempt, each from its own loopback /24: polling for a credential that is
    still on its way must not trip the failed-login backoff, which counts per /24 prefix and
    (for prefixes that failed before) per username."""
    conn = RawConnection(port, source=probe_source())
    try:
        return conn.request(ascii_login(username, password))
    finally:
        conn.close()


def create_cache(server: ServerProcess, name: str, plan: str = "25MB") -> Tenant:
    """A cache made with the CLI, usable on the running server (within the 2 s promise)."""
    data: Any = server.cli_json("cache", "create", name, "--plan", plan)
    [cred] = data["credentials"]
    tenant = Tenant(name, cred["sasl_username"], cred["sasl_password"])
    assert wait_for(
        lambda: try_login(server.port, tenant.username, tenant.password) == b"STORED\r\n",
        timeout=2.5,
    )
    return tenant


def create_credential(server: ServerProcess, cache: str, *flags: str) -> Tenant:
    """A credential made with the CLI, once the running server accepts it (as create_cache)."""
    cred: Any = server.cli_json("credentials", "create", cache, *flags)
    tenant = Tenant(cache, cred["sasl_username"], cred["sasl_password"])
    assert wait_for(
        lambda: try_login(server.port, tenant.username, tenant.password) == b"STORED\r\n",
        timeout=5.0,
    )
    return tenant


def stats_of(conn: RawConnection, group: bytes = b"") -> dict[str, str]:
    reply = conn.request(b"stats" + (b" " + group if group else b"") + b"\r\n", b"END\r\n")
    values = {}
    for line in reply.decode().split("\r\n"):
        if line.startswith("STAT "):
            _, name, value = line.split(" ", 2)
            values[name] = value
    return values
