"""Bytes that must never run as commands, over real sockets (issue 9, findings 2-4):

* a meta `ms` line's data block is swallowed, never read as a command;
* a command line that ends in an `HTTP/` token closes the connection without a reply
  (a browser tricked into POSTing to the memcache port must not get its body executed);
* on a server with `--anonymous-cache`, a text login `set` logs the connection in and
  stores nothing: no client can `get` a password.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RawConnection
from memcloud.auth_throttle import BASE_DELAY, FREE_FAILURES
from memcloud.testing import ServerProcess, ascii_login, wait_for

from .helpers import login

ERROR = b"ERROR\r\n"
BAD = b"CLIENT_ERROR bad command line format\r\n"
AUTH_FAILED = b"CLIENT_ERROR authentication failure\r\n"


@pytest.fixture(scope="module")
def anon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose unauthenticated connections use the anonymous cache `anon`; its
    first-start `default` cache has the printed credential."""
    data_dir: Path = tmp_path_factory.mktemp("injection-anon") / "data"
    with ServerProcess(data_dir, "--anonymous-cache", "anon") as proc:
        yield proc


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("injection-private") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def conn(anon: ServerProcess) -> Iterator[RawConnection]:
    c = RawConnection(anon.port)
    assert c.request(b"flush_all\r\n") == b"OK\r\n"
    yield c
    c.close()


def survives(port: int, key: bytes = b"canary") -> bytes:
    """The anonymous cache's `key`, read on a fresh connection."""
    other = RawConnection(port)
    try:
        return other.request(b"get %s\r\n" % key, b"END\r\n")
    finally:
        other.close()


# -- finding 2: a meta set's data block is swallowed -----------------------------------


def test_ms_data_block_is_not_executed(conn: RawConnection, anon: ServerProcess) -> None:
    conn.send(b"set canary 0 0 1\r\nx\r\nms note 9\r\nflush_all\r\nget canary\r\n")
    replies = conn.read_until(b"END\r\n")
    assert replies == b"STORED\r\nHD\r\nVALUE canary 0 1\r\nx\r\nEND\r\n"
    assert survives(anon.port) == b"VALUE canary 0 1\r\nx\r\nEND\r\n"


@pytest.mark.parametrize(
    ("line", "block", "reply"),
    [
        # with flags, as a meta client sends it
        (b"ms note 9 T0 F5 I\r\n", b"flush_all\r\n", b"HD\r\n"),
        # the block's end is not CR LF: memcached's answer; still exactly 9 + 2 bytes skipped
        (b"ms note 9\r\n", b"flush_allXY", b"CLIENT_ERROR bad data chunk\r\n"),
        # over the item size limit: memcached's answer, the block skipped as it arrives
        (b"ms note 2000000\r\n", b"flush_all\r\n" * 181818 + b"xy\r\n", None),
        # a key memcloud refuses: the block is skipped all the same
        (b"ms " + b"k" * 251 + b" 11\r\n", b"flush_all\r\n\r\n", BAD),
        (b"ms a\x01b 11\r\n", b"flush_all\r\n\r\n", BAD),
        # too many flags (memcached's limit)
        (b"ms note 11" + b" T0" * 19 + b"\r\n", b"flush_all\r\n\r\n", None),
    ],
)
def test_ms_blocks_are_swallowed(
    conn: RawConnection, anon: ServerProcess, line: bytes, block: bytes, reply: bytes | None
) -> None:
    if reply is None:
        reply = (
            b"SERVER_ERROR object too large for cache\r\n"
            if b"2000000" in line
            else b"CLIENT_ERROR options flags too long\r\n"
        )
    conn.send(b"set canary 0 0 1\r\nx\r\n" + line + block + b"get canary\r\n")
    assert conn.read_until(b"END\r\n") == b"STORED\r\n" + reply + (
        b"VALUE canary 0 1\r\nx\r\nEND\r\n"
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"ms\r\n", ERROR),
        (b"ms note\r\n", BAD),
        (b"ms note x\r\n", BAD),
        (b"ms note -1\r\n", BAD),
        (b"ms note 2147483646\r\n", BAD),  # over memcached's INT_MAX - 2
    ],
)
def test_ms_without_a_readable_length_swallows_nothing(
    conn: RawConnection, line: bytes, reply: bytes
) -> None:
    # as memcached: there is no block to skip, so the next line is a command
    assert conn.request(line + b"version\r\n", b"VERSION ") == reply + b"VERSION "


def test_ms_split_over_reads(conn: RawConnection, anon: ServerProcess) -> None:
    conn.request(b"set canary 0 0 1\r\nx\r\n")
    for chunk in (b"ms no", b"te 9\r\nflu", b"sh_", b"all", b"\r", b"\nget canary\r\n"):
        conn.send(chunk)
    assert conn.read_until(b"END\r\n") == b"HD\r\nVALUE canary 0 1\r\nx\r\nEND\r\n"


def test_ms_before_login_swallows_its_block(private: ServerProcess) -> None:
    conn = RawConnection(private.port)
    try:
        block = ascii_login(private.username, private.password)
        line = b"ms note %d\r\n" % (len(block) - 2)
        # the block is a whole login: skipped, so the connection stays unauthenticated
        conn.send(line + block + b"get k\r\n")
        assert conn.read_until(b"unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n") == (
            b"CLIENT_ERROR unauthenticated\r\n" * 2
        )
    finally:
        conn.close()


def test_over_long_storage_line_closes(conn: RawConnection, anon: ServerProcess) -> None:
    # Its data block cannot be found safely: answered, then the connection closes.
    conn.request(b"set canary 0 0 1\r\nx\r\n")
    conn.send(b"set k 0 0 11" + b" " * 3000 + b"\r\nflush_all\r\n\r\n")
    assert conn.read_until(b"\r\n") == b"CLIENT_ERROR line too long\r\n"
    assert conn.is_closed()
    assert survives(anon.port) == b"VALUE canary 0 1\r\nx\r\nEND\r\n"


# -- finding 3: HTTP on the memcache port ----------------------------------------------

BROWSER_POST = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1:11211\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 11\r\n\r\nflush_all\r\n"
)


@pytest.mark.parametrize(
    "request_bytes",
    [
        BROWSER_POST,
        b"GET / HTTP/1.1\r\nflush_all\r\n",
        b"PUT /x HTTP/1.0\r\nflush_all\r\n",
        b"HTTP/1.1\r\nflush_all\r\n",
        b"foo HTTP/\r\nflush_all\r\n",
        # the request line split over reads, the body in the same read as its end
        b"POST / HT",
    ],
)
def test_http_line_closes_without_reply(
    conn: RawConnection, anon: ServerProcess, request_bytes: bytes
) -> None:
    conn.request(b"set canary 0 0 1\r\nx\r\n")
    conn.send(request_bytes)
    if request_bytes == b"POST / HT":
        conn.send(b"TP/1.1\r\nflush_all\r\n")
    assert conn.is_closed()
    assert conn.buffer == b""
    assert survives(anon.port) == b"VALUE canary 0 1\r\nx\r\nEND\r\n"


def test_http_line_after_commands_answers_them_then_closes(
    conn: RawConnection, anon: ServerProcess
) -> None:
    conn.send(b"set canary 0 0 1\r\nx\r\nget canary\r\nGET / HTTP/1.1\r\nflush_all\r\n")
    assert conn.read_until(b"END\r\n") == b"STORED\r\nVALUE canary 0 1\r\nx\r\nEND\r\n"
    assert conn.is_closed()
    assert conn.buffer == b""
    assert survives(anon.port) == b"VALUE canary 0 1\r\nx\r\nEND\r\n"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"foo http/1.1\r\n", ERROR),  # the prefix is case-sensitive, as in memcached
        (b"foo HTTP/1.1 x\r\n", ERROR),  # only the last token counts
        (b"X HTTP/1.1\r\n", ERROR),  # a one-byte command is ERROR before any check
        (b"gx HTTP/1.1\r\n", ERROR),  # memcached's g* commands answer ERROR
        (b"get HTTP/1.1\r\n", b"END\r\n"),  # a get of the key `HTTP/1.1`
    ],
)
def test_lines_that_do_not_close(conn: RawConnection, line: bytes, reply: bytes) -> None:
    assert conn.request(line) == reply
    assert conn.request(b"version\r\n").startswith(b"VERSION ")


def test_http_line_closes_before_login(private: ServerProcess) -> None:
    conn = RawConnection(private.port)
    try:
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n" + ascii_login("a", "b"))
        assert conn.is_closed()
        assert conn.buffer == b""
    finally:
        conn.close()


def test_over_long_http_line_closes(conn: RawConnection, anon: ServerProcess) -> None:
    conn.request(b"set canary 0 0 1\r\nx\r\n")
    conn.send(b"POST /" + b"a" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\nflush_all\r\n")
    assert conn.read_until(b"\r\n") == b"CLIENT_ERROR line too long\r\n"
    assert conn.is_closed()
    assert survives(anon.port) == b"VALUE canary 0 1\r\nx\r\nEND\r\n"


# -- finding 4: --anonymous-cache and the text login -----------------------------------


def _first_read_and_parser_path(line: bytes) -> list[bytes]:
    # A read that starts with `set ` takes the plain fast path; one that starts with
    # anything else goes through the parser: both must treat the login alike.
    return [line, b"version\r\n" + line]


@pytest.mark.parametrize("path", [0, 1])
@pytest.mark.parametrize("form", ["memcached", "hosted"])
def test_text_login_on_anonymous_server_logs_in(anon: ServerProcess, form: str, path: int) -> None:
    user, password = anon.username.encode(), anon.password.encode()
    if form == "memcached":
        key, secret = b"_auth", user + b" " + password
    else:
        key, secret = user, password
    line = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(secret), secret)
    conn = RawConnection(anon.port)
    try:
        conn.send(_first_read_and_parser_path(line)[path])
        replies = conn.read_until(b"STORED\r\n")
        assert replies.endswith(b"STORED\r\n") and password not in replies
        # now in the credential's cache, not the anonymous one
        assert conn.request(b"set mine 0 0 1\r\nm\r\n") == b"STORED\r\n"
    finally:
        conn.close()
    assert survives(anon.port, key) == b"END\r\n"
    assert survives(anon.port, b"mine") == b"END\r\n"
    own = login(anon.port, anon.username, anon.password)
    try:
        assert (
            own.request(b"get mine %s\r\n" % key, b"END\r\n") == b"VALUE mine 0 1\r\nm\r\nEND\r\n"
        )
        assert own.request(b"delete mine\r\n") == b"DELETED\r\n"
    finally:
        own.close()


@pytest.mark.parametrize("path", [0, 1])
@pytest.mark.parametrize("form", ["memcached", "hosted"])
def test_wrong_password_on_anonymous_server_is_not_stored(
    anon: ServerProcess, form: str, path: int
) -> None:
    user = anon.username.encode()
    wrong = b"0" * 32
    key, secret = (b"_auth", user + b" " + wrong) if form == "memcached" else (user, wrong)
    line = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(secret), secret)
    conn = RawConnection(anon.port, source=f"127.0.0.{40 + path * 2 + len(form) % 2}")
    try:
        conn.send(_first_read_and_parser_path(line)[path])
        assert conn.read_until(AUTH_FAILED).endswith(AUTH_FAILED)
        # still the anonymous connection it was
        assert conn.request(b"set k 0 0 1\r\n1\r\nget k\r\n", b"END\r\n") == (
            b"STORED\r\nVALUE k 0 1\r\n1\r\nEND\r\n"
        )
    finally:
        conn.close()
    assert survives(anon.port, key) == b"END\r\n"


def test_noreply_login_answers_nothing(anon: ServerProcess) -> None:
    secret = anon.password.encode()
    conn = RawConnection(anon.port)
    try:
        conn.send(
            b"set %s 0 0 %d noreply\r\n%s\r\n" % (anon.username.encode(), len(secret), secret)
        )
        conn.send(b"set mine 0 0 1 noreply\r\nm\r\nget mine\r\n")
        assert conn.read_until(b"END\r\n") == b"VALUE mine 0 1\r\nm\r\nEND\r\n"
        assert conn.request(b"delete mine\r\n") == b"DELETED\r\n"
    finally:
        conn.close()
    assert survives(anon.port, anon.username.encode()) == b"END\r\n"
    assert survives(anon.port, b"mine") == b"END\r\n"


def test_ordinary_sets_on_anonymous_server_are_stored(conn: RawConnection) -> None:
    # values with a space whose first word is no username, keys that are no username
    conn.send(b"set _auth 0 0 11\r\nhello world\r\nset note 0 0 7\r\nnobody \r\n")
    assert conn.read_until(b"STORED\r\nSTORED\r\n") == b"STORED\r\nSTORED\r\n"
    assert conn.request(b"get _auth note\r\n", b"END\r\n") == (
        b"VALUE _auth 0 11\r\nhello world\r\nVALUE note 0 7\r\nnobody \r\nEND\r\n"
    )


def _stat(conn: RawConnection, name: bytes) -> int:
    reply = conn.request(b"stats\r\n", b"END\r\n")
    [line] = [line for line in reply.split(b"\r\n") if line.startswith(b"STAT %s " % name)]
    return int(line.split()[2])


def test_login_moves_the_connection_between_caches(anon: ServerProcess) -> None:
    public = RawConnection(anon.port)
    own = login(anon.port, anon.username, anon.password)
    try:
        anon_before = _stat(public, b"curr_connections")
        own_before = _stat(own, b"curr_connections")
        conn = RawConnection(anon.port)
        assert conn.request(b"version\r\n").startswith(b"VERSION ")
        assert _stat(public, b"curr_connections") == anon_before + 1
        assert conn.request(ascii_login(anon.username, anon.password)) == b"STORED\r\n"
        assert _stat(public, b"curr_connections") == anon_before
        assert _stat(own, b"curr_connections") == own_before + 1
        conn.close()
    finally:
        public.close()
        own.close()


def test_wrong_passwords_on_anonymous_server_count_and_are_slowed_down(tmp_path: Path) -> None:
    # A server of its own: the failures below must not slow the other tests' logins.
    with ServerProcess(tmp_path / "data", "--anonymous-cache", "anon") as server:
        own = login(server.port, server.username, server.password)
        guesser = RawConnection(server.port)
        try:
            errors_before = _stat(own, b"auth_errors")
            wrong = server.username.encode() + b" wrong"
            guess = b"set _auth 0 0 %d\r\n%s\r\n" % (len(wrong), wrong)
            for _ in range(FREE_FAILURES):
                started = time.monotonic()
                assert guesser.request(guess) == AUTH_FAILED
                assert time.monotonic() - started < BASE_DELAY
            # counted on the cache the username names, as any failed login
            assert _stat(own, b"auth_errors") == errors_before + FREE_FAILURES
            started = time.monotonic()
            assert guesser.request(guess) == AUTH_FAILED
            assert time.monotonic() - started >= BASE_DELAY * 0.9
            assert guesser.request(b"get _auth\r\n", b"END\r\n") == b"END\r\n"
        finally:
            own.close()
            guesser.close()


def test_credential_created_later_logs_in_on_an_open_anonymous_connection(
    anon: ServerProcess,
) -> None:
    early = RawConnection(anon.port)
    try:
        assert early.request(b"version\r\n").startswith(b"VERSION ")
        [cred] = anon.cli_json("cache", "create", "later")["credentials"]
        user, secret = cred["sasl_username"].encode(), cred["sasl_password"].encode()
        line = b"set %s 0 0 %d\r\n%s\r\n" % (user, len(secret), secret)

        def known_here() -> bool:
            # Until this node has the new credential, its login `set` is an item of the
            # anonymous cache: seen (and removed) by a `get` on the same connection.
            probe = RawConnection(anon.port)
            try:
                assert probe.request(line) == b"STORED\r\n"
                if probe.request(b"get %s\r\n" % user, b"END\r\n") == b"END\r\n":
                    return True
                assert probe.request(b"delete %s\r\n" % user) == b"DELETED\r\n"
                return False
            finally:
                probe.close()

        assert wait_for(known_here, timeout=5)
        assert early.request(line) == b"STORED\r\n"
        assert early.request(b"set mine 0 0 1\r\nl\r\n") == b"STORED\r\n"
    finally:
        early.close()
    assert survives(anon.port, user) == b"END\r\n"
    assert survives(anon.port, b"mine") == b"END\r\n"
    own = login(anon.port, cred["sasl_username"], cred["sasl_password"])
    try:
        assert own.request(b"get mine\r\n", b"END\r\n") == b"VALUE mine 0 1\r\nl\r\nEND\r\n"
    finally:
        own.close()
