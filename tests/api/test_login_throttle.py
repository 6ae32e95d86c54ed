"""HTTP Basic guessing is throttled with 429 + Retry-After (finding 7): per address prefix
and per username, shared with the memcache logins; clients of other prefixes go on at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import RawConnection
from memcloud.auth_throttle import BASE_DELAY, FREE_FAILURES, USERNAME_FREE_FAILURES
from memcloud.protocol.replies import AUTH_FAILED
from memcloud.testing import ServerProcess, ascii_login

THROTTLED_V1 = "Too many failed logins. Try again later."


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data") as proc:
        yield proc


def client(server: ServerProcess, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(
        base_url=f"http://127.0.0.1:{server.api_port}", transport=transport, timeout=10
    )


def login(server: ServerProcess, source: str, password: str) -> httpx.Response:
    with client(server, source) as http:
        return http.get("/api/v1/login", auth=(server.username, password))


def _assert_throttled(reply: httpx.Response) -> None:
    assert reply.status_code == 429
    assert reply.json() == THROTTLED_V1
    assert reply.headers["retry-after"].isdigit()
    assert 1 <= int(reply.headers["retry-after"]) <= 5


def test_guesses_from_one_address_get_429_after_the_free_allowance(
    server: ServerProcess,
) -> None:
    with client(server, "127.0.0.2") as guesser:
        for _ in range(FREE_FAILURES):
            reply = guesser.get("/api/v1/login", auth=(server.username, "wrong"))
            assert reply.status_code == 403
        _assert_throttled(guesser.get("/api/v1/login", auth=(server.username, "wrong")))
        # Refused before the password is checked: the right one is refused just the same.
        _assert_throttled(guesser.get("/api/v1/login", auth=(server.username, server.password)))
        # v2 is the same throttle.
        reply = guesser.get("/api/v2/caches/1/info", auth=(server.username, "wrong"))
        assert reply.status_code == 429
        assert reply.json() == {"message": THROTTLED_V1}
        assert reply.headers["retry-after"].isdigit()
    # Meanwhile a client of another prefix logs in at once.
    reply = login(server, "127.0.1.1", server.password)
    assert reply.status_code == 200
    assert reply.json() == {"cache_id": 1}


def test_guesses_spread_over_one_24_are_bounded(server: ServerProcess) -> None:
    for host in range(10, 10 + FREE_FAILURES):
        assert login(server, f"127.0.0.{host}", "wrong").status_code == 403
    _assert_throttled(login(server, "127.0.0.99", "wrong"))
    # The memcache logins of that prefix share the count: they are held back too (the first
    # step is BASE_DELAY). Timed from the send to the answer: a loaded machine can only make
    # that longer, where a 0.2 s receive timeout raced the 0.25 s hold.
    conn = RawConnection(server.port, source="127.0.0.98")
    conn.sock.settimeout(10)
    started = time.monotonic()
    conn.send(ascii_login(server.username, "wrong"))
    assert conn.sock.recv(100) == AUTH_FAILED
    assert time.monotonic() - started >= BASE_DELAY * 0.9
    conn.close()
    assert login(server, "127.0.2.1", server.password).status_code == 200


def test_guesses_on_one_username_from_many_prefixes_are_bounded(
    server: ServerProcess,
) -> None:
    # Clients made first: making one takes milliseconds, and the first step is 0.25 s.
    guessers = [client(server, f"127.0.{n}.1") for n in range(1, 1 + USERNAME_FREE_FAILURES)]
    for http in guessers:
        assert http.get("/api/v1/login", auth=(server.username, "wrong")).status_code == 403
    # Every guessing prefix has failed once: its next guess on this username must wait.
    replies = [http.get("/api/v1/login", auth=(server.username, "wrong")) for http in guessers]
    for reply in replies:
        _assert_throttled(reply)
    for http in guessers:
        http.close()
    # The real user from a clean network is not locked out.
    assert login(server, "127.0.200.1", server.password).status_code == 200
    # Nor on the memcache port.
    conn = RawConnection(server.port, source="127.0.201.1")
    assert conn.request(ascii_login(server.username, server.password)) == b"STORED\r\n"
    conn.close()
