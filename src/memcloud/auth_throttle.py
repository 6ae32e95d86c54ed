"""Slowing down password guessing on every login path: memcache text `set` login, binary
SASL, HTTP Basic (v1, v2, the partner API), the dashboard's sign-ins and SSO.

Failed attempts are counted twice: per client address PREFIX (an IPv4 /24, an IPv6 /64; an
IPv4-mapped IPv6 address counts as its IPv4 address) and per USERNAME across all addresses.
The rule (documented in docs/protocol-compat.md and docs/http-api.md):

* Failures are remembered for FAILURE_WINDOW seconds (counted in BUCKETS buckets: a failure
  is forgotten 55 to 60 seconds after it).
* FREE_FAILURES and USERNAME_FREE_FAILURES are the defaults; `memcloud serve
  --login-free-failures N` sets the prefix allowance to N and the username allowance to 2N.
* Prefix bound: once a prefix has FREE_FAILURES failures in the window, every attempt from
  it waits a step of BASE_DELAY * 2 ** (failures - FREE_FAILURES) seconds, at most MAX_DELAY.
* Username bound: once a username has USERNAME_FREE_FAILURES failures in the window (from
  anywhere), an attempt on it waits a step computed the same way from those failures, but
  only when it comes from a prefix that has failed at least once in the window itself. An
  attempt from a clean prefix is never slowed on account of the username, so a guesser
  cannot lock an honest client of that username out from an unrelated network; every
  guesser's prefix stops being clean with its first failure.
* Each bound is a queue: a prefix or username has at most one password checked per step,
  however many connections or addresses share it. Where both apply, the later slot counts.
* Memcache paths hold their answer (success or failure, so the delay says nothing about the
  password) until the slot; an attempt that would wait more than MAX_QUEUE_WAIT is answered
  "auth failure" after MAX_QUEUE_WAIT without its password being checked.
* HTTP paths do not hold answers: an attempt whose slot is not free now is refused with 429
  and `Retry-After` (whole seconds, rounded up) without its password being checked.
* Usernames are counted whether or not they exist (the answer must not tell), and each table
  keeps at most MAX_TRACKED_PREFIXES / MAX_TRACKED_USERNAMES records (oldest forgotten).

The delay is applied by the connection (it stops reading and answers via call_later), so
the event loop and every other client go on at full speed. Nothing here runs per command:
only on authentication.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from typing import Final, NamedTuple

__all__ = [
    "ADMIN_USERNAME",
    "BASE_DELAY",
    "FAILURE_WINDOW",
    "FREE_FAILURES",
    "HOOK_USERNAME",
    "MAX_DELAY",
    "MAX_QUEUE_WAIT",
    "MAX_TRACKED_PREFIXES",
    "MAX_TRACKED_USERNAMES",
    "PARTNER_USERNAME",
    "USERNAME_FREE_FAILURES",
    "Admission",
    "AuthThrottle",
    "address_of",
    "address_prefix",
    "client_network",
    "retry_after",
    "sso_username",
]

FAILURE_WINDOW: Final = 60.0
FREE_FAILURES: Final = 5
# Generous: many honest clients of one credential (a fleet with a stale password) fail at once.
USERNAME_FREE_FAILURES: Final = 10
BASE_DELAY: Final = 0.25
MAX_DELAY: Final = 4.0
# Below the default 5 s authentication timeout, so a queued honest client still gets its
# answer before the connection is closed for not authenticating.
MAX_QUEUE_WAIT: Final = 4.5
# Bound the memory an attacker with many prefixes or usernames can make us spend.
MAX_TRACKED_PREFIXES: Final = 32_768
MAX_TRACKED_USERNAMES: Final = 32_768
# The window is counted in buckets: a failure is forgotten 55 to 60 seconds after it.
BUCKETS: Final = 12
BUCKET_SECONDS: Final = FAILURE_WINDOW / BUCKETS
# Usernames are cut to this many characters for counting (generated ones have 6).
_MAX_USERNAME_CHARS: Final = 128
# The throttle's names for secrets that are not credentials: a NUL never starts a username.
ADMIN_USERNAME: Final = "\0admin"
PARTNER_USERNAME: Final = "\0partner"
# Deploy-hook tokens (guessed on one name: a token has no username of its own).
HOOK_USERNAME: Final = "\0hook"


class Admission(NamedTuple):
    delay: float  # seconds to hold the answer (memcache) / to wait before retrying (HTTP)
    check: bool  # False: refuse without checking the password


_FREE: Final = Admission(0.0, True)


class _Record:
    """Failures of one prefix or username, counted in BUCKETS time buckets of the window
    (constant memory however many failures), and the slot of its next password check."""

    __slots__ = ("counts", "newest", "next_slot")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.newest = 0  # the bucket number (time // BUCKET_SECONDS) counted last
        # The earliest time the next password check of this prefix or username may run.
        self.next_slot = 0.0

    def advance(self, now: float) -> int:
        """Forget the buckets that left the window; the current bucket's number."""
        bucket = int(now // BUCKET_SECONDS)
        gone = bucket - self.newest
        if gone > 0:
            counts = self.counts
            if gone >= BUCKETS:
                counts[:] = [0] * BUCKETS
            else:
                for number in range(self.newest + 1, bucket + 1):
                    counts[number % BUCKETS] = 0
            self.newest = bucket
        return bucket


def _live(record: _Record | None, now: float) -> int:
    if record is None:
        return 0
    record.advance(now)
    return sum(record.counts)


def _step(count: int, free: int) -> float:
    if count < free:
        return 0.0
    # The exponent is capped (2.0 ** a large count overflows); MAX_DELAY is reached at 4.
    return min(BASE_DELAY * 2.0 ** min(count - free, 16), MAX_DELAY)


def _record(table: OrderedDict[str, _Record], key: str, limit: int) -> _Record:
    record = table.get(key)
    if record is None:
        record = table[key] = _Record()
        if len(table) > limit:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return record


class AuthThrottle:
    """One per process (Service.auth_throttle): shared by both memcache protocols, the HTTP
    API, the dashboard, the partner API and SSO of that process."""

    def __init__(self, free_failures: int = FREE_FAILURES) -> None:
        # `memcloud serve --login-free-failures`; the username allowance is twice as large.
        self.free_failures = free_failures
        self.username_free_failures = free_failures * USERNAME_FREE_FAILURES // FREE_FAILURES
        self._prefixes: OrderedDict[str, _Record] = OrderedDict()
        self._usernames: OrderedDict[str, _Record] = OrderedDict()
        # Attempts slowed down (held before their answer) and refused unchecked, since start:
        # `/metrics` memcloud_throttled_logins_total.
        self.held = 0
        self.refused = 0

    def _bounds(self, address: str, username: str, now: float) -> list[tuple[_Record, float]]:
        """The records that slow this attempt down, each with its step."""
        bounds: list[tuple[_Record, float]] = []
        prefix = self._prefixes.get(address_prefix(address))
        prefix_failures = _live(prefix, now)
        free, user_free = self.free_failures, self.username_free_failures
        if prefix is not None and prefix_failures >= free:
            bounds.append((prefix, _step(prefix_failures, free)))
        if prefix_failures:
            user = self._usernames.get(username[:_MAX_USERNAME_CHARS])
            user_failures = _live(user, now)
            if user is not None and user_failures >= user_free:
                bounds.append((user, _step(user_failures, user_free)))
        return bounds

    def admit(self, address: str, now: float, username: str = "") -> Admission:
        """How to answer the next memcache authentication attempt (hold it, then answer)."""
        bounds = self._bounds(address, username, now)
        if not bounds:
            return _FREE
        slot = now
        for record, step in bounds:
            slot = max(slot, now + step, record.next_slot)
        if slot - now > MAX_QUEUE_WAIT:
            self.refused += 1
            return Admission(MAX_QUEUE_WAIT, False)
        for record, step in bounds:
            record.next_slot = slot + step
        if slot > now:
            self.held += 1
        return Admission(slot - now, True)

    def admit_now(self, address: str, now: float, username: str = "") -> Admission:
        """How to answer an HTTP attempt: check it now, or refuse it (429) for `delay`."""
        bounds = self._bounds(address, username, now)
        slot = now
        for record, _ in bounds:
            slot = max(slot, record.next_slot)
        if slot > now:
            self.refused += 1
            return Admission(slot - now, False)
        for record, step in bounds:
            record.next_slot = now + step
        return _FREE

    def failed(self, address: str, now: float, username: str = "") -> None:
        """Count a failed attempt against the address's prefix and the username."""
        for table, key, free, limit in (
            (self._prefixes, address_prefix(address), self.free_failures, MAX_TRACKED_PREFIXES),
            (
                self._usernames,
                username[:_MAX_USERNAME_CHARS],
                self.username_free_failures,
                MAX_TRACKED_USERNAMES,
            ),
        ):
            record = _record(table, key, limit)
            record.counts[record.advance(now) % BUCKETS] += 1
            # A guesser that just failed waits at least one step before its next check.
            record.next_slot = max(record.next_slot, now + _step(_live(record, now), free))

    def clear(self) -> None:
        """Forget everything (operators after an incident; tests between scenarios)."""
        self._prefixes.clear()
        self._usernames.clear()

    def failures(self, address: str, now: float) -> int:
        """Failures in the window of the address's prefix."""
        return _live(self._prefixes.get(address_prefix(address)), now)

    def username_failures(self, username: str, now: float) -> int:
        return _live(self._usernames.get(username[:_MAX_USERNAME_CHARS]), now)

    def tracked(self) -> tuple[int, int]:
        """How many prefixes and usernames are remembered (memory is bounded by these)."""
        return len(self._prefixes), len(self._usernames)


def address_of(peer: str) -> str:
    """The IP address part of a session's `host:port` peer string."""
    host, sep, _ = peer.rpartition(":")
    return host if sep else peer


def client_network(address: str, ipv4_prefix: int) -> str:
    """The network a client address is counted in: its IPv6 /64 (one host or site holds a
    whole /64, so a single IPv6 address is no bound), or its IPv4 network of `ipv4_prefix`
    bits (32: the address itself); IPv4-mapped IPv6 counts as IPv4, and anything that is no
    IP address counts as itself. Shared by the login throttle and connection admission."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is None:
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        ip = mapped
    if ipv4_prefix == 32:
        return str(ip)
    return str(ipaddress.IPv4Network((ip, ipv4_prefix), strict=False))


def address_prefix(address: str) -> str:
    """The network failed logins are counted in: IPv4 /24 or IPv6 /64."""
    return client_network(address, 24)


def retry_after(delay: float) -> str:
    """A `Retry-After` header's value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(delay)))


def sso_username(resource_id: str) -> str:
    """The throttle's name for SSO tokens of one resource."""
    return "\0sso:" + resource_id
