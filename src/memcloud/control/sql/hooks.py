"""SQL for deploy-hook tokens, the same on every engine: the hook methods of the shared SQL
store (`SqlStore` inherits them). Rules and hashing: memcloud.control.hooks.

Nothing here bumps the revision (no node reads hooks). A token is found by its digest (a
unique index) and only if its cache still has the generation the token was made for.
Creating one first takes the cache's row lock (a no-op update), so two creators racing on
one PostgreSQL database cannot both pass the per-cache bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memcloud.control import hooks as rules
from memcloud.control.hook_records import HookRecord, NewHook
from memcloud.control.rules import may_exist, no_cache_id
from memcloud.control.sql.connection import Connection, Engine

__all__ = ["SqlHooks"]

_HOOK = (
    "h.id, h.cache_id, h.name, h.prefix, h.hint, h.created_at, h.last_used_at, h.revoked_at,"
    " h.generation, h.token_hash"
)
_FROM = "FROM hook_tokens h JOIN caches c ON c.id = h.cache_id AND c.generation = h.generation"


def _hook(row: Any) -> HookRecord:
    return HookRecord(
        id=int(row[0]),
        cache_id=int(row[1]),
        name=str(row[2]),
        prefix=str(row[3]),
        hint=str(row[4]),
        created_at=float(row[5]),
        last_used_at=None if row[6] is None else float(row[6]),
        revoked_at=None if row[7] is None else float(row[7]),
        generation=str(row[8]),
    )


class SqlHooks:
    """The hook-token methods of `ControlStore` over `self.engine`."""

    engine: Engine

    @contextmanager
    def _hooks_tx(self) -> Iterator[Connection]:
        with self.engine.session() as conn, conn.transaction():
            yield conn

    @staticmethod
    def _lock_cache(conn: Connection, cache_id: int) -> str:
        """The cache's generation, its row locked until the transaction ends."""
        if not may_exist(cache_id):
            raise no_cache_id(cache_id)
        if conn.execute("UPDATE caches SET plan = plan WHERE id = ?", (cache_id,)).rowcount != 1:
            raise no_cache_id(cache_id)
        row = conn.execute("SELECT generation FROM caches WHERE id = ?", (cache_id,)).fetchone()
        return str(row[0])

    @staticmethod
    def _get_hook(conn: Connection, cache_id: int, hook_id: int) -> HookRecord:
        row = None
        if may_exist(hook_id):
            row = conn.execute(
                f"SELECT {_HOOK} {_FROM} WHERE h.id = ? AND h.cache_id = ?", (hook_id, cache_id)
            ).fetchone()
        if row is None:
            raise rules.no_hook(cache_id, hook_id)
        return _hook(row)

    def create_hook(
        self, cache_id: int, *, name: str = "", prefix: str = "", now: float
    ) -> NewHook:
        label, prefix = rules.validate_hook(name, prefix)
        token = rules.new_token()
        with self._hooks_tx() as conn:
            generation = self._lock_cache(conn, cache_id)
            active = conn.execute(
                "SELECT count(*) FROM hook_tokens WHERE cache_id = ? AND revoked_at IS NULL",
                (cache_id,),
            ).fetchone()
            rules.check_hook_count(int(active[0]))
            row = conn.execute(
                "INSERT INTO hook_tokens (cache_id, generation, name, prefix, token_hash, hint,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    cache_id,
                    generation,
                    label,
                    prefix,
                    rules.hash_token(token),
                    token[: rules.HINT_CHARS],
                    now,
                ),
            ).fetchone()
            record = self._get_hook(conn, cache_id, int(row[0]))
        return NewHook(record=record, token=token)

    def list_hooks(self, cache_id: int) -> list[HookRecord]:
        """A cache's tokens, active and revoked, oldest first; NotFound if no such cache."""
        with self.engine.session() as conn:
            if (
                not may_exist(cache_id)
                or conn.execute("SELECT 1 FROM caches WHERE id = ?", (cache_id,)).fetchone() is None
            ):
                raise no_cache_id(cache_id)
            rows = conn.execute(
                f"SELECT {_HOOK} {_FROM} WHERE h.cache_id = ? ORDER BY h.id", (cache_id,)
            ).fetchall()
        return [_hook(row) for row in rows]

    def revoke_hook(self, cache_id: int, hook_id: int, now: float) -> HookRecord:
        """Revoke a token (again: unchanged); only the newest KEPT_REVOKED revoked ones of
        the cache are kept."""
        with self._hooks_tx() as conn:
            self._get_hook(conn, cache_id, hook_id)
            conn.execute(
                "UPDATE hook_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, hook_id),
            )
            record = self._get_hook(conn, cache_id, hook_id)
            conn.execute(
                "DELETE FROM hook_tokens WHERE cache_id = ? AND revoked_at IS NOT NULL AND id"
                " NOT IN (SELECT id FROM hook_tokens WHERE cache_id = ? AND revoked_at IS NOT"
                " NULL ORDER BY revoked_at DESC, id DESC LIMIT ?)",
                (cache_id, cache_id, rules.KEPT_REVOKED),
            )
        return record

    def use_hook(self, token: str, now: float) -> HookRecord | None:
        """The hook of `token` (None: unknown, or made for a deleted cache), its use stamped
        unless it is revoked."""
        if not rules.is_token_form(token):
            return None
        digest = rules.hash_token(token)
        with self._hooks_tx() as conn:
            row = conn.execute(
                f"SELECT {_HOOK} {_FROM} WHERE h.token_hash = ?", (digest,)
            ).fetchone()
            if row is None or not rules.token_matches(bytes(row[9]), token):
                return None
            record = _hook(row)
            if record.revoked:
                return record
            conn.execute("UPDATE hook_tokens SET last_used_at = ? WHERE id = ?", (now, record.id))
            return self._get_hook(conn, record.cache_id, record.id)
