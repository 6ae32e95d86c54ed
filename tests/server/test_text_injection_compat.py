"""Issue 9's injections against Debian's memcached (1.6.18) and memcloud, byte for byte:
an `ms` line's data block, and a command line ending in an `HTTP/` token.

Both implement `ms` (memcloud since issue 13): the same meta status (`HD`, `NS`, ...) and
everything after it the same — the same bytes taken as data, the same commands run.
"""

from __future__ import annotations

import re

import pytest

from server.test_text_compat import BIG, Conn, normalise, ports, transcript, v

__all__ = ["ports"]  # the fixture, shared with test_text_compat

SCRIPTS: dict[str, list[bytes]] = {
    "ms without a length": [b"ms\r\nms note\r\nms note x\r\nms note -1\r\nms note +x\r\n"],
    "ms length over INT_MAX - 2": [b"ms note 2147483646\r\nget a\r\n"],
    "ms bad data chunk": [b"set a 0 0 1\r\nx\r\nms note 3\r\nabcd\r\nget a\r\n"],
    "ms bad data chunk with a command after it": [b"ms note 1\r\nxy\r\nflush_all\r\n"],
    "ms too large": [b"set a 0 0 1\r\nx\r\nms note %d\r\n%s\r\nget a\r\n" % (BIG, v(BIG))],
    "ms too large holding commands": [
        b"set a 0 0 1\r\nx\r\nms note %d\r\n%s\r\nget a\r\n"
        % (BIG, (b"flush_all\r\n" * (BIG // 11 + 1))[:BIG])
    ],
    "ms too large in pieces": [
        b"set a 0 0 1\r\nx\r\nms note %d\r\n" % BIG,
        v(BIG // 2, b"y"),
        v(BIG - BIG // 2, b"y") + b"\r\nget a\r\n",
    ],
    "HTTP-like lines that do not close": [
        b"foo http/1.1\r\nfoo HTTP/1.1 x\r\nX HTTP/1.1\r\ngx HTTP/1.1\r\nsx HTTP/1.1\r\n"
        b"mx HTTP/1.1\r\nget HTTP/1.1\r\n"
    ],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_replies_as_memcached(ports: dict[str, int], name: str) -> None:
    script = SCRIPTS[name]
    expected = transcript(ports["memcached"], script)
    assert transcript(ports["memcloud"], script) == expected


# memcached's answer to an `ms` it stored (or did not, by its mode): one status line.
_META_STATUS = re.compile(rb"^(HD|NS|EX|NF)( [^\r\n]*)?\r\n", re.M)
_CAS = re.compile(rb" c\d+(?=[ \r])")  # a CAS number, which differs between the servers

# Valid meta sets: both run them and read the same block as their data.
META_SCRIPTS: dict[str, list[bytes]] = {
    "ms holding flush_all": [b"set a 0 0 1\r\nx\r\nms note 9\r\nflush_all\r\nget a\r\n"],
    "ms with flags": [b"set a 0 0 1\r\nx\r\nms note 9 T0 F5 c\r\nflush_all\r\nget a\r\n"],
    "ms with modes": [
        b"set a 0 0 1\r\nx\r\nms n1 6 MA\r\ndelete\r\nms n2 10 ME\r\nflush_all \r\n"
        b"ms n3 5 MR\r\nquit!\r\nget a\r\n"
    ],
    "ms empty block": [b"ms note 0\r\n\r\nget a\r\n"],
    "ms block split over reads": [
        b"set a 0 0 1\r\nx\r\nms note 9\r\nflu",
        b"sh_a",
        b"ll\r",
        b"\nget a\r\n",
    ],
    "ms one byte at a time": [
        bytes([c]) for c in b"set a 0 0 1\r\nx\r\nms b 4\r\nquit\r\nget a\r\n"
    ],
}


@pytest.mark.parametrize("name", list(META_SCRIPTS))
def test_ms_blocks_skipped_as_memcached_skips_them(ports: dict[str, int], name: str) -> None:
    script = META_SCRIPTS[name]
    expected = _CAS.sub(b" c<cas>", transcript(ports["memcached"], script))
    assert _META_STATUS.search(expected)
    assert _CAS.sub(b" c<cas>", transcript(ports["memcloud"], script)) == expected


def _http_request(port: int, request: list[bytes]) -> tuple[bytes, bytes]:
    """What an HTTP request on the memcache port gets, and what a canary reads after it."""
    conn = Conn(port)
    try:
        conn.sock.sendall(b"set canary 0 0 4\r\nlive\r\n")
        assert conn.until(b"\r\n") == b"STORED\r\n"
        for chunk in request:
            conn.sock.sendall(chunk)
        answer = conn.until_closed()
    finally:
        conn.close()
    after = Conn(port)
    try:
        after.sock.sendall(b"get canary\r\n")
        return answer, normalise(after.until(b"END\r\n"))
    finally:
        after.close()


HTTP_REQUESTS: dict[str, list[bytes]] = {
    "browser POST": [
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 11\r\n\r\nflush_all\r\n"
    ],
    "GET": [b"GET /?flush_all HTTP/1.1\r\nflush_all\r\n"],
    "bare version token": [b"HTTP/1.0\r\nflush_all\r\n"],
    "lowercase unknown command": [b"foo HTTP/\r\nflush_all\r\n"],
    "request line in pieces": [b"POST / H", b"TTP/1.1\r", b"\nflush_all\r\n"],
    "after a get in the same read": [b"get canary\r\nPUT / HTTP/1.1\r\nflush_all\r\n"],
}


@pytest.mark.parametrize("name", list(HTTP_REQUESTS))
def test_http_request_line_closes_as_in_memcached(ports: dict[str, int], name: str) -> None:
    request = HTTP_REQUESTS[name]
    expected = _http_request(ports["memcached"], request)
    assert expected[1] == b"VALUE canary 0 4\r\nlive\r\nEND\r\n"  # the flush never ran
    assert _http_request(ports["memcloud"], request) == expected
