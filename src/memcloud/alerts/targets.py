"""Whether a tenant's delivery target may be reached: its form when the config is created,
and where its host resolves to at each delivery.

A delivery URL is hostile input: a tenant could aim it at the operator's own network (a
metadata service at 169.254.169.254, an admin port on loopback, a database on 10.0.0.0/8)
and read what answers from the delivery records. So only `http`/`https` URLs without
userinfo are accepted, and at delivery every address the host resolves to must be a public
one (`ipaddress`'s `is_global`): loopback, private, link-local, shared, reserved and
multicast addresses are refused unless the operator allows them (`--alert-private-targets`,
for a deployment whose receivers are inside its own network, and for tests). Redirects are
never followed (memcloud.alerts.senders), so a public host cannot bounce a delivery inward.

Left open, and documented: a host whose DNS answer changes between this check and the
connection (DNS rebinding) can still reach a private address once; the receiver's answer is
never shown beyond its status line, which limits what such a probe reads.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Final
from urllib.parse import urlsplit

__all__ = ["TargetRefused", "check_address", "check_email", "check_url", "resolve_public"]

SCHEMES: Final = ("http", "https")
# One mailbox: local@domain, no display names, commas or line breaks (header injection).
_EMAIL_RE: Final = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")


class TargetRefused(ValueError):
    """A delivery target memcloud will not reach; the message says why (for the tenant)."""


def check_url(url: str) -> None:
    """A URL's form: http or https, a host, no userinfo, no whitespace."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused(f"not a URL: {url!r}") from None
    if parts.scheme not in SCHEMES:
        raise TargetRefused("only http and https URLs are accepted")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL needs a host and no user:password@")
    if any(c.isspace() for c in url):
        raise TargetRefused("the URL must not contain whitespace")
    if port == 0:
        raise TargetRefused("the URL's port must not be 0")


def check_email(address: str) -> None:
    if not _EMAIL_RE.match(address):
        raise TargetRefused("email must be one address, local@domain")


def check_address(address: str, *, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not allow_private and not ip.is_global:
        raise TargetRefused(
            f"the target resolves to {ip}, which is not a public address (the operator can "
            "allow such targets with --alert-private-targets)"
        )


async def resolve_public(host: str, port: int, *, allow_private: bool) -> None:
    """Refuse a host any of whose addresses is not public (unless allowed)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    for info in infos:
        check_address(str(info[4][0]), allow_private=allow_private)
