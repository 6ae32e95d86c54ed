"""Any input gives commands, Invalid or NEED_DATA, never another exception; memory stays
bounded; and however the input is split, the commands are the same."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memcloud.protocol.commands import Command as ClassicCommand
from memcloud.protocol.commands import Record
from memcloud.protocol.limits import RETRIEVAL_LINE_MAX
from memcloud.protocol.meta import MetaCommand
from memcloud.protocol.text import NEED_DATA, TextParser

ITEM_MAX = 4096  # small, so that fuzzed lengths reach the too-large path
BOUND = RETRIEVAL_LINE_MAX + ITEM_MAX + 65536
Command = ClassicCommand | MetaCommand  # what the text parser yields

VALID = [
    b"get a b\r\n",
    b"gets a\r\n",
    b"gat 10 a\r\n",
    b"gats 0 a b\r\n",
    b"set k 1 2 3\r\nabc\r\n",
    b"add k 0 0 1 noreply\r\nx\r\n",
    b"replace k 0 0 1\r\nx\r\n",
    b"append k 0 0 2\r\nxy\r\n",
    b"prepend k 0 0 2\r\nxy\r\n",
    b"cas k 0 0 1 99\r\nx\r\n",
    b"delete k\r\n",
    b"delete k 0 noreply\r\n",
    b"incr k 5\r\n",
    b"decr k 5 noreply\r\n",
    b"touch k 10\r\n",
    b"flush_all 10 noreply\r\n",
    b"stats items\r\n",
    b"version\r\n",
    b"verbosity 1\r\n",
    b"quit\r\n",
    b"ms k 3 T0 F1\r\nabc\r\n",
    b"ms k 9\r\nflush_all\r\n",
    b"mg k v t c f k s h l O1 q u\r\n",
    b"mg Zm9v b k v N30 R10 T20\r\n",
    b"md k I T30 C5 q k\r\n",
    b"ma k N0 J5 D2 MD v c t\r\n",
    b"me Zm9v b\r\n",
    b"mn\r\n",
    b"GET / HTTP/1.1\r\n",
]


def drain(parser: TextParser, limit: int) -> list[Command]:
    out: list[Command] = []
    for _ in range(limit):
        command = parser.next_command()
        if command is NEED_DATA:
            return out
        assert isinstance(command, Record)  # every Command is one
        out.append(command)
    raise AssertionError("next_command never asked for more data")


def run(chunks: list[bytes], *, authenticating: bool = False) -> list[Command]:
    parser = TextParser(ITEM_MAX)
    parser.authenticating = authenticating
    out: list[Command] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        out += drain(parser, len(chunk) + 2)
        assert parser.buffered <= BOUND
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return [p for p in pieces if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_any_bytes(chunks: list[bytes], authenticating: bool) -> None:
    run(chunks, authenticating=authenticating)


@st.composite
def mutated_commands(draw: st.DrawFn) -> bytes:
    """Valid commands with bytes replaced, inserted or deleted, numbers and lengths broken."""
    parts = draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=6))
    data = bytearray(b"".join(parts))
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete", "number"]))
        if action == "replace" and pos < len(data):
            data[pos] = draw(st.sampled_from(b" \r\n\t\x00\x80-+09az"))
        elif action == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [b" ", b"\r\n", b"\n", b"noreply", b"-1", b"99999999999999999999999"]
                )
            )
        elif action == "delete" and pos < len(data):
            del data[pos : pos + draw(st.integers(1, 5))]
        elif action == "number":
            data[pos:pos] = str(draw(st.integers(-(2**70), 2**70))).encode()
    return bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_commands(), st.lists(st.integers(0, 10_000), max_size=6))
def test_mutated_commands_same_however_split(data: bytes, cuts: list[int]) -> None:
    whole = run([data])
    assert run(split(data, cuts)) == whole
    assert run([data[i : i + 1] for i in range(len(data))]) == whole


@settings(max_examples=600, deadline=None)
@given(mutated_commands())
def test_mutated_commands_while_authenticating(data: bytes) -> None:
    run([data], authenticating=True)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(1, 40))
def test_endless_line_keeps_memory_bounded(pattern: bytes, rounds: int) -> None:
    """Any line that never ends, fed in 64 KiB reads, holds at most the bound."""
    pattern = pattern.replace(b"\n", b"x")
    chunk = (pattern * (65536 // len(pattern) + 1))[:65536]
    parser = TextParser(ITEM_MAX)
    for _ in range(rounds * 5):
        parser.receive_data(chunk)
        drain(parser, 10)
        assert parser.buffered <= BOUND
