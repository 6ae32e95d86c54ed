"""The meta protocol where memcloud goes its own way or beyond Debian's memcached 1.6.18
(docs/meta-protocol.md): the `E` flag (explicit CAS, memcached 1.6.21), meta commands
before login, their accounting in the cache's stats, and the reply batch that bounds what
pipelined meta gets can make a connection hold. Over real sockets, on a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login
from server.helpers import stats_of


@pytest.fixture
def conn(server: ServerProcess) -> Iterator[RawConnection]:
    raw = RawConnection(server.port)
    assert raw.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
    yield raw
    raw.close()


def test_explicit_cas(conn: RawConnection) -> None:
    assert conn.request(b"ms k 1 E12345 c\r\nx\r\n") == b"HD c12345\r\n"
    assert conn.request(b"mg k c v\r\n", b"x\r\n") == b"VA 1 c12345\r\nx\r\n"
    assert conn.request(b"ms k 1 C12345 E777 c\r\ny\r\n") == b"HD c777\r\n"
    assert conn.request(b"gets k\r\n", b"END\r\n") == b"VALUE k 0 1 777\r\ny\r\nEND\r\n"
    # md I with E: stale under the given CAS
    assert conn.request(b"md k I E900\r\n") == b"HD\r\n"
    assert conn.request(b"mg k c\r\n") == b"HD c900 X W\r\n"
    # ma with E, and mg N with E on a miss
    assert conn.request(b"ms n 1\r\n1\r\n") == b"HD\r\n"
    assert conn.request(b"ma n E31 c v\r\n", b"2\r\n") == b"VA 1 c31\r\n2\r\n"
    assert conn.request(b"mg new N30 E41 c\r\n") == b"HD c41 W\r\n"
    assert conn.request(b"mg k Ex\r\n") == b"CLIENT_ERROR bad token in command line format\r\n"


def test_meta_commands_before_login(server: ServerProcess) -> None:
    raw = RawConnection(server.port)
    refused = b"CLIENT_ERROR unauthenticated\r\n"
    for line in (b"mg k v\r\n", b"md k\r\n", b"ma k\r\n", b"mn\r\n", b"me k\r\n"):
        assert raw.request(line) == refused, line
    # ms: refused, its block skipped (a block that looks like commands runs nothing)
    assert raw.request(b"ms k 11\r\nflush_all\r\n\r\n") == refused
    assert raw.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
    assert raw.request(b"mg k v\r\n") == b"EN\r\n"
    raw.close()


def test_meta_commands_are_counted_as_memcached_counts_them(conn: RawConnection) -> None:
    conn.request(b"stats reset\r\n")
    conn.send(b"ms k 1\r\nx\r\nmg k v\r\nmg nope v\r\nmg k T100\r\nmg nope T100\r\n")
    assert conn.read_until(b"EN\r\n", 5) and conn.read_until(b"EN\r\n")
    conn.send(b"md k\r\nmd k\r\nms n 1\r\n1\r\nma n\r\nma n MD\r\nma nope\r\nmn\r\n")
    conn.read_until(b"MN\r\n")
    stats = stats_of(conn)
    # mg: a get, or a touch when it has T (counted as a hit only when found, as memcached)
    assert (stats["cmd_get"], stats["get_hits"], stats["get_misses"]) == ("3", "1", "2")
    assert (stats["cmd_touch"], stats["touch_hits"]) == ("1", "1")
    assert (stats["cmd_set"], stats["delete_hits"], stats["delete_misses"]) == ("2", "1", "1")
    assert (stats["incr_hits"], stats["decr_hits"], stats["incr_misses"]) == ("1", "1", "1")


def test_too_large_ms_drops_the_old_value(conn: RawConnection) -> None:
    assert conn.request(b"ms k 1\r\nx\r\n") == b"HD\r\n"
    big = 2 * 1024 * 1024
    conn.send(b"ms k %d MA\r\n" % big + b"z" * big + b"\r\n")
    assert conn.read_until(b"\r\n", 20) == b"SERVER_ERROR object too large for cache\r\n"
    assert conn.request(b"mg k v\r\n") == b"EN\r\n"


def test_pipelined_meta_gets_of_large_values_are_answered_in_batches(
    conn: RawConnection,
) -> None:
    value = b"v" * 50_000
    assert conn.request(b"ms big %d\r\n%s\r\n" % (len(value), value)) == b"HD\r\n"
    count = 100  # 5 MB of replies (past the 1 MiB reply batch) to 1 KB of requests
    conn.send(b"mg big v\r\n" * count + b"mn\r\n")
    one = b"VA %d\r\n%s\r\n" % (len(value), value)
    reply = conn.read_exactly(len(one) * count + 4, 60)
    assert reply == one * count + b"MN\r\n"
