"""Exact replies where memcloud deliberately differs from memcached (docs/text-protocol.md),
and the stats groups' format, over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RawConnection
from memcloud.stats.report import MEMCACHED_VERSION
from memcloud.testing import ServerProcess

from .helpers import login, stats_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("commands") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def conn(server: ServerProcess) -> Iterator[RawConnection]:
    c = login(server.port, server.username, server.password)
    assert c.request(b"flush_all\r\n") == b"OK\r\n"
    yield c
    c.close()


BAD = b"CLIENT_ERROR bad command line format\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        # a refused storage line with a readable length: its value is skipped (memcached
        # would read the value as a command and answer ERROR too)
        (b"set k x 0 1\r\nx\r\n", BAD),
        (b"set k 0 x 1\r\nx\r\n", BAD),
        (b"set k 4294967296 0 1\r\nx\r\n", BAD),  # memcached truncates flags to 32 bits
        (b"set k\x01y 0 0 1\r\nx\r\n", BAD),  # no control characters in keys
        (b"get k\x7fy\r\n", BAD),
        (b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n", BAD),
        # an over-long retrieval line is refused and the connection kept (memcached closes
        # it; any other over-long line closes it here too: test_text_injection.py)
        (b"get " + b"k " * 260_000 + b"\r\n", b"CLIENT_ERROR line too long\r\n"),
        # no meta commands; the data block of an `ms` is skipped
        # the meta `E` flag (memcached 1.6.21; Debian's 1.6.18 answers "invalid flag")
        (b"mg nope v E5\r\n", b"EN\r\n"),
        (b"ms m 9 T0 E7 c\r\nflush_all\r\n", b"HD c7\r\n"),
        (b"version\r\n", b"VERSION %s\r\n" % MEMCACHED_VERSION.encode()),
    ],
)
def test_deliberate_differences(conn: RawConnection, request_bytes: bytes, reply: bytes) -> None:
    assert conn.request(request_bytes) == reply
    # and the connection is in step afterwards
    assert conn.request(b"set after 0 0 1\r\nz\r\n") == b"STORED\r\n"
    assert conn.request(b"get k after\r\n", b"END\r\n") == b"VALUE after 0 1\r\nz\r\nEND\r\n"


def test_absolute_exptime_beyond_2038(conn: RawConnection) -> None:
    """memcached 1.6 truncates exptime to 32 bits (4000000000 expires at once)."""
    assert conn.request(b"set k 0 4000000000 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nx\r\nEND\r\n"


def _stat_lines(reply: bytes) -> list[tuple[str, str]]:
    lines = reply.decode().split("\r\n")
    assert lines[-2:] == ["END", ""]
    pairs = []
    for line in lines[:-2]:
        stat, name, value = line.split(" ", 2)
        assert stat == "STAT" and name and value
        pairs.append((name, value))
    return pairs


def test_stats_counts_this_cache(conn: RawConnection, server: ServerProcess) -> None:
    base = stats_of(conn)
    conn.send(b"set a 0 0 1\r\n1\r\nget a b\r\nincr a 1\r\ndecr b 1\r\ndelete b\r\ntouch a 0\r\n")
    for terminator in (b"STORED\r\n", b"END\r\n", b"2\r\n", b"NOT_FOUND\r\n", b"NOT_FOUND\r\n"):
        conn.read_until(terminator)
    conn.read_until(b"TOUCHED\r\n")
    stats = stats_of(conn)

    def delta(name: str) -> int:
        return int(stats[name]) - int(base.get(name, "0"))

    assert (delta("cmd_get"), delta("get_hits"), delta("get_misses")) == (2, 1, 1)
    assert (delta("cmd_set"), delta("incr_hits"), delta("decr_misses")) == (1, 1, 1)
    assert (delta("delete_misses"), delta("touch_hits"), delta("cmd_touch")) == (1, 1, 1)
    assert stats["curr_items"] == "1"
    assert stats["bytes"] == str(1 + 1 + 50)
    assert stats["limit_maxbytes"] == str(25 * 1024 * 1024)
    assert stats["version"] == MEMCACHED_VERSION
    assert int(stats["curr_connections"]) >= 1
    assert int(stats["bytes_read"]) > int(base["bytes_read"])


def test_stats_groups_format(conn: RawConnection) -> None:
    assert conn.request(b"set a 0 0 1\r\n1\r\n") == b"STORED\r\n"
    general = dict(_stat_lines(conn.request(b"stats\r\n", b"END\r\n")))
    for name in (
        "pid",
        "uptime",
        "time",
        "rusage_user",
        "rusage_system",
        "threads",
        "connection_structures",
        "pointer_size",
        "evictions",
        "total_items",
    ):
        assert name in general
    settings = dict(_stat_lines(conn.request(b"stats settings\r\n", b"END\r\n")))
    assert settings["item_size_max"] == str(1024 * 1024)
    assert settings["maxbytes"] == str(25 * 1024 * 1024)
    items = _stat_lines(conn.request(b"stats items\r\n", b"END\r\n"))
    assert all(name.startswith("items:1:") for name, _ in items)
    assert dict(items)["items:1:number"] == "1"
    slabs = dict(_stat_lines(conn.request(b"stats slabs\r\n", b"END\r\n")))
    assert slabs["active_slabs"] == "1"
    assert conn.request(b"stats reset\r\n") == b"RESET\r\n"
    assert stats_of(conn)["cmd_set"] == "0"
    assert conn.request(b"stats nonsense\r\n") == b"ERROR\r\n"


def test_quit_closes(conn: RawConnection) -> None:
    conn.send(b"quit\r\nversion\r\n")
    assert conn.is_closed(timeout=3)
    assert conn.buffer == b""
