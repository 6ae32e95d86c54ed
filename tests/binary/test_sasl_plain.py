from __future__ import annotations

from memcloud.protocol.sasl import MECHANISMS, PlainCredentials, parse_plain


def test_only_plain_is_offered() -> None:
    assert MECHANISMS == b"PLAIN"


def test_forms_clients_send() -> None:
    assert parse_plain(b"\x00user\x00secret") == PlainCredentials(b"", b"user", b"secret")
    # libmemcached repeats the username as the authorization identity
    assert parse_plain(b"user\x00user\x00secret") == PlainCredentials(b"user", b"user", b"secret")
    assert parse_plain(b"\x00user\x00") == PlainCredentials(b"", b"user", b"")


def test_malformed_or_proxy_messages_are_refused() -> None:
    for message in (
        b"",
        b"user",
        b"\x00user",
        b"\x00\x00secret",
        b"admin\x00user\x00secret",  # acting as someone else
        b"\x00user\x00se\x00cret",
    ):
        assert parse_plain(message) is None, message
