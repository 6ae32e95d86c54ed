"""On an --anonymous-cache server every connection is logged in to the anonymous cache at
its first byte, so that cache's own limit is the fair rule: anonymous clients together hold
at most its share, and credentials of other caches still log in (issue 9, finding 5)."""

from __future__ import annotations

from pathlib import Path

from binary.wire import BinaryConnection
from conftest import RawConnection
from memcloud.testing import ServerProcess, wait_for
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
