"""Repeated failed text logins from one address are answered late; others are not slowed."""

from __future__ import annotations

import time

from conftest import RawConnection
from memcloud.auth_throttle import BASE_DELAY, FREE_FAILURES
from memcloud.testing import ServerProcess, ascii_login


def test_failed_text_logins_are_slowed_down_without_slowing_others(
    server: ServerProcess,
) -> None:
    guesser = RawConnection(server.port)
    honest = RawConnection(server.port)
    assert honest.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
    for _ in range(FREE_FAILURES):
        started = time.monotonic()
        reply = guesser.request(ascii_login(server.username, "wrong"))
        assert reply == b"CLIENT_ERROR authentication failure\r\n"
        assert time.monotonic() - started < BASE_DELAY
    started = time.monotonic()
    guesser.send(ascii_login(server.username, "wrong"))
    # While the guesser waits for its answer, an authenticated client is served at once.
    assert honest.request(b"version\r\n").startswith(b"VERSION ")
    assert time.monotonic() - started < BASE_DELAY
    assert guesser.read_until(b"\r\n") == b"CLIENT_ERROR authentication failure\r\n"
    assert time.monotonic() - started >= BASE_DELAY * 0.9
    guesser.close()
    honest.close()
