"""Who is looking at a cache's dashboard, and what they may do there — checked per request.

* A credential's session (signed in with username + password) may view its own cache; it may
  manage credentials only with the API capability and flush only with the flush capability,
  as the memcache protocol and the HTTP API decide. The credential must still exist and its
  cache be enabled, so deleting a credential ends its dashboard sessions too.
* A single sign-on session (a platform's user) and an operator session may do everything; an
  SSO session ends when the cache's SSO secret is rotated.
* A cache session names its cache's generation: once the cache is deleted no session made
  for it opens any cache again, even one given the same id. Signed-out sessions are refused
  before this (`web.load_session`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Request

from memcloud.control.base import NotFound
from memcloud.control.models import CacheRecord, CredentialRecord
from memcloud.dashboard.context import DashboardContext, dashboard_context
from memcloud.dashboard.sessions import DashboardSession

__all__ = ["Viewer", "admin_ok", "viewer_for"]


@dataclass(frozen=True, slots=True)
class Viewer:
    session: DashboardSession
    cache: CacheRecord
    credential: CredentialRecord | None  # the signed-in credential (password sessions)
    can_manage: bool
    can_flush: bool

    @property
    def who(self) -> str:
        """The name flushes are audited under."""
        if self.credential is not None:
            return self.credential.username
        return "operator" if self.session.kind == "admin" else "sso"

    @property
    def operator(self) -> bool:
        return self.session.kind == "admin"


def admin_ok(ctx: DashboardContext, session: DashboardSession) -> bool:
    token = ctx.settings.admin_token
    return (
        session.kind == "admin"
        and bool(token)
        and session.admin == ctx.signer.admin_fingerprint(token or "")
    )


async def viewer_for(request: Request, session: DashboardSession, cache_id: int) -> Viewer | None:
    """The viewer of `cache_id` for this session, or None (not signed in for this cache)."""
    ctx = dashboard_context(request)
    store = ctx.store
    try:
        if admin_ok(ctx, session):
            cache = await asyncio.to_thread(store.find_cache, cache_id)
            return Viewer(session, cache, None, True, True)
        if session.kind != "cache" or session.cache_id != cache_id:
            return None
        cache = await asyncio.to_thread(store.find_cache, cache_id)
        if not cache.generation or cache.generation != session.generation:
            return None  # made for a deleted cache: never for one made after it
        if session.via == "sso":
            version, _ = await asyncio.to_thread(store.sso_state, cache_id)
            if version != session.sso_version:
                return None
            return Viewer(session, cache, None, True, True)
        if session.via == "password" and cache.enabled:
            credential = await asyncio.to_thread(
                store.find_credential, cache_id, session.credential_id
            )
            return Viewer(session, cache, credential, credential.api, credential.flush)
    except NotFound:
        return None
    return None
