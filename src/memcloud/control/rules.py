"""The control plane's rules, checked above the backend so every store enforces the same.

A store calls these before it touches its database: what a valid cache name, plan and
capability is, what a reference means, which credential becomes primary, and the words a
refusal uses (the API, the dashboard and the CLI show them as they are).
"""

from __future__ import annotations

import re

from memcloud.control.base import Conflict, ControlError, NotFound

__all__ = [
    "CACHE_NAME_RE",
    "GENERATION_BYTES",
    "MAX_ID",
    "NODE_FIELD_MAX",
    "PRIMARY_DELETE_REFUSED",
    "USERNAME_ATTEMPTS",
    "becomes_primary",
    "cache_name_taken",
    "capability_changes",
    "check_deletable",
    "is_id",
    "may_exist",
    "no_cache_id",
    "no_cache_named",
    "no_credential",
    "no_credential_id",
    "no_node_id",
    "no_unused_username",
    "validate_cache_name",
    "validate_capabilities",
    "validate_cluster_name",
    "validate_node",
    "validate_node_counts",
    "validate_plan",
]

# The largest id a store hands out (SQLite's INTEGER and PostgreSQL's BIGINT both hold it).
MAX_ID = 2**63 - 1

# Names appear in URLs, logs and shell commands: keep them to a safe, short alphabet.
CACHE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# 24-bit usernames collide now and then; a few redraws make a collision practically impossible.
USERNAME_ATTEMPTS = 20
# A node's address, internal address and machine name: a host name and a port fit.
NODE_FIELD_MAX = 300
# A cache's generation: 16 random bytes, hex.
GENERATION_BYTES = 16
PRIMARY_DELETE_REFUSED = "cannot delete the primary credential; promote another credential first"


def validate_cluster_name(name: str) -> None:
    if not CACHE_NAME_RE.match(name):
        raise ControlError(
            f"invalid cluster name {name!r}: use 1-64 characters of letters, digits, '_', '.', '-'"
        )


def validate_node(address: str, machine: str, internal: str) -> None:
    """A node's addresses are `host:port` (an IPv6 host in brackets), its machine a name."""
    for what, value in (("address", address), ("internal address", internal)):
        if value == "" and what == "internal address":
            continue
        host, _, port = value.rpartition(":")
        if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ControlError(f"invalid node {what} {value!r}: use host:port")
        if len(value) > NODE_FIELD_MAX or any(c.isspace() or c == "," for c in value):
            raise ControlError(f"invalid node {what} {value!r}")
    if not 0 < len(machine) <= NODE_FIELD_MAX or any(c.isspace() for c in machine):
        raise ControlError(f"invalid machine name {machine!r}")


def validate_node_counts(**counts: int) -> None:
    """A node's memory budget and connection counts: whole numbers a column holds."""
    for what, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise ControlError(f"invalid node {what.replace('_', ' ')} {value!r}")


def no_node_id(node_id: int) -> NotFound:
    return NotFound(f"no node with id {node_id}")


def validate_cache_name(name: str) -> None:
    if not CACHE_NAME_RE.match(name):
        raise ControlError(
            f"invalid cache name {name!r}: use 1-64 characters of letters, digits, '_', '.', '-'"
        )
    if name.isdigit():
        # An all-digit reference means an id everywhere (CLI, find_cache), so such a name
        # could never be looked up.
        raise ControlError(f"invalid cache name {name!r}: a name cannot be all digits")


def validate_plan(plan: int) -> None:
    if plan <= 0:
        raise ControlError(f"invalid plan {plan}: a plan must be a positive number of bytes")


def validate_capabilities(**flags: object) -> None:
    """Capabilities are booleans (None: unchanged, in an update)."""
    for name, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise ControlError(f"invalid {name} capability {value!r}: use true or false")


def capability_changes(
    *, write: bool | None, flush: bool | None, api: bool | None
) -> dict[str, bool]:
    """The capabilities an update sets, checked; the ones left None stay as they are."""
    validate_capabilities(write=write, flush=flush, api=api)
    changes = {"write": write, "flush": flush, "api": api}
    return {name: value for name, value in changes.items() if value is not None}


def is_id(ref: str | int) -> bool:
    """An int or an all-digit (ASCII) string refers to a cache by id (names cannot be all
    digits; `isdigit` alone also takes "²", which is no number)."""
    return isinstance(ref, int) or (ref.isascii() and ref.isdigit())


def may_exist(record_id: int) -> bool:
    """Whether a row can have this id: ids are positive 64-bit integers in every store, and
    a larger one must be "not found", not a database's overflow error."""
    return 0 < record_id <= MAX_ID


def becomes_primary(asked: bool, cache_has_primary: bool) -> bool:
    """Every cache always has exactly one primary: its first credential becomes it, and a
    new primary demotes the old one (the store does that in the same change)."""
    return asked or not cache_has_primary


def check_deletable(primary: bool) -> None:
    """The primary credential is never deleted, even when it is the only one: a cache
    without credentials is one no client can use. Deleting the cache is how it goes."""
    if primary:
        raise Conflict(PRIMARY_DELETE_REFUSED)


# -- the words of refusals, the same from every store ---------------------------------------


def cache_name_taken(name: str) -> Conflict:
    return Conflict(f"a cache named {name!r} already exists")


def no_cache_id(cache_id: int) -> NotFound:
    return NotFound(f"no cache with id {cache_id}")


def no_cache_named(name: str) -> NotFound:
    return NotFound(f"no cache named {name!r}")


def no_credential_id(credential_id: int) -> NotFound:
    return NotFound(f"no credential with id {credential_id}")


def no_credential(cache_id: int, ref: str | int) -> NotFound:
    return NotFound(f"no credential {ref!r} in cache {cache_id}")


def no_unused_username() -> ControlError:
    return ControlError("could not find an unused credential username; try again")
