"""Per-tenant admin commands (memcloud.admin_commands) on a real server: memcached's formats
(checked against Debian's memcached where it has the command), each tenant seeing its own
cache only, the capabilities they need, and the bounds on what they cost."""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from binary.wire import BinaryConnection
from conftest import RawConnection, require_tool
from memcloud.admin_commands import MEMLIMIT_REFUSED, WATCH_REFUSED
from memcloud.protocol.binary import Opcode, request
from memcloud.protocol.replies import NO_WRITE, UNAUTHENTICATED
from memcloud.storage.detail import PREFIXES_MAX
from memcloud.testing import ServerProcess
from server.memcached import MemcachedProcess

from .helpers import Tenant, create_cache, create_credential, login, stats_of

METADUMP_LINE = re.compile(
    rb"key=(\S+) exp=(-1|\d+) la=(\d+) cas=(\d+) fetch=(yes|no) cls=1 size=(\d+)\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("admin") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data_dir: Path = tmp_path_factory.mktemp("admin-anon") / "data"
    with ServerProcess(data_dir, "--anonymous-cache", "admin") as proc:
        yield proc.port


@pytest.fixture(scope="module")
def memcached() -> Iterator[int]:
    with MemcachedProcess(require_tool("memcached")) as real:
        yield real.port


def _fresh(port: int) -> RawConnection:
    conn = RawConnection(port)
    assert conn.request(b"flush_all\r\nstats reset\r\n", b"RESET\r\n") == b"OK\r\nRESET\r\n"
    return conn


def _transcript(port: int, script: bytes) -> bytes:
    """The replies to `script`, up to the version fence after it."""
    conn = _fresh(port)
    try:
        reply = conn.request(script + b"version\r\n", b"VERSION ")
        return reply[: -len(b"VERSION ")]
    finally:
        conn.close()


SAME_AS_MEMCACHED = {
    "detail switch and usage": b"stats detail\r\nstats detail x\r\nstats detail on off\r\n"
    b"stats detail off\r\n",
    "cachedump lines": b"stats cachedump 2 10\r\nstats cachedump 1\r\nstats cachedump\r\n"
    b"stats cachedump x y\r\nstats cachedump 99 1\r\nstats cachedump 3 1 1\r\n",
    "metadump of other classes": b"lru_crawler metadump 2\r\nlru_crawler metadump 99\r\n"
    b"lru_crawler metadump 2,3\r\nlru_crawler metadump 0\r\n",
    "crawler lines": b"lru_crawler\r\nlru_crawler foo\r\nlru_crawler metadump\r\n",
    "metadump of an empty cache": b"lru_crawler metadump all\r\n",
}


def _line_by_line(port: int, script: bytes) -> list[bytes]:
    """The reply to each line of `script` sent alone (memcached refuses commands pipelined
    before a metadump), read until the server has been quiet for a moment."""
    conn = _fresh(port)
    conn.sock.settimeout(0.3)
    replies = []
    try:
        for line in script.split(b"\r\n")[:-1]:
            conn.send(line + b"\r\n")
            reply = b""
            while True:
                try:
                    chunk = conn.sock.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                reply += chunk
            replies.append(reply)
    finally:
        conn.close()
    return replies


@pytest.mark.parametrize("name", list(SAME_AS_MEMCACHED))
def test_same_replies_as_memcached(anonymous: int, memcached: int, name: str) -> None:
    script = SAME_AS_MEMCACHED[name]
    assert _line_by_line(anonymous, script) == _line_by_line(memcached, script)


DETAIL_SCRIPT = (
    b"stats detail on\r\n"
    b"set p:1 0 0 1\r\n1\r\nincr p:1 1\r\ntouch p:1 10\r\ngat 10 p:1\r\ngets p:1 p:2 q:1\r\n"
    b"add p:1 0 0 1\r\nx\r\ncas p:1 0 0 1 99\r\nx\r\nappend p:9 0 0 1\r\nx\r\n"
    b"delete zz:1\r\nset :e 0 0 1\r\nx\r\nset a:b:c 0 0 1\r\nx\r\nget nodelimiter\r\n"
    b"set x:1 0 0 1 noreply\r\nx\r\nstats detail off\r\nget p:1\r\nstats detail dump\r\n"
)


def _prefix_lines(port: int) -> set[bytes]:
    reply = _transcript(port, DETAIL_SCRIPT)
    return {line for line in reply.split(b"\r\n") if line.startswith(b"PREFIX")}


def test_detail_counts_as_memcached(anonymous: int, memcached: int) -> None:
    # memcached lists prefixes in its hash table's order, memcloud in byte order: the same
    # lines as a set. gat counts as a get, every store command (failed ones too) as a set,
    # every delete as a del; incr and touch are not counted; a key without ':' nowhere;
    # nothing after `stats detail off`.
    ours = _prefix_lines(anonymous)
    assert ours == _prefix_lines(memcached)
    assert b"PREFIX p get 3 hit 2 set 4 del 0" in ours
    assert b"PREFIX  get 0 hit 0 set 1 del 0" in ours  # ":e": the empty prefix


def test_metadump_format_matches_memcached(anonymous: int, memcached: int) -> None:
    script = (
        b"set sp%20ace~/x 0 0 3\r\nabc\r\nset ttl 0 1000 2\r\nab\r\nget ttl\r\n"
        b"lru_crawler metadump all\r\n"
    )
    for port in (anonymous, memcached):
        conn = _fresh(port)
        conn.send(script)
        conn.read_until(b"END\r\n")  # the get
        dump = conn.read_until(b"END\r\n")
        conn.close()
        assert dump.endswith(b"\nEND\r\n"), dump  # lines end in a bare LF, as memcached's
        lines = {METADUMP_LINE.fullmatch(line + b"\n") for line in dump.split(b"\n")[:-2]}
        assert None not in lines, dump
        found = {m.group(1): m for m in lines if m is not None}
        assert set(found) == {b"sp%2520ace~%2Fx", b"ttl"}, dump
        assert found[b"ttl"].group(5) == b"yes" and found[b"sp%2520ace~%2Fx"].group(5) == b"no"
        assert found[b"sp%2520ace~%2Fx"].group(2) == b"-1"
        assert abs(int(found[b"ttl"].group(2)) - (time.time() + 1000)) < 5
        assert abs(int(found[b"ttl"].group(3)) - time.time()) < 5


def test_metadump_of_named_keys(anonymous: int) -> None:
    conn = _fresh(anonymous)
    conn.request(b"set k1 0 0 1\r\nx\r\nset k2 0 0 1\r\ny\r\n", b"STORED\r\nSTORED\r\n")
    dump = conn.request(b"lru_crawler metadump k2 missing k1\r\n", b"END\r\n")
    keys = [m.group(1) for m in METADUMP_LINE.finditer(dump)]
    assert keys == [b"k2", b"k1"] and dump.endswith(b"\nEND\r\n")
    conn.close()


def test_sizes_in_memcached_format(anonymous: int) -> None:
    conn = _fresh(anonymous)
    stores = b"set a 0 0 10\r\n0123456789\r\nset b 0 0 100\r\n" + b"x" * 100 + b"\r\n"
    assert conn.request(stores, b"STORED\r\nSTORED\r\n") == b"STORED\r\nSTORED\r\n"
    # key + value + 50 bytes of accounted overhead, rounded up to 32.
    assert conn.request(b"stats sizes\r\n", b"END\r\n") == b"STAT 64 1\r\nSTAT 160 1\r\nEND\r\n"
    conn.close()


def test_memlimit_and_watch_refused(anonymous: int) -> None:
    conn = _fresh(anonymous)
    assert conn.request(b"cache_memlimit 50\r\n") == MEMLIMIT_REFUSED
    assert conn.request(b"cache_memlimit 50 noreply\r\nwatch\r\n") == WATCH_REFUSED  # silent
    assert conn.request(b"watch fetchers mutations\r\n") == WATCH_REFUSED
    conn.close()


def test_each_tenant_sees_its_own_cache_only(server: ServerProcess) -> None:
    a, b = create_cache(server, "admin-a"), create_cache(server, "admin-b")
    ca, cb = login(server.port, a.username, a.password), login(server.port, b.username, b.password)
    other_a = login(server.port, a.username, a.password)
    switch = b"stats detail on\r\nset secret:1 0 0 1\r\nx\r\n"
    assert ca.request(switch, b"STORED\r\n") == b"OK\r\nSTORED\r\n"
    assert ca.request(b"get secret:1\r\n", b"END\r\n").startswith(b"VALUE")
    # B's commands do not count in A's prefixes, and B never sees A's keys or prefixes.
    assert cb.request(b"stats detail dump\r\n") == b"END\r\n"
    mine = b"set mine:1 0 0 1\r\nx\r\nget secret:1\r\n"
    assert cb.request(mine, b"END\r\n") == b"STORED\r\nEND\r\n"
    assert cb.request(b"lru_crawler metadump all\r\n", b"END\r\n").startswith(b"key=mine%3A1 ")
    assert cb.request(b"lru_crawler metadump secret:1\r\n") == b"END\r\n"
    assert cb.request(b"stats sizes\r\n", b"END\r\n").count(b"STAT ") == 1
    a_dump = ca.request(b"stats detail dump\r\n", b"END\r\n")
    assert a_dump == b"PREFIX secret get 1 hit 1 set 1 del 0\r\nEND\r\n"
    a_keys = ca.request(b"lru_crawler metadump all\r\n", b"END\r\n")
    assert a_keys.startswith(b"key=secret%3A1 ") and b"mine" not in a_keys
    # Connections: A's two, never B's.
    conns = ca.request(b"stats conns\r\n", b"END\r\n").decode()
    addresses = re.findall(r"STAT (\d+):addr tcp:(\S+)\r\n", conns)
    ours = {"{}:{}".format(*conn.sock.getsockname()[:2]) for conn in (ca, other_a)}
    assert {addr for _, addr in addresses} == ours
    assert conns.count("conn_parse_cmd") == 1 and conns.count("conn_waiting") == 1
    assert cb.request(b"stats conns\r\n", b"END\r\n").count(b":addr ") == 1
    for conn in (ca, cb, other_a):
        conn.close()


def _read_only(server: ServerProcess, cache: str) -> Tenant:
    return create_credential(server, cache, "--no-write", "--no-flush", "--no-api")


def test_capabilities(server: ServerProcess) -> None:
    owner = create_cache(server, "admin-caps")
    reader = _read_only(server, "admin-caps")
    ro = login(server.port, reader.username, reader.password)
    # A read-only credential reads its cache's stats and keys, but does not switch the
    # cache's counting for every credential.
    assert ro.request(b"stats detail on\r\n") == NO_WRITE
    assert ro.request(b"stats detail off\r\n") == NO_WRITE
    assert ro.request(b"stats detail dump\r\n") == b"END\r\n"
    rw = login(server.port, owner.username, owner.password)
    assert rw.request(b"set k:1 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert ro.request(b"lru_crawler metadump all\r\n", b"END\r\n").startswith(b"key=k%3A1 ")
    assert ro.request(b"stats sizes\r\n", b"END\r\n") == b"STAT 64 1\r\nEND\r\n"
    assert ro.request(b"stats cachedump 1 1\r\n") == b"END\r\n"
    assert ro.request(b"stats conns\r\n", b"END\r\n").count(b":addr ") == 2
    # Before login every one of them is refused.
    anon = RawConnection(server.port)
    for line in (
        b"stats detail dump",
        b"stats conns",
        b"lru_crawler metadump all",
        b"cache_memlimit 5",
        b"watch",
    ):
        assert anon.request(line + b"\r\n") == UNAUTHENTICATED, line
    for conn in (ro, rw, anon):
        conn.close()


def test_prefix_table_is_bounded(anonymous: int) -> None:
    conn = _fresh(anonymous)
    assert conn.request(b"stats detail on\r\n") == b"OK\r\n"
    script = b"".join(b"get p%d:k\r\n" % i for i in range(PREFIXES_MAX + 50))
    conn.send(script)
    for _ in range(PREFIXES_MAX + 50):
        conn.read_until(b"END\r\n")
    dump = conn.request(b"stats detail dump\r\n", b"END\r\n")
    assert dump.count(b"PREFIX ") == PREFIXES_MAX
    # `stats reset` clears the counts; the switch stays on.
    assert conn.request(b"stats reset\r\nget new:1\r\n", b"END\r\n") == b"RESET\r\nEND\r\n"
    assert conn.request(b"stats detail dump\r\n", b"END\r\n") == (
        b"PREFIX new get 1 hit 0 set 0 del 0\r\nEND\r\n"
    )
    assert conn.request(b"stats detail off\r\n") == b"OK\r\n"
    conn.close()


def test_metadump_streams_in_steps_one_crawl_per_cache(anonymous: int) -> None:
    """A dump far larger than the reply batch is answered while the client reads; a client
    that does not read holds the cache's one crawl (another gets BUSY), never the memory of
    the whole dump, and everything else on the server carries on."""
    count, key = 40_000, b"k" * 200
    loader = _fresh(anonymous)
    loader.send(b"".join(b"set %s%d 0 0 1 noreply\r\nx\r\n" % (key, i) for i in range(count)))
    assert loader.request(b"version\r\n").startswith(b"VERSION")
    stalled = socket.create_connection(("127.0.0.1", anonymous))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"lru_crawler metadump all\r\n")  # about 10 MB of lines, never read
    time.sleep(0.5)
    other = RawConnection(anonymous)
    assert other.request(b"lru_crawler metadump all\r\n") == (
        b"BUSY currently processing crawler request\r\n"
    )
    assert other.request(b"get %s1\r\n" % key, b"END\r\n").startswith(b"VALUE")
    stalled.close()  # its crawl ends with its connection
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        other.send(b"lru_crawler metadump all\r\n")
        first = other.read_until(b"\n")
        if not first.startswith(b"BUSY"):
            break
        time.sleep(0.1)
    dump = first + other.read_until(b"\nEND\r\n", timeout=30)
    assert dump.count(b"\n") == count + 1
    # Keys of 201 to 205 bytes, values of 1, and 50 accounted: 256 bytes each.
    assert other.request(b"stats sizes\r\n", b"END\r\n") == b"STAT 256 %d\r\nEND\r\n" % count
    loader.close()
    other.close()


# (Not `detail` alone: memcached compares the bytes after the key it was sent, whatever
# they are, and answers it either way; memcloud answers Not found.)
BINARY_GROUPS = (
    b"detail on",
    b"detail x",
    b"conns",
    b"cachedump 1 1",
    b"sizes",
    b"detail dump",
    b"detail off",
)


def _binary_stats(port: int) -> list[list[tuple[int, bytes, bytes]]]:
    """Each of BINARY_GROUPS asked for with Stat, around binary stores and gets of prefixed
    keys: every response as (status, key, value), up to the closing one or an error."""
    _fresh(port).close()
    conn = BinaryConnection(port)
    answers = []
    try:
        for group in BINARY_GROUPS:
            conn.send(
                request(Opcode.SET, key=b"bin:1", extras=struct.pack(">II", 0, 0), value=b"v")
                + request(Opcode.GET, key=b"bin:2")
                + request(Opcode.DELETE, key=b"bin:3")
            )
            conn.read(3)
            conn.send(request(Opcode.STAT, key=group, opaque=7))
            got = []
            while True:
                (reply,) = conn.read()
                got.append((reply.status, reply.key, reply.value))
                if reply.status or not reply.key:
                    break
            answers.append(got)
    finally:
        conn.sock.close()
    return answers


def test_binary_stat_groups_as_memcached(anonymous: int, memcached: int) -> None:
    # `detail dump` is one pair whose value is the text dump; `conns` and `cachedump` are
    # text-only in memcached (Not found); `sizes` is memcached's answer when it keeps none.
    ours = _binary_stats(anonymous)
    assert ours == _binary_stats(memcached)
    assert ours[-2][0] == (0, b"detailed", b"PREFIX bin get 5 hit 0 set 5 del 5\r\nEND\r\n")


def test_binary_detail_switch_needs_write(server: ServerProcess) -> None:
    owner = create_cache(server, "admin-binary")
    reader = _read_only(server, "admin-binary")
    conn = BinaryConnection(server.port)
    auth = b"\0" + reader.username.encode() + b"\0" + reader.password.encode()
    assert conn.call(Opcode.SASL_AUTH, key=b"PLAIN", value=auth).status == 0
    refused = conn.call(Opcode.STAT, key=b"detail on")
    assert refused.status != 0 and b"no write capability" in refused.value
    assert conn.call(Opcode.STAT, key=b"detail dump").key == b"detailed"
    conn.sock.close()
    assert owner.cache == "admin-binary"


def test_prefix_delimiter_option_and_settings(tmp_path: Path) -> None:
    # memcached's -D: the server's delimiter, shown as `stat_key_prefix`; the cache's own
    # switch shows as `detail_enabled`.
    with ServerProcess(tmp_path / "data", "--anonymous-cache", "d", "--prefix-delimiter", "/") as p:
        conn = RawConnection(p.port)
        assert stats_of(conn, b"settings")["detail_enabled"] == "no"
        script = b"stats detail on\r\nset a/b:c 0 0 1\r\nx\r\nset a:b 0 0 1\r\nx\r\n"
        assert conn.request(script, b"STORED\r\nSTORED\r\n") == b"OK\r\nSTORED\r\nSTORED\r\n"
        settings = stats_of(conn, b"settings")
        assert (settings["stat_key_prefix"], settings["detail_enabled"]) == ("/", "yes")
        assert conn.request(b"stats detail dump\r\n", b"END\r\n") == (
            b"PREFIX a get 0 hit 0 set 1 del 0\r\nEND\r\n"
        )
        conn.close()


def test_commands_memcloud_does_not_implement(anonymous: int) -> None:
    # docs/text-protocol.md lists each with its reason.
    conn = _fresh(anonymous)
    for line in (
        b"shutdown",
        b"shutdown graceful",
        b"slabs reassign 1 2",
        b"slabs automove 1",
        b"lru tune 10 25 0.1 2",
        b"lru mode flat",
        b"stats sizes_enable",
        b"stats sizes_disable",
        b"stats extstore",
        b"extstore compact_under 1",
        b"misbehave",
        b"debugtime 1",
    ):
        assert conn.request(line + b"\r\n") == b"ERROR\r\n", line
    for sub in (b"crawl all", b"enable", b"disable", b"sleep 10", b"tocrawl 5", b"mgdump all"):
        reply = conn.request(b"lru_crawler " + sub + b"\r\n")
        assert reply.startswith(b"CLIENT_ERROR lru_crawler " + sub.split()[0] + b" is "), sub
    assert conn.request(b"version\r\n").startswith(b"VERSION")  # the server is still there
    conn.close()
