"""Tenancy and capabilities, driven through the real CLI against a running server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memcloud.testing import ServerProcess, ascii_login, wait_for

from .helpers import connect, create_cache, create_credential, login, stats_of, try_login


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("tenancy") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


def test_two_caches_never_see_each_others_keys(server: ServerProcess) -> None:
    a, b = create_cache(server, "iso-a"), create_cache(server, "iso-b")
    ca, cb = login(server.port, a.username, a.password), login(server.port, b.username, b.password)
    assert ca.request(b"set shared 1 0 5\r\nfrom1\r\n") == b"STORED\r\n"
    assert cb.request(b"get shared\r\n", b"END\r\n") == b"END\r\n"
    assert cb.request(b"add shared 2 0 5\r\nfrom2\r\n") == b"STORED\r\n"
    assert ca.request(b"get shared\r\n", b"END\r\n") == b"VALUE shared 1 5\r\nfrom1\r\nEND\r\n"
    assert cb.request(b"get shared\r\n", b"END\r\n") == b"VALUE shared 2 5\r\nfrom2\r\nEND\r\n"
    assert cb.request(b"delete shared\r\n") == b"DELETED\r\n"
    assert ca.request(b"get shared\r\n", b"END\r\n") == b"VALUE shared 1 5\r\nfrom1\r\nEND\r\n"
    assert cb.request(b"flush_all\r\n") == b"OK\r\n"
    assert ca.request(b"get shared\r\n", b"END\r\n") == b"VALUE shared 1 5\r\nfrom1\r\nEND\r\n"
    sa, sb = stats_of(ca), stats_of(cb)
    assert sa["curr_items"] == "1" and sb["curr_items"] == "0"
    assert sa["cmd_set"] == "1" and sb["cmd_set"] == "1"
    ca.close()
    cb.close()


def test_second_credential_shares_the_cache(server: ServerProcess) -> None:
    cache = create_cache(server, "shared-cache")
    other = create_credential(server, "shared-cache")
    first = login(server.port, cache.username, cache.password)
    assert first.request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert wait_for(
        lambda: try_login(server.port, other.username, other.password) == b"STORED\r\n",
        timeout=5.0,
    )
    second = login(server.port, other.username, other.password)
    assert second.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nx\r\nEND\r\n"
    first.close()
    second.close()


def test_read_only_credential_changes_nothing(server: ServerProcess) -> None:
    cache = create_cache(server, "ro")
    owner = login(server.port, cache.username, cache.password)
    assert owner.request(b"set k 3 0 1\r\nx\r\nset n 0 0 1\r\n5\r\n") == b"STORED\r\n"
    owner.read_until(b"STORED\r\n")
    ro = create_credential(server, "ro", "--no-write")
    assert wait_for(
        lambda: try_login(server.port, ro.username, ro.password) == b"STORED\r\n",
        timeout=5.0,
    )
    conn = login(server.port, ro.username, ro.password)
    for verb in (b"set", b"add", b"replace", b"append", b"prepend"):
        assert conn.request(b"%s k 0 0 1\r\ny\r\n" % verb) == b"NOT_STORED\r\n"
        assert conn.request(b"%s new 0 0 1\r\ny\r\n" % verb) == b"NOT_STORED\r\n"
    assert conn.request(b"cas k 0 0 1 1\r\ny\r\n") == b"NOT_STORED\r\n"
    denied = b"CLIENT_ERROR permission denied: credential has no write capability\r\n"
    for line in (b"delete k\r\n", b"incr n 1\r\n", b"decr n 1\r\n", b"touch k 1\r\n"):
        assert conn.request(line) == denied
    assert conn.request(b"gat 1 k\r\n") == denied
    # noreply: nothing answered, nothing changed
    conn.send(b"set k 0 0 1 noreply\r\nz\r\ndelete k noreply\r\nincr n 1 noreply\r\n")
    assert conn.request(b"get k n\r\n", b"END\r\n") == (
        b"VALUE k 3 1\r\nx\r\nVALUE n 0 1\r\n5\r\nEND\r\n"
    )
    # reads and stats still work; flush is a separate capability
    assert stats_of(conn)["curr_items"] == "2"
    assert owner.request(b"get k n new\r\n", b"END\r\n") == (
        b"VALUE k 3 1\r\nx\r\nVALUE n 0 1\r\n5\r\nEND\r\n"
    )
    conn.close()
    owner.close()


def test_no_flush_credential_cannot_flush(server: ServerProcess) -> None:
    cache = create_cache(server, "noflush")
    owner = login(server.port, cache.username, cache.password)
    assert owner.request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
    nf = create_credential(server, "noflush", "--no-flush")
    assert wait_for(
        lambda: try_login(server.port, nf.username, nf.password) == b"STORED\r\n",
        timeout=5.0,
    )
    conn = login(server.port, nf.username, nf.password)
    denied = b"CLIENT_ERROR permission denied: credential has no flush capability\r\n"
    assert conn.request(b"flush_all\r\n") == denied
    assert conn.request(b"flush_all 10\r\n") == denied
    conn.send(b"flush_all noreply\r\n")
    assert conn.request(b"set j 0 0 1\r\ny\r\n") == b"STORED\r\n"  # it may still write
    assert owner.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nx\r\nEND\r\n"
    assert stats_of(owner)["cmd_flush"] == "0"
    conn.close()
    owner.close()


def test_deleted_credential_loses_its_connection(server: ServerProcess) -> None:
    create_cache(server, "revoke")
    cred = create_credential(server, "revoke")
    assert wait_for(
        lambda: try_login(server.port, cred.username, cred.password) == b"STORED\r\n",
        timeout=5.0,
    )
    conn = login(server.port, cred.username, cred.password)
    server.cli("credentials", "delete", "revoke", cred.username)
    started = time.monotonic()
    assert conn.is_closed(timeout=3)
    assert time.monotonic() - started < 2.2
    assert try_login(server.port, cred.username, cred.password) == (
        b"CLIENT_ERROR authentication failure\r\n"
    )


def test_deleted_cache_loses_its_connections(server: ServerProcess) -> None:
    cache = create_cache(server, "doomed")
    other = create_cache(server, "survivor")
    conn = login(server.port, cache.username, cache.password)
    keep = login(server.port, other.username, other.password)
    assert conn.request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
    server.cli("cache", "delete", "doomed")
    started = time.monotonic()
    assert conn.is_closed(timeout=3)
    assert time.monotonic() - started < 2.2
    assert keep.request(b"version\r\n").startswith(b"VERSION ")
    keep.close()


def test_new_credential_works_within_two_seconds(server: ServerProcess) -> None:
    create_cache(server, "fresh")
    cred = create_credential(server, "fresh")
    started = time.monotonic()
    assert wait_for(
        lambda: try_login(server.port, cred.username, cred.password) == b"STORED\r\n",
        timeout=2.0,
    )
    assert time.monotonic() - started < 2.1


def test_capability_update_applies_to_open_connections(server: ServerProcess) -> None:
    create_cache(server, "downgrade")
    cred = create_credential(server, "downgrade")
    assert wait_for(
        lambda: try_login(server.port, cred.username, cred.password) == b"STORED\r\n",
        timeout=5.0,
    )
    conn = login(server.port, cred.username, cred.password)
    assert conn.request(b"set k 0 0 1\r\nx\r\n") == b"STORED\r\n"
    server.cli("credentials", "update", "downgrade", cred.username, "--no-write")
    assert wait_for(lambda: conn.request(b"set probe 0 0 1\r\ny\r\n") == b"NOT_STORED\r\n", 2.5)
    assert conn.request(b"set k 0 0 1\r\ny\r\n") == b"NOT_STORED\r\n"
    assert conn.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nx\r\nEND\r\n"
    conn.close()


def test_login_names_a_single_cache(server: ServerProcess) -> None:
    """A credential of one cache with another cache's password is refused."""
    a, b = create_cache(server, "pw-a"), create_cache(server, "pw-b")
    conn = connect(server.port)
    assert conn.request(ascii_login(a.username, b.password)) == (
        b"CLIENT_ERROR authentication failure\r\n"
    )
    conn.close()
