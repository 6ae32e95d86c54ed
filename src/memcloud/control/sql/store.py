"""The control store's logic in SQL, once for every engine (SQLite, PostgreSQL).

Every change runs in one transaction that first bumps `meta.revision`, so a server polling
`revision()` sees either none or all of a change, and two writers never interleave (the
revision row, or SQLite's write lock, makes the second wait). The rules (names, plans, the
primary) are memcloud.control.rules'; the engine turns its database's errors into
`StoreFailed`. Statements are written once, with `?` placeholders, in the SQL both engines
speak (`RETURNING`, `ON CONFLICT`, booleans compared with parameters).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from memcloud.control import rules
from memcloud.control.models import (
    DEFAULT_CLUSTER,
    CacheRecord,
    CredentialRecord,
    FlushRecord,
    NewCredential,
    NodeRecord,
    StatsSample,
)
from memcloud.control.secrets import generate_password, generate_username, hash_password
from memcloud.control.sql import membership, revocations, telemetry
from memcloud.control.sql.alerts import SqlAlerts
from memcloud.control.sql.connection import Connection, Engine
from memcloud.control.sql.hooks import SqlHooks
from memcloud.control.sql.introspection import SqlIntrospection

__all__ = ["SqlStore"]

_CACHE_COLUMNS = "id, name, plan, enabled, generation, cluster"
_CREDENTIAL_COLUMNS = "id, cache_id, username, salt, secret_hash, write, flush, api, is_primary"


def _cache(row: Any) -> CacheRecord:
    return CacheRecord(
        id=row[0],
        name=row[1],
        plan=row[2],
        enabled=bool(row[3]),
        generation=row[4],
        cluster=row[5],
    )


def _credential(row: Any) -> CredentialRecord:
    return CredentialRecord(
        id=row[0],
        cache_id=row[1],
        username=row[2],
        salt=bytes(row[3]),
        secret_hash=bytes(row[4]),
        write=bool(row[5]),
        flush=bool(row[6]),
        api=bool(row[7]),
        primary=bool(row[8]),
    )


class SqlStore(SqlAlerts, SqlIntrospection, SqlHooks):
    """A `ControlStore` over one SQL engine's connection (alerts: memcloud.control.sql.alerts,
    deploy hooks: memcloud.control.sql.hooks, introspection: memcloud.control.sql.introspection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        with self.engine.session() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One transaction that bumps the revision; rolled back on any exception."""
        with self.engine.session() as conn, conn.transaction():
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
            self.engine.announce(conn)
            yield conn

    @staticmethod
    def _get_cache(conn: Connection, cache_id: int) -> CacheRecord:
        if not rules.may_exist(cache_id):
            raise rules.no_cache_id(cache_id)
        row = conn.execute(
            f"SELECT {_CACHE_COLUMNS} FROM caches WHERE id = ?", (cache_id,)
        ).fetchone()
        if row is None:
            raise rules.no_cache_id(cache_id)
        return _cache(row)

    @staticmethod
    def _get_credential(conn: Connection, credential_id: int) -> CredentialRecord:
        if not rules.may_exist(credential_id):
            raise rules.no_credential_id(credential_id)
        row = conn.execute(
            f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?", (credential_id,)
        ).fetchone()
        if row is None:
            raise rules.no_credential_id(credential_id)
        return _credential(row)

    # -- ControlStore -----------------------------------------------------------------------

    def revision(self) -> int:
        with self._locked() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return int(row[0])

    def wait_for_change(self, timeout: float) -> bool:
        return self.engine.wait_for_change(timeout)

    def create_cache(self, name: str, plan: int, *, cluster: str = DEFAULT_CLUSTER) -> CacheRecord:
        rules.validate_cache_name(name)
        rules.validate_plan(plan)
        rules.validate_cluster_name(cluster)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM caches WHERE name = ?", (name,)).fetchone():
                raise rules.cache_name_taken(name)
            row = conn.execute(
                "INSERT INTO caches (name, plan, generation, cluster) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (name, plan, secrets.token_hex(rules.GENERATION_BYTES), cluster),
            ).fetchone()
            return self._get_cache(conn, int(row[0]))

    def list_caches(self) -> list[CacheRecord]:
        with self._locked() as conn:
            rows = conn.execute(f"SELECT {_CACHE_COLUMNS} FROM caches ORDER BY id").fetchall()
        return [_cache(row) for row in rows]

    def find_cache(self, ref: str | int) -> CacheRecord:
        """An int or an all-digit string is an id, anything else a name."""
        with self._locked() as conn:
            if rules.is_id(ref):
                return self._get_cache(conn, int(ref))
            row = conn.execute(
                f"SELECT {_CACHE_COLUMNS} FROM caches WHERE name = ?", (ref,)
            ).fetchone()
        if row is None:
            raise rules.no_cache_named(str(ref))
        return _cache(row)

    def update_cache(
        self,
        cache_id: int,
        *,
        plan: int | None = None,
        enabled: bool | None = None,
        cluster: str | None = None,
    ) -> CacheRecord:
        if plan is not None:
            rules.validate_plan(plan)
        if cluster is not None:
            rules.validate_cluster_name(cluster)
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            if plan is not None:
                conn.execute("UPDATE caches SET plan = ? WHERE id = ?", (plan, cache_id))
            if enabled is not None:
                conn.execute("UPDATE caches SET enabled = ? WHERE id = ?", (enabled, cache_id))
            if cluster is not None:
                conn.execute("UPDATE caches SET cluster = ? WHERE id = ?", (cluster, cache_id))
            return self._get_cache(conn, cache_id)

    def delete_cache(self, cache_id: int) -> None:
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            # Credentials, alerts and all go with it (ON DELETE CASCADE).
            conn.execute("DELETE FROM caches WHERE id = ?", (cache_id,))

    def create_credential(
        self,
        cache_id: int,
        *,
        write: bool = True,
        flush: bool = True,
        api: bool = True,
        primary: bool = False,
        password: str | None = None,
    ) -> NewCredential:
        """`password` is generated unless given (provisioning derives it, to stay idempotent)."""
        rules.validate_capabilities(write=write, flush=flush, api=api, primary=primary)
        password = password or generate_password()
        salt, secret_hash = hash_password(password)
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            has_primary = conn.execute(
                "SELECT 1 FROM credentials WHERE cache_id = ? AND is_primary = ?", (cache_id, True)
            ).fetchone()
            primary = rules.becomes_primary(primary, has_primary is not None)
            if primary:
                conn.execute(
                    "UPDATE credentials SET is_primary = ? WHERE cache_id = ?", (False, cache_id)
                )
            username = self._unused_username(conn)
            row = conn.execute(
                "INSERT INTO credentials"
                " (cache_id, username, salt, secret_hash, write, flush, api, is_primary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (cache_id, username, salt, secret_hash, write, flush, api, primary),
            ).fetchone()
            record = self._get_credential(conn, int(row[0]))
        return NewCredential(record=record, password=password)

    @staticmethod
    def _unused_username(conn: Connection) -> str:
        for _ in range(rules.USERNAME_ATTEMPTS):
            username = generate_username()
            if not conn.execute(
                "SELECT 1 FROM credentials WHERE username = ?", (username,)
            ).fetchone():
                return username
        raise rules.no_unused_username()

    def list_credentials(self, cache_id: int | None = None) -> list[CredentialRecord]:
        """All credentials (for servers loading them), or one cache's (NotFound if absent)."""
        with self._locked() as conn:
            if cache_id is None:
                rows = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials ORDER BY cache_id, id"
                ).fetchall()
            else:
                self._get_cache(conn, cache_id)
                rows = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE cache_id = ? ORDER BY id",
                    (cache_id,),
                ).fetchall()
        return [_credential(row) for row in rows]

    def find_credential(self, cache_id: int, ref: str | int) -> CredentialRecord:
        """A username (case-insensitive) first, then an id: usernames may be all digits."""
        with self._locked() as conn:
            self._get_cache(conn, cache_id)
            row = None
            if isinstance(ref, str):
                row = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials"
                    " WHERE cache_id = ? AND username = ?",
                    (cache_id, ref.upper()),
                ).fetchone()
            if row is None and rules.is_id(ref) and rules.may_exist(int(ref)):
                row = conn.execute(
                    f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE cache_id = ? AND id = ?",
                    (cache_id, int(ref)),
                ).fetchone()
        if row is None:
            raise rules.no_credential(cache_id, ref)
        return _credential(row)

    def update_credential(
        self,
        credential_id: int,
        *,
        write: bool | None = None,
        flush: bool | None = None,
        api: bool | None = None,
    ) -> CredentialRecord:
        changes = rules.capability_changes(write=write, flush=flush, api=api)
        with self._write() as conn:
            self._get_credential(conn, credential_id)
            for column, value in changes.items():
                # Column names are capability_changes' fixed keys, never input.
                conn.execute(
                    f"UPDATE credentials SET {column} = ? WHERE id = ?", (value, credential_id)
                )
            return self._get_credential(conn, credential_id)

    def promote_credential(self, credential_id: int) -> CredentialRecord:
        with self._write() as conn:
            record = self._get_credential(conn, credential_id)
            conn.execute(
                "UPDATE credentials SET is_primary = ? WHERE cache_id = ? AND id != ?",
                (False, record.cache_id, credential_id),
            )
            conn.execute(
                "UPDATE credentials SET is_primary = ? WHERE id = ?", (True, credential_id)
            )
            return self._get_credential(conn, credential_id)

    def delete_credential(self, credential_id: int) -> None:
        with self._write() as conn:
            rules.check_deletable(self._get_credential(conn, credential_id).primary)
            conn.execute("DELETE FROM credentials WHERE id = ?", (credential_id,))

    # -- single sign-on --------------------------------------------------------------------

    def sso_state(self, cache_id: int) -> tuple[int, int]:
        """`(version, not_before)`: SSO tokens older than `not_before` (epoch s) are refused."""
        with self._locked() as conn:
            self._get_cache(conn, cache_id)
            row = conn.execute(
                "SELECT version, not_before FROM sso_state WHERE cache_id = ?", (cache_id,)
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def rotate_sso(self, cache_id: int, now: int) -> int:
        """Invalidate earlier SSO tokens and SSO sessions of a cache; answer the new version."""
        with self._write() as conn:
            self._get_cache(conn, cache_id)
            conn.execute(
                "INSERT INTO sso_state (cache_id, version, not_before) VALUES (?, 1, ?)"
                " ON CONFLICT (cache_id) DO UPDATE"
                " SET version = sso_state.version + 1, not_before = excluded.not_before",
                (cache_id, now),
            )
            row = conn.execute(
                "SELECT version FROM sso_state WHERE cache_id = ?", (cache_id,)
            ).fetchone()
        return int(row[0])

    # -- used SSO tokens and signed-out sessions (see memcloud.control.revocations) ---------

    def use_sso_token(self, token_hash: bytes, expires: int, now: int) -> bool:
        with self._locked() as conn:
            return revocations.remember_once(conn, "used_sso_tokens", token_hash, expires, now)

    def revoke_session(self, session_hash: bytes, expires: int, now: int) -> None:
        with self._locked() as conn:
            revocations.remember_once(conn, "revoked_sessions", session_hash, expires, now)

    def session_revoked(self, session_hash: bytes, now: int) -> bool:
        with self._locked() as conn:
            return revocations.revoked(conn, "revoked_sessions", session_hash, now)

    # -- the deployment's nodes (see memcloud.control.sql.membership) -----------------------

    def register_node(
        self,
        address: str,
        *,
        cluster: str,
        machine: str,
        internal: str = "",
        memory: int = 0,
        max_connections: int = 0,
    ) -> NodeRecord:
        rules.validate_node(address, machine, internal)
        rules.validate_cluster_name(cluster)
        rules.validate_node_counts(memory=memory, max_connections=max_connections)
        clock = self.engine.clock_sql
        node = membership.NewNode(address, cluster, machine, internal, memory, max_connections)
        with self._write() as conn:
            node_id = membership.register(conn, clock, node)
            return membership.get(conn, clock, node_id)

    def heartbeat(self, node_id: int, connections: int | None = None) -> bool:
        if connections is not None:
            rules.validate_node_counts(connections=connections)
        if not rules.may_exist(node_id):
            return False
        with self._locked() as conn:
            return membership.heartbeat(conn, self.engine.clock_sql, node_id, connections)

    def list_nodes(self) -> list[NodeRecord]:
        with self._locked() as conn:
            return membership.select(conn, self.engine.clock_sql)

    def remove_node(self, node_id: int) -> None:
        with self._write() as conn:
            if not rules.may_exist(node_id) or not membership.delete(conn, node_id):
                raise rules.no_node_id(node_id)

    # -- flush log and stats history (see memcloud.control.telemetry) ------------------------

    def record_flushes(self, records: list[FlushRecord]) -> None:
        with self._locked() as conn:
            telemetry.insert_flushes(conn, records)

    def flush_log(self, cache_id: int, limit: int = 100) -> list[FlushRecord]:
        """The newest flushes of a cache, newest first; NotFound if no such cache."""
        with self._locked() as conn:
            self._get_cache(conn, cache_id)
            return telemetry.select_flushes(conn, cache_id, limit)

    def prune_flush_log(self, before: float) -> int:
        with self._locked() as conn:
            return telemetry.prune_flush_log(conn, before)

    def add_stats_samples(self, samples: list[StatsSample]) -> None:
        with self._locked() as conn:
            telemetry.insert_samples(conn, samples)

    def stats_samples(self, cache_id: int, start: float, end: float) -> list[StatsSample]:
        with self._locked() as conn:
            return telemetry.select_samples(conn, cache_id, start, end)

    def compact_stats(self, minute_cutoff: float, hour_cutoff: float) -> int:
        with self._locked() as conn:
            return telemetry.compact_stats(conn, minute_cutoff, hour_cutoff, self.engine.truncate)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
