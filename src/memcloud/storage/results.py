"""What storage operations answer; each protocol maps these to its own wire words."""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["ArithResult", "DeleteResult", "StoreMode", "StoreResult"]


class StoreMode(IntEnum):
    """How `Cache.store` stores. The protocols name the same operations (`StoreVerb`); the
    sessions pair them by member name, so keep the names alike.

    IntEnum: its hash is int's (C), which matters on the per-command path."""

    SET = 1
    ADD = 2
    REPLACE = 3
    APPEND = 4
    PREPEND = 5
    CAS = 6


class StoreResult(IntEnum):
    STORED = 1
    NOT_STORED = 2
    EXISTS = 3
    NOT_FOUND = 4
    TOO_LARGE = 5
    NO_MEMORY = 6


class DeleteResult(IntEnum):
    DELETED = 1
    NOT_FOUND = 2
    EXISTS = 3  # binary protocol: CAS given and it did not match


class ArithResult(Enum):
    NOT_FOUND = "not_found"
    NON_NUMERIC = "non_numeric"
    EXISTS = "exists"  # binary protocol: CAS given and it did not match
