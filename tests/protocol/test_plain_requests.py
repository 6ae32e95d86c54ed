"""The plain get/set shortcuts of the text protocol: what they accept, and that anything
they do not accept (including a line that has not ended yet) is left to the parser; and the
VALUE line suffixes the get replies are assembled from."""

from __future__ import annotations

import pytest

from memcloud.protocol import replies
from memcloud.protocol.plain import plain_get_key, plain_set
from memcloud.protocol.replies import VALUE_SUFFIXES_MAX, value_suffix


def line_end(data: bytes) -> int:
    return data.find(b"\r\n")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"get a\r\n", b"a"),
        (b"get key:1\r\n", b"key:1"),
        (b"get " + b"k" * 250 + b"\r\n", b"k" * 250),
        (b"get " + b"k" * 251 + b"\r\n", None),
        (b"get a b\r\n", None),  # a multi-get goes to the parser
        (b"get \r\n", None),
        (b"get ", None),  # no line end yet
        (b"get", None),
        (b"get a", None),
        (b"gets a\r\n", None),
        (b"get x\x01y\r\n", None),
    ],
)
def test_plain_get_key(data: bytes, key: bytes | None) -> None:
    assert plain_get_key(data, 0, line_end(data)) == key


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (b"set a 1 2 3\r\nxyz\r\n", (b"a", 1, 2, 13, 16, False)),
        (b"set a 0 0 0\r\n\r\n", (b"a", 0, 0, 13, 13, False)),
        (b"set a 0 0 3 noreply\r\nxyz\r\n", (b"a", 0, 0, 21, 24, True)),
        (b"set a 0 0 3\r\nxy", None),  # value not whole yet
        (b"set a 0 0 3\r\nxyzw\r\n", None),  # bad data chunk: the parser's answer
        (b"set a 0 0 3 norepl\r\nxyz\r\n", None),
        (b"set a 0 0 3 noreply x\r\nxyz\r\n", None),
        (b"set a +1 0 3\r\nxyz\r\n", None),
        (b"set a 0 -1 3\r\nxyz\r\n", None),
        (b"set a 0 0 2000\r\n" + b"v" * 2000 + b"\r\n", None),  # over item_size_max
        (b"set ", None),  # no line end yet
        (b"set", None),
        (b"set a 0 0 3", None),
    ],
)
def test_plain_set(data: bytes, answer: tuple[bytes, int, int, int, int, bool] | None) -> None:
    assert plain_set(data, 0, line_end(data), 1024) == answer


def test_plain_requests_at_an_offset() -> None:
    data = b"get a\r\nget bb\r\n"
    assert plain_get_key(data, 7, data.find(b"\r\n", 7)) == b"bb"
    data = b"get a\r\nset b 0 0 1\r\nx\r\n"
    assert plain_set(data, 7, data.find(b"\r\n", 7), 1024) == (b"b", 0, 0, 20, 21, False)


def test_value_suffixes_are_exact_and_their_memo_stays_bounded() -> None:
    pairs = [(flags, length) for flags in (0, 1, 4294967295) for length in range(2000)]
    for flags, length in pairs:
        assert value_suffix(flags, length) == b" %d %d\r\n" % (flags, length)
        assert len(replies._VALUE_SUFFIXES) <= VALUE_SUFFIXES_MAX
    assert value_suffix(4294967295, 0) == b" 4294967295 0\r\n"
