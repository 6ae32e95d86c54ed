"""The command table (protocol/specs.py) held to the parsers and to what each command needs:
every command a parser can produce has a row, each row needs what this file says it needs,
and the text parser's arity is the table's."""

from __future__ import annotations

import typing

import pytest

from command_needs import BINARY_NEEDS, META_NEEDS, TEXT_NEEDS
from memcloud.protocol import replies
from memcloud.protocol.binary import (
    HEADER,
    REQUEST_MAGIC,
    BinaryParser,
    Opcode,
    Rejected,
    Status,
    single_request,
)
from memcloud.protocol.commands import (
    Admin,
    Arith,
    Close,
    Command,
    Delete,
    FlushAll,
    FlushPrefix,
    Invalid,
    Quit,
    Retrieve,
    Stats,
    Store,
    StoreVerb,
    Touch,
    Verbosity,
    Version,
)
from memcloud.protocol.meta import MetaCommand
from memcloud.protocol.specs import (
    ANY_TOKENS,
    BINARY_SPECS,
    CLOSE,
    INVALID,
    META_SPECS,
    SPECS_BY_OPCODE,
    TEXT_SPECS,
    text_spec,
)
from memcloud.protocol.text import TextParser

# A well-formed line of each text command.
TEXT_LINES = {
    "get": b"get k\r\n",
    "gets": b"gets k\r\n",
    "gat": b"gat 0 k\r\n",
    "gats": b"gats 0 k\r\n",
    "set": b"set k 0 0 1\r\nv\r\n",
    "add": b"add k 0 0 1\r\nv\r\n",
    "replace": b"replace k 0 0 1\r\nv\r\n",
    "append": b"append k 0 0 1\r\nv\r\n",
    "prepend": b"prepend k 0 0 1\r\nv\r\n",
    "cas": b"cas k 0 0 1 1\r\nv\r\n",
    "delete": b"delete k\r\n",
    "incr": b"incr k 1\r\n",
    "decr": b"decr k 1\r\n",
    "touch": b"touch k 0\r\n",
    "flush_all": b"flush_all\r\n",
    "flush_prefix": b"flush_prefix views:\r\n",
    "stats": b"stats\r\n",
    "version": b"version\r\n",
    "verbosity": b"verbosity 1\r\n",
    "quit": b"quit\r\n",
    "lru_crawler": b"lru_crawler metadump all\r\n",
    "cache_memlimit": b"cache_memlimit 50\r\n",
    "watch": b"watch\r\n",
}


def _needs(spec_needs_login: bool, spec_needs_write: bool, spec_needs_flush: bool) -> set[str]:
    return {
        name
        for name, needed in (
            ("login", spec_needs_login),
            ("write", spec_needs_write),
            ("flush", spec_needs_flush),
        )
        if needed
    }


def _parse(data: bytes) -> object:
    parser = TextParser(1024 * 1024)
    parser.receive_data(data)
    return parser.next_command()


def test_each_text_row_needs_what_the_command_needs() -> None:
    assert {name.decode() for name in TEXT_SPECS} == set(TEXT_NEEDS)
    assert {name.decode() for name in META_SPECS} == set(META_NEEDS)
    for table, expected in ((TEXT_SPECS, TEXT_NEEDS), (META_SPECS, META_NEEDS)):
        for name, spec in table.items():
            assert spec.name == name.decode()
            got = _needs(not spec.before_auth, spec.needs_write, spec.needs_flush)
            assert got == expected[spec.name], spec.name
    # Before authentication only the text `set` is a login attempt.
    logins = [spec.name for spec in (*TEXT_SPECS.values(), *META_SPECS.values()) if spec.login]
    assert logins == ["set"]


def test_each_binary_row_needs_what_the_opcode_needs() -> None:
    assert set(BINARY_SPECS) == {int(opcode) for opcode in Opcode}
    for opcode, spec in BINARY_SPECS.items():
        assert spec.name == Opcode(opcode).name
        got = _needs(not spec.before_auth, spec.needs_write, spec.needs_flush)
        assert got == BINARY_NEEDS[spec.name], spec.name
        assert not spec.login
    assert [SPECS_BY_OPCODE[n] for n in range(256)] == [BINARY_SPECS.get(n) for n in range(256)]


@pytest.mark.parametrize("name", sorted(TEXT_LINES))
def test_each_text_command_parses_to_its_own_row(name: str) -> None:
    command = _parse(TEXT_LINES[name])
    assert text_spec(command) is TEXT_SPECS[name.encode()], command


def test_every_text_command_type_has_a_row() -> None:
    samples: list[object] = [
        Retrieve([b"k"], False, None),
        Store(StoreVerb.SET, b"k", 0, 0, b"v", 0, False),
        Delete(b"k", False),
        Arith(b"k", 1, True, False),
        Touch(b"k", 0, False),
        FlushAll(0, False),
        FlushPrefix(b"views:", False),
        Stats(()),
        Admin(b"watch", ()),
        Version(),
        Verbosity(False),
        Quit(),
        Invalid(b"ERROR\r\n"),
        Close(b""),
    ]
    assert {type(sample) for sample in samples} == set(typing.get_args(Command))
    for sample in samples:
        assert text_spec(sample) is not None, sample
    for verb in StoreVerb:
        store = Store(verb, b"k", 0, 0, b"v", 0, False)
        assert text_spec(store) is TEXT_SPECS[verb.name.lower().encode()]
    # What is no command of the parser's has no row: the gate refuses it.
    assert text_spec(object()) is None
    assert text_spec(Invalid(b"ERROR\r\n")) is INVALID and INVALID.before_auth
    assert text_spec(Close(b"")) is CLOSE and CLOSE.before_auth


def test_meta_commands_carry_their_row_of_the_table() -> None:
    # Issue 13: the meta commands parse (they answered ERROR before); each carries the row
    # the gate asks, and a mg that changes the item (T, N, E) needs what a write needs.
    for line, name in (
        (b"mg k v\r\n", b"mg"),
        (b"md k\r\n", b"md"),
        (b"ma k\r\n", b"ma"),
        (b"mn\r\n", b"mn"),
        (b"me k\r\n", b"me"),
        (b"ms k 1\r\nv\r\n", b"ms"),
    ):
        command = _parse(line)
        assert isinstance(command, MetaCommand), line
        assert command.spec is META_SPECS[name], line
    for line in (b"mg k v T30\r\n", b"mg k N30\r\n", b"mg k E5\r\n"):
        command = _parse(line)
        assert isinstance(command, MetaCommand) and command.spec.needs_write, line
    assert not META_SPECS[b"mg"].needs_write


@pytest.mark.parametrize("name", sorted(TEXT_LINES))
def test_the_text_parser_reads_its_arity_from_the_table(name: str) -> None:
    spec = TEXT_SPECS[name.encode()]
    line, _, block = TEXT_LINES[name].partition(b"\r\n")
    tokens = line.split()
    assert spec.min_tokens <= len(tokens) <= spec.max_tokens
    if spec.min_tokens > 1:
        short = b" ".join(tokens[: spec.min_tokens - 1]) + b"\r\n"
        assert _parse(short) == Invalid(replies.ERROR), short
    if spec.max_tokens != ANY_TOKENS:
        padding = [b"x"] * (spec.max_tokens + 1 - len(tokens))
        long = b" ".join(tokens + padding) + b"\r\n" + block
        assert _parse(long) == Invalid(replies.ERROR), long


def test_every_opcode_the_binary_parser_accepts_has_a_row() -> None:
    accepted = set()
    for opcode in range(256):
        parser = BinaryParser(1024 * 1024)
        parser.receive_data(HEADER.pack(REQUEST_MAGIC, opcode, 0, 0, 0, 0, 0, 0, 0))
        result = parser.next_command()
        unknown = (
            isinstance(result, Rejected)
            and result.status is Status.UNKNOWN_COMMAND
            and not result.close
        )
        if not unknown:
            accepted.add(opcode)
    assert accepted == set(BINARY_SPECS)


def test_what_the_single_request_shortcut_answers_needs_what_get_needs() -> None:
    # The binary session asks the gate for Get's row once per read before the shortcut.
    answered = set()
    for opcode in range(256):
        for key in (b"", b"k"):
            frame = HEADER.pack(REQUEST_MAGIC, opcode, len(key), 0, 0, 0, len(key), 0, 0) + key
            if single_request(frame) is not None:
                answered.add(opcode)
    assert answered == {Opcode.GET, Opcode.GETQ, Opcode.GETK, Opcode.GETKQ, Opcode.NOOP}
    get = BINARY_SPECS[Opcode.GET]
    assert {BINARY_SPECS[opcode].needs for opcode in answered} == {get.needs}
