"""Protocol-only micro-benchmark: a session's `handle` fed requests in this process, with no
sockets and no event loop, so that parser and storage regressions show on their own.

    .venv/bin/python -m bench.micro                          # the data plane this process runs
    MEMCLOUD_PURE_PYTHON=1 .venv/bin/python -m bench.micro   # the pure Python sources

Prints microseconds per request (best of several passes) for text get, set (also with
noreply, as pymemcache sends it), 16 pipelined gets and a 10-key multi-get (per key), meta
get (`mg <key> v`, its fast path, and `mg <key> v f` by the parser) and meta set, and
binary get, libmemcached's GetKQ + Noop get, and set; 100-byte values, 1,000 keys.
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable, Sequence

from memcloud import native
from memcloud.auth import Directory
from memcloud.binary_session import BinarySession
from memcloud.clock import SystemClock
from memcloud.config import Settings
from memcloud.control.models import CacheRecord
from memcloud.service import Service, Session
from memcloud.storage.registry import Registry
from memcloud.text_session import TextSession

KEYS = 1000
VALUE = b"x" * 100
_HEADER = struct.Struct(">BBHBBHIIQ")


def _service() -> Service:
    settings = Settings(anonymous_cache="bench")
    directory = Directory([CacheRecord(1, "bench", 64 * 1024 * 1024)], [], 1)
    return Service(Registry(1 << 30, 1 << 20), directory, SystemClock(), settings)


def _binary(opcode: int, key: bytes, extras: bytes = b"", value: bytes = b"") -> bytes:
    body = len(key) + len(extras) + len(value)
    header = _HEADER.pack(0x80, opcode, len(key), len(extras), 0, 0, body, 7, 0)
    return header + extras + key + value


def _per_request(session: Session, reads: Sequence[bytes], requests: int, passes: int) -> float:
    """The best pass's microseconds per request, `reads` holding `requests` requests."""
    handle = session.handle
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for data in reads:
            handle(data)
        best = min(best, time.perf_counter() - start)
    return best / requests * 1e6


def cases(count: int) -> list[tuple[str, Callable[[int], float]]]:
    text = TextSession(_service(), "bench", lambda: None)
    binary = BinarySession(_service(), "bench", lambda: None)
    for i in range(KEYS):
        text.handle(b"set key:%d 0 0 %d\r\n%s\r\n" % (i, len(VALUE), VALUE))
        binary.handle(_binary(0x01, b"key:%d" % i, bytes(8), VALUE))
    gets = [b"get key:%d\r\n" % (i % KEYS) for i in range(count)]
    sets = [b"set key:%d 0 0 %d\r\n%s\r\n" % (i % KEYS, len(VALUE), VALUE) for i in range(count)]
    piped = [b"".join(gets[i : i + 16]) for i in range(0, count, 16)]
    multi = [
        b"get " + b" ".join(b"key:%d" % ((i + j) % KEYS) for j in range(10)) + b"\r\n"
        for i in range(count // 10)
    ]
    noreply_sets = [
        b"set key:%d 0 0 %d noreply\r\n%s\r\n" % (i % KEYS, len(VALUE), VALUE) for i in range(count)
    ]
    binary_gets = [_binary(0x00, b"key:%d" % (i % KEYS)) for i in range(count)]
    # libmemcached's get (pylibmc, PHP, memcslap --binary): GetKQ then Noop, as two reads.
    quiet_gets = [
        data
        for i in range(count)
        for data in (_binary(0x0D, b"key:%d" % (i % KEYS)), _binary(0x0A, b""))
    ]
    binary_sets = [_binary(0x01, b"key:%d" % (i % KEYS), bytes(8), VALUE) for i in range(count)]
    meta_gets = [b"mg key:%d v\r\n" % (i % KEYS) for i in range(count)]
    # the same requests by the parser's path (a flag the fast path does not take)
    meta_gets_parsed = [b"mg key:%d v f\r\n" % (i % KEYS) for i in range(count)]
    meta_sets = [b"ms key:%d %d\r\n%s\r\n" % (i % KEYS, len(VALUE), VALUE) for i in range(count)]
    return [
        ("text get", lambda passes: _per_request(text, gets, count, passes)),
        ("text set", lambda passes: _per_request(text, sets, count, passes)),
        ("text set noreply", lambda passes: _per_request(text, noreply_sets, count, passes)),
        ("text get, 16 pipelined", lambda passes: _per_request(text, piped, count, passes)),
        ("text multi-get, per key", lambda passes: _per_request(text, multi, count, passes)),
        ("meta get (mg <key> v)", lambda passes: _per_request(text, meta_gets, count, passes)),
        ("meta get, parsed (mg v f)", lambda p: _per_request(text, meta_gets_parsed, count, p)),
        ("meta set (ms)", lambda passes: _per_request(text, meta_sets, count, passes)),
        ("binary get", lambda passes: _per_request(binary, binary_gets, count, passes)),
        ("binary getkq + noop", lambda passes: _per_request(binary, quiet_gets, count, passes)),
        ("binary set", lambda passes: _per_request(binary, binary_sets, count, passes)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000, help="requests per pass")
    parser.add_argument("--passes", type=int, default=7, help="passes; the best one counts")
    options = parser.parse_args()
    print(f"data plane: {native.in_use()}")
    for name, measure in cases(options.requests):
        print(f"{name:<26} {measure(options.passes):6.2f} us")


if __name__ == "__main__":
    main()
