"""The same byte scripts against Debian's memcached and against memcloud (anonymous cache):
the replies must be identical, byte for byte (CAS uniques and the version number aside).

Where memcloud deliberately differs from memcached, the script is not here but in
test_text_commands.py, and the difference is written down in docs/text-protocol.md.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import require_tool
from memcloud.testing import ServerProcess
from server.memcached import MemcachedProcess

BIG = 2_000_000  # over both servers' item limit
HALF = 600_000  # two of these are over it


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    binary = require_tool("memcached")
    data_dir: Path = tmp_path_factory.mktemp("compat") / "data"
    with (
        MemcachedProcess(binary) as real,
        ServerProcess(data_dir, "--anonymous-cache", "compat") as ours,
    ):
        yield {"memcached": real.port, "memcloud": ours.port}


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def _fill(self, deadline: float) -> bool:
        if time.monotonic() > deadline:
            raise TimeoutError(repr(self.buffer[-200:]))
        chunk = self.sock.recv(1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def until(self, terminator: bytes) -> bytes:
        deadline = time.monotonic() + 10
        while terminator not in self.buffer:
            if not self._fill(deadline):
                raise ConnectionError(repr(self.buffer[-200:]))
        end = self.buffer.index(terminator) + len(terminator)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def until_closed(self) -> bytes:
        deadline = time.monotonic() + 10
        while self._fill(deadline):
            pass
        data, self.buffer = self.buffer, b""
        return data

    def close(self) -> None:
        self.sock.close()


_VERSION = re.compile(rb"VERSION [0-9.]+\r\n")
_CAS = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r\n", re.M)


def normalise(reply: bytes) -> bytes:
    return _CAS.sub(rb"\1 <cas>\r\n", _VERSION.sub(b"VERSION <v>\r\n", reply))


FENCE = b"set __fence__ 0 0 5\r\nfence\r\nget __fence__\r\n"
FENCE_REPLY = b"STORED\r\nVALUE __fence__ 0 5\r\nfence\r\nEND\r\n"


def transcript(port: int, script: list[bytes]) -> bytes:
    """Send the script's chunks, then a fence; answer everything the script got."""
    conn = Conn(port)
    try:
        conn.sock.sendall(b"flush_all\r\n")
        assert conn.until(b"\r\n") == b"OK\r\n"
        for chunk in script:
            conn.sock.sendall(chunk)
        if b"quit\r\n" in script[-1]:
            return normalise(conn.until_closed())
        conn.sock.sendall(FENCE)
        return normalise(conn.until(FENCE_REPLY)[: -len(FENCE_REPLY)])
    finally:
        conn.close()


def v(n: int, ch: bytes = b"x") -> bytes:
    return ch * n


SCRIPTS: dict[str, list[bytes]] = {
    "set get": [b"set a 5 0 3\r\nabc\r\nget a\r\n"],
    "set noreply": [b"set a 5 0 3 noreply\r\nabc\r\nget a\r\n"],
    "set extra token is not noreply": [b"set a 5 0 3 junk\r\nabc\r\nget a\r\n"],
    "set too many tokens": [b"set a 5 0 3 noreply x\r\nabc\r\nget a\r\n"],
    "set too few tokens": [b"set a 5 0\r\nabc\r\nget a\r\n"],
    "set negative length": [b"set a 5 0 -1\r\nabc\r\nget a\r\n"],
    "set bad data chunk": [b"set a 0 0 3\r\nabcd\r\nget a\r\n"],
    "set short data chunk": [b"set a 0 0 3\r\nab\r\n\r\nget a\r\n"],
    "set bad data chunk noreply": [b"set a 0 0 1 noreply\r\nxyz\r\nget a\r\n"],
    "set zero length": [b"set a 0 0 0\r\n\r\nget a\r\n"],
    "set with signs": [b"set a +5 +0 +1\r\nx\r\nset b -0 0 1\r\ny\r\nget a b\r\n"],
    "set too large": [b"set a 0 0 %d\r\n%s\r\nget a\r\n" % (BIG, v(BIG))],
    "set too large drops old": [
        b"set a 0 0 1\r\nx\r\nset a 0 0 %d\r\n%s\r\nget a\r\n" % (BIG, v(BIG))
    ],
    "set too large noreply": [b"set a 0 0 %d noreply\r\n%s\r\nget a\r\n" % (BIG, v(BIG))],
    "add too large keeps old": [
        b"set a 0 0 1\r\nx\r\nadd a 0 0 %d\r\n%s\r\nget a\r\n" % (BIG, v(BIG))
    ],
    "replace too large keeps old": [
        b"set a 0 0 1\r\nx\r\nreplace a 0 0 %d\r\n%s\r\nget a\r\n" % (BIG, v(BIG))
    ],
    "cas too large keeps old": [
        b"set a 0 0 1\r\nx\r\ncas a 0 0 %d 1\r\n%s\r\nget a\r\n" % (BIG, v(BIG))
    ],
    "append past item limit": [
        b"set a 0 0 %d\r\n%s\r\nappend a 0 0 %d\r\n%s\r\nset b 0 0 1\r\n1\r\nget b\r\n"
        % (HALF, v(HALF), HALF, v(HALF, b"y")),
        b"gets a\r\n",
    ],
    "append past item limit noreply": [
        b"set a 0 0 %d\r\n%s\r\nappend a 0 0 %d noreply\r\n%s\r\nget b\r\n"
        % (HALF, v(HALF), HALF, v(HALF, b"y"))
    ],
    "key of 250 bytes": [b"set %s 0 0 1\r\nx\r\nget %s\r\n" % (v(250, b"k"), v(250, b"k"))],
    "get key too long": [b"get " + v(251, b"k") + b"\r\n"],
    "get without key": [b"get\r\nget \r\n"],
    "unknown command": [b"foo\r\nGET a\r\n"],
    "empty line": [b"\r\n"],
    "bare LF": [b"set a 0 0 1\nx\r\nget a\n"],
    "multiple spaces": [b"set  a  0  0  1\r\nx\r\nget   a  \r\n"],
    "multi get": [b"set a 0 0 1\r\n1\r\nset b 3 0 1\r\n2\r\nget a b c a\r\n"],
    "gets": [b"set a 1 0 1\r\n1\r\ngets a b\r\n"],
    "add": [b"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nget a\r\n"],
    "replace": [b"replace a 0 0 1\r\nx\r\nset a 0 0 1\r\nx\r\nreplace a 1 0 1\r\ny\r\nget a\r\n"],
    "append prepend": [
        b"append a 0 0 1\r\nx\r\nprepend a 0 0 1\r\nx\r\nset a 3 0 1\r\nx\r\n"
        b"append a 1 0 1\r\ny\r\nprepend a 5 0 1\r\nz\r\nget a\r\n"
    ],
    "incr decr": [
        b"incr a 1\r\ndecr a 1\r\nset a 0 0 2\r\n10\r\nincr a 5\r\ndecr a 100\r\n"
        b"incr a 18446744073709551615\r\nget a\r\n"
    ],
    "incr wraps": [b"set a 0 0 20\r\n18446744073709551615\r\nincr a 2\r\n"],
    "decr stops at zero": [b"set a 0 0 1\r\n5\r\ndecr a 6\r\ndecr a 1\r\nget a\r\n"],
    "incr grows the value": [b"set a 0 0 2\r\n99\r\nincr a 1\r\nget a\r\n"],
    "incr non-numeric": [
        b"set a 0 0 2\r\nab\r\nincr a 1\r\ndecr a 1\r\nset a 0 0 0\r\n\r\nincr a 1\r\n"
        b"set a 0 0 2\r\n-5\r\nincr a 1\r\nset a 0 0 3\r\n1.5\r\nincr a 1\r\n"
    ],
    "incr reads like strtoull": [
        b"set a 0 0 3\r\n 10\r\nincr a 1\r\nset a 0 0 5\r\n10 ab\r\nincr a 1\r\n"
        b"set a 0 0 2\r\n-0\r\nincr a 1\r\nset a 0 0 21\r\n000000000000000000001\r\nincr a 1\r\n"
    ],
    "incr bad delta": [
        b"set a 0 0 2\r\n10\r\nincr a x\r\nincr a -1\r\nincr a 18446744073709551616\r\n"
        b"incr a +5\r\n"
    ],
    "incr wrong arity": [b"incr\r\nincr a\r\ndecr\r\nincr a 1 2 3\r\n"],
    "incr key too long": [b"incr " + v(251, b"k") + b" 1\r\n"],
    "cas": [b"cas a 0 0 1 1\r\nx\r\nset a 0 0 1\r\nx\r\ncas a 0 0 1 999999999\r\ny\r\nget a\r\n"],
    "cas wrong arity": [b"cas a 0 0 1\r\nx\r\n"],
    "cas noreply": [b"cas a 0 0 1 1 noreply\r\nx\r\nget a\r\n"],
    "delete": [
        b"delete a\r\nset a 0 0 1\r\nx\r\ndelete a\r\ndelete a noreply\r\ndelete a 0\r\n"
        b"delete a 1\r\ndelete a 0 noreply\r\ndelete a x y z\r\ndelete a noreply 0\r\n"
        b"delete\r\ndelete " + v(251, b"k") + b"\r\n"
    ],
    "touch": [
        b"touch a 10\r\nset a 0 0 1\r\nx\r\ntouch a 10\r\ntouch a x\r\ntouch a +5\r\n"
        b"touch a 10 noreply\r\ntouch a\r\ntouch " + v(251, b"k") + b" 1\r\n"
    ],
    "touch negative expires": [b"set a 0 0 1\r\nx\r\ntouch a -1\r\nget a\r\n"],
    "gat": [b"gat 10 a\r\nset a 0 0 1\r\nx\r\ngat 10 a b\r\ngat x a\r\ngat 10\r\ngat\r\n"],
    "gats": [b"set a 7 0 1\r\nx\r\ngats 0 a\r\n"],
    "gat negative expires": [b"set a 7 0 1\r\nx\r\ngat -1 a\r\nget a\r\n"],
    "gat many keys": [b"gat 0 " + b"a " * 30 + b"\r\n"],
    "exptime negative": [b"set a 0 -1 1\r\nx\r\nget a\r\n"],
    "exptime absolute in the past": [b"set a 0 1000000000 1\r\nx\r\nget a\r\n"],
    "exptime just over 30 days is absolute": [b"set a 0 0 1\r\nx\r\ntouch a 2592001\r\nget a\r\n"],
    "exptime 30 days is relative": [b"set a 0 2592000 1\r\nx\r\nget a\r\n"],
    "noreply everywhere": [
        b"set a 0 0 1 noreply\r\n1\r\nadd a 0 0 1 noreply\r\n1\r\nadd b 0 0 1 noreply\r\n2\r\n"
        b"replace a 0 0 1 noreply\r\n3\r\nappend a 0 0 1 noreply\r\n4\r\n"
        b"prepend a 0 0 1 noreply\r\n5\r\nincr a 1 noreply\r\ndecr a 1 noreply\r\n"
        b"touch a 100 noreply\r\ndelete b noreply\r\ncas a 0 0 1 1 noreply\r\nx\r\n"
        b"verbosity 1 noreply\r\nget a b\r\nflush_all 0 noreply\r\nget a\r\n"
    ],
    "noreply silences errors": [
        b"incr zz x noreply\r\nincr zz 1 noreply\r\nset a 0 0 1 noreply\r\nx\r\n"
        b"incr a 1 noreply\r\ntouch a x noreply\r\ndelete a 5 noreply\r\nverbosity noreply\r\n"
        b"incr a noreply\r\nget a\r\n"
    ],
    "noreply only as last token": [
        b"set a 0 0 1\r\nx\r\nincr a 1 noreplyx\r\ntouch a 0 foo\r\ndelete a foo\r\n"
    ],
    "flush_all": [b"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n"],
    "flush_all 0": [b"set a 0 0 1\r\nx\r\nflush_all 0\r\nget a\r\n"],
    "flush_all negative": [b"set a 0 0 1\r\nx\r\nflush_all -1\r\nget a\r\n"],
    "flush_all delayed": [b"set a 0 0 1\r\nx\r\nflush_all 100\r\nget a\r\n"],
    "flush_all arguments": [
        b"flush_all x\r\nflush_all 0 0\r\nflush_all noreply 0\r\nflush_all 0 noreply\r\n"
        b"flush_all 1 2 3\r\n"
    ],
    "verbosity": [
        b"verbosity 1\r\nverbosity\r\nverbosity 1 noreply\r\nverbosity x\r\nverbosity 1 2\r\n"
        b"verbosity 1 2 3\r\n"
    ],
    "version": [b"version\r\nversion \r\n"],
    "quit": [b"set a 0 0 1\r\nx\r\nquit\r\nget a\r\n"],
    "stats unknown": [b"stats foo\r\n"],
    "stats reset": [b"stats reset\r\n"],
    "stats detail": [
        b"stats detail on\r\nstats detail off\r\nstats detail\r\nstats detail x\r\n"
        b"stats detail dump\r\n"
    ],
    "long multi get": [b"get " + b"x " * 2000 + b"\r\n"],
    "pipelined": [b"set a 0 0 1\r\n1\r\nget a\r\nincr a 1\r\nget a\r\ndelete a\r\nget a\r\n"],
    "one byte at a time": [bytes([c]) for c in b"set a 0 0 1\r\n1\r\nget a\r\nincr a 9\r\n"],
    "value containing commands": [b"set a 0 0 11\r\nflush_all\r\n\r\nget a\r\n"],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_replies_as_memcached(ports: dict[str, int], name: str) -> None:
    script = SCRIPTS[name]
    expected = transcript(ports["memcached"], script)
    assert transcript(ports["memcloud"], script) == expected


def _cas_flow(conn: Conn) -> list[bytes]:
    out = []
    conn.sock.sendall(b"set a 0 0 1\r\nx\r\ngets a\r\n")
    out.append(conn.until(b"END\r\n"))
    cas = int(out[-1].split(b"\r\n")[1].split()[4])
    conn.sock.sendall(b"cas a 0 0 1 %d\r\ny\r\ncas a 0 0 1 %d\r\nz\r\n" % (cas + 1, cas))
    out.append(conn.until(b"\r\n") + conn.until(b"\r\n"))
    conn.sock.sendall(b"cas a 0 0 1 %d\r\nw\r\ngets a\r\n" % cas)
    out.append(conn.until(b"END\r\n"))
    new_cas = int(out[-1].split(b"\r\n")[1].split()[4])
    out.append(b"changed" if new_cas != cas else b"same")
    conn.sock.sendall(b"touch a 100\r\ngats 100 a\r\n")
    out.append(conn.until(b"END\r\n"))
    touched_cas = int(out[-1].split(b"\r\n")[1].split()[4])
    out.append(b"touch keeps cas" if touched_cas == new_cas else b"touch changed cas")
    conn.sock.sendall(b"delete a\r\ncas a 0 0 1 %d\r\nv\r\n" % new_cas)
    out.append(conn.until(b"NOT_FOUND\r\n"))
    return [normalise(item) for item in out]


def _stats_shape(conn: Conn) -> list[bytes]:
    """Each stats group answers STAT lines and END; these names must exist in both."""
    out = []
    conn.sock.sendall(b"set a 0 0 1\r\nx\r\n")
    conn.until(b"\r\n")
    for group in (b"", b" settings", b" items", b" slabs"):
        conn.sock.sendall(b"stats%s\r\n" % group)
        reply = conn.until(b"END\r\n")
        lines = reply.split(b"\r\n")
        assert lines[-2:] == [b"END", b""]
        names = set()
        for line in lines[:-2]:
            stat, name, value = line.split(b" ", 2)
            assert stat == b"STAT" and value
            names.add(name)
        wanted = {
            b"": {
                b"pid",
                b"uptime",
                b"time",
                b"version",
                b"curr_items",
                b"bytes",
                b"evictions",
                b"limit_maxbytes",
                b"cmd_get",
                b"cmd_set",
                b"get_hits",
                b"get_misses",
                b"curr_connections",
                b"total_items",
                b"threads",
            },
            b" settings": {b"maxbytes", b"maxconns", b"tcpport", b"item_size_max", b"cas_enabled"},
            b" items": {b"items:1:number", b"items:1:evicted", b"items:1:age"},
            b" slabs": {b"active_slabs", b"total_malloced"},
        }[group]
        out.append(b" ".join(sorted(wanted - names)))
    return out


def _big_pipeline(conn: Conn) -> list[bytes]:
    """Thousands of pipelined commands in one write: answered in order."""
    sets = b"".join(b"set k%d 0 0 %d\r\n%d\r\n" % (i, len(b"%d" % i), i) for i in range(3000))
    gets = b"".join(b"get k%d\r\n" % i for i in range(3000))
    conn.sock.sendall(sets + gets + b"version\r\n")
    return [conn.until(b"VERSION ")]


FLOWS: dict[str, Callable[[Conn], list[bytes]]] = {
    "cas flow": _cas_flow,
    "stats shape": _stats_shape,
    "big pipeline": _big_pipeline,
}


@pytest.mark.parametrize("name", list(FLOWS))
def test_same_flow_as_memcached(ports: dict[str, int], name: str) -> None:
    results = {}
    for server, port in ports.items():
        conn = Conn(port)
        try:
            conn.sock.sendall(b"flush_all\r\n")
            assert conn.until(b"\r\n") == b"OK\r\n"
            results[server] = FLOWS[name](conn)
        finally:
            conn.close()
    assert results["memcloud"] == results["memcached"]
