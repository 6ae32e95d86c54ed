"""The credential changes v1 and v2 both make: find by username or id, change, apply now.

Each finds the credential within the cache (`NO_CREDENTIAL` if absent), makes the change in
the control store (its errors as API errors) and applies it on this node at once.
"""

from __future__ import annotations

from memcloud.api.context import ApiContext, refresh_directory
from memcloud.api.shapes import store_call
from memcloud.control.models import CredentialRecord

__all__ = ["delete", "promote", "update_capabilities"]


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
        await refresh_directory(ctx)
    return record


async def promote(ctx: ApiContext, cache_id: int, ref: str) -> CredentialRecord:
    """Make the credential the cache's primary one; the promoted record."""
    record = await store_call(ctx.store.find_credential, cache_id, ref)
    record = await store_call(ctx.store.promote_credential, record.id)
    await refresh_directory(ctx)
    return record


async def delete(ctx: ApiContext, cache_id: int, ref: str) -> None:
    """Delete the credential (the store refuses the primary while others remain)."""
    record = await store_call(ctx.store.find_credential, cache_id, ref)
    await store_call(ctx.store.delete_credential, record.id)
    await refresh_directory(ctx)
