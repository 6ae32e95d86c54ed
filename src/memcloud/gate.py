"""The one gate where a command meets its principal, deny by default.

Every command of every protocol, fast paths included, is asked for here before it runs:
`allowed(capabilities, spec)` compares what the command table (protocol/specs.py) says the
command needs with what the session's principal may do. The sessions keep the principal's
capabilities as one integer (`capabilities_of`, computed when the principal changes), so
the check is two integer operations per command on the compiled hot path; each session
turns a refusal into its protocol's words.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from memcloud.auth import Principal
from memcloud.protocol.specs import NEEDS_FLUSH, NEEDS_LOGIN, NEEDS_WRITE, CommandSpec

__all__ = [
    "ALLOWED",
    "LOGIN",
    "NO_FLUSH",
    "NO_WRITE",
    "UNAUTHENTICATED",
    "UNKNOWN",
    "Verdict",
    "allowed",
    "capabilities_of",
]


class Verdict(IntEnum):
    """What the gate answers. `allowed` returns the plain int (compared on the hot path)."""

    ALLOWED = 0
    UNAUTHENTICATED = 1  # the command needs a login and the session has none
    NO_WRITE = 2  # the command changes the cache; the credential may not write
    NO_FLUSH = 3  # the command empties the cache; the credential may not flush
    UNKNOWN = 4  # no row in the command table: refused
    LOGIN = 5  # before authentication, the command is a login attempt (the text `set`)


ALLOWED: Final = 0
UNAUTHENTICATED: Final = 1
NO_WRITE: Final = 2
NO_FLUSH: Final = 3
UNKNOWN: Final = 4
LOGIN: Final = 5


def capabilities_of(principal: Principal | None) -> int:
    """A principal's capabilities in the bits of the table's needs; 0 without a principal."""
    if principal is None:
        return 0
    capabilities = NEEDS_LOGIN
    if principal.write:
        capabilities |= NEEDS_WRITE
    if principal.flush:
        capabilities |= NEEDS_FLUSH
    return capabilities


def allowed(capabilities: int, spec: CommandSpec | None) -> int:
    """Whether a session with these capabilities may run the command of `spec` (a Verdict
    value). Anything the table does not grant is refused: no spec, or a need not met."""
    if spec is None:
        return UNKNOWN
    needs = spec.needs
    if (needs & capabilities) == needs:
        return ALLOWED
    missing = needs & ~capabilities
    if missing & NEEDS_LOGIN:
        return LOGIN if spec.login else UNAUTHENTICATED
    if missing & NEEDS_WRITE:
        return NO_WRITE
    if missing & NEEDS_FLUSH:
        return NO_FLUSH
    return UNKNOWN
