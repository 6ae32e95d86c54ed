"""Bodies are refused before they are read, and the API's connections are capped.

A 100 MB body to the partner API used to be read whole (200 MB of RSS) before its size was
checked; any number of connections could be held open.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.api.limits import DEPLOY_HOOK_MAX_BODY_BYTES, MAX_BODY_BYTES, MAX_HEAD_BYTES
from memcloud.testing import ServerProcess, wait_for

from .conftest import (
    PROVISION_ENV,
    PROVISION_PASSWORD,
    PROVISION_USER,
    closed_after,
    connect,
    peak_rss_kib,
    read_response,
)

CAP = 20
MIB = 1024 * 1024
# What the server may grow by while refusing a 100 MB body (buffers, a few responses).
RSS_SLACK_KIB = 16 * 1024
PARTNER_AUTH = b"Authorization: Basic " + base64.b64encode(
    f"{PROVISION_USER}:{PROVISION_PASSWORD}".encode()
)


@pytest.fixture(scope="module")
def proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**PROVISION_ENV, "MEMCLOUD_API_MAX_CONNECTIONS": str(CAP)}
    with ServerProcess(Path(tmp_path_factory.mktemp("bounds")) / "data", env=env) as server:
        yield server


def _pid(proc: ServerProcess) -> int:
    assert proc.process is not None
    return proc.process.pid


def _send_until_answered(sock: socket.socket, head: bytes, chunks: Iterator[bytes]) -> int:
    """Send `head` then `chunks` until the server answers or closes; bytes of body sent."""
    sock.sendall(head)
    sock.setblocking(False)
    sent = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        return sent
                except BlockingIOError:
                    pass
                try:
                    n = sock.send(view)
                except BlockingIOError:
                    time.sleep(0.005)
                    continue
                view, sent = view[n:], sent + n
        return sent
    except (BrokenPipeError, ConnectionResetError):
        return sent
    finally:
        sock.setblocking(True)


def test_100_mb_content_length_is_refused_without_reading_it(proc: ServerProcess) -> None:
    before = peak_rss_kib(_pid(proc))
    size = 100 * MIB
    head = (
        b"POST /heroku/resources HTTP/1.1\r\nHost: x\r\n" + PARTNER_AUTH + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
    )
    sock = connect(proc.api_port or 0)
    sent = _send_until_answered(sock, head, (b" " * MIB for _ in range(100)))
    status, headers, body = read_response(sock)
    assert (status, json.loads(body)) == (413, {"message": "request body too large"})
    assert headers["connection"] == "close"
    assert closed_after(sock, 5) is not None
    sock.close()
    assert sent < size
    assert peak_rss_kib(_pid(proc)) - before < RSS_SLACK_KIB


def test_chunked_oversized_body_is_cut_at_the_limit(proc: ServerProcess) -> None:
    before = peak_rss_kib(_pid(proc))
    head = (
        b"POST /heroku/resources HTTP/1.1\r\nHost: x\r\n" + PARTNER_AUTH + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (16 * 1024, b" " * 16 * 1024)
    sock = connect(proc.api_port or 0)
    sent = _send_until_answered(sock, head, (chunk for _ in range(100 * 64)))
    status, headers, body = read_response(sock)
    assert (status, json.loads(body)) == (413, {"message": "request body too large"})
    assert headers["connection"] == "close"
    assert closed_after(sock, 5) is not None
    sock.close()
    assert sent < 100 * MIB
    assert peak_rss_kib(_pid(proc)) - before < RSS_SLACK_KIB


def test_a_body_at_the_limit_is_read(proc: ServerProcess) -> None:
    """The partner API answers a body of exactly the limit on its merits (not JSON: 400)."""
    url = f"http://127.0.0.1:{proc.api_port}/heroku/resources"
    auth = (PROVISION_USER, PROVISION_PASSWORD)
    at_limit = httpx.post(url, content=b"x" * MAX_BODY_BYTES, auth=auth)
    assert (at_limit.status_code, at_limit.json()) == (400, {"message": "the body is not JSON"})
    over = httpx.post(url, content=b"x" * (MAX_BODY_BYTES + 1), auth=auth)
    assert (over.status_code, over.json()) == (413, {"message": "request body too large"})


HOOK = DEPLOY_HOOK_MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("path", "limit", "expected"),
    [
        ("/api/v1/1/flush", HOOK, "Request body too large."),
        ("/api/v1//1/flush", HOOK, "Request body too large."),
        ("/api/v1/1/credentials", MAX_BODY_BYTES, "Request body too large."),
        ("/api/v2/caches/1/flush", HOOK, {"message": "Request Entity Too Large"}),
        ("/api/v2/caches/1/credentials", MAX_BODY_BYTES, {"message": "Request Entity Too Large"}),
        ("/dashboard/login", MAX_BODY_BYTES, {"detail": "Request Entity Too Large"}),
        ("/sso/login", MAX_BODY_BYTES, {"detail": "Request Entity Too Large"}),
        ("/heroku/resources", MAX_BODY_BYTES, {"message": "request body too large"}),
    ],
)
def test_every_route_checks_content_length_first(
    proc: ServerProcess, path: str, limit: int, expected: object
) -> None:
    """Refused on the head alone, before authentication and before a byte of the body."""
    sock = connect(proc.api_port or 0)
    sock.sendall(
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % (path.encode(), limit + 1)
    )
    status, headers, body = read_response(sock)
    assert closed_after(sock, 5) is not None
    sock.close()
    assert (status, json.loads(body), headers["connection"]) == (413, expected, "close")


def test_a_huge_header_is_refused(proc: ServerProcess) -> None:
    sock = connect(proc.api_port or 0)
    sock.sendall(b"GET /api/v1/login HTTP/1.1\r\nHost: x\r\nX-Big: ")
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(b"a" * (MAX_HEAD_BYTES + 1024))
    status, _, _ = read_response(sock)
    assert status == 400
    assert closed_after(sock, 5) is not None
    sock.close()


def test_connections_beyond_the_cap_are_refused_at_once(proc: ServerProcess) -> None:
    port = proc.api_port or 0
    url = f"http://127.0.0.1:{port}/api/v1/login"
    held = [connect(port) for _ in range(CAP)]
    try:
        # Every slot is taken once the server has accepted them all.
        def full() -> bool:
            extra = connect(port)
            try:
                return closed_after(extra, 1.0) is not None
            finally:
                extra.close()

        assert wait_for(full, timeout=5)
        for _ in range(5):
            extra = connect(port)
            took = closed_after(extra, 2.0)
            extra.close()
            assert took is not None and took < 1.0
        # The memcache data plane does not notice.
        client = Client(proc.address, timeout=5)
        assert client.set(proc.username, proc.password, noreply=False)
        assert client.set("k", b"v", noreply=False)
        assert client.get("k") == b"v"
        client.close()
    finally:
        for sock in held:
            sock.close()

    def answers() -> bool:
        try:
            return httpx.get(url, auth=(proc.username, proc.password)).status_code == 200
        except httpx.TransportError:
            return False

    assert wait_for(answers, timeout=5)
