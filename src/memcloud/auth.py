"""Who may use which cache: credentials held in memory, checked deny-by-default.

The data plane never waits on the database: the server loads the control store into a
`Directory` (`Directory.load`) at start and swaps in a fresh one whenever the store's
revision changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from memcloud.control.base import ControlStore
from memcloud.control.models import CacheRecord, CredentialRecord
from memcloud.control.secrets import verify_dummy, verify_password

__all__ = ["ANONYMOUS_CREDENTIAL_ID", "Directory", "Principal"]

# The principal of unauthenticated connections on a server run with --anonymous-cache.
ANONYMOUS_CREDENTIAL_ID = -1


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated connection's identity: its cache and what it may do there."""

    credential_id: int
    username: str
    cache_id: int
    write: bool
    flush: bool
    api: bool
    # The generation of the cache it logged in to: a connection whose cache has since been
    # deleted (and another made, even under the same id) no longer matches and is closed.
    generation: str = ""


def _principal(record: CredentialRecord, cache: CacheRecord) -> Principal:
    return Principal(
        record.id,
        record.username,
        record.cache_id,
        record.write,
        record.flush,
        record.api,
        cache.generation,
    )


class Directory:
    """An immutable snapshot of caches and credentials."""

    def __init__(
        self, caches: list[CacheRecord], credentials: list[CredentialRecord], revision: int = 0
    ) -> None:
        self.revision = revision
        self.caches = {cache.id: cache for cache in caches}
        self.caches_by_name = {cache.name: cache for cache in caches}
        self._by_username = {cred.username: cred for cred in credentials}
        # The usernames as they arrive on the wire: on an anonymous connection a text `set`
        # naming one is a login attempt, not an item (text_session, per command).
        self.usernames = frozenset(cred.username.encode() for cred in credentials)
        self._by_id = {cred.id: cred for cred in credentials}

    @property
    def credentials(self) -> dict[int, CredentialRecord]:
        """Every credential of the snapshot, by id."""
        return self._by_id

    @classmethod
    def load(cls, store: ControlStore) -> Directory:
        """A snapshot of the store's caches and credentials (blocking: call it in a thread
        from the event loop)."""
        # The revision is read first: a change racing the load is then seen by the next poll.
        revision = store.revision()
        return cls(store.list_caches(), store.list_credentials(), revision)

    def authenticate(self, username: bytes | str, password: bytes | str) -> Principal | None:
        """The principal for a username and password, or None. The one gate."""
        if isinstance(username, bytes):
            try:
                username = username.decode()
            except UnicodeDecodeError:
                verify_dummy(password)
                return None
        record = self._by_username.get(username)
        if record is None:
            # The same HMAC as a wrong password, so timing does not tell which names exist.
            verify_dummy(password)
            return None
        if not verify_password(record, password):
            return None
        cache = self.caches.get(record.cache_id)
        if cache is None or not cache.enabled:
            return None
        return _principal(record, cache)

    def cache_of(self, username: bytes | str) -> int | None:
        """The cache a username belongs to, for counting failed logins there."""
        if isinstance(username, bytes):
            username = username.decode("utf-8", "replace")
        record = self._by_username.get(username)
        return record.cache_id if record else None

    def refresh(self, principal: Principal) -> Principal | None:
        """The same principal as this snapshot sees it: None once revoked, and once its
        cache is gone or is another cache now (a different generation)."""
        cache = self.caches.get(principal.cache_id)
        if cache is None or not cache.enabled or cache.generation != principal.generation:
            return None
        if principal.credential_id == ANONYMOUS_CREDENTIAL_ID:
            return principal
        record = self._by_id.get(principal.credential_id)
        if record is None or record.cache_id != principal.cache_id:
            return None
        return _principal(record, cache)

    def anonymous(self, cache_name: str) -> Principal | None:
        cache = self.caches_by_name.get(cache_name)
        if cache is None:
            return None
        return Principal(ANONYMOUS_CREDENTIAL_ID, "", cache.id, True, True, True, cache.generation)
