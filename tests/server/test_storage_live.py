"""Storage behaviour seen over real sockets: plans and LRU eviction (subprocess server and
the CLI), expiry and delayed flush with an injected clock (in-process server), and a flush of
a big cache that does not stall anyone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RawConnection
from memcloud.config import Settings
from memcloud.storage.results import StoreMode
from memcloud.testing import InProcessServer, ServerProcess, wait_for

from .helpers import create_cache, login, stats_of

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("storage") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def live(tmp_path: Path) -> Iterator[InProcessServer]:
    with InProcessServer(Settings(data_dir=tmp_path / "data")) as srv:
        yield srv


def test_small_plan_filled_with_five_megabytes(server: ServerProcess) -> None:
    neighbour = create_cache(server, "neighbour")
    small = create_cache(server, "small", plan="1MB")
    other = login(server.port, neighbour.username, neighbour.password)
    other.send(
        b"".join(b"set n%d 0 0 1000 noreply\r\n%s\r\n" % (i, b"n" * 1000) for i in range(200))
    )
    assert stats_of(other)["curr_items"] == "200"

    conn = login(server.port, small.username, small.password)
    value = b"v" * 1000
    for batch in range(10):  # 5 MB of writes, 500 at a time
        conn.send(
            b"".join(
                b"set k%d 0 0 1000 noreply\r\n%s\r\n" % (batch * 500 + i, value) for i in range(500)
            )
        )
        stats = stats_of(conn)
        assert int(stats["bytes"]) <= int(stats["limit_maxbytes"]) == MB
    stats = stats_of(conn)
    assert int(stats["evictions"]) >= 4000
    assert int(stats["curr_items"]) * (1000 + 5 + 50) <= MB
    assert int(stats["total_items"]) == 5000
    # the newest are there, the oldest were evicted
    assert conn.request(b"get k4999\r\n", b"END\r\n").startswith(b"VALUE k4999 0 1000\r\n")
    assert conn.request(b"get k0\r\n", b"END\r\n") == b"END\r\n"
    # the other cache lost nothing
    after = stats_of(other)
    assert after["curr_items"] == "200" and after["evictions"] == "0"
    reply = other.request(b"get n0 n199\r\n", b"END\r\n")
    assert reply.count(b"VALUE ") == 2
    conn.close()
    other.close()


def test_item_size_limit_over_the_socket(server: ServerProcess) -> None:
    conn = login(server.port, server.username, server.password)
    key = b"k" * 100
    fits = b"x" * (MB - 100)
    assert conn.request(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(fits), fits)) == b"STORED\r\n"
    too_big = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(fits) + 1, fits + b"x")
    assert conn.request(too_big) == b"SERVER_ERROR object too large for cache\r\n"
    # the refused set dropped the old value, and the connection is in step
    assert conn.request(b"get %s\r\n" % key, b"END\r\n") == b"END\r\n"
    half = b"h" * (MB // 2)
    assert conn.request(b"set a 0 0 %d\r\n%s\r\n" % (len(half), half)) == b"STORED\r\n"
    assert conn.request(b"append a 0 0 %d\r\n%s\r\n" % (len(half), half)) == b"NOT_STORED\r\n"
    assert conn.request(b"prepend a 0 0 %d\r\n%s\r\n" % (len(half), half)) == b"NOT_STORED\r\n"
    reply = conn.request(b"get a\r\n", b"END\r\n")
    assert reply == b"VALUE a 0 %d\r\n%s\r\nEND\r\n" % (len(half), half)
    conn.close()


def _login_live(srv: InProcessServer) -> RawConnection:
    return login(srv.port, srv.username, srv.password)


def test_exptime_rules_with_injected_clock(live: InProcessServer) -> None:
    conn = _login_live(live)
    now = int(live.clock.now())
    conn.send(
        b"set never 0 0 1\r\nx\r\n"
        b"set rel 0 10 1\r\nx\r\n"
        b"set month 0 2592000 1\r\nx\r\n"
        b"set abs 0 %d 1\r\nx\r\n"
        b"set past 0 %d 1\r\nx\r\n"
        b"set neg 0 -1 1\r\nx\r\n" % (now + 20, now - 1)
    )
    for _ in range(6):
        assert conn.read_until(b"\r\n") == b"STORED\r\n"

    def present() -> set[bytes]:
        reply = conn.request(b"get never rel month abs past neg\r\n", b"END\r\n")
        return {line.split()[1] for line in reply.split(b"\r\n") if line.startswith(b"VALUE")}

    assert present() == {b"never", b"rel", b"month", b"abs"}
    live.clock.advance(9)
    assert present() == {b"never", b"rel", b"month", b"abs"}
    live.clock.advance(1)
    assert present() == {b"never", b"month", b"abs"}
    live.clock.advance(10)
    assert present() == {b"never", b"month"}
    live.clock.advance(2592000)
    assert present() == {b"never"}
    conn.close()


def test_expired_items_are_reclaimed_untouched(live: InProcessServer) -> None:
    conn = _login_live(live)
    conn.send(b"".join(b"set t%d 0 30 5 noreply\r\nvalue\r\n" % i for i in range(1000)))
    conn.send(b"".join(b"set p%d 0 0 5 noreply\r\nvalue\r\n" % i for i in range(10)))
    assert stats_of(conn)["curr_items"] == "1010"
    live.clock.advance(31)
    # nobody reads them: the upkeep alone takes them back
    live.call(lambda: live.runtime.service.registry.upkeep(live.clock.now()) if live.runtime else 0)
    stats = stats_of(conn)
    assert stats["curr_items"] == "10"
    assert int(stats["bytes"]) == 10 * (2 + 5 + 50)
    assert int(stats["reclaimed"]) == 1000
    conn.close()


def test_touch_gat_gats_with_injected_clock(live: InProcessServer) -> None:
    conn = _login_live(live)
    assert conn.request(b"set a 3 10 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.request(b"set b 4 10 1\r\ny\r\n") == b"STORED\r\n"
    assert conn.request(b"touch a 100\r\n") == b"TOUCHED\r\n"
    assert conn.request(b"gat 100 b missing\r\n", b"END\r\n") == b"VALUE b 4 1\r\ny\r\nEND\r\n"
    reply = conn.request(b"gats 0 a\r\n", b"END\r\n")
    assert reply.startswith(b"VALUE a 3 1 ") and reply.endswith(b"\r\nx\r\nEND\r\n")
    live.clock.advance(50)
    assert conn.request(b"get a b\r\n", b"END\r\n").count(b"VALUE") == 2
    live.clock.advance(60)
    # a: exptime 0 since gats; b: 100 s from the gat
    assert conn.request(b"get a b\r\n", b"END\r\n") == b"VALUE a 3 1\r\nx\r\nEND\r\n"
    assert conn.request(b"touch b 10\r\n") == b"NOT_FOUND\r\n"
    stats = stats_of(conn)
    assert (stats["touch_hits"], stats["touch_misses"]) == ("3", "2")  # gat counts as touch
    conn.close()


def test_delayed_flush_with_injected_clock(live: InProcessServer) -> None:
    conn = _login_live(live)
    assert conn.request(b"set a 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.request(b"flush_all 10\r\n") == b"OK\r\n"
    live.clock.advance(9)
    assert conn.request(b"get a\r\n", b"END\r\n") == b"VALUE a 0 1\r\nx\r\nEND\r\n"
    live.clock.advance(1)
    assert conn.request(b"get a\r\n", b"END\r\n") == b"END\r\n"
    assert conn.request(b"set a 0 0 1\r\ny\r\n") == b"STORED\r\n"
    live.clock.advance(100)
    assert conn.request(b"get a\r\n", b"END\r\n") == b"VALUE a 0 1\r\ny\r\nEND\r\n"
    assert stats_of(conn)["cmd_flush"] == "1"
    conn.close()


def test_flush_of_a_big_cache_does_not_stall(live: InProcessServer) -> None:
    conn = _login_live(live)
    other = _login_live(live)
    assert live.runtime is not None
    service = live.runtime.service

    def fill() -> int:
        [cache] = [c for c in service.registry.caches.values() if c.name == "default"]
        for i in range(200_000):
            cache.store(StoreMode.SET, b"key:%d" % i, b"value", 0, 0, live.clock.now())
        return cache.curr_items

    assert live.call(fill) == 200_000
    conn.send(b"flush_all\r\n")
    started = time.monotonic()
    assert other.request(b"version\r\n").startswith(b"VERSION ")
    assert time.monotonic() - started < 0.25
    assert conn.read_until(b"\r\n") == b"OK\r\n"
    assert stats_of(other)["curr_items"] == "0"
    # the old items are freed in the background, slice by slice
    assert wait_for(lambda: not live.call(lambda: bool(service.registry.graveyard)), timeout=5)
    conn.close()
    other.close()
