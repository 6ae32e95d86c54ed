"""The deploy-hook routes' JSON shapes for the OpenAPI document (memcloud's extension: the
hosted service has no hook tokens); api/record_json.py renders records in them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = ["HookBody", "HookFlushDone", "HookToken", "NewHookToken"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HookBody(_Shape):
    """What a new token is made with (both optional)."""

    name: str = Field("", description="a label (at most 100 printable characters)")
    prefix: str = Field(
        "", description="flush only keys starting with this (memcache key characters)"
    )


class HookToken(_Shape):
    id: int
    cache_id: int
    name: str
    prefix: str = Field(description="'' flushes the whole cache")
    hint: str = Field(description="the token's first characters, to tell tokens apart")
    created_at: str
    last_used_at: str | None
    revoked: bool
    revoked_at: str | None


class NewHookToken(HookToken):
    """A token as created: the only answer that shows it."""

    token: str
    url: str = Field(description="POST here to flush (no credential needed)")
    message: str


class HookFlushDone(RootModel[str]):
    """'' once flushed (as v1's flush); otherwise why nothing was flushed (a GitHub ping,
    an event that does not flush)."""
