"""On an --anonymous-cache server every connection is logged in to the anonymous cache at
its first byte, so that cache's own limit is the fair rule: anonymous clients together hold
at most its share, and credentials of other caches still log in (issue 9, finding 5)."""

from __future__ import annotations

from pathlib import Path

from binary.wire import BinaryConnection
from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login, wait_for
from server.helpers import stats_of

TOO_MANY = b"SERVER_ERROR Too many open connections\r\n"


def test_anonymous_cache_holds_its_own_limit(tmp_path: Path) -> None:
    args = ("--anonymous-cache", "public", "--max-connections", "50")
    with ServerProcess(tmp_path / "data", *args) as server:
        data = server.cli_json("cache", "create", "private")
        [cred] = data["credentials"]
        user, password = cred["sasl_username"], cred["sasl_password"]
        # The directory is polled: wait until the new credential is known (a failed binary
        # login from a fresh address each time, so the backoff is not tripped).
        assert wait_for(lambda: binary_login(server.port, user, password) == 0, interval=0.3)
        held: list[RawConnection] = []
        refusal = b""
        try:
            for _ in range(40):  # bounded: more than the anonymous cache's 25
                conn = RawConnection(server.port)
                reply = conn.request(b"version\r\n")
                if not reply.startswith(b"VERSION "):
                    refusal = reply
                    assert conn.is_closed()
                    conn.close()
                    break
                held.append(conn)
            assert (len(held), refusal) == (25, TOO_MANY)
            assert stats_of(held[0])["curr_connections"] == "25"
            # Another cache's credential still logs in, on a connection whose first byte
            # found the anonymous cache full; anything else is refused, then closed.
            assert binary_login(server.port, user, password) == 0
            late = RawConnection(server.port)
            assert late.request(b"get k\r\n") == TOO_MANY
            assert late.is_closed()
            late.close()
        finally:
            for conn in held:
                conn.close()


def binary_login(port: int, username: str, password: str) -> int:
    conn = BinaryConnection(port)
    try:
        return conn.login(username, password).status
    finally:
        conn.close()


def test_text_login_from_an_anonymous_connection_into_a_full_cache(tmp_path: Path) -> None:
    """The text login `set` on an anonymous connection, into a cache at its limit: memcached's
    refusal line and a close, as on a server without an anonymous cache (not 'auth failure':
    the password was right)."""
    args = ("--anonymous-cache", "public", "--plans", "tiny=1MB:connections=1")
    with ServerProcess(tmp_path / "data", *args) as server:
        data = server.cli_json("cache", "create", "private", "--plan", "1MB")
        [cred] = data["credentials"]
        user, password = cred["sasl_username"], cred["sasl_password"]
        assert wait_for(lambda: binary_login(server.port, user, password) == 0, interval=0.3)
        first = RawConnection(server.port)
        second = RawConnection(server.port)
        try:
            assert first.request(ascii_login(user, password)) == b"STORED\r\n"
            assert second.request(ascii_login(user, password)) == TOO_MANY
            assert second.is_closed()
            assert first.request(b"get k\r\n") == b"END\r\n"
        finally:
            first.close()
            second.close()


def test_idle_pooled_connections_on_an_anonymous_server_are_not_capped_per_address(
    tmp_path: Path,
) -> None:
    """A client's pool of idle connections (opened, nothing sent yet) from one address, as
    with a plain memcached: the per-address bound on unauthenticated connections (8 here)
    does not apply where every connection is the anonymous cache's (bench workload e)."""
    args = ("--anonymous-cache", "public", "--max-connections", "200")
    with ServerProcess(tmp_path / "data", *args) as server:
        pool = [RawConnection(server.port) for _ in range(40)]  # bounded: 5x the bound
        try:
            for conn in pool:
                assert conn.request(b"get k\r\n") == b"END\r\n"
        finally:
            for conn in pool:
                conn.close()
