"""The sans-IO text parser: every command whole, one byte at a time, and with trailing bytes;
malformed input gives memcached's reply and the parser stays in step."""

from __future__ import annotations

import pytest

from memcloud.protocol import replies
from memcloud.protocol.commands import (
    Arith,
    Close,
    Delete,
    FlushAll,
    FlushPrefix,
    Invalid,
    Quit,
    Record,
    Retrieve,
    Stats,
    Store,
    StoreVerb,
    Touch,
    Verbosity,
    Version,
)
from memcloud.protocol.commands import Command as ClassicCommand
from memcloud.protocol.limits import LINE_MAX, RETRIEVAL_LINE_MAX
from memcloud.protocol.meta import MG, MS, MetaCommand
from memcloud.protocol.specs import META_SPECS
from memcloud.protocol.text import NEED_DATA, TextParser

ITEM_MAX = 1024 * 1024
# What the text parser yields: the classic commands and the meta ones.
Command = ClassicCommand | MetaCommand


def _meta(verb: int, key: bytes, flags: list[bytes], value: bytes = b"") -> MetaCommand:
    command = MetaCommand(verb, key, flags, META_SPECS[b"ms"])  # the spec is not compared
    command.value = value
    return command


def parse_all(
    data: bytes, *, chunk: int | None = None, authenticating: bool = False
) -> list[Command]:
    """Feed `data` (whole, or in chunks of `chunk` bytes) and collect every command."""
    parser = TextParser(ITEM_MAX)
    parser.authenticating = authenticating
    out: list[Command] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        parser.receive_data(piece)
        for _ in range(len(data) + 2):
            command = parser.next_command()
            if command is NEED_DATA:
                break
            assert isinstance(command, Record)  # every Command is one
            out.append(command)
    assert parser.next_command() is NEED_DATA
    return out


_ERROR = Invalid(replies.ERROR)

# (input, the commands it parses into)
CASES: list[tuple[bytes, list[Command]]] = [
    (b"get a\r\n", [Retrieve([b"a"], False, None)]),
    (b"get a b c\r\n", [Retrieve([b"a", b"b", b"c"], False, None)]),
    (b"gets a b\r\n", [Retrieve([b"a", b"b"], True, None)]),
    (b"gat 10 a b\r\n", [Retrieve([b"a", b"b"], False, 10)]),
    (b"gats -1 a\r\n", [Retrieve([b"a"], True, -1)]),
    (b"gat 10\r\n", [Retrieve([], False, 10)]),
    (b"set k 5 0 3\r\nabc\r\n", [Store(StoreVerb.SET, b"k", 5, 0, b"abc", 0, False)]),
    (b"set k 0 0 0\r\n\r\n", [Store(StoreVerb.SET, b"k", 0, 0, b"", 0, False)]),
    (b"set k 1 2 3 noreply\r\na\r\n\r\n", [Store(StoreVerb.SET, b"k", 1, 2, b"a\r\n", 0, True)]),
    (b"add k 0 -1 1\r\nx\r\n", [Store(StoreVerb.ADD, b"k", 0, -1, b"x", 0, False)]),
    (b"replace k 0 0 1\r\nx\r\n", [Store(StoreVerb.REPLACE, b"k", 0, 0, b"x", 0, False)]),
    (b"append k 0 0 1\r\nx\r\n", [Store(StoreVerb.APPEND, b"k", 0, 0, b"x", 0, False)]),
    (b"prepend k 0 0 1\r\nx\r\n", [Store(StoreVerb.PREPEND, b"k", 0, 0, b"x", 0, False)]),
    (
        b"cas k 4294967295 0 1 18446744073709551615\r\nx\r\n",
        [Store(StoreVerb.CAS, b"k", 4294967295, 0, b"x", 18446744073709551615, False)],
    ),
    (b"cas k 0 0 1 7 noreply\r\nx\r\n", [Store(StoreVerb.CAS, b"k", 0, 0, b"x", 7, True)]),
    (b"set k +5 +7 +1\r\nx\r\n", [Store(StoreVerb.SET, b"k", 5, 7, b"x", 0, False)]),
    (b"set k -0 0 1\r\nx\r\n", [Store(StoreVerb.SET, b"k", 0, 0, b"x", 0, False)]),
    (b"delete k\r\n", [Delete(b"k", False)]),
    (b"delete k noreply\r\n", [Delete(b"k", True)]),
    (b"delete k 0\r\n", [Delete(b"k", False)]),
    (b"delete k 0 noreply\r\n", [Delete(b"k", True)]),
    (b"incr k 1\r\n", [Arith(b"k", 1, True, False)]),
    (b"decr k 18446744073709551615 noreply\r\n", [Arith(b"k", (1 << 64) - 1, False, True)]),
    (b"incr k +2\r\n", [Arith(b"k", 2, True, False)]),
    (b"touch k 10\r\n", [Touch(b"k", 10, False)]),
    (b"touch k -1 noreply\r\n", [Touch(b"k", -1, True)]),
    (b"flush_all\r\n", [FlushAll(0, False)]),
    (b"flush_all 10\r\n", [FlushAll(10, False)]),
    (b"flush_all noreply\r\n", [FlushAll(0, True)]),
    (b"flush_all 10 noreply\r\n", [FlushAll(10, True)]),
    (b"flush_all 0 0\r\n", [FlushAll(0, False)]),
    (b"flush_all -1\r\n", [FlushAll(-1, False)]),
    (b"flush_prefix views:\r\n", [FlushPrefix(b"views:", False)]),
    (b"flush_prefix views: noreply\r\n", [FlushPrefix(b"views:", True)]),
    (b"flush_prefix " + b"p" * 250 + b"\r\n", [FlushPrefix(b"p" * 250, False)]),
    (b"stats\r\n", [Stats(())]),
    (b"stats settings\r\n", [Stats((b"settings",))]),
    (b"stats detail dump\r\n", [Stats((b"detail", b"dump"))]),
    (b"version\r\n", [Version()]),
    (b"verbosity 1\r\n", [Verbosity(False)]),
    (b"verbosity 1 noreply\r\n", [Verbosity(True)]),
    (b"quit\r\n", [Quit()]),
    # bare LF line ends are accepted, as memcached does
    (b"get a\nversion\n", [Retrieve([b"a"], False, None), Version()]),
    (b"set k 0 0 1\nx\r\n", [Store(StoreVerb.SET, b"k", 0, 0, b"x", 0, False)]),
    # runs of spaces between tokens
    (b"get   a  b \r\n", [Retrieve([b"a", b"b"], False, None)]),
    # errors
    (b"\r\n", [Invalid(replies.ERROR)]),
    (b"foo\r\n", [Invalid(replies.ERROR)]),
    (b"GET a\r\n", [Invalid(replies.ERROR)]),
    (b"get\r\n", [Invalid(replies.ERROR)]),
    (b"gat\r\n", [Invalid(replies.ERROR)]),
    (b"gat x a\r\n", [Invalid(replies.INVALID_EXPTIME)]),
    (b"get " + b"k" * 251 + b"\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"set k 0 0\r\n", [Invalid(replies.ERROR)]),
    (b"set k 0 0 1 noreply extra\r\nx\r\n", [Invalid(replies.ERROR), Invalid(replies.ERROR)]),
    (b"set k 0 0 -1\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"set k 0 0 x\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"set k 0 0 2147483646\r\n", [Invalid(replies.BAD_FORMAT)]),
    # a bad flags/exptime/key with a readable length: refused, the value skipped
    (b"set k x 0 1\r\nx\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    (b"set k 0 x 1\r\nx\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    (b"set k 4294967296 0 1\r\nx\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    (
        b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\nversion\r\n",
        [Invalid(replies.BAD_FORMAT), Version()],
    ),
    (b"set k 0 x 1 noreply\r\nx\r\nversion\r\n", [Invalid(b""), Version()]),
    (b"cas k 0 0 1\r\nx\r\n", [Invalid(replies.ERROR), Invalid(replies.ERROR)]),
    (b"cas k 0 0 1 -1\r\nx\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    # a value of the wrong length
    (b"set k 0 0 1\r\nxy\r\n", [Invalid(replies.BAD_CHUNK), Invalid(replies.ERROR)]),
    (b"set k 0 0 1 noreply\r\nxy\r\n", [Invalid(b""), Invalid(replies.ERROR)]),
    # too large: refused, value swallowed, a `set` names the key to drop
    (
        b"set k 0 0 1048577\r\n" + b"v" * 1048577 + b"\r\nversion\r\n",
        [Invalid(replies.TOO_LARGE, b"k"), Version()],
    ),
    (
        b"add k 0 0 1048577 noreply\r\n" + b"v" * 1048577 + b"\r\nversion\r\n",
        [Invalid(b""), Version()],
    ),
    (b"incr k x\r\n", [Invalid(replies.INVALID_DELTA)]),
    (b"incr k -1\r\n", [Invalid(replies.INVALID_DELTA)]),
    (b"incr k 18446744073709551616\r\n", [Invalid(replies.INVALID_DELTA)]),
    (b"incr k x noreply\r\n", [Invalid(b"")]),
    (b"incr k\r\n", [Invalid(replies.ERROR)]),
    (b"incr " + b"k" * 251 + b" 1\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"touch k x\r\n", [Invalid(replies.INVALID_EXPTIME)]),
    (b"touch k x noreply\r\n", [Invalid(b"")]),
    (b"delete k 1\r\n", [Invalid(replies.BAD_DELETE_FORMAT)]),
    (b"delete k 1 noreply\r\n", [Invalid(b"")]),
    (b"delete k noreply 0\r\n", [Invalid(replies.BAD_DELETE_FORMAT)]),
    (b"delete\r\n", [Invalid(replies.ERROR)]),
    (b"flush_all x\r\n", [Invalid(replies.INVALID_EXPTIME)]),
    (b"flush_all noreply 0\r\n", [Invalid(replies.INVALID_EXPTIME)]),
    (b"flush_all 1 2 3\r\n", [Invalid(replies.ERROR)]),
    (b"flush_prefix\r\n", [Invalid(replies.ERROR)]),
    (b"flush_prefix a b c\r\n", [Invalid(replies.ERROR)]),
    (b"flush_prefix a b\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"flush_prefix " + b"p" * 251 + b"\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"flush_prefix " + b"p" * 251 + b" noreply\r\n", [Invalid(b"")]),
    (b"flush_prefix a\x01b\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"verbosity\r\n", [Invalid(replies.ERROR)]),
    (b"verbosity x\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"verbosity noreply\r\n", [Invalid(b"")]),
    (b"get a\x01b\r\n", [Invalid(replies.BAD_FORMAT)]),
    # An over-long line that is no retrieval: answered, then the session closes (Close).
    (b"x" * (LINE_MAX + 10) + b"\r\nversion\r\n", [Close(replies.LINE_TOO_LONG), Version()]),
    (b"set k 0 0 1" + b" " * LINE_MAX + b"\r\nx\r\n", [Close(replies.LINE_TOO_LONG), _ERROR]),
    # meta `ms`: its data block is read whole, or skipped with memcached's replies to a
    # block it refuses
    (b"ms k 9\r\nflush_all\r\n", [_meta(MS, b"k", [], b"flush_all")]),
    (
        b"ms k 9 T0 F1\r\nflush_all\r\nversion\r\n",
        [_meta(MS, b"k", [b"T0", b"F1"], b"flush_all"), Version()],
    ),
    (b"ms k 3\r\nabcXYversion\r\n", [Invalid(replies.BAD_CHUNK), Version()]),
    (b"ms k 0\r\n\r\n", [_meta(MS, b"k", [])]),
    (b"ms\r\n", [Invalid(replies.ERROR)]),
    (b"ms k\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"ms k x\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    (b"ms k -1\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    (b"ms a\x01b 3\r\nabc\r\nversion\r\n", [Invalid(replies.BAD_FORMAT), Version()]),
    (b"ms " + b"k" * 251 + b" 3\r\nabc\r\n", [Invalid(replies.BAD_FORMAT)]),
    (b"ms k 3" + b" T" * 17 + b"\r\nabc\r\n", [Invalid(replies.META_FLAGS_TOO_LONG)]),
    (b"ms k 3" + b" T" * 16 + b"\r\nabc\r\n", [Invalid(b"CLIENT_ERROR duplicate flag\r\n")]),
    (
        b"ms k %d\r\n%s\r\nversion\r\n" % (ITEM_MAX, b"f" * ITEM_MAX),
        # memcached drops the old value of a too-large ms, whatever its mode
        [Invalid(replies.TOO_LARGE, b"k"), Version()],
    ),
    # memcached's cross-protocol guard: an unknown command ending in an HTTP/ token
    (b"GET / HTTP/1.1\r\nflush_all\r\n", [Close(b""), FlushAll(0, False)]),
    (b"HTTP/1.0\r\n", [Close(b"")]),
    (b"POST /\x01 HTTP/1.1\r\n", [Close(b"")]),
    (b"foo http/1.1\r\n", [Invalid(replies.ERROR)]),
    (b"foo HTTP/1.1 x\r\n", [Invalid(replies.ERROR)]),
    (b"gx HTTP/1.1\r\n", [Invalid(replies.ERROR)]),
    (b"mg HTTP/1.1\r\n", [_meta(MG, b"HTTP/1.1", [])]),
    (b"X HTTP/1.1\r\n", [Invalid(replies.ERROR)]),
    (b"get HTTP/1.1\r\n", [Retrieve([b"HTTP/1.1"], False, None)]),
]


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[repr(c[0][:40]) for c in CASES])
def test_whole(data: bytes, expected: list[Command]) -> None:
    assert parse_all(data) == expected


# Inputs over 100 KB are fed in odd chunks instead (test_odd_chunks): a byte at a time they
# would take minutes.
SMALL_CASES = [case for case in CASES if len(case[0]) <= 100_000]


@pytest.mark.parametrize(
    ("data", "expected"), SMALL_CASES, ids=[repr(c[0][:40]) for c in SMALL_CASES]
)
def test_one_byte_at_a_time(data: bytes, expected: list[Command]) -> None:
    assert parse_all(data, chunk=1) == expected


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[repr(c[0][:40]) for c in CASES])
def test_odd_chunks(data: bytes, expected: list[Command]) -> None:
    assert parse_all(data, chunk=7 if len(data) < 100_000 else 65_521) == expected


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[repr(c[0][:40]) for c in CASES])
def test_with_trailing_bytes(data: bytes, expected: list[Command]) -> None:
    """A partial next command stays buffered and does not change what came before it."""
    parser = TextParser(ITEM_MAX)
    parser.receive_data(data + b"get partial")
    got: list[Command] = []
    for _ in range(len(expected) + 2):
        command = parser.next_command()
        if command is NEED_DATA:
            break
        assert isinstance(command, Record)  # every Command is one
        got.append(command)
    assert got == expected
    parser.receive_data(b"\r\n")
    assert parser.next_command() == Retrieve([b"partial"], False, None)


def test_pipelined_in_order() -> None:
    data = b"".join(case for case, _ in CASES if len(case) < 10_000)
    expected = [c for case, cmds in CASES if len(case) < 10_000 for c in cmds]
    assert parse_all(data) == expected
    assert parse_all(data, chunk=3) == expected


def test_authenticating_set_accepts_anything_in_flags_and_exptime() -> None:
    assert parse_all(b"set user _ _ 4\r\npass\r\n", authenticating=True) == [
        Store(StoreVerb.SET, b"user", 0, 0, b"pass", 0, False)
    ]


def test_ms_before_login_is_skipped_unread() -> None:
    data = b"ms k 20000\r\n" + b"p" * 20000 + b"\r\nversion\r\n"
    refused = [Invalid(replies.UNAUTHENTICATED), Version()]
    assert parse_all(data, authenticating=True) == refused
    assert parse_all(data, authenticating=True, chunk=999) == refused


def test_ms_block_waits_bounded_by_the_item_limit() -> None:
    parser = TextParser(ITEM_MAX)
    parser.receive_data(b"ms k %d\r\n" % (ITEM_MAX - 1))
    step = ITEM_MAX // 16
    for size in [step] * 15 + [step - 1]:
        assert parser.next_command() is NEED_DATA
        parser.receive_data(b"g" * size)
        assert parser.buffered <= ITEM_MAX + 64
    parser.receive_data(b"\r\nversion\r\n")
    assert parser.next_command() == _meta(MS, b"k", [], b"g" * (ITEM_MAX - 1))
    assert parser.next_command() == Version()


def test_authenticating_refuses_a_long_credential_and_stays_in_step() -> None:
    data = b"set user 0 0 5000\r\n" + b"p" * 5000 + b"\r\nversion\r\n"
    assert parse_all(data, authenticating=True) == [Invalid(replies.AUTH_FAILED), Version()]


def test_over_long_line_refused_with_bounded_memory() -> None:
    """An endless line is answered once and then dropped as it arrives (the session closes
    at a Close; the parser itself stays bounded and in step)."""
    parser = TextParser(ITEM_MAX)
    chunk = b"z" * 65536
    answers: list[Command] = []
    for _ in range(200):  # 13 MB without a line end
        parser.receive_data(chunk)
        command = parser.next_command()
        if command is not NEED_DATA:
            assert isinstance(command, Record)  # every Command is one
            answers.append(command)
        assert parser.buffered <= RETRIEVAL_LINE_MAX + len(chunk)
    assert answers == [Close(replies.LINE_TOO_LONG)]
    parser.receive_data(b"zzz\r\nversion\r\n")
    assert parser.next_command() == Version()


def test_endless_multiget_is_bounded_too() -> None:
    parser = TextParser(ITEM_MAX)
    parser.receive_data(b"get ")
    answers: list[Command] = []
    for _ in range(100):
        parser.receive_data(b"key " * 16384)
        command = parser.next_command()
        if command is not NEED_DATA:
            assert isinstance(command, Record)  # every Command is one
            answers.append(command)
        assert parser.buffered <= RETRIEVAL_LINE_MAX + 2 * 65536
    assert answers == [Invalid(replies.LINE_TOO_LONG)]


def test_long_multiget_arriving_slowly_is_parsed() -> None:
    keys = [b"key%05d" % i for i in range(5000)]
    line = b"get " + b" ".join(keys) + b"\r\n"
    assert parse_all(line, chunk=100) == [Retrieve(keys, False, None)]


def test_value_arriving_in_small_chunks() -> None:
    value = bytes(range(256)) * 1000
    data = b"set k 0 0 %d\r\n%s\r\n" % (len(value), value)
    assert parse_all(data, chunk=1000) == [Store(StoreVerb.SET, b"k", 0, 0, value, 0, False)]


def test_value_may_contain_line_ends_and_commands() -> None:
    value = b"get a\r\nflush_all\r\n"
    data = b"set k 0 0 %d\r\n%s\r\n" % (len(value), value)
    assert parse_all(data) == [Store(StoreVerb.SET, b"k", 0, 0, value, 0, False)]
