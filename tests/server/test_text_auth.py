"""Text-protocol authentication: the hosted `set <user>` form and memcached's `-Y` form,
failures, the deny-by-default gate, and the auth timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login

from .helpers import login, stats_of

AUTH_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("auth") / "data"
    with ServerProcess(data_dir, "--auth-timeout", str(AUTH_TIMEOUT)) as proc:
        yield proc


def test_hosted_form(server: ServerProcess) -> None:
    conn = login(server.port, server.username, server.password)
    assert conn.request(b"set k 1 0 2\r\nhi\r\n") == b"STORED\r\n"
    assert conn.request(b"get k\r\n", b"END\r\n") == b"VALUE k 1 2\r\nhi\r\nEND\r\n"
    conn.close()


def test_memcached_y_form(server: ServerProcess) -> None:
    secret = f"{server.username} {server.password}".encode()
    conn = RawConnection(server.port)
    assert conn.request(b"set anything 0 0 %d\r\n%s\r\n" % (len(secret), secret)) == b"STORED\r\n"
    assert conn.request(b"version\r\n").startswith(b"VERSION ")
    # the key `anything` was the login, not a stored item
    assert conn.request(b"get anything\r\n", b"END\r\n") == b"END\r\n"
    conn.close()


def test_underscores_in_flags_and_exptime_before_login(server: ServerProcess) -> None:
    secret = server.password.encode()
    conn = RawConnection(server.port)
    line = b"set %s _ _ %d\r\n%s\r\n" % (server.username.encode(), len(secret), secret)
    assert conn.request(line) == b"STORED\r\n"
    # after login, flags are numbers again
    assert conn.request(b"set k _ 0 1\r\nx\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert conn.request(b"version\r\n").startswith(b"VERSION ")
    conn.close()


def test_login_with_noreply_answers_nothing(server: ServerProcess) -> None:
    secret = server.password.encode()
    conn = RawConnection(server.port)
    conn.send(b"set %s 0 0 %d noreply\r\n%s\r\n" % (server.username.encode(), len(secret), secret))
    assert conn.request(b"version\r\n").startswith(b"VERSION ")
    conn.close()


def test_wrong_password_then_right_one(server: ServerProcess) -> None:
    conn = RawConnection(server.port)
    bad = ascii_login(server.username, "0" * 32)
    assert conn.request(bad) == b"CLIENT_ERROR authentication failure\r\n"
    assert conn.request(b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
    conn.close()


def test_unknown_user_fails(server: ServerProcess) -> None:
    conn = RawConnection(server.port)
    assert conn.request(ascii_login("nobody", "x")) == b"CLIENT_ERROR authentication failure\r\n"
    conn.close()


def test_pipelined_login_and_commands(server: ServerProcess) -> None:
    conn = RawConnection(server.port)
    conn.send(ascii_login(server.username, server.password) + b"set p 0 0 1\r\n1\r\nget p\r\n")
    assert conn.read_until(b"END\r\n") == b"STORED\r\nSTORED\r\nVALUE p 0 1\r\n1\r\nEND\r\n"
    conn.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"get k\r\n",
        b"gets k\r\n",
        b"gat 0 k\r\n",
        b"gats 0 k\r\n",
        b"delete k\r\n",
        b"incr n 1\r\n",
        b"decr n 1\r\n",
        b"touch k 0\r\n",
        b"flush_all\r\n",
        b"flush_all noreply\r\n",
        b"stats\r\n",
        b"version\r\n",
        b"verbosity 1\r\n",
        b"add k 0 0 1\r\nz\r\n",
        b"replace k 0 0 1\r\nz\r\n",
        b"append k 0 0 1\r\nz\r\n",
        b"prepend k 0 0 1\r\nz\r\n",
        b"cas k 0 0 1 1\r\nz\r\n",
        b"delete k noreply\r\n",
    ],
)
def test_every_other_command_before_login_is_refused_and_touches_nothing(
    server: ServerProcess, request_bytes: bytes
) -> None:
    owner = login(server.port, server.username, server.password)
    assert owner.request(b"set k 0 0 1\r\nx\r\nset n 0 0 1\r\n5\r\n") == b"STORED\r\n"
    owner.read_until(b"STORED\r\n")
    conn = RawConnection(server.port)
    assert conn.request(request_bytes) == b"CLIENT_ERROR unauthenticated\r\n"
    # still in step: the next line is answered on its own
    assert conn.request(b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    assert owner.request(b"get k n\r\n", b"END\r\n") == (
        b"VALUE k 0 1\r\nx\r\nVALUE n 0 1\r\n5\r\nEND\r\n"
    )
    conn.close()
    owner.close()


def test_unauthenticated_connection_is_closed_after_timeout(server: ServerProcess) -> None:
    idle = RawConnection(server.port)
    talking = RawConnection(server.port)
    assert talking.request(b"version\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    authed = login(server.port, server.username, server.password)
    started = time.monotonic()
    assert idle.is_closed(timeout=AUTH_TIMEOUT + 3)
    assert talking.is_closed(timeout=AUTH_TIMEOUT + 3)
    assert time.monotonic() - started < AUTH_TIMEOUT + 2
    # a logged-in connection stays
    time.sleep(0.2)
    assert authed.request(b"version\r\n").startswith(b"VERSION ")
    for conn in (idle, talking, authed):
        conn.close()


def test_auth_counters(server: ServerProcess) -> None:
    conn = login(server.port, server.username, server.password)
    before = stats_of(conn)
    RawConnection(server.port).request(ascii_login(server.username, "wrong"))
    login(server.port, server.username, server.password).close()
    after = stats_of(conn)
    assert int(after["auth_cmds"]) == int(before["auth_cmds"]) + 2
    assert int(after["auth_errors"]) == int(before["auth_errors"]) + 1
    conn.close()
