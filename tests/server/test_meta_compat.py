"""The meta protocol, differential: the same byte scripts against Debian's memcached and
against memcloud (anonymous cache), replies compared byte for byte.

Normalised, and only where the values must differ: CAS numbers (`c<n>`, me's `cas=`), the
remaining TTL `t<n>` (either server's clock may tick between two commands: ±1), `l<n>`
(seconds since last access) and me's values that describe memory (`exp la cls size`).
Deliberate differences (the `E` flag, which Debian's 1.6.18 refuses and memcloud takes as
memcached 1.6.21 does) are not here but in test_meta_commands.py, and in
docs/meta-protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require_tool
from memcloud.testing import ServerProcess
from server.memcached import MemcachedProcess
from server.test_text_compat import Conn

_CAS = re.compile(rb"(?<= )c\d+(?=[ \r])")
_TTL = re.compile(rb"(?<= )t(\d+)(?=[ \r])")
_LAST = re.compile(rb"(?<= )l\d+(?=[ \r])")
_ME = re.compile(rb"exp=-?\d+ la=\d+ cas=\d+ fetch=(yes|no) cls=\d+ size=\d+")


def normalise(reply: bytes) -> bytes:
    reply = _CAS.sub(b"c<cas>", reply)
    # A TTL is compared to the nearest ten seconds below: scripts use TTLs of 100, 200...
    reply = _TTL.sub(lambda m: b"t~%d" % ((int(m.group(1)) + 5) // 10 * 10), reply)
    reply = _LAST.sub(b"l<s>", reply)
    return _ME.sub(rb"exp=<e> la=<s> cas=<cas> fetch=\1 cls=<c> size=<n>", reply)


FENCE = b"mn\r\n"


def transcript(port: int, script: list[bytes]) -> bytes:
    """Send the script's chunks, then `mn`; answer everything before its MN."""
    conn = Conn(port)
    try:
        conn.sock.sendall(b"flush_all\r\n")
        assert conn.until(b"\r\n") == b"OK\r\n"
        for chunk in script:
            conn.sock.sendall(chunk)
        conn.sock.sendall(b"ms __fence__ 1 T0\r\nf\r\n" + FENCE)
        reply = conn.until(b"HD\r\nMN\r\n")
        return normalise(reply[: -len(b"HD\r\nMN\r\n")])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    binary = require_tool("memcached")
    data_dir: Path = tmp_path_factory.mktemp("meta-compat") / "data"
    with (
        MemcachedProcess(binary) as real,
        ServerProcess(data_dir, "--anonymous-cache", "meta-compat") as ours,
    ):
        yield {"memcached": real.port, "memcloud": ours.port}


B64_FOOBAR = b"Zm9vYmFy"  # base64 of b"foobar"
B64_BINARY = b"AAECA/8="  # base64 of bytes 00 01 02 03 ff

SCRIPTS: dict[str, list[bytes]] = {
    # -- mn, me -------------------------------------------------------------------------
    "mn": [b"mn\r\nmn extra tokens\r\n"],
    "me hit and miss": [b"ms k 3\r\nabc\r\nme k\r\nme nope\r\nmg k v\r\nme k\r\n"],
    "me errors": [b"me\r\nme " + b"k" * 251 + b"\r\n"],
    "me base64": [b"ms %s 2 b\r\nhi\r\nme %s b\r\n" % (B64_FOOBAR, B64_FOOBAR)],
    # -- mg -----------------------------------------------------------------------------
    "mg miss": [b"mg nope\r\nmg nope v\r\nmg nope v k O123\r\nmg nope s t\r\n"],
    "mg hit without value": [b"ms k 3 F7\r\nabc\r\nmg k\r\nmg k s f\r\n"],
    "mg every return flag": [b"ms k 3 F7 T100\r\nabc\r\nmg k v s f t k O9 c h l\r\n"],
    "mg flag order is kept": [b"ms k 3 F7\r\nabc\r\nmg k O1 f k s v\r\nmg k k f O2 s\r\n"],
    "mg hit before": [b"ms k 1\r\nx\r\nmg k h\r\nmg k h\r\nmg k u h\r\n"],
    "mg no bump keeps unfetched": [b"ms k 1\r\nx\r\nmg k u h\r\nmg k u h\r\nmg k h\r\n"],
    "mg ttl": [b"ms k 1\r\nx\r\nmg k t\r\nms j 1 T200\r\ny\r\nmg j t v\r\n"],
    "mg T updates ttl": [b"ms k 1 T100\r\nx\r\nmg k t T200 t\r\nmg k t\r\nmg k T0 t\r\n"],
    "mg T miss": [b"mg nope T100 v\r\nmg nope T100\r\n"],
    "mg quiet": [b"ms k 1\r\nx\r\nmg nope q v\r\nmg k q v\r\nmg k q\r\nmg nope q k O1\r\nmn\r\n"],
    "mg quiet errors still answered": [b"mg k q zz\r\nmn\r\n"],
    "mg opaque": [b"ms k 1\r\nx\r\nmg k O" + b"o" * 31 + b"\r\nmg k O\r\n"],
    "mg opaque too long": [
        b"ms k 1\r\nx\r\nmg k O" + b"o" * 32 + b"\r\nmg nope O" + b"o" * 32 + b"\r\n"
    ],
    "mg invalid flag": [b"mg k x\r\nmg k v !\r\nmg k Y\r\n"],
    "mg duplicate flag": [b"mg k v v\r\nmg k O1 O2\r\nmg k v \xc3\r\n"],
    "mg bad tokens": [b"mg k Tx\r\nmg k N\r\nmg k R1x\r\nmg k T99999999999\r\n"],
    "mg ignores P and L": [b"ms k 1\r\nx\r\nmg k Pproxy Lpath v\r\n"],
    "mg mset flags accepted": [b"ms k 1\r\nx\r\nmg k F5 C1 MS D2 J3 I v\r\n"],
    "mg errors": [b"mg\r\nmg " + b"k" * 251 + b" v\r\nmg k" + b" v" * 19 + b"\r\n"],
    "mg key of 250": [b"ms " + b"k" * 250 + b" 1\r\nx\r\nmg " + b"k" * 250 + b" v k\r\n"],
    "mg many flags within the limit": [b"ms k 1\r\nx\r\nmg k v s f t k c h l O1 Pp Ll u q\r\n"],
    "mg base64": [
        b"ms %s 2 b\r\nhi\r\nmg %s b k v\r\nmg foobar k v\r\nmg %s v\r\n"
        % (B64_FOOBAR, B64_FOOBAR, B64_FOOBAR)
    ],
    "mg base64 binary key": [b"ms %s 3 b k\r\nbin\r\nmg %s b k v s\r\n" % (B64_BINARY, B64_BINARY)],
    "mg base64 plain key": [b"ms foo 1\r\nx\r\nmg Zm9v b k v\r\n"],
    "mg base64 miss echoes": [b"mg %s b k O1\r\n" % B64_FOOBAR],
    "mg base64 invalid": [b"mg !!!! b\r\nmg Zm9 b v\r\n"],
    # -- vivify, recache, stale ----------------------------------------------------------
    "mg vivify": [b"mg k N100 v t s\r\nmg k N100 v t s\r\nmg k v\r\n"],
    "mg vivify then set wins clear": [
        b"mg k N100 v\r\nms k 3 T100\r\nnew\r\nmg k v t\r\nmg k N100 v\r\n"
    ],
    "mg vivify without value": [b"mg k N100\r\nmg k N100\r\nmg k c\r\n"],
    "mg vivify quiet": [b"mg k N100 q v\r\nmg k N100 q v\r\nmn\r\n"],
    "mg recache": [b"ms k 1 T100\r\nx\r\nmg k R30 v\r\nmg k R200 v\r\nmg k R200 v\r\nmg k v\r\n"],
    "mg recache no ttl": [b"ms k 1\r\nx\r\nmg k R200 v\r\n"],
    "md invalidate": [
        b"ms k 3 T100\r\nold\r\nmd k I\r\nmg k v\r\nmg k v\r\nmg k c v\r\nmd k I T200\r\n"
        b"mg k t v\r\n"
    ],
    "stale win then set clears": [
        b"ms k 3\r\nold\r\nmd k I\r\nmg k v\r\nms k 3\r\nnew\r\nmg k v\r\n"
    ],
    "stale set with older cas": [
        b"ms k 3\r\nold\r\nmg k\r\n",
    ],
    # -- ms -------------------------------------------------------------------------------
    "ms basic": [b"ms k 3\r\nabc\r\nmg k v f t\r\nms k 3 F9 T100\r\nxyz\r\nmg k v f t\r\n"],
    "ms return flags": [b"ms k 3 k O5 c\r\nabc\r\nms k 3 O5 k\r\nabc\r\n"],
    "ms quiet": [b"ms k 3 q\r\nabc\r\nms k 3 q ME\r\nabc\r\nmg k v\r\nmn\r\n"],
    "ms zero length": [b"ms k 0\r\n\r\nmg k v s\r\n"],
    "ms modes": [
        b"ms k 1 MR\r\nx\r\nms k 1 ME\r\na\r\nms k 1 ME\r\nb\r\nms k 1 MA\r\nc\r\n"
        b"ms k 1 MP\r\nd\r\nms k 1 MR\r\ne\r\nmg k v\r\nms k 1 MS\r\nf\r\nmg k v\r\n"
        b"ms nope 1 MA\r\nx\r\nms nope 1 MP\r\nx\r\n"
    ],
    "ms append keeps flags": [b"ms k 1 F3 T100\r\nx\r\nms k 1 MA F9\r\ny\r\nmg k v f t\r\n"],
    "ms invalid mode": [b"ms k 1 MX\r\nx\r\nms k 1 M\r\nx\r\nms k 1 MEE\r\nx\r\nmg k v\r\n"],
    "ms cas": [b"ms k 1 C999999\r\nx\r\nms nope 1 C5\r\nx\r\nms k 1 C0\r\nx\r\nmg k v\r\n"],
    "ms cas replace and add": [b"ms nope 1 MR C5\r\nx\r\nms nope 1 ME C5\r\nx\r\nmg nope v\r\n"],
    "ms errors": [
        b"ms\r\nms k\r\nms k x\r\nms k -1\r\nms k 1 zz\r\nx\r\nms k 1 T1 T2\r\nx\r\n"
        b"ms k 1 Tx\r\nx\r\nms k 1 Fx\r\nx\r\nms k 1 F4294967296\r\nx\r\nmg k v\r\n"
    ],
    "ms opaque too long": [b"ms k 1 O" + b"o" * 32 + b"\r\nx\r\nmg k v\r\n"],
    "ms bad data chunk": [b"ms k 3\r\nabcd\r\nmg k v\r\nms k 3 q\r\nabcd\r\nmn\r\n"],
    "ms base64 invalid": [b"ms !!!! 1 b\r\nx\r\nmg k v\r\n"],
    "ms split value": [b"ms k 10\r\n01234", b"56789\r\nmg k v\r\n"],
    "ms invalidate without cas": [b"ms k 1 I\r\nx\r\nmg k v\r\n"],
    "ms negative ttl": [b"ms k 1 T-1 c k\r\nx\r\nmg k v\r\nms k 1 T-1 MA\r\nx\r\n"],
    "mg negative ttl": [b"ms k 1\r\nx\r\nmg k T-1 v\r\nmg k v\r\n"],
    "ma negative ttl": [b"ms n 1\r\n1\r\nma n T-1 v\r\nma n v\r\n"],
    # -- md -------------------------------------------------------------------------------
    "md basic": [b"ms k 1\r\nx\r\nmd k\r\nmd k\r\nmg k v\r\n"],
    "md flags": [b"ms k 1\r\nx\r\nmd k O7 k\r\nmd k k O7\r\n"],
    "md quiet": [b"ms k 1\r\nx\r\nmd k q\r\nmd k q\r\nmn\r\n"],
    "md cas": [b"ms k 1\r\nx\r\nmd k C999999\r\nmg k v\r\nmd k C0\r\n"],
    "md errors": [
        b"md\r\nmd k zz\r\nmd k q q\r\nmd k Tx\r\nmd "
        + b"k" * 251
        + b"\r\nmd k"
        + b" q" * 19
        + b"\r\nmd k O"
        + b"o" * 32
        + b"\r\n"
    ],
    "md base64": [b"ms %s 1 b\r\nx\r\nmd %s b k\r\nmg foobar v\r\n" % (B64_FOOBAR, B64_FOOBAR)],
    "md T without I": [b"ms k 1 T100\r\nx\r\nmd k T200 q\r\nmg k v\r\n"],
    # -- ma -------------------------------------------------------------------------------
    "ma basic": [b"ms n 2\r\n10\r\nma n\r\nmg n v\r\nma n v\r\nma n MD v\r\nma n M- D3 v\r\n"],
    "ma modes": [b"ms n 1\r\n5\r\nma n MI v\r\nma n M+ D10 v\r\nma n MD D100 v\r\n"],
    "ma wraps": [b"ms n 20\r\n18446744073709551615\r\nma n v\r\n"],
    "ma miss": [b"ma nope\r\nma nope v O1 k\r\nma nope q\r\nmn\r\n"],
    "ma vivify": [b"ma n N100 J42 v t\r\nma n N100 J42 v\r\nma m N0 v\r\nma m v t\r\n"],
    "ma vivify quiet": [b"ma n N100 q v\r\nma n q v\r\nmn\r\n"],
    "ma quiet": [b"ms n 1\r\n1\r\nma n q\r\nma n q v\r\nmg n v\r\nmn\r\n"],
    "ma flags": [b"ms n 1 T100\r\n1\r\nma n O1 k t v\r\nma n T200 t v\r\n"],
    "ma non numeric": [b"ms n 1\r\nx\r\nma n\r\nma n q\r\nms e 0\r\n\r\nma e\r\n"],
    "ma cas": [b"ms n 1\r\n1\r\nma n C999999 v\r\nma n C0 v\r\n"],
    "ma errors": [
        b"ma\r\nma n MX\r\nma n M\r\nma n Dx\r\nma n Jx\r\nma n zz\r\nma n D1 D2\r\n"
        b"ma n D18446744073709551616\r\n"
    ],
    "ma base64": [b"ma %s b N0 J5 k v\r\nmg foobar v\r\n" % B64_FOOBAR],
    # -- mixed ----------------------------------------------------------------------------
    "meta and text mixed": [
        b"set k 5 0 3\r\nabc\r\nmg k v f\r\nms k 3 F6\r\nxyz\r\nget k\r\nmd k\r\nget k\r\n"
    ],
    "quiet pipeline": [
        b"ms a 1 q\r\n1\r\nms b 1 q\r\n2\r\nmg a q v k\r\nmg x q v k\r\nmg b q v k\r\n"
        b"md a q\r\nmd x q\r\nma b q\r\nmg b q v\r\nmn\r\n"
    ],
    "unknown m commands": [b"mx k\r\nmgg k\r\nm\r\nMG k\r\n"],
    "one byte at a time": [bytes([c]) for c in b"ms k 2 T100\r\nab\r\nmg k v t\r\nmn\r\n"],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_meta_replies_as_memcached(ports: dict[str, int], name: str) -> None:
    script = SCRIPTS[name]
    expected = transcript(ports["memcached"], script)
    assert transcript(ports["memcloud"], script) == expected


def _stale_cas_flow(conn: Conn) -> list[bytes]:
    """ms with `I` and a CAS older than the item's stores the value as stale."""
    conn.sock.sendall(b"ms k 3 c\r\nold\r\n")
    first = int(conn.until(b"\r\n").split()[1][1:])
    conn.sock.sendall(b"ms k 3 c\r\nnew\r\nmd k I\r\n")
    out = [conn.until(b"\r\n") and conn.until(b"\r\n")]
    conn.sock.sendall(b"ms k 3 I C%d\r\nsta\r\nmg k v\r\nmg k v\r\n" % first)
    out.append(conn.until(b"HD\r\n"))
    out.append(conn.until(b"\r\nsta\r\n"))
    out.append(conn.until(b"\r\nsta\r\n"))
    conn.sock.sendall(b"ms k 3 I C%d\r\nbad\r\nmg k v c\r\n" % (first + 1_000_000))
    out.append(conn.until(b"EX\r\n"))
    reply = conn.until(b"\r\nsta\r\n")
    cas = int(reply.split()[2][1:])
    conn.sock.sendall(b"ms k 3 C%d c\r\nfin\r\nmg k v\r\n" % cas)
    out.append(conn.until(b"\r\n"))
    out.append(conn.until(b"\r\nfin\r\n"))
    return [normalise(item) for item in out]


def _cas_flow(conn: Conn) -> list[bytes]:
    conn.sock.sendall(b"ms k 1 c\r\nx\r\n")
    cas = int(conn.until(b"\r\n").split()[1][1:])
    conn.sock.sendall(b"ms k 1 C%d c\r\ny\r\nms k 1 C%d\r\nz\r\n" % (cas, cas))
    first = conn.until(b"\r\n")
    out = [normalise(first), conn.until(b"\r\n")]
    new = int(first.split()[1][1:])
    conn.sock.sendall(b"md k C%d q\r\nmd k C%d\r\nmg k\r\n" % (cas, new))
    out.append(conn.until(b"EN\r\n"))
    conn.sock.sendall(b"ms n 1\r\n5\r\nmg n c\r\n")
    conn.until(b"HD\r\n")
    ncas = int(conn.until(b"\r\n").split()[1][1:])
    conn.sock.sendall(b"ma n C%d v c\r\nma n C%d v\r\n" % (ncas, ncas))
    out.append(normalise(conn.until(b"\r\n") + conn.until(b"\r\n")))
    out.append(conn.until(b"\r\n"))
    return out


def _one_read_each(conn: Conn) -> list[bytes]:
    """Each request in a read of its own, its reply awaited: a read of exactly one
    `mg <key> v` takes memcloud's fast path, which must answer as the parser's path."""
    out = []
    for request, end in (
        (b"ms k 3\r\nabc\r\n", b"\r\n"),
        (b"mg k v\r\n", b"abc\r\n"),
        (b"mg nope v\r\n", b"\r\n"),
        (b"mg k h\r\n", b"\r\n"),
        (b"md k I\r\n", b"\r\n"),
        (b"mg k v\r\n", b"abc\r\n"),
        (b"mg k v\r\n", b"abc\r\n"),
        (b"mg nope N30 v\r\n", b"\r\n\r\n"),
        (b"mg nope v\r\n", b"\r\n\r\n"),
        (b"mg %s v\r\n" % (b"k" * 251), b"\r\n"),
    ):
        conn.sock.sendall(request)
        out.append(normalise(conn.until(end)))
    return out


@pytest.mark.parametrize("flow", [_stale_cas_flow, _cas_flow, _one_read_each])
def test_same_meta_flow_as_memcached(ports: dict[str, int], flow: object) -> None:
    assert callable(flow)
    results = {}
    for server, port in ports.items():
        conn = Conn(port)
        try:
            conn.sock.sendall(b"flush_all\r\n")
            assert conn.until(b"\r\n") == b"OK\r\n"
            results[server] = flow(conn)
        finally:
            conn.close()
    assert results["memcloud"] == results["memcached"]
