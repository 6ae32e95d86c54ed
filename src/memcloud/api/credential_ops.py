"""The credential changes v1 and v2 both make, each applied on this node at once.

`create` adds one to a cache (`NO_CACHE` if absent); the others first find the credential
within the cache by username or id (`NO_CREDENTIAL` if absent). Control-store errors come
out as API errors.
"""

from __future__ import annotations

from memcloud.api.context import ApiContext, refresh_directory
from memcloud.api.errors import Problem
from memcloud.api.shapes import store_call
from memcloud.control.models import CredentialRecord, NewCredential
from memcloud.logs import log_change

__all__ = [
    "CAPABILITY_FIELDS",
    "cache_name",
    "capabilities_body",
    "create",
    "delete",
    "list_records",
    "promote",
    "update_capabilities",
]


# Request fields of the capabilities, and the store's names for them.
CAPABILITY_FIELDS = (
    ("write_capability", "write"),
    ("flush_capability", "flush"),
    ("api_capability", "api"),
)


def capabilities_body(value_schema: dict[str, object]) -> dict[str, object]:
    """The OpenAPI request body of a capability update whose fields match `value_schema`."""
    properties = {field: value_schema for field, _ in CAPABILITY_FIELDS}
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}


def cache_name(ctx: ApiContext, cache_id: int) -> str:
    record = ctx.service.directory.caches.get(cache_id)
    return record.name if record is not None else f"#{cache_id}"


async def list_records(ctx: ApiContext, cache_id: int) -> list[CredentialRecord]:
    """The cache's credentials (`NO_CACHE` if the cache is gone)."""
    return await store_call(ctx.store.list_credentials, cache_id, not_found=Problem.NO_CACHE)


async def create(ctx: ApiContext, cache_id: int) -> NewCredential:
    """A new credential with every capability (`NO_CACHE` if the cache is gone)."""
    new = await store_call(ctx.store.create_credential, cache_id, not_found=Problem.NO_CACHE)
    log_change(
        "credential created", cache=cache_name(ctx, cache_id), credential=new.record.username
    )
    await refresh_directory(ctx)
    return new


async def update_capabilities(
    ctx: ApiContext, cache_id: int, ref: str, changes: dict[str, bool]
) -> CredentialRecord:
    """Set the capabilities named in `changes` (`write`, `flush`, `api`); others stay.

    With no changes the credential is only looked up.
    """
    record = await store_call(ctx.store.find_credential, cache_id, ref)
    if changes:
        record = await store_call(
            ctx.store.update_credential,
            record.id,
            write=changes.get("write"),
            flush=changes.get("flush"),
            api=changes.get("api"),
        )
        log_change(
            "credential capabilities changed",
            cache=cache_name(ctx, cache_id),
            credential=record.username,
            write=record.write,
            flush=record.flush,
            api=record.api,
        )
        await refresh_directory(ctx)
    return record


async def promote(ctx: ApiContext, cache_id: int, ref: str) -> CredentialRecord:
    """Make the credential the cache's primary one; the promoted record."""
    record = await store_call(ctx.store.find_credential, cache_id, ref)
    record = await store_call(ctx.store.promote_credential, record.id)
    log_change("credential promoted", cache=cache_name(ctx, cache_id), credential=record.username)
    await refresh_directory(ctx)
    return record


async def delete(ctx: ApiContext, cache_id: int, ref: str) -> None:
    """Delete the credential (the store refuses the primary while others remain)."""
    record = await store_call(ctx.store.find_credential, cache_id, ref)
    await store_call(ctx.store.delete_credential, record.id)
    log_change("credential deleted", cache=cache_name(ctx, cache_id), credential=record.username)
    await refresh_directory(ctx)
