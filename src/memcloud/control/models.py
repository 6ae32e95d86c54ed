"""Records of the control plane. Secrets never appear in a repr."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CacheRecord", "CredentialRecord", "NewCredential"]


@dataclass(frozen=True, slots=True)
class CacheRecord:
    id: int
    name: str
    plan: int  # bytes
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A stored credential: the password only as a salted hash."""

    id: int
    cache_id: int
    username: str
    salt: bytes = field(repr=False)
    secret_hash: bytes = field(repr=False)
    write: bool = True
    flush: bool = True
    api: bool = True
    primary: bool = False


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A credential as created: the only moment its password is known."""

    record: CredentialRecord
    password: str = field(repr=False)
