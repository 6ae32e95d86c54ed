"""The text protocol's login: a `set` that carries a credential (the hosted service's form,
username as the key and password as the value, or memcached -Y's `<username> <password>`
value), answered as memcached answers its SASL logins and slowed down like every login.
"""

from __future__ import annotations

from collections.abc import Callable

from memcloud.auth import ANONYMOUS_CREDENTIAL_ID, Directory
from memcloud.auth_throttle import address_of
from memcloud.gate import LOGIN, NO_FLUSH, NO_WRITE
from memcloud.protocol import replies
from memcloud.protocol.commands import (
    Arith,
    Command,
    Delete,
    FlushAll,
    FlushPrefix,
    Retrieve,
    Store,
    Touch,
)
from memcloud.protocol.limits import AUTH_VALUE_MAX
from memcloud.protocol.text import TextParser
from memcloud.service import Service, Session

__all__ = ["TextLogin", "names_user"]


class TextLogin(Session):
    """A text connection's identity: a login `set` before authentication, or on the
    anonymous cache a `set` naming a known username, and what the gate refuses it
    (TextSession executes everything else)."""

    def __init__(
        self, service: Service, peer: str, close: Callable[[], None], *, forwarded: bool = False
    ) -> None:
        super().__init__(service, peer, close, forwarded=forwarded)
        self.parser = TextParser(service.settings.item_size_max)
        self.parser.authenticating = self.principal is None
        # On a server with --anonymous-cache a connection starts logged in to that cache,
        # and a `set` carrying a credential is a login, never an item (see _login_set).
        # The usernames of the control plane while the connection is the anonymous one
        # (kept current by refresh), else None: one attribute read per plain read.
        principal = self.principal
        anonymous = principal is not None and principal.credential_id == ANONYMOUS_CREDENTIAL_ID
        self._usernames = service.directory.usernames if anonymous else None

    def refresh(self, directory: Directory) -> None:
        super().refresh(directory)
        if self._usernames is not None:
            self._usernames = directory.usernames

    def _login_with(self, key: bytes, value: bytes, now: float) -> bool:
        """The login `set`, slowed down after repeated failures from the same address prefix
        or on the same username (auth_throttle; binary SASL follows the same rule)."""
        # memcached's -Y form puts "username password" in the value; the hosted service's
        # form puts the username in the key and the password in the value.
        if b" " in value:
            username, _, password = value.partition(b" ")
            if self.service.directory.cache_of(username) is not None:
                key, value = username, password.strip()
        throttle = self.service.auth_throttle
        address = address_of(self.peer)
        name = key.decode("utf-8", "replace")
        admission = throttle.admit(address, now, name)
        self.reply_delay = max(self.reply_delay, admission.delay)
        if not admission.check:
            return False
        if self.try_login(key, value):
            return True
        if not self.full:  # a login refused for the connection limit guessed nothing
            throttle.failed(address, now, name)
        return False

    def _names_login(self, key: bytes, value: bytes) -> bool:
        """Whether a `set` on an anonymous connection is a text login: its key is a known
        username (the hosted form), or its value is `<known username> <password>`
        (memcached's -Y form). A set lookup, and the value is looked at only when short."""
        usernames = self._usernames
        return usernames is not None and (key in usernames or names_user(value, usernames))

    def _login_set(self, command: Store, now: float, out: list[bytes]) -> None:
        """A login `set` on an anonymous connection: as binary SASL does there, it moves
        the connection to the credential's cache; it stores nothing, and its answer never
        holds the secret. A wrong password answers as a failed login, counted and slowed
        down as one, and the connection stays on the anonymous cache."""
        anonymous_cache = self.cache
        if self._answer_login(command, now, out):
            self._usernames = None
            if anonymous_cache is not None:
                anonymous_cache.stats.disconnected()

    def _answer_login(self, command: Store, now: float, out: list[bytes]) -> bool:
        """Try a login `set` and answer it: STORED (unless noreply), memcached's refusal and
        a close when the right credential's cache is at its connection limit, or the failed
        login's error (never silenced: the client must learn it is not logged in)."""
        if self._login_with(command.key, command.value, now):
            if not command.noreply:
                out.append(replies.STORED)
            return True
        if self.full:
            out.append(replies.TOO_MANY_CONNECTIONS)
            self.closing = True
        else:
            out.append(replies.AUTH_FAILED)
        return False

    # -- what the gate refuses -----------------------------------------------------------

    def _refuse(
        self, command: Command | object, verdict: int, now: float, out: list[bytes]
    ) -> None:
        """Answer a command the gate did not allow, in memcached's words where it has them."""
        if verdict == LOGIN:  # a `set` before authentication carries a credential
            assert isinstance(command, Store)
            if self._answer_login(command, now, out):
                self.parser.authenticating = False
        elif verdict == NO_WRITE:
            if isinstance(command, Store):
                # As memcached -Y answers a store it refuses; counted as a set.
                cache = self.cache
                assert cache is not None
                cache.refuse_store()
                if not command.noreply:
                    out.append(replies.NOT_STORED)
            elif isinstance(command, Retrieve) or not _noreply(command):  # gat has none
                out.append(replies.NO_WRITE)
        elif verdict == NO_FLUSH:
            if not _noreply(command):
                out.append(replies.NO_FLUSH)
        elif self.full:  # not logged in: an anonymous cache at its connection limit
            out.append(replies.TOO_MANY_CONNECTIONS)
            self.closing = True
        else:  # not logged in (or, deny by default, a command without a row)
            out.append(replies.UNAUTHENTICATED)


def names_user(value: bytes, usernames: frozenset[bytes]) -> bool:
    """Whether a set's value is memcached's -Y login, `<known username> <password>`."""
    if len(value) > AUTH_VALUE_MAX:
        return False
    space = value.find(b" ")
    return space > 0 and value[:space] in usernames


def _noreply(command: object) -> bool:
    """A refused command's noreply (only refusals read it: no per-command cost)."""
    return (
        isinstance(command, (Store, Delete, Arith, Touch, FlushAll, FlushPrefix))
        and command.noreply
    )
