"""The records of deploy-hook tokens (their rules: memcloud.control.hooks).
The token itself never appears in a repr."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HookRecord", "NewHook"]


@dataclass(frozen=True, slots=True)
class HookRecord:
    """A stored hook token: the token itself only as a digest (never in a repr)."""

    id: int
    cache_id: int
    name: str
    prefix: str  # "" flushes the whole cache; else only keys starting with it
    hint: str  # the token's first characters, for telling tokens apart
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None
    # The cache's generation when the token was made: a token never reaches a later cache.
    generation: str = field(default="", repr=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class NewHook:
    """A hook token as created: the only moment the token is known."""

    record: HookRecord
    token: str = field(repr=False)
