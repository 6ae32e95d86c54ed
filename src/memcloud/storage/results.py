"""What storage operations answer; each protocol maps these to its own wire words."""

from __future__ import annotations

from enum import Enum

__all__ = ["ArithResult", "StoreMode", "StoreResult"]


class StoreMode(Enum):
    SET = "set"
    ADD = "add"
    REPLACE = "replace"
    APPEND = "append"
    PREPEND = "prepend"
    CAS = "cas"


class StoreResult(Enum):
    STORED = "stored"
    NOT_STORED = "not_stored"
    EXISTS = "exists"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    NO_MEMORY = "no_memory"


class ArithResult(Enum):
    NOT_FOUND = "not_found"
    NON_NUMERIC = "non_numeric"
    EXISTS = "exists"  # binary protocol: CAS given and it did not match
